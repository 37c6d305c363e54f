// `natkit turn-server`: natkit's TURN relay (RFC 8656) over UDP, TCP and TLS (§3.1), with
// long-term credentials and TURN REST API secrets (§5), the peer policy (§21.3), quotas,
// a users file reloaded on SIGHUP and a Prometheus /metrics listener; configured by flags,
// NATKIT_TURN_* variables or a JSON file (one schema), running until SIGINT/SIGTERM.
import { formatEndpoint, type Endpoint } from '../../net/index.ts';
import { TurnServer, renderMetrics, type TurnServerOptions } from '../../turn/index.ts';
import { EXIT_OK, UsageError, flag, intOption, type Command, type CommandContext } from '../command.ts';
import { serveMetrics, type MetricsHttp } from '../metrics-http.ts';
import { addressOption, hostPortOption, listOption, serverOptionSpecs, serverSettings, untilAborted } from '../server-options.ts';
import { relayLine, reloadUsersOnRequest, turnListen, turnOptionSpecs, turnSettings, turnSummary, type RelayInfo } from '../turn-options.ts';
import { COMMAND_SUMMARIES } from './summaries.ts';

const ENV = 'NATKIT_TURN_';

export const turnServerCommand: Command = {
  name: 'turn-server',
  summary: COMMAND_SUMMARIES['turn-server'],
  usage: '(--user NAME:PASSWORD | --users-file FILE | --secret S) [options]',
  options: {
    listen: { type: 'string', short: 'l', multiple: true, valueName: 'ADDR', env: `${ENV}LISTEN`, default: '0.0.0.0', description: 'address to serve clients on (repeatable)' },
    port: { type: 'string', short: 'p', valueName: 'PORT', env: `${ENV}PORT`, default: '3478', description: 'UDP and TCP port (0: the system chooses)' },
    ...serverOptionSpecs(ENV),
    'tls-port': { type: 'string', valueName: 'PORT', env: `${ENV}TLS_PORT`, default: '5349', description: 'TLS port, with --tls-cert and --tls-key' },
    rate: {
      type: 'string', valueName: 'N', env: `${ENV}RATE`, default: '20',
      description: 'requests without proven credentials (Binding, 401 challenges) per second per source address; 0 turns the limit off',
    },
    ...turnOptionSpecs(ENV),
    metrics: { type: 'string', valueName: 'ADDR:PORT', env: `${ENV}METRICS`, description: 'serve Prometheus metrics over HTTP at /metrics' },
    config: { type: 'string', short: 'c', valueName: 'FILE', env: `${ENV}CONFIG`, description: 'JSON file keyed by option name, e.g. {"listen": ["198.18.0.1"], "users-file": "/etc/natkit/turn-users"}' },
    json: { type: 'boolean', description: 'print the listening endpoints and, at exit, the counters as JSON' },
  },
  details: [
    'Precedence: flags > environment > config file > defaults. A list in the environment is comma-separated.',
    'Credentials are required: natkit never runs an open relay.',
    '',
    'Examples:',
    '  natkit turn-server -l 198.51.100.7 --users-file /etc/natkit/turn-users',
    '  NATKIT_TURN_SECRET=s3cret natkit turn-server --realm example.org --metrics 127.0.0.1:9641',
    '  natkit turn-server -l 10.0.0.5 --external-address 203.0.113.5 -u alice:pw   # behind a 1:1 NAT',
    '',
    'SIGHUP reads --users-file again (allocations stay). SIGINT or SIGTERM stops cleanly and prints the counters.',
  ].join('\n'),

  async run(ctx) {
    const { options, relay, usersFile, metricsAt } = await serverOptions(ctx);
    const json = flag(ctx, 'json');
    const server = await TurnServer.start(options);
    let metrics: MetricsHttp | undefined;
    const stopReloads = reloadUsersOnRequest(ctx, 'turn-server', server, usersFile);
    try {
      if (metricsAt !== undefined) metrics = await serveMetrics({ ...metricsAt, render: () => renderMetrics(server.stats) });
      announce(ctx, json, server, relay, metrics?.local);
      await untilAborted(ctx.signal);
    } finally {
      await stopReloads();
      await metrics?.close();
      await server.close();
    }
    ctx.io.out(json ? `${JSON.stringify({ stats: server.stats })}\n` : `stopped: ${turnSummary(server.stats)}\n`);
    return EXIT_OK;
  },
};

interface Parsed {
  readonly options: TurnServerOptions;
  readonly relay: RelayInfo;
  readonly usersFile: string | undefined;
  readonly metricsAt: { readonly address: string; readonly port: number } | undefined;
}

async function serverOptions(ctx: CommandContext): Promise<Parsed> {
  const { env, udp, tcp, tls, ...common } = await serverSettings(ctx);
  const addresses = listOption(ctx, 'listen').map((a) => addressOption('listen', a));
  if (addresses.length === 0) throw new UsageError('--listen: expected at least one address');
  const port = intOption(ctx, 'port', 0, 65535) ?? 3478;
  const tlsPort = intOption(ctx, 'tls-port', 0, 65535) ?? 5349;
  const listen = turnListen(addresses, port, [...(udp ? ['udp' as const] : []), ...(tcp ? ['tcp' as const] : [])], tls, tlsPort);
  const { options: turn, relay, usersFile } = await turnSettings(ctx, addresses);
  const options: TurnServerOptions = { ...common, ...turn, env, listen };
  return { options, relay, usersFile, metricsAt: hostPortOption(ctx, 'metrics') };
}

/** Prints where the server listens, relays from and serves metrics. */
function announce(ctx: CommandContext, json: boolean, server: TurnServer, relay: RelayInfo, metrics: Endpoint | undefined): void {
  const listening = server.endpoints.map((e) => ({ transport: e.transport, address: formatEndpoint(e.local) }));
  const metricsUrl = metrics === undefined ? undefined : `http://${formatEndpoint(metrics)}/metrics`;
  if (json) {
    ctx.io.out(`${JSON.stringify({ listening, relay, ...(metricsUrl !== undefined && { metrics: metricsUrl }) })}\n`);
    return;
  }
  ctx.io.out([
    'natkit turn-server listening on',
    ...listening.map((e) => `  ${e.transport.padEnd(4)}${e.address}`),
    relayLine(relay),
    ...(metricsUrl !== undefined ? [`metrics at ${metricsUrl}`] : []),
    '',
  ].join('\n'));
}
