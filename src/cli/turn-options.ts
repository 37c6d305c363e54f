// What `natkit turn-server` and `natkit serve` share about TURN: its options (relay,
// credentials, peer policy, quotas; one schema for flags, environment and config file),
// their parsing into TurnServerOptions, the users file reloaded on SIGHUP, and the
// counters in one line.
import { endpoint, type Endpoint, type TlsServerOptions } from '../net/index.ts';
import { localAddressToward } from '../net/node/index.ts';
import { parsePrefix, type TurnListen, type TurnServer, type TurnServerOptions, type TurnServerStats, type TurnUserSecret } from '../turn/index.ts';
import { ipFamily, type IpFamily } from '../util/index.ts';
import { UsageError, flag, intOption, readOptionFile, stringOption, type CommandContext, type OptionSpec } from './command.ts';
import { addressOption, asUsage, listOption } from './server-options.ts';

/** The TURN options, their environment variables named `${envPrefix}NAME` (NATKIT_TURN_REALM…). */
export function turnOptionSpecs(envPrefix: string): Record<string, OptionSpec> {
  return {
    'relay-address': {
      type: 'string', multiple: true, valueName: 'ADDR', env: `${envPrefix}RELAY_ADDRESS`,
      description: 'address relayed sockets bind to, one per family (default: the first concrete --listen address of each family, else the address the default route leaves from)',
    },
    'relay-ports': { type: 'string', valueName: 'MIN-MAX', env: `${envPrefix}RELAY_PORTS`, default: '49152-65535', description: 'relayed ports, chosen at random (RFC 8656 §7.2)' },
    'external-address': { type: 'string', valueName: 'ADDR', env: `${envPrefix}EXTERNAL_ADDRESS`, description: 'address advertised in XOR-RELAYED-ADDRESS for its family, behind a 1:1 NAT' },
    realm: { type: 'string', valueName: 'REALM', env: `${envPrefix}REALM`, default: 'natkit', description: 'REALM of the credentials (RFC 8489 §9.2)' },
    user: { type: 'string', short: 'u', multiple: true, valueName: 'NAME:PASSWORD', env: `${envPrefix}USER`, description: 'a long-term user (repeatable); NAME:0x<32 hex> gives the MD5 key instead' },
    'users-file': { type: 'string', valueName: 'FILE', env: `${envPrefix}USERS_FILE`, description: 'one NAME:PASSWORD (or NAME:0x<hex key>) per line, # comments; read again on SIGHUP' },
    secret: { type: 'string', multiple: true, valueName: 'S', env: `${envPrefix}SECRET`, description: 'TURN REST API shared secret (repeatable: list the new and the old one while rotating)' },
    'allow-peer': { type: 'string', multiple: true, valueName: 'CIDR', env: `${envPrefix}ALLOW_PEER`, description: 'peers admitted even where a deny rule matches (repeatable)' },
    'deny-peer': {
      type: 'string', multiple: true, valueName: 'CIDR', env: `${envPrefix}DENY_PEER`,
      description: 'peers refused (repeatable), besides the ones always denied: private, loopback, link-local (cloud metadata), CGNAT, documentation, multicast and other special ranges, and the server\'s own addresses',
    },
    'max-allocations': { type: 'string', valueName: 'N', env: `${envPrefix}MAX_ALLOCATIONS`, default: '10000', description: 'live allocations at most (then 508)' },
    'user-quota': { type: 'string', valueName: 'N', env: `${envPrefix}USER_QUOTA`, default: '10', description: 'live allocations per username at most (then 486)' },
    'max-lifetime': { type: 'string', valueName: 'S', env: `${envPrefix}MAX_LIFETIME`, default: '3600', description: 'longest allocation lifetime granted, seconds (600 or more)' },
    bandwidth: { type: 'string', valueName: 'BYTES/S', env: `${envPrefix}BANDWIDTH`, default: '0', description: 'relayed bytes per second per allocation; 0 for no limit' },
    'legacy-channels': {
      type: 'boolean', env: `${envPrefix}LEGACY_CHANNELS`,
      description: 'accept RFC 5766 channel numbers 0x4000-0x7FFF (coturn\'s turnutils_uclient), not only RFC 8656\'s 0x4000-0x4FFF',
    },
  };
}

/**
 * Where TURN listens on each address: UDP and/or TCP on `port`, TLS on `tlsPort` as an
 * entry of its own (TCP and TLS cannot share a port, RFC 8656 §3.1).
 */
export function turnListen(addresses: readonly string[], port: number, transports: readonly ('udp' | 'tcp')[], tls: TlsServerOptions | undefined, tlsPort: number): TurnListen[] {
  return addresses.flatMap((address) => [
    ...(transports.length > 0 ? [{ address, port, transports }] : []),
    ...(tls !== undefined ? [{ address, port: tlsPort, transports: ['tls' as const], tls }] : []),
  ]);
}

/** Where relayed sockets live, as announced at start. */
export interface RelayInfo {
  readonly addresses: readonly string[];
  readonly ports: string;
  readonly external?: string;
}

/** The parsed values of turnOptionSpecs(). */
export interface TurnSettings {
  /** Everything TurnServer.start needs but where to listen and the shared server settings. */
  readonly options: Omit<TurnServerOptions, 'env' | 'listen'>;
  readonly relay: RelayInfo;
  readonly usersFile: string | undefined;
}

/** Parses the TURN options for a server listening on `listen`; throws UsageError naming the option. */
export async function turnSettings(ctx: CommandContext, listen: readonly string[]): Promise<TurnSettings> {
  const users = Object.fromEntries(listOption(ctx, 'user').map((u) => parseUser(u, '--user')));
  const usersFile = stringOption(ctx, 'users-file');
  const secrets = listOption(ctx, 'secret');
  // RFC 8656 §5: every request but Binding is authenticated; an open relay is never the default.
  if (Object.keys(users).length === 0 && usersFile === undefined && secrets.length === 0) {
    throw new UsageError('no credentials: expected --user, --users-file or --secret (natkit does not run an open relay)');
  }
  const external = stringOption(ctx, 'external-address');
  const relay: RelayInfo = {
    addresses: await relayAddresses(ctx, listen),
    ports: stringOption(ctx, 'relay-ports') ?? '49152-65535',
    ...(external !== undefined && { external: addressOption('external-address', external) }),
  };
  const bandwidth = intOption(ctx, 'bandwidth', 0, 1e12) ?? 0;
  const options: TurnSettings['options'] = {
    relayAddresses: relay.addresses,
    relayPortRange: portRange(relay.ports),
    ...(relay.external !== undefined && { externalAddress: relay.external }),
    realm: stringOption(ctx, 'realm') ?? 'natkit',
    users,
    ...(usersFile !== undefined && { loadUsers: () => readUsersFile(usersFile) }),
    sharedSecrets: secrets,
    // REST API usernames carry a Unix time; the server's clock is monotonic.
    epochOffsetMs: Date.now() - ctx.env.clock.now(),
    allowPeers: cidrs(ctx, 'allow-peer'),
    denyPeers: cidrs(ctx, 'deny-peer'),
    maxAllocations: intOption(ctx, 'max-allocations', 1, 10_000_000) ?? 10_000,
    maxAllocationsPerUser: intOption(ctx, 'user-quota', 1, 10_000_000) ?? 10,
    // RFC 8656 §7.2: 600 s is the default lifetime, so a maximum below it means nothing.
    maxLifetimeS: intOption(ctx, 'max-lifetime', 600, 86_400) ?? 3600,
    ...(bandwidth > 0 && { bandwidth: { bytesPerS: bandwidth } }),
    legacyChannels: flag(ctx, 'legacy-channels'),
    signal: ctx.signal,
  };
  return { options, relay, usersFile };
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

/**
 * Subscribes to reload requests (SIGHUP) for the users file of `server`; reloads run one
 * after another, so the last request's file wins. Returns the function that unsubscribes
 * and waits for a reload in progress.
 */
export function reloadUsersOnRequest(ctx: CommandContext, command: string, server: TurnServer, usersFile: string | undefined): () => Promise<void> {
  let reloading = Promise.resolve();
  const stop = ctx.onReload?.(() => {
    reloading = reloading.then(() => reloadUsers(ctx, command, server, usersFile));
  });
  return async () => {
    stop?.();
    await reloading;
  };
}

/** SIGHUP: swaps in the users file again; a failure keeps the users in force and says why. */
async function reloadUsers(ctx: CommandContext, command: string, server: TurnServer, usersFile: string | undefined): Promise<void> {
  if (usersFile === undefined) {
    ctx.io.err(`natkit ${command}: reload: no --users-file, nothing to read\n`);
    return;
  }
  try {
    await server.reloadUsers();
    ctx.io.err(`natkit ${command}: reloaded users from ${usersFile}\n`);
  } catch (err) {
    ctx.io.err(`natkit ${command}: reload failed, the previous users stay: ${err instanceof Error ? err.message : String(err)}\n`);
  }
}

/** `relaying from …` as announced at start. */
export function relayLine(relay: RelayInfo): string {
  const advertised = relay.external === undefined ? '' : ` (advertised as ${relay.external})`;
  return `relaying from ${relay.addresses.join(', ')} ports ${relay.ports}${advertised}`;
}

/** The TURN counters in one line. */
export function turnSummary(s: TurnServerStats): string {
  const errors = Object.values(s.errors).reduce((a, b) => a + b, 0);
  const dropped = Object.values(s.dropped).reduce((a, b) => a + b, 0);
  return `${s.allocationsCreated} allocations, ${s.toPeerPackets} datagrams (${s.toPeerBytes} bytes) to peers, `
    + `${s.toClientPackets} (${s.toClientBytes} bytes) to clients, ${s.received} received, ${errors} error responses `
    + `(${s.authFailures} auth failures), ${dropped} dropped (${s.dropped['rate-limited']} rate-limited)`;
}
