// `natkit stun-server`: a STUN server on one or two addresses × two ports (RFC 5780 §6)
// over UDP, TCP and optionally TLS, configured by flags, NATKIT_* variables or a JSON
// file (one schema), running until SIGINT/SIGTERM.
import { formatEndpoint } from '../../net/index.ts';
import { StunServer, roleName, type StunServerOptions } from '../../stun/index.ts';
import { EXIT_OK, UsageError, flag, intOption, type Command, type CommandContext } from '../command.ts';
import { listOption, pairedPorts, serverOptionSpecs, serverSettings, stunSummary, untilAborted } from '../server-options.ts';
import { COMMAND_SUMMARIES } from './summaries.ts';

export const stunServerCommand: Command = {
  name: 'stun-server',
  summary: COMMAND_SUMMARIES['stun-server'],
  usage: '[options]',
  options: {
    listen: {
      type: 'string', short: 'l', multiple: true, valueName: 'ADDR', env: 'NATKIT_LISTEN', default: '0.0.0.0',
      description: 'address to serve on; give two (one family) to answer CHANGE-REQUEST and classic NAT tests',
    },
    port: { type: 'string', short: 'p', valueName: 'PORT', env: 'NATKIT_PORT', default: '3478', description: 'primary port (0: the system chooses)' },
    'alt-port': {
      type: 'string', valueName: 'PORT', env: 'NATKIT_ALT_PORT',
      description: 'second port (RFC 5780 §6); with two addresses it defaults to PORT+1 (0 when PORT is 0)',
    },
    ...serverOptionSpecs('NATKIT_'),
    'tls-port': { type: 'string', valueName: 'PORT', env: 'NATKIT_TLS_PORT', description: 'TLS port (default 5349, and 5350 as its second port)' },
    legacy: { type: 'boolean', env: 'NATKIT_LEGACY', default: true, description: 'answer cookie-less RFC 3489 clients' },
    plain: { type: 'boolean', env: 'NATKIT_PLAIN', description: 'answer non-STUN input with "ip,port\\n" (for nc users)' },
    config: { type: 'string', short: 'c', valueName: 'FILE', env: 'NATKIT_CONFIG', description: 'JSON file keyed by option name, e.g. {"listen": ["198.18.0.1", "198.18.0.2"], "port": 3478}' },
    json: { type: 'boolean', description: 'print the listening endpoints and, at exit, the counters as JSON' },
  },
  details: [
    'Precedence: flags > environment > config file > defaults.',
    '',
    'Examples:',
    '  natkit stun-server                                   # 0.0.0.0:3478 over UDP and TCP',
    '  natkit stun-server -l 198.18.0.1 -l 198.18.0.2       # RFC 5780 layout: 2 addresses x ports 3478, 3479',
    '  NATKIT_PORT=0 natkit stun-server --no-tcp --json     # UDP on a free port, machine-readable',
    '',
    'Stops cleanly on SIGINT or SIGTERM and prints its counters.',
  ].join('\n'),

  async run(ctx) {
    const options = await serverOptions(ctx);
    const json = flag(ctx, 'json');
    const server = await StunServer.create(options);
    try {
      const endpoints = server.endpoints.map((e) => ({ transport: e.transport, role: roleName(e.role), address: formatEndpoint(e.local) }));
      if (json) ctx.io.out(`${JSON.stringify({ listening: endpoints })}\n`);
      else ctx.io.out(`natkit stun-server listening on\n${endpoints.map((e) => `  ${e.transport.padEnd(4)}${e.address}  (${e.role})\n`).join('')}`);
      await untilAborted(ctx.signal);
    } finally {
      await server.close();
    }
    ctx.io.out(json ? `${JSON.stringify({ stats: server.stats })}\n` : `stopped: ${stunSummary(server.stats)}\n`);
    return EXIT_OK;
  },
};

async function serverOptions(ctx: CommandContext): Promise<StunServerOptions> {
  const addresses = listOption(ctx, 'listen');
  if (addresses.length < 1 || addresses.length > 2) throw new UsageError(`--listen: expected one or two addresses, got ${addresses.length}`);
  const port = intOption(ctx, 'port', 0, 65535) ?? 3478;
  const altPort = intOption(ctx, 'alt-port', 0, 65535) ?? (addresses.length === 2 ? (port === 0 ? 0 : port + 1) : undefined);
  if (altPort !== undefined && altPort > 65535) throw new UsageError('--port: the default --alt-port PORT+1 is past 65535; give --alt-port');
  const ports = altPort === undefined ? [port] : [port, altPort];
  const { tls: files, ...common } = await serverSettings(ctx);
  const tlsPort = intOption(ctx, 'tls-port', 0, 65535);
  const tls = files !== undefined
    ? { ...files, ...(tlsPort !== undefined && { ports: pairedPorts(tlsPort, ports.length === 2 ? 2 : 1) }) }
    : undefined;
  return {
    ...common,
    addresses,
    ports,
    ...(tls !== undefined && { tls }),
    legacy: ctx.values.legacy !== false,
    plain: flag(ctx, 'plain'),
    signal: ctx.signal,
  };
}
