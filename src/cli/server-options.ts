// What the server commands (stun-server, turn-server, serve) share: the options every
// server has, under one environment prefix (one schema for flags, environment and config
// file), config-file sections, their parsing, and waiting for the stop signal.
import { splitHostPort, type Env } from '../net/index.ts';
import { consoleLogger } from '../net/node/index.ts';
import { totalDropped, type StunServerStats } from '../stun/index.ts';
import { ipFamily, normalizeAddress, type RateLimiterOptions } from '../util/index.ts';
import { UsageError, fileOption, intOption, stringOption, type CommandContext, type OptionSpec } from './command.ts';

/** The options every server command has, their environment variables named `${envPrefix}NAME`. */
export function serverOptionSpecs(envPrefix: string): Record<string, OptionSpec> {
  return {
    udp: { type: 'boolean', env: `${envPrefix}UDP`, default: true, description: 'serve UDP' },
    tcp: { type: 'boolean', env: `${envPrefix}TCP`, default: true, description: 'serve TCP' },
    'tls-cert': { type: 'string', valueName: 'FILE', env: `${envPrefix}TLS_CERT`, description: 'PEM certificate chain: also serve TLS' },
    'tls-key': { type: 'string', valueName: 'FILE', env: `${envPrefix}TLS_KEY`, description: 'PEM private key of --tls-cert' },
    software: { type: 'string', valueName: 'TEXT', env: `${envPrefix}SOFTWARE`, default: 'natkit', description: 'SOFTWARE attribute; empty for none' },
    rate: { type: 'string', valueName: 'N', env: `${envPrefix}RATE`, default: '20', description: 'requests per second allowed per source address; 0 turns the limit off' },
    burst: { type: 'string', valueName: 'N', env: `${envPrefix}BURST`, default: '40', description: 'requests a source may send at once after a quiet period' },
    'max-connections': { type: 'string', valueName: 'N', env: `${envPrefix}MAX_CONNECTIONS`, default: '1024', description: 'open TCP/TLS connections at most' },
    'idle-timeout': { type: 'string', valueName: 'S', env: `${envPrefix}IDLE_TIMEOUT`, default: '30', description: 'close a TCP/TLS connection idle this many seconds' },
    'log-level': { type: 'string', valueName: 'debug|info|warn', env: `${envPrefix}LOG_LEVEL`, default: 'warn', description: 'JSON log lines on stderr at this level and above' },
  };
}

/** The parsed values of serverOptionSpecs(). */
export interface ServerSettings {
  /** ctx.env with the --log-level logger writing to ctx.io.err. */
  readonly env: Env;
  readonly udp: boolean;
  readonly tcp: boolean;
  /** Certificate and key when both --tls-cert and --tls-key are given. */
  readonly tls: { readonly cert: string; readonly key: string } | undefined;
  readonly software: string | false;
  readonly rateLimit: RateLimiterOptions | false;
  readonly maxConnections: number;
  readonly idleTimeoutMs: number;
}

/** Parses the shared server options; throws UsageError naming the option. */
export async function serverSettings(ctx: CommandContext): Promise<ServerSettings> {
  const cert = await fileOption(ctx, 'tls-cert');
  const key = await fileOption(ctx, 'tls-key');
  if ((cert === undefined) !== (key === undefined)) throw new UsageError('--tls-cert and --tls-key: expected both or neither');
  const level = stringOption(ctx, 'log-level') ?? 'warn';
  if (level !== 'debug' && level !== 'info' && level !== 'warn') throw new UsageError(`--log-level: expected debug, info or warn, got "${level}"`);
  const software = stringOption(ctx, 'software') ?? 'natkit';
  const rate = intOption(ctx, 'rate', 0, 1_000_000) ?? 20;
  const burst = intOption(ctx, 'burst', 1, 1_000_000) ?? 40;
  const udp = ctx.values.udp !== false;
  const tcp = ctx.values.tcp !== false;
  if (!udp && !tcp && cert === undefined) throw new UsageError('--no-udp and --no-tcp without TLS: nothing to serve');
  return {
    env: { ...ctx.env, logger: consoleLogger(level, (line) => ctx.io.err(line)) },
    udp,
    tcp,
    tls: cert !== undefined && key !== undefined ? { cert, key } : undefined,
    software: software === '' ? false : software,
    rateLimit: rate === 0 ? false : { ratePerS: rate, burst },
    maxConnections: intOption(ctx, 'max-connections', 1, 1_000_000) ?? 1024,
    idleTimeoutMs: (intOption(ctx, 'idle-timeout', 1, 86_400) ?? 30) * 1000,
  };
}

/** The addresses of a repeatable option, empty entries dropped. */
export function listOption(ctx: CommandContext, name: string): string[] {
  const v = ctx.values[name];
  return (Array.isArray(v) ? v : typeof v === 'string' ? [v] : []).filter((a) => a !== '');
}

/** [port] or, for two, [port, port + 1] (0 stays 0: the system chooses both). */
export function pairedPorts(port: number, count: 1 | 2): number[] {
  return count === 2 ? [port, port === 0 ? 0 : port + 1] : [port];
}

/** The STUN server's counters in one line. */
export function stunSummary(s: StunServerStats): string {
  return `${s.received} requests, ${s.success} answered (${s.legacy} RFC 3489, ${s.changed} changed), ${s.badRequest + s.unknownAttribute} errors, `
    + `${totalDropped(s)} dropped (${s.dropped['rate-limited']} rate-limited)`;
}

/** Resolves when the command is told to stop (SIGINT/SIGTERM in the binary). */
export function untilAborted(signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
}

/** `specs` with their config-file keys in `section` ('tls-cert' in 'tls' → 'tls.cert', 'realm' in 'turn' → 'turn.realm'). */
export function inSection(section: string, specs: Readonly<Record<string, OptionSpec>>): Record<string, OptionSpec> {
  const prefix = `${section}-`;
  return Object.fromEntries(Object.entries(specs).map(([name, o]) =>
    [name, { ...o, config: `${section}.${name.startsWith(prefix) ? name.slice(prefix.length) : name}` }]));
}

/** An IP address option, normalised; throws UsageError naming the option. */
export function addressOption(name: string, text: string): string {
  if (ipFamily(text) === undefined) throw new UsageError(`--${name}: expected an IPv4 or IPv6 address, got "${text}"`);
  return normalizeAddress(text);
}

/** The ADDR:PORT ([ADDR]:PORT for IPv6) of option `name`, or undefined when it is not set. */
export function hostPortOption(ctx: CommandContext, name: string): { address: string; port: number } | undefined {
  const text = stringOption(ctx, name);
  if (text === undefined) return undefined;
  const { host, port } = asUsage(name, () => splitHostPort(text));
  return { address: addressOption(name, host), port };
}

/** Runs `parse`, turning what it throws into a UsageError naming option `name`. */
export function asUsage<T>(name: string, parse: () => T): T {
  try {
    return parse();
  } catch (cause) {
    throw new UsageError(`--${name}: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  }
}
