// `natkit serve`: STUN (RFC 8489, RFC 5780 with two addresses), TURN (RFC 8656) and the
// rendezvous server together, from one configuration (flags, NATKIT_* variables, a JSON
// file with sections). They share the UDP socket of the primary port on each address
// (shared-socket.ts), so the mapping a peer registers under is the one STUN reported and
// TURN relays for. TCP: TURN's stream listener on the primary port; rendezvous on a port of
// its own (its envelope starts with the same byte as ChannelData, so sharing TURN's
// listener would need a stream-level split before either protocol sees a byte).
import { formatEndpoint, type Endpoint, type PacketSocket } from '../../net/index.ts';
import { RendezvousServer, type RendezvousServerStats } from '../../rendezvous/index.ts';
import { StunServer, bindUdpLayout, roleName, type ServerRole } from '../../stun/index.ts';
import { TurnServer, renderMetrics } from '../../turn/index.ts';
import { EXIT_OK, UsageError, flag, intOption, type Command, type CommandContext, type OptionSpec } from '../command.ts';
import { serveMetrics, type MetricsHttp } from '../metrics-http.ts';
import {
  addressOption, hostPortOption, inSection, listOption, pairedPorts, serverOptionSpecs, serverSettings, stunSummary, untilAborted, type ServerSettings,
} from '../server-options.ts';
import { renderRendezvousMetrics, renderStunMetrics } from '../serve-metrics.ts';
import { shareSocket, type SharedSocket } from '../shared-socket.ts';
import { relayLine, reloadUsersOnRequest, turnListen, turnOptionSpecs, turnSettings, turnSummary, type RelayInfo, type TurnSettings } from '../turn-options.ts';
import { COMMAND_SUMMARIES } from './summaries.ts';

const ENV = 'NATKIT_';
/** Default TCP port of the rendezvous fallback. */
const RENDEZVOUS_TCP_PORT = 3480;

const shared = serverOptionSpecs(ENV);
const tlsFiles = { 'tls-cert': shared['tls-cert']!, 'tls-key': shared['tls-key']! };
// The TLS files go to the "tls" section. UDP is what serve is for: every component rides
// the shared socket, so it has no --no-udp.
delete shared['tls-cert'];
delete shared['tls-key'];
delete shared.udp;

const options: Record<string, OptionSpec> = {
  listen: {
    type: 'string', short: 'l', multiple: true, valueName: 'ADDR', env: `${ENV}LISTEN`, default: '0.0.0.0',
    description: 'address to serve on; give two (one family, concrete) for RFC 5780 NAT discovery (CHANGE-REQUEST)',
  },
  port: { type: 'string', short: 'p', valueName: 'PORT', env: `${ENV}PORT`, default: '3478', description: 'UDP and TCP port shared by STUN, TURN and rendezvous (0: the system chooses)' },
  ...shared,
  ...inSection('tls', {
    ...tlsFiles,
    'tls-port': { type: 'string', valueName: 'PORT', env: `${ENV}TLS_PORT`, default: '5349', description: 'TLS port, with --tls-cert and --tls-key' },
  }),
  metrics: { type: 'string', valueName: 'ADDR:PORT', env: `${ENV}METRICS`, description: 'serve Prometheus metrics of all three at http://ADDR:PORT/metrics' },
  ...inSection('stun', {
    'alt-port': { type: 'string', valueName: 'PORT', env: `${ENV}ALT_PORT`, description: 'second STUN port with two addresses (RFC 5780 §6); default PORT+1 (0 when PORT is 0)' },
    legacy: { type: 'boolean', env: `${ENV}LEGACY`, default: true, description: 'answer cookie-less RFC 3489 clients' },
  }),
  turn: { type: 'boolean', env: `${ENV}TURN`, default: true, config: 'turn.enabled', description: 'run the TURN relay (credentials required)' },
  ...inSection('turn', turnOptionSpecs(`${ENV}TURN_`)),
  rendezvous: { type: 'boolean', env: `${ENV}RENDEZVOUS`, default: true, config: 'rendezvous.enabled', description: 'run the rendezvous server' },
  ...inSection('rendezvous', {
    'rendezvous-port': {
      type: 'string', valueName: 'PORT', env: `${ENV}RENDEZVOUS_PORT`, default: String(RENDEZVOUS_TCP_PORT),
      description: 'TCP port of the rendezvous fallback (its UDP is the shared port)',
    },
    'rendezvous-lease': { type: 'string', valueName: 'S', env: `${ENV}RENDEZVOUS_LEASE`, default: '30', description: 'registration lifetime without keepalive, seconds' },
    'rendezvous-keepalive': { type: 'string', valueName: 'S', env: `${ENV}RENDEZVOUS_KEEPALIVE`, default: '10', description: 'keepalive interval told to clients, seconds (under the lease)' },
  }),
  config: {
    type: 'string', short: 'c', valueName: 'FILE', env: `${ENV}CONFIG`,
    description: 'JSON file: shared keys at the top, the rest in "stun", "turn", "rendezvous" and "tls" sections (docs/serve.md)',
  },
  json: { type: 'boolean', description: 'print the listening endpoints and, at exit, the counters as JSON' },
};

export const serveCommand: Command = {
  name: 'serve',
  summary: COMMAND_SUMMARIES['serve'],
  usage: '(--user NAME:PASSWORD | --users-file FILE | --secret S | --no-turn) [options]',
  options,
  details: [
    'Precedence: flags > environment > config file > defaults. A list in the environment is comma-separated.',
    'TURN needs credentials (natkit never runs an open relay); --no-turn runs STUN and rendezvous alone.',
    '',
    'Examples:',
    '  natkit serve -l 198.51.100.7 --users-file /etc/natkit/turn-users',
    '  natkit serve -l 198.51.100.7 -l 198.51.100.8 -u alice:pw --metrics 127.0.0.1:9641   # RFC 5780 layout',
    '  natkit serve -c /etc/natkit/serve.json',
    '',
    'SIGHUP reads the TURN users file again. SIGINT or SIGTERM stops cleanly and prints the counters.',
  ].join('\n'),

  async run(ctx) {
    const plan = await parse(ctx);
    const json = flag(ctx, 'json');
    const running = await start(ctx, plan);
    let metrics: MetricsHttp | undefined;
    const stopReloads = running.turn !== undefined ? reloadUsersOnRequest(ctx, 'serve', running.turn, plan.turn?.usersFile) : undefined;
    try {
      if (plan.metricsAt !== undefined) metrics = await serveMetrics({ ...plan.metricsAt, render: () => render(running) });
      announce(ctx, json, running, plan.turn?.relay, metrics?.local);
      await untilAborted(ctx.signal);
    } finally {
      await stopReloads?.();
      await metrics?.close();
      await running.close();
    }
    const stats = {
      stun: running.stun.stats,
      ...(running.turn !== undefined && { turn: running.turn.stats }),
      ...(running.rendezvous !== undefined && { rendezvous: running.rendezvous.stats }),
    };
    ctx.io.out(json ? `${JSON.stringify({ stats })}\n` : [
      'stopped:',
      `  stun        ${stunSummary(stats.stun)}`,
      ...(stats.turn !== undefined ? [`  turn        ${turnSummary(stats.turn)}`] : []),
      ...(stats.rendezvous !== undefined ? [`  rendezvous  ${rendezvousSummary(stats.rendezvous)}`] : []),
      '',
    ].join('\n'));
    return EXIT_OK;
  },
};

/** The parsed configuration. */
interface Plan {
  readonly settings: ServerSettings;
  /** [A1] or [A1, A2]. */
  readonly addresses: readonly string[];
  /** UDP ports: [P1], or [P1, P2] with two addresses. */
  readonly ports: readonly number[];
  readonly tlsPort: number;
  readonly legacy: boolean;
  readonly turn: TurnSettings | undefined;
  readonly rendezvous: { readonly port: number; readonly leaseS: number; readonly keepaliveS: number } | undefined;
  readonly metricsAt: { readonly address: string; readonly port: number } | undefined;
}

async function parse(ctx: CommandContext): Promise<Plan> {
  const settings = await serverSettings(ctx);
  const addresses = listOption(ctx, 'listen').map((a) => addressOption('listen', a));
  if (addresses.length < 1 || addresses.length > 2) throw new UsageError(`--listen: expected one or two addresses, got ${addresses.length}`);
  const port = intOption(ctx, 'port', 0, 65535) ?? 3478;
  const altPort = intOption(ctx, 'alt-port', 0, 65535);
  if (addresses.length === 1 && altPort !== undefined) throw new UsageError('--alt-port: expected two --listen addresses (RFC 5780 needs both)');
  if (addresses.length === 2 && altPort === undefined && port === 65535) throw new UsageError('--port: the default --alt-port PORT+1 is past 65535; give --alt-port');
  const ports = addresses.length === 1 ? [port] : altPort === undefined ? pairedPorts(port, 2) : [port, altPort];
  let rendezvous: Plan['rendezvous'];
  if (ctx.values.rendezvous !== false) {
    const leaseS = intOption(ctx, 'rendezvous-lease', 2, 65535) ?? 30;
    const keepaliveS = intOption(ctx, 'rendezvous-keepalive', 1, 65535) ?? 10;
    if (keepaliveS >= leaseS) throw new UsageError(`--rendezvous-keepalive: expected less than the lease (${leaseS} s), got ${keepaliveS}`);
    rendezvous = { port: intOption(ctx, 'rendezvous-port', 0, 65535) ?? RENDEZVOUS_TCP_PORT, leaseS, keepaliveS };
  }
  return {
    settings,
    addresses,
    ports,
    tlsPort: intOption(ctx, 'tls-port', 0, 65535) ?? 5349,
    legacy: ctx.values.legacy !== false,
    // TURN relays from the primary address (and answers on the primary port of each).
    turn: ctx.values.turn !== false ? await turnSettings(ctx, addresses.slice(0, 1)) : undefined,
    rendezvous,
    metricsAt: hostPortOption(ctx, 'metrics'),
  };
}

/** The three servers on their shared sockets. */
interface Running {
  readonly stun: StunServer;
  readonly turn: TurnServer | undefined;
  readonly rendezvous: RendezvousServer | undefined;
  /** The UDP sockets by STUN role. */
  readonly sockets: readonly PacketSocket[];
  /** Roles whose socket is shared with TURN and rendezvous: the primary port on each address. */
  readonly sharedRoles: readonly ServerRole[];
  /** Stops every server, then closes the sockets. Idempotent. */
  close(): Promise<void>;
}

async function start(ctx: CommandContext, plan: Plan): Promise<Running> {
  const { env, tcp, tls, ...common } = plan.settings;
  const { signal } = ctx;
  const sockets = await bindUdpLayout(env, { addresses: plan.addresses, ports: { udp: plan.ports } }, signal);
  // Role A1:P1, and A2:P1 with two addresses: index 0 and 2 (1 and 3 are STUN's alternate port).
  const sharedRoles: ServerRole[] = plan.addresses.length === 2 ? [0, 2] : [0];
  const components = { turn: plan.turn !== undefined, rendezvous: plan.rendezvous !== undefined, legacyChannels: plan.turn?.options.legacyChannels ?? false };
  const views = new Map<number, SharedSocket>(sharedRoles.map((role) => [role, shareSocket(sockets[role]!, components)]));
  const servers: { close(): Promise<void> }[] = [];
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      // Servers first (they let go of the views), then the sockets they shared.
      await Promise.allSettled(servers.reverse().map((s) => s.close()));
      await Promise.allSettled(sockets.map((s) => s.close()));
    })();
    return closing;
  };
  try {
    // Without TURN, STUN takes TCP and TLS on its own layout; with TURN, TURN's listener answers Binding over streams.
    const stun = await StunServer.create({
      ...common, env, signal, legacy: plan.legacy,
      udpSockets: sockets.map((s, role) => views.get(role)?.stun ?? s),
      ports: plan.ports,
      tcp: plan.turn === undefined && tcp,
      ...(plan.turn === undefined && tls !== undefined && { tls: { ...tls, ports: pairedPorts(plan.tlsPort, plan.ports.length === 2 ? 2 : 1) } }),
    });
    servers.push(stun);
    let turn: TurnServer | undefined;
    if (plan.turn !== undefined) {
      turn = await TurnServer.start({
        ...common, ...plan.turn.options, env,
        listen: turnListen(plan.addresses, plan.ports[0]!, tcp ? ['tcp'] : [], tls, plan.tlsPort),
        udpSockets: [...views.values()].flatMap((v) => (v.turn !== undefined ? [v.turn] : [])),
      });
      servers.push(turn);
    }
    let rendezvous: RendezvousServer | undefined;
    if (plan.rendezvous !== undefined) {
      rendezvous = await RendezvousServer.start({
        env, signal, leaseS: plan.rendezvous.leaseS, keepaliveS: plan.rendezvous.keepaliveS,
        maxConnections: common.maxConnections, idleTimeoutMs: common.idleTimeoutMs,
        udpSockets: [...views.values()].flatMap((v) => (v.rendezvous !== undefined ? [v.rendezvous] : [])),
        tcp: tcp ? plan.addresses.map((address) => ({ address, port: plan.rendezvous!.port })) : [],
      });
      servers.push(rendezvous);
    }
    return { stun, turn, rendezvous, sockets, sharedRoles, close };
  } catch (err) {
    await close();
    throw err;
  }
}

/** One exposition: TURN's families, then STUN's (with the send errors of the sockets serve owns) and rendezvous's. */
function render(r: Running): string {
  const sendErrors = r.sockets.reduce((n, s) => n + s.stats.sendErrors, 0);
  return (r.turn !== undefined ? renderMetrics(r.turn.stats) : '')
    + renderStunMetrics({ ...r.stun.stats, sendErrors })
    + (r.rendezvous !== undefined ? renderRendezvousMetrics(r.rendezvous.stats, r.rendezvous.core.registrationCount) : '');
}

/** One place the command listens and what answers there. */
interface Listening {
  readonly transport: string;
  readonly address: string;
  readonly serves: readonly string[];
}

/** Prints where each component listens, where TURN relays from and where metrics are served. */
function announce(ctx: CommandContext, json: boolean, r: Running, relay: RelayInfo | undefined, metrics: Endpoint | undefined): void {
  const at = (transport: string, local: Endpoint, serves: readonly string[]): Listening => ({ transport, address: formatEndpoint(local), serves });
  const streams = (r.turn?.endpoints ?? r.stun.endpoints).filter((e) => e.transport !== 'udp');
  const listening: Listening[] = [
    ...r.sockets.map((s, role) => at('udp', s.local, [
      `stun ${roleName(role as ServerRole)}`,
      ...(r.sharedRoles.includes(role as ServerRole) ? [...(r.turn !== undefined ? ['turn'] : []), ...(r.rendezvous !== undefined ? ['rendezvous'] : [])] : []),
    ])),
    ...streams.map((e) => at(e.transport, e.local, [r.turn !== undefined ? 'turn' : 'stun'])),
    ...(r.rendezvous?.tcpEndpoints ?? []).map((local) => at('tcp', local, ['rendezvous'])),
  ];
  const metricsUrl = metrics === undefined ? undefined : `http://${formatEndpoint(metrics)}/metrics`;
  if (json) {
    ctx.io.out(`${JSON.stringify({ listening, ...(relay !== undefined && { relay }), ...(metricsUrl !== undefined && { metrics: metricsUrl }) })}\n`);
    return;
  }
  const width = Math.max(...listening.map((l) => l.address.length));
  ctx.io.out([
    'natkit serve listening on',
    ...listening.map((l) => `  ${l.transport.padEnd(4)}${l.address.padEnd(width)}  ${l.serves.join(', ')}`),
    ...(relay !== undefined ? [relayLine(relay)] : []),
    ...(metricsUrl !== undefined ? [`metrics at ${metricsUrl}`] : []),
    '',
  ].join('\n'));
}

/** The rendezvous counters in one line. */
function rendezvousSummary(s: RendezvousServerStats): string {
  const errors = Object.values(s.errors).reduce((a, b) => a + b, 0);
  const dropped = Object.values(s.dropped).reduce((a, b) => a + b, 0);
  return `${s.registered} registered (${s.reregistered} renewed, ${s.expired} expired), ${s.connects} connects, ${s.joins} joins, `
    + `${s.punchOrders} punch orders, ${errors} errors, ${dropped} dropped (${s.dropped['rate-limited']} rate-limited)`;
}
