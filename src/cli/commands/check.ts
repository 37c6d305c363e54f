// `natkit check`: what stands between this host and the internet (RFC 5780 discovery,
// RFC 4787 terms, the classic RFC 3489 label), in the spirit of `tailscale netcheck`.
import { formatEndpoint, type Endpoint } from '../../net/index.ts';
import { resolveEndpoint } from '../../net/node/index.ts';
import { CLASSIC_NAMES, PUBLIC_STUN_SERVERS, checkNat, type NatReport } from '../../nat/index.ts';
import { isNatkitError } from '../../util/index.ts';
import { EXIT_OK, UsageError, flag, intOption, stringOption, type Command, type CommandContext } from '../command.ts';

/** Lifetime ages (seconds) `--lifetime` checks: RFC 4787 REQ-5 asks for at least 120. */
const LIFETIME_AGES_S = [15, 30, 60, 90, 120, 180];

export const checkCommand: Command = {
  name: 'check',
  summary: 'find out what NAT and firewall stand between you and the internet',
  usage: '[options]',
  options: {
    server: { type: 'string', short: 's', valueName: 'HOST[:PORT]', env: 'NATKIT_STUN_SERVER', description: 'STUN server to test against (best: one with two addresses, like natkit stun-server -l A1 -l A2)' },
    server6: { type: 'string', valueName: 'HOST[:PORT]', description: 'an IPv6 STUN server, to learn the public IPv6 address too' },
    local: { type: 'string', short: 'l', valueName: 'ADDR', description: 'local address to test from' },
    lifetime: { type: 'boolean', description: `also measure how long idle mappings live (checks at ${LIFETIME_AGES_S.join(', ')} s; takes ${LIFETIME_AGES_S.at(-1)} s)` },
    'lifetime-ages': { type: 'string', valueName: 'S,S,…', description: 'measure idle mappings at these ages instead (seconds)' },
    hairpin: { type: 'boolean', default: true, description: 'test hairpinning (a packet to our own public address)' },
    samples: { type: 'string', valueName: 'N', default: '3', description: 'extra mappings opened to see the port-allocation pattern (0–16)' },
    'first-rto-ms': { type: 'string', valueName: 'MS', default: '250', description: 'RTO of the first request (10–10000); 4 sends and no answer within 11 × RTO means UDP is blocked' },
    json: { type: 'boolean', description: 'print the report as JSON (no progress on stderr)' },
  },
  details: [
    `Without --server, tries in turn: ${PUBLIC_STUN_SERVERS.map((s) => s.host).join(', ')}.`,
    '',
    'Examples:',
    '  natkit check --server 198.18.0.1',
    '  natkit check --server stun.example.net:3478 --lifetime --json',
    '',
    'Exit code 0 when a report was made (UDP blocked is a finding), 1 when no server could be asked.',
  ].join('\n'),

  async run(ctx) {
    const json = flag(ctx, 'json');
    const samples = intOption(ctx, 'samples', 0, 16) ?? 3;
    const firstRtoMs = intOption(ctx, 'first-rto-ms', 10, 10_000);
    const lifetimeS = lifetimeAges(ctx);
    const candidates = stringOption(ctx, 'server') !== undefined ? [stringOption(ctx, 'server')!] : PUBLIC_STUN_SERVERS.map((s) => s.host);
    const progress = (line: string): void => {
      if (!json) ctx.io.err(`${line}\n`);
    };
    const server6Text = stringOption(ctx, 'server6');
    const server6 = server6Text === undefined ? undefined : await resolveEndpoint(server6Text, 3478, { family: 6, signal: ctx.signal });
    let report: NatReport | undefined;
    for (const text of candidates) {
      let server: Endpoint;
      try {
        server = await resolveEndpoint(text, 3478, { family: 4, signal: ctx.signal });
      } catch (err) {
        if (candidates.length === 1 || !isNatkitError(err, 'ERR_SOCKET')) throw err;
        progress(`${text}: ${err.message}; trying the next server`);
        continue;
      }
      const local = stringOption(ctx, 'local');
      report = await checkNat({
        env: ctx.env,
        server,
        signal: ctx.signal,
        allocationSamples: samples,
        hairpinning: ctx.values.hairpin !== false,
        lifetimeS,
        ...(server6 !== undefined && { server6 }),
        ...(local !== undefined && { localAddress: local }),
        ...(firstRtoMs !== undefined && { firstTimers: { rtoMs: firstRtoMs } }),
        onProgress: (p) => {
          if (p.step !== 'done') progress(`  ${p.step.padEnd(12)}${p.detail}`);
        },
      });
      if (report.udp || candidates.length === 1) break;
      progress(`${text}: no answer; trying the next server`);
    }
    if (report === undefined) {
      ctx.io.err('natkit check: no STUN server could be resolved\n');
      return 1;
    }
    ctx.io.out(json ? `${JSON.stringify(report, null, 2)}\n` : formatReport(report));
    return EXIT_OK;
  },
};

function lifetimeAges(ctx: CommandContext): number[] {
  const text = stringOption(ctx, 'lifetime-ages');
  if (text === undefined) return flag(ctx, 'lifetime') ? LIFETIME_AGES_S : [];
  const ages = text.split(',').map((s) => Number(s.trim()));
  if (ages.some((a) => !Number.isFinite(a) || a <= 0 || a > 3600)) throw new UsageError(`--lifetime-ages: expected seconds in 0–3600 separated by commas, got "${text}"`);
  return ages;
}

const yesNo = (v: boolean | undefined): string => (v === undefined ? 'not measured' : v ? 'yes' : 'no');

/** The report at a glance. */
export function formatReport(r: NatReport): string {
  const lines: string[] = ['', 'Report:'];
  const row = (k: string, v: string): number => lines.push(`  ${k.padEnd(18)}${v}`);
  row('UDP', r.udp ? 'yes' : 'no answer: UDP blocked or server down');
  row('NAT type', `${CLASSIC_NAMES[r.classic]}${r.natted === false ? ' (your address is not translated)' : ''}`);
  if (r.udp) {
    row('  mapping', `${r.mapping} (RFC 4787)`);
    row('  filtering', r.filtering);
    row('Public IPv4', r.publicIPv4 === undefined ? 'none' : `${r.publicIPv4}${r.mapped ? ` (port ${r.mapped.port} for local ${formatEndpoint(r.local)})` : ''}`);
    row('Public IPv6', r.publicIPv6 ?? 'not measured');
    row('Hairpinning', yesNo(r.hairpinning));
    const a = r.portAllocation;
    row('Port allocation', a.kind === 'sequential' ? `sequential, step ${a.step}` : a.kind === 'unknown' ? 'not measured' : a.kind);
    row('Varies by dest.', yesNo(r.mappingVariesByDestination));
    if (r.bindingLifetime !== undefined) {
      const { aliveS, expiredS } = r.bindingLifetime;
      row('Idle mappings', `${aliveS !== undefined ? `alive at ${aliveS} s` : 'gone at the first check'}${expiredS !== undefined ? `, gone by ${expiredS} s` : ', never seen to expire'}`);
    }
    if (r.rttMs !== undefined) row('Round trip', `${r.rttMs} ms`);
  }
  row('Server', `${formatEndpoint(r.server)}${r.otherAddress ? `, other address ${formatEndpoint(r.otherAddress)}` : ' (one address)'}${r.serverSoftware ? `, ${r.serverSoftware}` : ''}`);
  row('Probes', `${r.packets.sent} sent, ${r.packets.received} received in ${r.durationMs} ms`);
  for (const n of r.notMeasured) row(`Not measured`, `${n.what}: ${n.why}`);
  if (r.advice.length > 0) lines.push('', 'Advice:', ...r.advice.map((a) => `  - ${a}`));
  lines.push('');
  return lines.join('\n');
}
