// `natkit turn-server`: natkit's TURN relay (RFC 8656) over UDP, TCP and TLS (§3.1), with
// long-term credentials and TURN REST API secrets (§5), the peer policy (§21.3), quotas,
// a users file reloaded on SIGHUP and a Prometheus /metrics listener; configured by flags,
// NATKIT_TURN_* variables or a JSON file (one schema), running until SIGINT/SIGTERM.
import { endpoint, formatEndpoint, splitHostPort, type Endpoint } from '../../net/index.ts';
import { localAddressToward } from '../../net/node/index.ts';
import { TurnServer, parsePrefix, renderMetrics, type TurnListen, type TurnServerOptions, type TurnServerStats, type TurnUserSecret } from '../../turn/index.ts';
import { ipFamily, normalizeAddress, type IpFamily } from '../../util/index.ts';
import { EXIT_OK, UsageError, flag, intOption, readOptionFile, stringOption, type Command, type CommandContext } from '../command.ts';
import { serveMetrics, type MetricsHttp } from '../metrics-http.ts';
import { listOption, serverOptionSpecs, serverSettings, untilAborted } from '../server-options.ts';

const ENV = 'NATKIT_TURN_';

export const turnServerCommand: Command = {
  name: 'turn-server',
  summary: 'run a TURN relay (RFC 8656) with long-term or TURN REST API credentials',
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
    'relay-address': {
      type: 'string', multiple: true, valueName: 'ADDR', env: `${ENV}RELAY_ADDRESS`,
      description: 'address relayed sockets bind to, one per family (default: the first concrete --listen address of each family, else the address the default route leaves from)',
    },
    'relay-ports': { type: 'string', valueName: 'MIN-MAX', env: `${ENV}RELAY_PORTS`, default: '49152-65535', description: 'relayed ports, chosen at random (RFC 8656 §7.2)' },
    'external-address': { type: 'string', valueName: 'ADDR', env: `${ENV}EXTERNAL_ADDRESS`, description: 'address advertised in XOR-RELAYED-ADDRESS for its family, behind a 1:1 NAT' },
    realm: { type: 'string', valueName: 'REALM', env: `${ENV}REALM`, default: 'natkit', description: 'REALM of the credentials (RFC 8489 §9.2)' },
    user: { type: 'string', short: 'u', multiple: true, valueName: 'NAME:PASSWORD', env: `${ENV}USER`, description: 'a long-term user (repeatable); NAME:0x<32 hex> gives the MD5 key instead' },
    'users-file': { type: 'string', valueName: 'FILE', env: `${ENV}USERS_FILE`, description: 'one NAME:PASSWORD (or NAME:0x<hex key>) per line, # comments; read again on SIGHUP' },
    secret: { type: 'string', multiple: true, valueName: 'S', env: `${ENV}SECRET`, description: 'TURN REST API shared secret (repeatable: list the new and the old one while rotating)' },
    'allow-peer': { type: 'string', multiple: true, valueName: 'CIDR', env: `${ENV}ALLOW_PEER`, description: 'peers admitted even where a deny rule matches (repeatable)' },
    'deny-peer': {
      type: 'string', multiple: true, valueName: 'CIDR', env: `${ENV}DENY_PEER`,
      description: 'peers refused (repeatable), besides the ones always denied: private, loopback, link-local (cloud metadata), CGNAT, documentation, multicast and other special ranges, and the server\'s own addresses',
    },
    'max-allocations': { type: 'string', valueName: 'N', env: `${ENV}MAX_ALLOCATIONS`, default: '10000', description: 'live allocations at most (then 508)' },
    'user-quota': { type: 'string', valueName: 'N', env: `${ENV}USER_QUOTA`, default: '10', description: 'live allocations per username at most (then 486)' },
    'max-lifetime': { type: 'string', valueName: 'S', env: `${ENV}MAX_LIFETIME`, default: '3600', description: 'longest allocation lifetime granted, seconds (600 or more)' },
    bandwidth: { type: 'string', valueName: 'BYTES/S', env: `${ENV}BANDWIDTH`, default: '0', description: 'relayed bytes per second per allocation; 0 for no limit' },
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
    let stopReloads: (() => void) | undefined;
    // Reloads run one after another, so the last SIGHUP's file wins.
    let reloading = Promise.resolve();
    try {
      if (metricsAt !== undefined) metrics = await serveMetrics({ ...metricsAt, render: () => renderMetrics(server.stats) });
      stopReloads = ctx.onReload?.(() => {
        reloading = reloading.then(() => reloadUsers(ctx, server, usersFile));
      });
      announce(ctx, json, server, relay, metrics?.local);
      await untilAborted(ctx.signal);
    } finally {
      stopReloads?.();
      await reloading;
      await metrics?.close();
      await server.close();
    }
    ctx.io.out(json ? `${JSON.stringify({ stats: server.stats })}\n` : `stopped: ${summary(server.stats)}\n`);
    return EXIT_OK;
  },
};

/** Where relayed sockets live, as announced at start. */
interface RelayInfo {
  readonly addresses: readonly string[];
  readonly ports: string;
  readonly external?: string;
}

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
  const transports = [...(udp ? ['udp' as const] : []), ...(tcp ? ['tcp' as const] : [])];
  // TCP and TLS cannot share a port (RFC 8656 §3.1): TLS is an entry of its own.
  const listen: TurnListen[] = addresses.flatMap((address) => [
    ...(transports.length > 0 ? [{ address, port, transports }] : []),
    ...(tls !== undefined ? [{ address, port: tlsPort, transports: ['tls' as const], tls }] : []),
  ]);

  const users = Object.fromEntries(listOption(ctx, 'user').map((u) => parseUser(u, '--user')));
  const usersFile = stringOption(ctx, 'users-file');
  const secrets = listOption(ctx, 'secret');
  // RFC 8656 §5: every request but Binding is authenticated; an open relay is never the default.
  if (Object.keys(users).length === 0 && usersFile === undefined && secrets.length === 0) {
    throw new UsageError('no credentials: expected --user, --users-file or --secret (natkit does not run an open relay)');
  }
  const external = stringOption(ctx, 'external-address');
  const relay: RelayInfo = {
    addresses: await relayAddresses(ctx, addresses),
    ports: stringOption(ctx, 'relay-ports') ?? '49152-65535',
    ...(external !== undefined && { external: addressOption('external-address', external) }),
  };
  const bandwidth = intOption(ctx, 'bandwidth', 0, 1e12) ?? 0;
  const options: TurnServerOptions = {
    ...common,
    env,
    listen,
    relayAddresses: relay.addresses,
    relayPortRange: portRange(relay.ports),
    ...(relay.external !== undefined && { externalAddress: relay.external }),
    realm: stringOption(ctx, 'realm') ?? 'natkit',
    users,
    ...(usersFile !== undefined && { loadUsers: () => readUsersFile(usersFile) }),
    sharedSecrets: secrets,
    // REST API usernames carry a Unix time; the server's clock is monotonic.
    epochOffsetMs: Date.now() - env.clock.now(),
    allowPeers: cidrs(ctx, 'allow-peer'),
    denyPeers: cidrs(ctx, 'deny-peer'),
    maxAllocations: intOption(ctx, 'max-allocations', 1, 10_000_000) ?? 10_000,
    maxAllocationsPerUser: intOption(ctx, 'user-quota', 1, 10_000_000) ?? 10,
    // RFC 8656 §7.2: 600 s is the default lifetime, so a maximum below it means nothing.
    maxLifetimeS: intOption(ctx, 'max-lifetime', 600, 86_400) ?? 3600,
    ...(bandwidth > 0 && { bandwidth: { bytesPerS: bandwidth } }),
    signal: ctx.signal,
  };
  const metrics = stringOption(ctx, 'metrics');
  return { options, relay, usersFile, metricsAt: metrics === undefined ? undefined : metricsOption(metrics) };
}

/** An IP address option, normalised; throws UsageError naming the option. */
function addressOption(name: string, text: string): string {
  if (ipFamily(text) === undefined) throw new UsageError(`--${name}: expected an IPv4 or IPv6 address, got "${text}"`);
  return normalizeAddress(text);
}

const WILDCARDS = new Set(['0.0.0.0', '::']);
/** Addresses routed through the default route of each family (documentation ranges: the probe sends nothing). */
const ROUTE_PROBES: Readonly<Record<IpFamily, Endpoint>> = { 4: endpoint('192.0.2.1', 9), 6: endpoint('2001:db8::1', 9) };

/** --relay-address, at most one per family (RFC 8656 §7.2), or a default for every family the server listens on. */
async function relayAddresses(ctx: CommandContext, listen: readonly string[]): Promise<string[]> {
  const given = listOption(ctx, 'relay-address').map((a) => addressOption('relay-address', a));
  const families = new Map<IpFamily, string>();
  for (const a of given) {
    const family = ipFamily(a)!;
    if (WILDCARDS.has(a)) throw new UsageError(`--relay-address: expected a concrete address, got "${a}"`);
    if (families.has(family)) throw new UsageError(`--relay-address: expected one address per family, got two IPv${family} (${families.get(family)}, ${a})`);
    families.set(family, a);
  }
  if (given.length > 0) return given;
  for (const a of listen) {
    const family = ipFamily(a)!;
    if (!families.has(family) && !WILDCARDS.has(a)) families.set(family, a);
  }
  for (const a of listen) {
    const family = ipFamily(a)!;
    if (families.has(family)) continue;
    const routed = await localAddressToward(ROUTE_PROBES[family]).catch((cause: unknown) => cause as Error);
    if (routed instanceof Error) throw new UsageError(`--relay-address: none given and no IPv${family} route to pick one (${routed.message})`, { cause: routed });
    families.set(family, routed);
  }
  return [...families.values()];
}

/** MIN-MAX within 1024–65535. */
function portRange(text: string): { min: number; max: number } {
  const m = /^(\d{1,5})-(\d{1,5})$/.exec(text);
  const [min, max] = m === null ? [NaN, NaN] : [Number(m[1]), Number(m[2])];
  if (!(min >= 1024 && min < max && max <= 65535)) throw new UsageError(`--relay-ports: expected MIN-MAX with 1024 ≤ MIN < MAX ≤ 65535, got "${text}"`);
  return { min, max };
}

/** The CIDR prefixes of a repeatable option, each checked now. */
function cidrs(ctx: CommandContext, name: string): string[] {
  const list = listOption(ctx, name);
  for (const c of list) asUsage(name, () => parsePrefix(c));
  return list;
}

/** ADDR:PORT ([ADDR]:PORT for IPv6). */
function metricsOption(text: string): { address: string; port: number } {
  const { host, port } = asUsage('metrics', () => splitHostPort(text));
  return { address: addressOption('metrics', host), port };
}

/** Runs `parse`, turning what it throws into a UsageError naming option `name`. */
function asUsage<T>(name: string, parse: () => T): T {
  try {
    return parse();
  } catch (cause) {
    throw new UsageError(`--${name}: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  }
}

/** `name:password`, or coturn's `name:0x<32 hex digits>`: the MD5 long-term key (RFC 8489 §9.2.2). Never echoes the password. */
function parseUser(text: string, where: string): [string, TurnUserSecret] {
  const colon = text.indexOf(':');
  if (colon < 1 || colon === text.length - 1) throw new UsageError(`${where}: expected NAME:PASSWORD with neither empty`);
  const name = text.slice(0, colon);
  const secret = text.slice(colon + 1);
  return [name, /^0x[0-9a-f]{32}$/i.test(secret) ? { md5Key: Buffer.from(secret.slice(2), 'hex') } : secret];
}

/** Reads a users file: one NAME:PASSWORD per line, blank lines and `#` comments skipped. */
async function readUsersFile(path: string): Promise<Record<string, TurnUserSecret>> {
  const lines = (await readOptionFile('users-file', path)).split('\n');
  const users = new Map<string, TurnUserSecret>();
  for (const [i, raw] of lines.entries()) {
    const line = raw.trim();
    if (line !== '' && !line.startsWith('#')) users.set(...parseUser(line, `--users-file ${path} line ${i + 1}`));
  }
  return Object.fromEntries(users);
}

/** SIGHUP: swaps in the users file again; a failure keeps the users in force and says why. */
async function reloadUsers(ctx: CommandContext, server: TurnServer, usersFile: string | undefined): Promise<void> {
  if (usersFile === undefined) {
    ctx.io.err('natkit turn-server: reload: no --users-file, nothing to read\n');
    return;
  }
  try {
    await server.reloadUsers();
    ctx.io.err(`natkit turn-server: reloaded users from ${usersFile}\n`);
  } catch (err) {
    ctx.io.err(`natkit turn-server: reload failed, the previous users stay: ${err instanceof Error ? err.message : String(err)}\n`);
  }
}

/** Prints where the server listens, relays from and serves metrics. */
function announce(ctx: CommandContext, json: boolean, server: TurnServer, relay: RelayInfo, metrics: Endpoint | undefined): void {
  const listening = server.endpoints.map((e) => ({ transport: e.transport, address: formatEndpoint(e.local) }));
  const metricsUrl = metrics === undefined ? undefined : `http://${formatEndpoint(metrics)}/metrics`;
  if (json) {
    ctx.io.out(`${JSON.stringify({ listening, relay, ...(metricsUrl !== undefined && { metrics: metricsUrl }) })}\n`);
    return;
  }
  const advertised = relay.external === undefined ? '' : ` (advertised as ${relay.external})`;
  ctx.io.out([
    'natkit turn-server listening on',
    ...listening.map((e) => `  ${e.transport.padEnd(4)}${e.address}`),
    `relaying from ${relay.addresses.join(', ')} ports ${relay.ports}${advertised}`,
    ...(metricsUrl !== undefined ? [`metrics at ${metricsUrl}`] : []),
    '',
  ].join('\n'));
}

/** The counters in one line. */
function summary(s: TurnServerStats): string {
  const errors = Object.values(s.errors).reduce((a, b) => a + b, 0);
  const dropped = Object.values(s.dropped).reduce((a, b) => a + b, 0);
  return `${s.allocationsCreated} allocations, ${s.toPeerPackets} datagrams (${s.toPeerBytes} bytes) to peers, `
    + `${s.toClientPackets} (${s.toClientBytes} bytes) to clients, ${s.received} received, ${errors} error responses `
    + `(${s.authFailures} auth failures), ${dropped} dropped (${s.dropped['rate-limited']} rate-limited)`;
}
