// The STUN server driver: binds UDP sockets and TCP/TLS listeners for every role of the
// RFC 5780 §6 layout (two addresses × two ports, per transport) through env.network,
// feeds what arrives to the sans-I/O core and sends each reply from the socket of the
// role the core chose (RFC 5780 §6.1 table 1). UDP sockets may come from the caller
// (shared with TURN through a PacketMux route); those are never closed here.
import { FailureCounter, type Env, type Endpoint, type PacketSocket, type StreamListener, type StreamSocket, type TlsServerOptions } from '../../net/index.ts';
import { NatkitError, abortError, throwIfAborted, type RateLimiterOptions } from '../../util/index.ts';
import { StunServerCore } from './core.ts';
import { SERVER_ROLES, validateLayout, type ServerLayout, type ServerRole, type ServerTransport } from './roles.ts';
import type { StunServerCoreStats } from './stats.ts';
import { StreamSession, createStreamStats, type StunServerStreamOptions, type StunServerStreamStats } from './stream.ts';

/** TLS listener settings: certificate, key and its own ports (RFC 5780 §6: TCP and TLS MUST use different ports). */
export interface StunServerTlsOptions extends TlsServerOptions {
  /** [P1] or [P1, P2]. @default [5349, 5350] cut to the length of `ports`, or zeros when every `ports` entry is 0 */
  readonly ports?: readonly number[];
}

/** Options of StunServer.create. */
export interface StunServerOptions extends StunServerStreamOptions {
  readonly env: Env;
  /** [A1] or [A1, A2] (one family, concrete when two). @default ['0.0.0.0'], or the addresses of `udpSockets` */
  readonly addresses?: readonly string[];
  /** [P1] or [P1, P2] for UDP and TCP; 0 lets the system choose (the same port on both addresses). @default [3478] */
  readonly ports?: readonly number[];
  /** Serve UDP. @default true */
  readonly udp?: boolean;
  /** Serve TCP (RFC 8489 §6.2.2). @default true, false when `udpSockets` are given */
  readonly tcp?: boolean;
  /** Serve TLS over TCP (RFC 8489 §6.2.3). @default off */
  readonly tls?: StunServerTlsOptions;
  /**
   * Bound UDP sockets to serve instead of binding, indexed by ServerRole (A1:P1, A1:P2,
   * A2:P1, A2:P2); their local endpoints define the UDP layout. The server sets their
   * packet handler and clears it on close, but never closes them.
   */
  readonly udpSockets?: readonly PacketSocket[];
  /** SOFTWARE text; false for none. @default 'natkit' */
  readonly software?: string | false;
  /** Per-source token bucket; false turns it off. @default { ratePerS: 20, burst: 40, maxKeys: 65536 } */
  readonly rateLimit?: RateLimiterOptions | false;
  /** Seed-compatible plain mode: non-STUN input gets the sender's `ip,port\n`. @default false */
  readonly plain?: boolean;
  /** Answer RFC 3489 clients. @default true */
  readonly legacy?: boolean;
  /** Receives unexpected failures (they are counted in stats.internalErrors either way). @default env.logger.warn */
  readonly onError?: (error: Error) => void;
  /** Aborting closes the server (and rejects create while it binds). */
  readonly signal?: AbortSignal;
}

/** One place the server listens. */
export interface ServerEndpoint {
  readonly transport: ServerTransport;
  readonly role: ServerRole;
  readonly local: Endpoint;
}

/** Counters of a running server: the core's, plus sockets and streams. */
export interface StunServerStats extends StunServerCoreStats {
  /** UDP sends the sockets refused (best effort, counted not thrown). */
  sendErrors: number;
  /** Unexpected exceptions caught in a handler or timer (also passed to onError). */
  internalErrors: number;
  /** TCP and TLS connections. */
  streams: StunServerStreamStats;
}

/** How many times a system-chosen port is retried when the alternate address has it taken. */
const PORT_PAIR_ATTEMPTS = 8;

/** A running STUN server. Create with `StunServer.create()`; stop with `close()`. */
export class StunServer implements AsyncDisposable {
  /** The sans-I/O core (layout, counters, rate limiter). */
  readonly core: StunServerCore;
  /** Where the server listens, by transport and role. */
  readonly endpoints: readonly ServerEndpoint[];
  private readonly env: Env;
  private readonly udp: readonly (PacketSocket | undefined)[];
  private readonly ownsUdp: boolean;
  private readonly listeners: readonly StreamListener[];
  private readonly sessions = new Set<StreamSession>();
  private readonly streamStats = createStreamStats();
  private readonly limits: Required<StunServerStreamOptions>;
  private readonly failures: FailureCounter;
  private readonly signal: AbortSignal | undefined;
  private readonly abortListener = (): void => void this.close();
  private closing: Promise<void> | undefined;

  private constructor(init: {
    env: Env; core: StunServerCore; udp: readonly (PacketSocket | undefined)[]; ownsUdp: boolean; listeners: readonly StreamListener[];
    endpoints: readonly ServerEndpoint[]; limits: Required<StunServerStreamOptions>; onError: ((error: Error) => void) | undefined;
    signal: AbortSignal | undefined;
  }) {
    this.env = init.env;
    this.core = init.core;
    this.udp = init.udp;
    this.ownsUdp = init.ownsUdp;
    this.listeners = init.listeners;
    this.endpoints = init.endpoints;
    this.limits = init.limits;
    this.failures = new FailureCounter('stun server', init.env.logger, init.onError);
    this.signal = init.signal;
  }

  /** Binds every socket and listener of the layout and starts serving. */
  static async create(options: StunServerOptions): Promise<StunServer> {
    const { env, signal } = options;
    throwIfAborted(signal, 'STUN server start');
    const limits: Required<StunServerStreamOptions> = {
      maxConnections: options.maxConnections ?? 1024,
      idleTimeoutMs: options.idleTimeoutMs ?? 30_000,
      maxMessageBytes: options.maxMessageBytes ?? 8192,
      plainGreetingMs: options.plainGreetingMs ?? 500,
    };
    const supplied = options.udpSockets;
    const addresses = supplied !== undefined ? suppliedAddresses(supplied) : (options.addresses ?? ['0.0.0.0']);
    if (supplied !== undefined && options.addresses !== undefined && options.addresses.join() !== addresses.join()) {
      throw new NatkitError('ERR_CONFIG', `addresses ${options.addresses.join(', ')} differ from the udpSockets' ${addresses.join(', ')}`);
    }
    const ports = options.ports ?? [3478];
    const wantUdp = options.udp ?? true;
    const wantTcp = options.tcp ?? supplied === undefined;
    const tlsPorts = options.tls === undefined ? undefined : (options.tls.ports ?? defaultTlsPorts(ports));
    // Validate before binding anything.
    validateLayout({ addresses, ports: { udp: ports, tcp: ports, ...(tlsPorts !== undefined && { tls: tlsPorts }) } });

    const opened: { close(): Promise<void> }[] = [];
    const abandon = async (): Promise<void> => {
      await Promise.allSettled(opened.map((o) => o.close()));
    };
    try {
      let udp: (PacketSocket | undefined)[] = [];
      if (supplied !== undefined) udp = checkSupplied(supplied);
      else if (wantUdp) {
        udp = await bindLayout(addresses, ports, (address, port) => env.network.bindUdp({ address, port, ...(signal && { signal }) }), opened, signal);
      }
      // The stream handler needs the server, which needs the listeners: late-bound.
      const ref: { server?: StunServer } = {};
      const pending: { stream: StreamSocket; role: ServerRole; transport: ServerTransport }[] = [];
      const accept = (transport: ServerTransport, role: ServerRole) => (stream: StreamSocket): void => {
        if (ref.server !== undefined) ref.server.accept(stream, role, transport);
        else pending.push({ stream, role, transport });
      };
      const listen = (transport: ServerTransport, list: readonly number[], tls?: TlsServerOptions): Promise<(StreamListener | undefined)[]> =>
        bindLayout(addresses, list, (address, port, role) =>
          env.network.listenStream({ address, port, ...(tls && { tls }), ...(signal && { signal }) }, accept(transport, role)), opened, signal);
      const tcp = wantTcp ? await listen('tcp', ports) : [];
      const tls = options.tls !== undefined && tlsPorts !== undefined ? await listen('tls', tlsPorts, { cert: options.tls.cert, key: options.tls.key }) : [];

      const layoutPorts: { -readonly [T in ServerTransport]?: readonly number[] } = {};
      const portsOf = (list: readonly ({ local: Endpoint } | undefined)[]): number[] | undefined => {
        const p1 = list[0]?.local.port;
        const p2 = list[1]?.local.port;
        return p1 === undefined ? undefined : p2 === undefined ? [p1] : [p1, p2];
      };
      const udpPorts = portsOf(udp);
      const tcpPorts = portsOf(tcp);
      const tlsBound = portsOf(tls);
      if (udpPorts !== undefined) layoutPorts.udp = udpPorts;
      if (tcpPorts !== undefined) layoutPorts.tcp = tcpPorts;
      if (tlsBound !== undefined) layoutPorts.tls = tlsBound;
      const layout: ServerLayout = { addresses, ports: layoutPorts };
      const core = new StunServerCore({
        layout,
        ...(options.software !== undefined && { software: options.software }),
        ...(options.rateLimit !== undefined && { rateLimit: options.rateLimit }),
        ...(options.plain !== undefined && { plain: options.plain }),
        ...(options.legacy !== undefined && { legacy: options.legacy }),
      });
      const endpoints: ServerEndpoint[] = [];
      const listeners: StreamListener[] = [];
      for (const [transport, list] of [['udp', udp], ['tcp', tcp], ['tls', tls]] as const) {
        for (const role of SERVER_ROLES) {
          const item = list[role];
          if (item === undefined) continue;
          endpoints.push({ transport, role, local: item.local });
          if (transport !== 'udp') listeners.push(item);
        }
      }
      const server = new StunServer({
        env, core, udp, ownsUdp: supplied === undefined, listeners, endpoints, limits,
        onError: options.onError, signal,
      });
      ref.server = server;
      server.start();
      for (const p of pending) server.accept(p.stream, p.role, p.transport);
      return server;
    } catch (err) {
      await abandon();
      if (signal?.aborted === true) throw abortError(signal, 'STUN server start');
      throw err;
    }
  }

  /** A snapshot of the counters. */
  get stats(): StunServerStats {
    const c = this.core.stats;
    let sendErrors = 0;
    if (this.ownsUdp) for (const s of this.udp) sendErrors += s?.stats.sendErrors ?? 0;
    return { ...c, dropped: { ...c.dropped }, sendErrors, internalErrors: this.failures.count, streams: { ...this.streamStats } };
  }

  /** True once close() was called. */
  get closed(): boolean {
    return this.closing !== undefined;
  }

  /** Stops: closes listeners, connections and the server's own sockets. Idempotent. */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  private start(): void {
    for (const role of SERVER_ROLES) {
      this.udp[role]?.onPacket((data, from) => this.onDatagram(role, data, from));
    }
    if (this.signal !== undefined) {
      if (this.signal.aborted) void this.close();
      else this.signal.addEventListener('abort', this.abortListener, { once: true });
    }
  }

  private onDatagram(role: ServerRole, data: Uint8Array, from: Endpoint): void {
    try {
      const result = this.core.handle({ data, role, from, transport: 'udp', now: this.env.clock.now() });
      if (result.reply === undefined) return;
      const socket = this.udp[result.reply.via];
      if (socket === undefined) throw new NatkitError('ERR_PROTOCOL', `no UDP socket for role ${result.reply.via}`);
      socket.send(result.reply.data, result.reply.to);
    } catch (err) {
      this.failures.fail(err);
    }
  }

  private accept(stream: StreamSocket, role: ServerRole, transport: ServerTransport): void {
    try {
      if (this.closing !== undefined || this.sessions.size >= this.limits.maxConnections) {
        if (this.closing === undefined) this.streamStats.refused++;
        stream.close().catch((err: unknown) => this.failures.fail(err));
        return;
      }
      this.streamStats.accepted++;
      const session = new StreamSession(
        {
          core: this.core, clock: this.env.clock, stats: this.streamStats, ...this.limits,
          fail: (err) => this.failures.fail(err),
          ended: (s) => {
            this.sessions.delete(s);
            this.streamStats.active = this.sessions.size;
          },
        },
        stream, role, transport,
      );
      if (!session.finished) this.sessions.add(session);
      this.streamStats.active = this.sessions.size;
    } catch (err) {
      this.failures.fail(err);
    }
  }

  private async shutdown(): Promise<void> {
    this.signal?.removeEventListener('abort', this.abortListener);
    for (const s of this.udp) s?.onPacket(undefined);
    const closing: Promise<void>[] = [];
    for (const l of this.listeners) closing.push(l.close());
    for (const s of this.sessions) closing.push(s.close());
    if (this.ownsUdp) for (const s of this.udp) if (s !== undefined) closing.push(s.close());
    const results = await Promise.allSettled(closing);
    this.sessions.clear();
    this.streamStats.active = 0;
    for (const r of results) if (r.status === 'rejected') this.failures.fail(r.reason);
  }
}

/**
 * Binds the UDP sockets of a layout for a caller that shares them (`udpSockets`), in role
 * order: [A1] × [P1] or [P1, P2], or [A1, A2] × [P1, P2]; a port of 0 gets the same number
 * on both addresses. Closes what it bound when it fails; the caller closes the rest.
 */
export async function bindUdpLayout(env: Env, layout: ServerLayout, signal?: AbortSignal): Promise<PacketSocket[]> {
  const { addresses, ports: { udp: ports = [] } } = validateLayout(layout);
  if (addresses.length === 2 && ports.length !== 2) throw new NatkitError('ERR_CONFIG', `udp ports: two addresses need two ports, got ${ports.length}`);
  const opened: PacketSocket[] = [];
  try {
    const byRole = await bindLayout(addresses, ports, (address, port) => env.network.bindUdp({ address, port, ...(signal && { signal }) }), opened, signal);
    // Every role of an A × P layout is bound, so the list has no holes.
    return byRole.filter((s) => s !== undefined);
  } catch (err) {
    await Promise.allSettled(opened.map((o) => o.close()));
    throw err;
  }
}

/** TLS ports when none are given: 5349 (RFC 8489 §6.2.3) and 5350, or zeros for system-chosen. */
function defaultTlsPorts(ports: readonly number[]): number[] {
  if (ports.every((p) => p === 0)) return ports.map(() => 0);
  return [5349, 5350].slice(0, ports.length);
}

/** Addresses of supplied sockets: A1 from role 0, A2 from role 2. */
function suppliedAddresses(sockets: readonly (PacketSocket | undefined)[]): string[] {
  const a1 = sockets[0]?.local.address;
  const a2 = sockets[2]?.local.address;
  if (a1 === undefined) throw new NatkitError('ERR_CONFIG', 'udpSockets: expected a socket for role A1:P1 (index 0)');
  return a2 === undefined ? [a1] : [a1, a2];
}

/** Checks that supplied sockets form a layout: same address per row, same port per column. */
function checkSupplied(sockets: readonly PacketSocket[]): (PacketSocket | undefined)[] {
  const list: (PacketSocket | undefined)[] = [...sockets];
  if (list.length < 1 || list.length > 4 || list.length === 3) {
    throw new NatkitError('ERR_CONFIG', `udpSockets: expected 1, 2 or 4 sockets (by role), got ${list.length}`);
  }
  const at = (role: number): Endpoint | undefined => list[role]?.local;
  for (const role of SERVER_ROLES) {
    const e = at(role);
    if (e === undefined) continue;
    const sameRow = at(role & 2);
    const sameColumn = at(role & 1);
    if (sameRow === undefined || sameColumn === undefined || e.address !== sameRow.address || e.port !== sameColumn.port) {
      throw new NatkitError('ERR_CONFIG', `udpSockets: socket ${role} at ${e.address}:${e.port} does not fit the A×P layout`);
    }
  }
  return list;
}

/**
 * Binds addresses × ports in role order. For a port of 0 the system picks it on A1 and
 * A2 then takes the same number (RFC 5780 §6: "the same ports on each IP address"),
 * retrying with a fresh port when A2 has it taken. Returns sockets indexed by role.
 */
async function bindLayout<T extends { readonly local: Endpoint; close(): Promise<void> }>(
  addresses: readonly string[],
  ports: readonly number[],
  bind: (address: string, port: number, role: ServerRole) => Promise<T>,
  opened: { close(): Promise<void> }[],
  signal: AbortSignal | undefined,
): Promise<(T | undefined)[]> {
  const out: (T | undefined)[] = [undefined, undefined, undefined, undefined];
  const [a1, a2] = addresses as [string, string | undefined];
  for (let pi = 0; pi < ports.length; pi++) {
    const wanted = ports[pi]!;
    for (let attempt = 1; ; attempt++) {
      throwIfAborted(signal, 'STUN server start');
      const first = await bind(a1, wanted, pi as ServerRole);
      opened.push(first);
      if (a2 === undefined) {
        out[pi] = first;
        break;
      }
      try {
        const second = await bind(a2, first.local.port, (2 + pi) as ServerRole);
        opened.push(second);
        out[pi] = first;
        out[2 + pi] = second;
        break;
      } catch (err) {
        if (wanted !== 0 || attempt >= PORT_PAIR_ATTEMPTS || signal?.aborted === true) throw err;
        await first.close();
      }
    }
  }
  return out;
}
