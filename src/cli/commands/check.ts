// `natkit check`: what stands between this host and the internet (RFC 5780 discovery,
// RFC 4787 terms, the classic RFC 3489 label), in the spirit of `tailscale netcheck`.
import { formatEndpoint, type Endpoint } from '../../net/index.ts';
import { resolveEndpoint } from '../../net/node/index.ts';
import { CLASSIC_NAMES, PUBLIC_STUN_SERVERS, checkNat, type NatReport } from '../../nat/index.ts';
import type { PortMappingProbe } from '../../portmap/index.ts';
import { isNatkitError } from '../../util/index.ts';
import { EXIT_OK, UsageError, flag, intOption, stringOption, type Command, type CommandContext } from '../command.ts';
import { PORTMAP_OPTIONS, cliPortMapper } from './map.ts';
import { COMMAND_SUMMARIES } from './summaries.ts';

/** Lifetime ages (seconds) `--lifetime` checks: RFC 4787 REQ-5 asks for at least 120. */
const LIFETIME_AGES_S = [15, 30, 60, 90, 120, 180];

export const checkCommand: Command = {
  name: 'check',
  summary: COMMAND_SUMMARIES['check'],
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
    portmap: { type: 'boolean', default: true, description: 'also ask the gateway which of PCP, NAT-PMP and UPnP answer (at the same time as the NAT tests)' },
    'portmap-timeout-ms': { type: 'string', valueName: 'MS', default: '250', description: 'how long each port-mapping protocol may take to answer (50–10000); a LAN gateway answers in milliseconds' },
    ...PORTMAP_OPTIONS,
    json: { type: 'boolean', description: 'print the report as JSON (no progress on stderr)' },
  },
  details: [
    `Without --server, tries in turn: ${PUBLIC_STUN_SERVERS.map((s) => s.host).join(', ')}.`,
    '',
    'Examples:',
    '  natkit check --server 198.18.0.1',
    '  natkit check --server stun.example.net:3478 --lifetime --json',
    '  natkit check --server 198.18.0.1 --no-portmap',
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
    // Concurrent with the NAT tests, so it adds no wall time (a silent gateway: at most its timeout).
    const probeMs = intOption(ctx, 'portmap-timeout-ms', 50, 10_000) ?? 250;
    const portMapping = ctx.values.portmap === false ? undefined : probePortMapping(ctx, probeMs);
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
    const pm = await portMapping;
    if (pm !== undefined) progress(`  ${'portmap'.padEnd(12)}${formatPortMapping(pm)}`);
    const full = { ...report, ...(pm !== undefined && { portMapping: pm }) };
    ctx.io.out(json ? `${JSON.stringify(full, null, 2)}\n` : formatReport(report, pm));
    return EXIT_OK;
  },
};

/** What `natkit check` says about port mapping: the probe, or why it could not run. */
export type PortMappingReport = PortMappingProbe | { readonly error: string };

/** Probes PCP, NAT-PMP and UPnP; never rejects (a failure to probe is part of the report). */
async function probePortMapping(ctx: CommandContext, probeMs: number): Promise<PortMappingReport> {
  try {
    await using mapper = await cliPortMapper(ctx, { timeouts: { probeMs, upnpSearchMs: probeMs } });
    return await mapper.probe({ signal: ctx.signal });
  } catch (err) {
    return { error: isNatkitError(err) ? `${err.message} [${err.code}]` : String(err) };
  }
}

/** `PCP 203.0.113.7, NAT-PMP 203.0.113.7, UPnP —` (tailscale netcheck's PortMapping line). */
function formatPortMapping(pm: PortMappingReport): string {
  if ('error' in pm) return `not probed: ${pm.error}`;
  const names = { pcp: 'PCP', natpmp: 'NAT-PMP', upnp: 'UPnP' } as const;
  const parts = (['pcp', 'natpmp', 'upnp'] as const).filter((p) => pm[p].available).map((p) => `${names[p]} ${pm[p].externalAddress ?? `(${pm[p].error ?? 'no address'})`}`);
  return parts.length === 0 ? `none answered${pm.gateway === undefined ? ' (no default gateway)' : ` at ${pm.gateway}`}` : parts.join(', ');
}

function lifetimeAges(ctx: CommandContext): number[] {
  const text = stringOption(ctx, 'lifetime-ages');
  if (text === undefined) return flag(ctx, 'lifetime') ? LIFETIME_AGES_S : [];
  const ages = text.split(',').map((s) => Number(s.trim()));
  if (ages.some((a) => !Number.isFinite(a) || a <= 0 || a > 3600)) throw new UsageError(`--lifetime-ages: expected seconds in 0–3600 separated by commas, got "${text}"`);
  return ages;
}

const yesNo = (v: boolean | undefined): string => (v === undefined ? 'not measured' : v ? 'yes' : 'no');

/** The report at a glance. */
export function formatReport(r: NatReport, portMapping?: PortMappingReport): string {
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
  if (portMapping !== undefined) row('Port mapping', formatPortMapping(portMapping));
  for (const n of r.notMeasured) row(`Not measured`, `${n.what}: ${n.why}`);
  if (r.advice.length > 0) lines.push('', 'Advice:', ...r.advice.map((a) => `  - ${a}`));
  lines.push('');
  return lines.join('\n');
}
