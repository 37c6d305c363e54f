// `natkit map add|remove|list|external-ip`: port mappings through PCP (RFC 6887), NAT-PMP
// (RFC 6886) or UPnP IGD, in the spirit of miniupnpc's `upnpc`. A mapping made without
// --keep outlives the process until its lease ends; the state file (mapping-state.ts)
// remembers it so that `map remove` can delete it later, PCP with its nonce (§15).
import { formatEndpoint, parseEndpoint, type Endpoint } from '../../net/index.ts';
import { openPortMapper } from '../../index.ts';
import { MAPPER_PROTOCOLS, type MapProtocol, type MapperProtocol, type MappingChange, type MappingRecord, type PortMapper, type PortMapperOptions } from '../../portmap/index.ts';
import { isNatkitError } from '../../util/index.ts';
import { EXIT_FAILURE, EXIT_OK, UsageError, flag, intOption, stringOption, type Command, type CommandContext, type OptionSpec } from '../command.ts';
import { MappingStateFile, sameMapping, stateDir, type StoredMapping } from '../mapping-state.ts';
import { COMMAND_SUMMARIES } from './summaries.ts';

/** Where the port-mapping protocols are asked: shared by `natkit map` and `natkit check`. */
export const PORTMAP_OPTIONS: Readonly<Record<string, OptionSpec>> = {
  gateway: { type: 'string', short: 'g', valueName: 'ADDR[:PORT]', description: 'NAT-PMP/PCP server, also searched for UPnP (default: the default gateway, port 5351)' },
  ssdp: { type: 'string', valueName: 'ADDR[:PORT]', description: 'search for UPnP only at this address (default: the gateway\'s port 1900 and multicast)' },
};

/** A PortMapper on the gateway the options name (and --local, our address); closed by the caller. */
export async function cliPortMapper(ctx: CommandContext, extra: Partial<PortMapperOptions> = {}): Promise<PortMapper> {
  const gateway = endpointOption(ctx, 'gateway', 5351);
  const ssdp = endpointOption(ctx, 'ssdp', 1900);
  const local = stringOption(ctx, 'local');
  return openPortMapper({
    env: ctx.env, signal: ctx.signal, ...extra,
    ...(gateway !== undefined && { gateway }),
    ...(local !== undefined && { localAddress: local }),
    ...(ssdp !== undefined && { upnp: { search: [ssdp], multicast: false } }),
  });
}

function endpointOption(ctx: CommandContext, name: string, port: number): Endpoint | undefined {
  const text = stringOption(ctx, name);
  if (text === undefined) return undefined;
  try {
    return parseEndpoint(text, port);
  } catch {
    throw new UsageError(`--${name}: expected ADDR or ADDR:PORT (IPv6 as [ADDR]:PORT), got "${text}"`);
  }
}

const messageOf = (err: unknown): string => (err instanceof Error ? err.message : String(err));

function portArg(text: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || n < 1 || n > 65535) throw new UsageError(`expected a port 1–65535, got "${text}"`);
  return n;
}

function protocolOption(ctx: CommandContext): MapProtocol | undefined {
  const p = stringOption(ctx, 'protocol');
  if (p === undefined || p === 'udp' || p === 'tcp') return p;
  throw new UsageError(`--protocol: expected udp or tcp, got "${p}"`);
}

function viaOption(ctx: CommandContext): MapperProtocol | undefined {
  const v = stringOption(ctx, 'via');
  if (v === undefined || (MAPPER_PROTOCOLS as readonly string[]).includes(v)) return v as MapperProtocol | undefined;
  throw new UsageError(`--via: expected ${MAPPER_PROTOCOLS.join(', ')}, got "${v}"`);
}

/** `udp 203.0.113.7:40000 -> 192.168.1.2:5000 via pcp, lease 7200 s`. */
function describeRecord(r: MappingRecord): string {
  const lease = r.lifetimeS === 0 ? 'permanent' : `lease ${r.lifetimeS} s`;
  return `${r.protocol} ${r.externalAddress || '?'}:${r.externalPort} -> ${r.internalClient}:${r.internalPort} via ${r.via}, ${lease}`;
}

function stored(mapper: PortMapper, record: MappingRecord, expiresAt: number, nowMs: number, clockNow: number): StoredMapping {
  return {
    ...record,
    gateway: mapper.gateway && formatEndpoint(mapper.gateway),
    expires: Number.isFinite(expiresAt) ? new Date(nowMs + (expiresAt - clockNow)).toISOString() : undefined,
    pid: process.pid,
  };
}

export const mapCommand: Command = {
  name: 'map',
  summary: COMMAND_SUMMARIES['map'],
  usage: 'add PORT | remove PORT… | remove --all | list | external-ip   [options]',
  options: {
    protocol: { type: 'string', short: 'p', valueName: 'udp|tcp', description: 'add: the protocol (default udp); remove: only this protocol' },
    'external-port': { type: 'string', valueName: 'PORT', description: 'add: the external port wanted (the router may give another)' },
    lease: { type: 'string', valueName: 'S', default: '7200', description: 'add: lease in seconds, 0 for a permanent UPnP mapping (0–604800)' },
    via: { type: 'string', valueName: 'pcp|natpmp|upnp', description: 'use only this protocol (default: the first of PCP, NAT-PMP, UPnP that answers)' },
    keep: { type: 'boolean', description: 'add: stay running, renew the mapping, and remove it on Ctrl-C or SIGTERM' },
    all: { type: 'boolean', description: 'remove: every mapping in the state file, and every UPnP entry natkit left for this host' },
    ...PORTMAP_OPTIONS,
    local: { type: 'string', short: 'l', valueName: 'ADDR', description: 'our address toward the gateway (default: the one the kernel picks)' },
    state: { type: 'string', valueName: 'DIR', env: 'NATKIT_STATE_DIR', description: 'directory of mappings.json (default: $XDG_STATE_HOME/natkit or ~/.local/state/natkit)' },
    json: { type: 'boolean', description: 'print results as JSON (no progress on stderr)' },
  },
  details: [
    'Subcommands:',
    '  add PORT          map PORT on this host; prints the external address and port',
    '  remove PORT…      remove natkit\'s mappings of these internal ports (state file, then UPnP by description)',
    '  remove --all      remove every natkit mapping this host has (state file and stale UPnP entries)',
    '  list              the router\'s UPnP table (natkit\'s entries marked) and the state file',
    '  external-ip       the external address, from the first protocol that gives one',
    '',
    'Without --keep a mapping lives until its lease ends; the state file remembers it so that',
    '`natkit map remove` can delete it (PCP needs the nonce the mapping was made with, RFC 6887 §15).',
    '',
    'Examples:',
    '  natkit map add 41641 --lease 3600',
    '  natkit map add 8080 --protocol tcp --via upnp --keep',
    '  natkit map remove 41641',
    '  natkit map list --json',
    '',
    'Exit code 0 on success, 1 when the router refused or nothing answered, 2 on a usage error.',
  ].join('\n'),

  async run(ctx) {
    const [sub, ...args] = ctx.positionals;
    const want = (n: number): void => {
      if (args.length !== n) throw new UsageError(`map ${sub}: expected ${n === 0 ? 'no argument' : `${n} port`}, got ${args.length === 0 ? 'none' : args.join(' ')}`);
    };
    switch (sub) {
      case 'add': want(1); return add(ctx, portArg(args[0]!));
      case 'remove': return remove(ctx, args.map(portArg));
      case 'list': want(0); return list(ctx);
      case 'external-ip': want(0); return externalIp(ctx);
      default: throw new UsageError(`expected add, remove, list or external-ip, got ${sub === undefined ? 'nothing' : `"${sub}"`}`);
    }
  },
};

interface Io {
  readonly json: boolean;
  readonly state: MappingStateFile;
  progress(line: string): void;
  data(value: unknown, text: string): void;
}

function io(ctx: CommandContext): Io {
  const json = flag(ctx, 'json');
  return {
    json,
    state: new MappingStateFile(stateDir(stringOption(ctx, 'state'), ctx.vars)),
    progress: (line) => void (json ? undefined : ctx.io.err(`${line}\n`)),
    data: (value, text) => ctx.io.out(json ? `${JSON.stringify(value)}\n` : `${text}\n`),
  };
}

async function add(ctx: CommandContext, internalPort: number): Promise<number> {
  const o = io(ctx);
  const protocol = protocolOption(ctx) ?? 'udp';
  const externalPort = intOption(ctx, 'external-port', 1, 65535);
  const lifetimeS = intOption(ctx, 'lease', 0, 604_800) ?? 7200;
  const via = viaOption(ctx);
  const keep = flag(ctx, 'keep');
  const clock = ctx.env.clock;
  let failed: MappingChange | undefined;
  let wake = (): void => undefined;
  // State writes of changes run in turn; a failure is reported at the end.
  let writes = Promise.resolve();
  let writeError: unknown;
  await using mapper = await cliPortMapper(ctx, {
    ...(via !== undefined && { order: [via] }),
    onChange: (c) => {
      o.data({ event: c.kind, mapping: c.mapping, previous: c.previous }, `${c.kind}: ${describeRecord(c.mapping.record)}`);
      const add = c.kind === 'failed' ? [] : [stored(mapper, c.mapping.record, c.mapping.expiresAt, Date.now(), clock.now())];
      writes = writes.then(() => o.state.update(Date.now(), { drop: (e) => sameMapping(e, c.previous), add })).catch((err: unknown) => void (writeError = err));
      if (c.kind === 'failed') {
        failed = c;
        wake();
      }
    },
  });
  o.progress(`asking ${mapper.gateway === undefined ? 'UPnP gateways (no default gateway)' : formatEndpoint(mapper.gateway)} to map ${protocol} port ${internalPort}…`);
  const started = clock.now();
  const m = await mapper.map({ protocol, internalPort, lifetimeS, signal: ctx.signal, ...(externalPort !== undefined && { externalPort }) });
  const tookMs = clock.now() - started;
  await o.state.update(Date.now(), { drop: (e) => sameMapping(e, m.record), add: [stored(mapper, m.record, m.expiresAt, Date.now(), clock.now())] });
  o.data({ event: 'mapped', mapping: m, tookMs }, describeRecord(m.record));
  if (!keep) {
    mapper.release(m);
    o.progress(`left to its lease; \`natkit map remove ${internalPort}\` deletes it (${o.state.path})`);
    return EXIT_OK;
  }
  o.progress('renewing until Ctrl-C or SIGTERM…');
  await new Promise<void>((resolve) => {
    wake = resolve;
    if (ctx.signal.aborted) resolve();
    ctx.signal.addEventListener('abort', () => resolve(), { once: true });
  });
  const report = await mapper.close();
  await writes;
  if (writeError !== undefined) ctx.io.err(`natkit map: could not update ${o.state.path}: ${messageOf(writeError)}\n`);
  await o.state.update(Date.now(), { drop: (e) => report.removed.some((r) => sameMapping(e, r)) || (failed !== undefined && sameMapping(e, failed.previous)) });
  for (const r of report.removed) o.data({ event: 'removed', mapping: r }, `removed: ${describeRecord(r)}`);
  for (const f of report.failed) ctx.io.err(`natkit map: could not remove ${describeRecord(f.mapping)}: ${messageOf(f.error)}\n`);
  return failed === undefined && report.failed.length === 0 && writeError === undefined ? EXIT_OK : EXIT_FAILURE;
}

async function remove(ctx: CommandContext, ports: readonly number[]): Promise<number> {
  const o = io(ctx);
  const all = flag(ctx, 'all');
  if (ports.length === 0 && !all) throw new UsageError('map remove: expected one or more ports, or --all');
  if (ports.length > 0 && all) throw new UsageError('map remove: ports and --all exclude each other');
  const protocol = protocolOption(ctx);
  const via = viaOption(ctx);
  const wanted = (m: { readonly internalPort: number; readonly protocol: MapProtocol }): boolean =>
    (all || ports.includes(m.internalPort)) && (protocol === undefined || m.protocol === protocol);
  const targets = (await o.state.read(Date.now())).filter((e) => wanted(e) && (via === undefined || e.via === via));
  await using mapper = await cliPortMapper(ctx, via === undefined ? {} : { order: [via] });
  const removed: MappingRecord[] = [];
  let failures = 0;
  for (const t of targets) {
    try {
      await mapper.unmap(t, { signal: ctx.signal });
      removed.push(t);
    } catch (err) {
      if (isNatkitError(err, 'ERR_ABORTED')) throw err;
      failures++;
      ctx.io.err(`natkit map: could not remove ${describeRecord(t)}: ${messageOf(err)}\n`);
    }
  }
  await o.state.update(Date.now(), { drop: (e) => removed.some((r) => sameMapping(e, r)) });
  // UPnP entries natkit left without a state entry (another state directory, a crash): recognised by description.
  const missing = ports.filter((p) => !targets.some((t) => t.internalPort === p));
  if (mapper.order.includes('upnp') && (all || missing.length > 0)) {
    try {
      const stale = await mapper.removeStale({ signal: ctx.signal, keep: (e) => !((all || missing.includes(e.internalPort)) && (protocol === undefined || e.protocol === protocol.toUpperCase())) });
      for (const e of stale) {
        removed.push({ via: 'upnp', protocol: e.protocol === 'UDP' ? 'udp' : 'tcp', internalPort: e.internalPort, internalClient: e.internalClient, externalAddress: '', externalPort: e.externalPort, lifetimeS: e.leaseS, description: e.description });
      }
    } catch (err) {
      if (isNatkitError(err, 'ERR_ABORTED')) throw err;
      o.progress(`UPnP: ${messageOf(err)}`);
    }
  }
  for (const r of removed) o.data({ event: 'removed', mapping: r }, `removed: ${describeRecord(r)}`);
  const notFound = ports.filter((p) => !removed.some((r) => r.internalPort === p));
  for (const p of notFound) ctx.io.err(`natkit map: no natkit mapping of port ${p} found (state file ${o.state.path}; a PCP mapping needs the nonce kept there)\n`);
  return failures === 0 && notFound.length === 0 ? EXIT_OK : EXIT_FAILURE;
}

async function list(ctx: CommandContext): Promise<number> {
  const o = io(ctx);
  const via = viaOption(ctx);
  await using mapper = await cliPortMapper(ctx, via === undefined ? {} : { order: [via] });
  const [table, state] = await Promise.all([mapper.list({ signal: ctx.signal }), o.state.read(Date.now())]);
  const rows = [
    ...table.mappings.map((m) => `${m.via.padEnd(7)}${m.protocol} ${String(m.externalPort).padStart(5)} -> ${m.internalClient}:${m.internalPort}  ${m.leaseS === 0 ? 'permanent' : `${m.leaseS} s`}  "${m.description}"${m.ours ? '  (natkit)' : ''}`),
    ...(table.upnpError === undefined ? [] : [`upnp   not read: ${table.upnpError}`]),
    ...state.map((s) => `state  ${describeRecord(s)}${s.expires === undefined ? '' : `, until ${s.expires}`}`),
  ];
  o.data({ gateway: mapper.gateway && formatEndpoint(mapper.gateway), ...table, state }, rows.length === 0 ? 'no mappings' : rows.join('\n'));
  return EXIT_OK;
}

async function externalIp(ctx: CommandContext): Promise<number> {
  const o = io(ctx);
  const via = viaOption(ctx);
  await using mapper = await cliPortMapper(ctx, via === undefined ? {} : { order: [via] });
  const r = await mapper.externalAddress({ signal: ctx.signal });
  o.progress(`(from ${r.via})`);
  o.data(r, r.address);
  return EXIT_OK;
}
