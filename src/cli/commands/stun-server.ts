// `natkit stun-server`: a STUN server on one or two addresses × two ports (RFC 5780 §6)
// over UDP, TCP and optionally TLS, configured by flags, NATKIT_* variables or a JSON
// file (one schema), running until SIGINT/SIGTERM.
import { formatEndpoint } from '../../net/index.ts';
import { consoleLogger, type LogLevel } from '../../net/node/index.ts';
import { StunServer, roleName, type StunServerOptions } from '../../stun/index.ts';
import { EXIT_OK, UsageError, fileOption, flag, intOption, stringOption, type Command, type CommandContext } from '../command.ts';

export const stunServerCommand: Command = {
  name: 'stun-server',
  summary: 'run a STUN server (RFC 8489, RFC 5780 NAT behaviour discovery, RFC 3489 clients)',
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
    udp: { type: 'boolean', env: 'NATKIT_UDP', default: true, description: 'serve UDP' },
    tcp: { type: 'boolean', env: 'NATKIT_TCP', default: true, description: 'serve TCP (RFC 8489 §6.2.2)' },
    'tls-cert': { type: 'string', valueName: 'FILE', env: 'NATKIT_TLS_CERT', description: 'PEM certificate chain: also serve TLS (RFC 8489 §6.2.3)' },
    'tls-key': { type: 'string', valueName: 'FILE', env: 'NATKIT_TLS_KEY', description: 'PEM private key of --tls-cert' },
    'tls-port': { type: 'string', valueName: 'PORT', env: 'NATKIT_TLS_PORT', description: 'TLS port (default 5349, and 5350 as its second port)' },
    software: { type: 'string', valueName: 'TEXT', env: 'NATKIT_SOFTWARE', default: 'natkit', description: 'SOFTWARE attribute; empty for none' },
    rate: { type: 'string', valueName: 'N', env: 'NATKIT_RATE', default: '20', description: 'requests per second allowed per source address; 0 turns the limit off' },
    burst: { type: 'string', valueName: 'N', env: 'NATKIT_BURST', default: '40', description: 'requests a source may send at once after a quiet period' },
    legacy: { type: 'boolean', env: 'NATKIT_LEGACY', default: true, description: 'answer cookie-less RFC 3489 clients' },
    plain: { type: 'boolean', env: 'NATKIT_PLAIN', description: 'answer non-STUN input with "ip,port\\n" (for nc users)' },
    'max-connections': { type: 'string', valueName: 'N', env: 'NATKIT_MAX_CONNECTIONS', default: '1024', description: 'open TCP/TLS connections at most' },
    'idle-timeout': { type: 'string', valueName: 'S', env: 'NATKIT_IDLE_TIMEOUT', default: '30', description: 'close a TCP/TLS connection idle this many seconds' },
    'log-level': { type: 'string', valueName: 'debug|info|warn', env: 'NATKIT_LOG_LEVEL', default: 'warn', description: 'JSON log lines on stderr at this level and above' },
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
    const s = server.stats;
    if (json) ctx.io.out(`${JSON.stringify({ stats: s })}\n`);
    else {
      const dropped = Object.values(s.dropped).reduce((a, b) => a + b, 0);
      ctx.io.out(`stopped: ${s.received} requests, ${s.success} answered (${s.legacy} RFC 3489, ${s.changed} changed), ${s.badRequest + s.unknownAttribute} errors, ${dropped} dropped (${s.dropped['rate-limited']} rate-limited)\n`);
    }
    return EXIT_OK;
  },
};

function untilAborted(signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
}

async function serverOptions(ctx: CommandContext): Promise<StunServerOptions> {
  const listen = ctx.values.listen;
  const addresses = (Array.isArray(listen) ? listen : [String(listen ?? '0.0.0.0')]).filter((a) => a !== '');
  if (addresses.length < 1 || addresses.length > 2) throw new UsageError(`--listen: expected one or two addresses, got ${addresses.length}`);
  const port = intOption(ctx, 'port', 0, 65535) ?? 3478;
  const altPort = intOption(ctx, 'alt-port', 0, 65535) ?? (addresses.length === 2 ? (port === 0 ? 0 : port + 1) : undefined);
  if (altPort !== undefined && altPort > 65535) throw new UsageError('--port: the default --alt-port PORT+1 is past 65535; give --alt-port');
  const ports = altPort === undefined ? [port] : [port, altPort];

  const cert = await fileOption(ctx, 'tls-cert');
  const key = await fileOption(ctx, 'tls-key');
  if ((cert === undefined) !== (key === undefined)) throw new UsageError('--tls-cert and --tls-key: expected both or neither');
  const tlsPort = intOption(ctx, 'tls-port', 0, 65535);
  const tls = cert !== undefined && key !== undefined
    ? { cert, key, ...(tlsPort !== undefined && { ports: ports.length === 2 ? [tlsPort, tlsPort === 0 ? 0 : tlsPort + 1] : [tlsPort] }) }
    : undefined;

  const rate = intOption(ctx, 'rate', 0, 1_000_000) ?? 20;
  const burst = intOption(ctx, 'burst', 1, 1_000_000) ?? 40;
  const level = stringOption(ctx, 'log-level') ?? 'warn';
  if (level !== 'debug' && level !== 'info' && level !== 'warn') throw new UsageError(`--log-level: expected debug, info or warn, got "${level}"`);
  const software = stringOption(ctx, 'software') ?? 'natkit';
  const udp = ctx.values.udp !== false;
  const tcp = ctx.values.tcp !== false;
  if (!udp && !tcp && tls === undefined) throw new UsageError('--no-udp and --no-tcp without TLS: nothing to serve');
  return {
    env: { ...ctx.env, logger: consoleLogger(level satisfies LogLevel, (line) => ctx.io.err(line)) },
    addresses,
    ports,
    udp,
    tcp,
    ...(tls !== undefined && { tls }),
    software: software === '' ? false : software,
    rateLimit: rate === 0 ? false : { ratePerS: rate, burst },
    legacy: ctx.values.legacy !== false,
    plain: flag(ctx, 'plain'),
    maxConnections: intOption(ctx, 'max-connections', 1, 1_000_000) ?? 1024,
    idleTimeoutMs: (intOption(ctx, 'idle-timeout', 1, 86_400) ?? 30) * 1000,
    signal: ctx.signal,
  };
}
