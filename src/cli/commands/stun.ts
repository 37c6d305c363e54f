// `natkit stun SERVER`: one Binding transaction (RFC 8489 §7.2; RFC 5780 §7 options;
// RFC 3489 with --legacy) and what the server said about us.
import { formatEndpoint, parseEndpoint, type Endpoint } from '../../net/index.ts';
import { resolveEndpoint } from '../../net/node/index.ts';
import { StunClient, type BindingResult, type StunTransport } from '../../stun/index.ts';
import { EXIT_FAILURE, EXIT_OK, UsageError, flag, intOption, stringOption, type Command } from '../command.ts';
import { TLS_CLIENT_OPTIONS, tlsClientOptions } from '../tls-client.ts';
import { COMMAND_SUMMARIES } from './summaries.ts';

/** RFC 8489 §6.2: 3478 for STUN over UDP and TCP, 5349 over TLS. */
const DEFAULT_PORT: Readonly<Record<StunTransport, number>> = { udp: 3478, tcp: 3478, tls: 5349 };

export const stunCommand: Command = {
  name: 'stun',
  summary: COMMAND_SUMMARIES['stun'],
  usage: '[options] SERVER[:PORT]',
  options: {
    transport: { type: 'string', short: 't', valueName: 'udp|tcp|tls', description: 'transport to the server', default: 'udp' },
    local: { type: 'string', short: 'l', valueName: 'ADDR[:PORT]', description: 'local address (and port) to send from' },
    'change-ip': { type: 'boolean', description: 'ask the server to answer from its other address (RFC 5780 CHANGE-REQUEST)' },
    'change-port': { type: 'boolean', description: 'ask the server to answer from its other port (RFC 5780 CHANGE-REQUEST)' },
    legacy: { type: 'boolean', description: 'send a cookie-less RFC 3489 request' },
    fingerprint: { type: 'boolean', description: 'add FINGERPRINT to the request' },
    rto: { type: 'string', valueName: 'MS', description: 'initial retransmission timeout, RFC 8489 §6.2.1 RTO', default: '500' },
    transmissions: { type: 'string', valueName: 'N', description: 'transmissions in all over UDP, RFC 8489 §6.2.1 Rc', default: '7' },
    ...TLS_CLIENT_OPTIONS,
    json: { type: 'boolean', description: 'print the result as JSON' },
  },
  details: [
    'Examples:',
    '  natkit stun 127.0.0.1:3478',
    '  natkit stun --change-ip --change-port stun.example.net',
    '  natkit stun --transport tls --servername stun.example.net 198.18.0.1:5349 --json',
    '',
    'Exit code 0 when the server answered with success, 1 on an error response or no answer.',
  ].join('\n'),

  async run(ctx) {
    const [target, ...extra] = ctx.positionals;
    if (target === undefined || extra.length > 0) throw new UsageError(`expected one SERVER[:PORT], got ${ctx.positionals.length}`);
    const transport = stringOption(ctx, 'transport') ?? 'udp';
    if (transport !== 'udp' && transport !== 'tcp' && transport !== 'tls') throw new UsageError(`--transport: expected udp, tcp or tls, got "${transport}"`);
    const rtoMs = intOption(ctx, 'rto', 1, 60_000);
    const maxTransmissions = intOption(ctx, 'transmissions', 1, 20);
    const changeRequest = flag(ctx, 'change-ip') || flag(ctx, 'change-port')
      ? { changeIp: flag(ctx, 'change-ip'), changePort: flag(ctx, 'change-port') }
      : undefined;
    if (changeRequest !== undefined && transport !== 'udp') throw new UsageError('--change-ip/--change-port: RFC 5780 §7.2 allows CHANGE-REQUEST over UDP only');
    const { signal } = ctx;

    const server = await resolveEndpoint(target, DEFAULT_PORT[transport], { signal });
    const local = localBinding(stringOption(ctx, 'local'));
    await using client = await StunClient.create({
      env: ctx.env,
      server,
      transport,
      signal,
      fingerprint: flag(ctx, 'fingerprint'),
      ...(rtoMs !== undefined && { rtoMs }),
      ...(maxTransmissions !== undefined && { maxTransmissions }),
      ...(local.address !== undefined && { localAddress: local.address }),
      ...(local.port !== undefined && { localPort: local.port }),
      ...(transport === 'tls' && { tls: await tlsClientOptions(ctx, target) }),
    });
    if (!flag(ctx, 'json')) ctx.io.err(`querying ${formatEndpoint(server)} over ${transport} from ${formatEndpoint(client.local)}…\n`);
    const result = await client.binding({ signal, legacy: flag(ctx, 'legacy'), ...(changeRequest !== undefined && { changeRequest }) });
    const report = describe(server, transport, client.local, result);
    ctx.io.out(flag(ctx, 'json') ? `${JSON.stringify(report, null, 2)}\n` : formatReport(report));
    return result.ok ? EXIT_OK : EXIT_FAILURE;
  },
};

/** --local: an address alone, or an endpoint with its port. */
function localBinding(text: string | undefined): { address?: string; port?: number } {
  if (text === undefined) return {};
  try {
    const { address, port } = parseEndpoint(text, 0);
    return { address, port };
  } catch {
    throw new UsageError(`--local: expected ADDR or ADDR:PORT (IPv6 as [ADDR]:PORT), got "${text}"`);
  }
}

/** The data `natkit stun --json` prints. */
export interface StunReport {
  readonly server: string;
  readonly transport: StunTransport;
  readonly local: string;
  readonly ok: boolean;
  readonly mapped?: string;
  readonly mappedAttribute?: 'XOR-MAPPED-ADDRESS' | 'MAPPED-ADDRESS';
  readonly responseOrigin?: string;
  readonly otherAddress?: string;
  readonly software?: string;
  readonly error?: { readonly code: number; readonly reason: string };
  readonly respondedFrom: string;
  readonly rttMs: number;
  readonly transmissions: number;
}

function describe(server: Endpoint, transport: StunTransport, local: Endpoint, r: BindingResult): StunReport {
  const common = {
    server: formatEndpoint(server),
    transport,
    local: formatEndpoint(local),
    respondedFrom: formatEndpoint(r.from),
    rttMs: Math.round(r.rttMs * 100) / 100,
    transmissions: r.transmissions,
  };
  if (!r.ok) return { ...common, ok: false, error: { code: r.error.code, reason: r.error.reason } };
  return {
    ...common,
    ok: true,
    mapped: formatEndpoint(r.mapped),
    mappedAttribute: r.isXorMapped ? 'XOR-MAPPED-ADDRESS' : 'MAPPED-ADDRESS',
    ...(r.responseOrigin !== undefined && { responseOrigin: formatEndpoint(r.responseOrigin) }),
    ...(r.otherAddress !== undefined && { otherAddress: formatEndpoint(r.otherAddress) }),
    ...(r.software !== undefined && { software: r.software }),
  };
}

function formatReport(r: StunReport): string {
  const rows: [string, string | undefined][] = [
    ['server', `${r.server} (${r.transport})`],
    ['local', r.local],
    r.ok ? ['mapped', `${r.mapped ?? ''}  (${r.mappedAttribute ?? ''})`] : ['error', `${r.error?.code ?? ''} ${r.error?.reason ?? ''}`],
    ['origin', r.responseOrigin],
    ['other', r.otherAddress],
    ['answered by', r.respondedFrom === r.server ? undefined : r.respondedFrom],
    ['software', r.software],
    ['rtt', `${r.rttMs} ms${r.transmissions > 1 ? ` (after ${r.transmissions} transmissions)` : ''}`],
  ];
  return rows.filter((row): row is [string, string] => row[1] !== undefined).map(([k, v]) => `${k.padEnd(12)}${v}\n`).join('');
}
