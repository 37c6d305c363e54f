// The TURN server driver (RFC 8656) on the Env seam: binds the client-facing UDP sockets
// and TCP/TLS listeners (§3.1) or serves UDP sockets the caller shares (PacketMux views, as
// `natkit serve` does with STUN and rendezvous), takes relayed addresses from a pool of bound UDP sockets
// (relay-pool.ts), feeds every client message and peer datagram to the sans-I/O core,
// sends what it decides from the right socket, and keeps one Clock timer at the core's
// nextTimerAt(). STUN Binding is answered on the same ports (§3: a TURN server is a STUN
// server). Not done here: DF on relayed datagrams and ICMP (§11), which the seam does
// not expose; the core is told so (dontFragment false).
import { FailureCounter, endpointKey, type Endpoint, type Env, type PacketSocket, type StreamListener, type StreamSocket, type Timer, type TlsServerOptions } from '../../net/index.ts';
import { NatkitError, abortError, normalizeAddress, throwIfAborted, type RateLimiterOptions } from '../../util/index.ts';
import { channelDataRange } from '../channel-data.ts';
import { fiveTupleKey, type FiveTuple, type TurnTransport } from './allocation.ts';
import type { TurnUserSecret } from './auth.ts';
import { TurnServerCore, type TurnAllocationInfo, type TurnBandwidthOptions } from './core.ts';
import { RelaySocketPool, type RelayPoolStats } from './relay-pool.ts';
import type { TurnResult } from './replies.ts';
import type { TurnServerCoreStats } from './stats.ts';
import { TurnStreamSession, createTurnStreamStats, type TurnStreamOptions, type TurnStreamStats } from './stream.ts';

/** One place the server listens: one address and port, UDP and/or TCP, or TLS alone. */
export interface TurnListen {
  /** Local address; '0.0.0.0' or '::' for any. */
  readonly address: string;
  /** 0 lets the system choose (then UDP and TCP may get different ports). @default 3478, 5349 for TLS */
  readonly port?: number;
  /** TCP and TLS cannot share a port: TLS takes an entry of its own. @default ['udp', 'tcp'] */
  readonly transports?: readonly TurnTransport[];
  /** Certificate and key, required with 'tls'. */
  readonly tls?: TlsServerOptions;
}

/** Options of TurnServer.start. */
export interface TurnServerOptions extends TurnStreamOptions {
  readonly env: Env;
  /** Where to bind client-facing sockets and listeners; may be empty when `udpSockets` are given. */
  readonly listen: readonly TurnListen[];
  /**
   * Bound UDP sockets to serve too, e.g. PacketMux views of a socket shared with a STUN or
   * rendezvous server. Their packet handler is set and cleared on close; they are never
   * closed here, and their send errors are the owner's to count. @default []
   */
  readonly udpSockets?: readonly PacketSocket[];
  /** Addresses relay sockets bind to, at most one per family (RFC 8656 §7.2). */
  readonly relayAddresses: readonly string[];
  /** Relay ports (RFC 8656 §7.2: 49152–65535). @default { min: 49152, max: 65535 } */
  readonly relayPortRange?: { readonly min: number; readonly max: number };
  /** Advertised in XOR-RELAYED-ADDRESS instead of the relay address of its family, behind a 1:1 NAT. @default none */
  readonly externalAddress?: string;
  /** Relay sockets bound ahead per family (allocations granted at once before a refill). @default 16 */
  readonly spareRelaySockets?: number;
  /** REALM of the long-term credentials (RFC 8489 §9.2). */
  readonly realm: string;
  /** Static users: username → password or key. @default {} */
  readonly users?: Readonly<Record<string, TurnUserSecret>>;
  /** Loads more users (a users file) at start and on reloadUsers(); they override `users`. @default none */
  readonly loadUsers?: () => Promise<Readonly<Record<string, TurnUserSecret>>>;
  /** TURN REST API shared secrets (see TurnAuthOptions). @default [] */
  readonly sharedSecrets?: readonly string[];
  /** Unix milliseconds when env.clock reads 0, for REST API expiries (`Date.now() - clock.now()`). @default 0 */
  readonly epochOffsetMs?: number;
  /** Nonce lifetime. @default 600 */
  readonly nonceLifetimeS?: number;
  /** Peer addresses or prefixes admitted even where a deny rule matches (RFC 8656 §21.3). @default [] */
  readonly allowPeers?: readonly string[];
  /** Peer prefixes refused besides the special-purpose ranges and the server's own addresses. @default [] */
  readonly denyPeers?: readonly string[];
  /** Live allocations at most (508). @default 10000 */
  readonly maxAllocations?: number;
  /** Live allocations per username (486). @default 10 */
  readonly maxAllocationsPerUser?: number;
  /** @default 256 */
  readonly maxPermissionsPerAllocation?: number;
  /** @default 1024 */
  readonly maxChannelsPerAllocation?: number;
  /** Longest lifetime granted (RFC 8656 §7.2). @default 3600 */
  readonly maxLifetimeS?: number;
  /** Per-allocation relayed bytes per second. @default unlimited */
  readonly bandwidth?: TurnBandwidthOptions;
  /** Per-source budget of requests answered without proven credentials; false turns it off. @default { ratePerS: 20, burst: 40, maxKeys: 65536 } */
  readonly rateLimit?: RateLimiterOptions | false;
  /** SOFTWARE text; false for none. @default 'natkit' */
  readonly software?: string | false;
  /**
   * Accept RFC 5766 §11's channel numbers 0x4000–0x7FFF (not RFC 8656 §12's 0x4000–0x4FFF)
   * over UDP, TCP and TLS, for RFC 5766 clients such as coturn's turnutils_uclient. A caller
   * sharing `udpSockets` must route first bytes 0x40–0x7F here (channelDataRange()). @default false
   */
  readonly legacyChannels?: boolean;
  /** Receives unexpected failures (counted in stats.internalErrors either way). @default env.logger.warn */
  readonly onError?: (error: Error) => void;
  /** Aborting closes the server (and rejects start while it binds). */
  readonly signal?: AbortSignal;
}

/** Where the server listens. */
export interface TurnServerEndpoint {
  readonly transport: TurnTransport;
  readonly local: Endpoint;
}

/** Counters of a running server: the core's, plus gauges, sockets and streams. */
export interface TurnServerStats extends TurnServerCoreStats {
  /** Live allocations, permissions and channel bindings now. */
  allocations: number;
  permissions: number;
  channels: number;
  relay: RelayPoolStats;
  /** UDP sends the client-facing sockets refused. */
  sendErrors: number;
  /** Unexpected exceptions caught in a handler or timer (also passed to onError). */
  internalErrors: number;
  streams: TurnStreamStats;
}

/** A running TURN server. Start with `TurnServer.start()`; stop with `close()`. */
export class TurnServer implements AsyncDisposable {
  readonly core: TurnServerCore;
  readonly endpoints: readonly TurnServerEndpoint[];
  private readonly env: Env;
  private readonly options: TurnServerOptions;
  private readonly pool: RelaySocketPool;
  /** The caller's UDP sockets (options.udpSockets), never closed here. */
  private readonly supplied: ReadonlySet<PacketSocket>;
  /** endpointKey(local) → client-facing UDP socket. */
  private readonly udp = new Map<string, PacketSocket>();
  private readonly listeners: StreamListener[] = [];
  /** fiveTupleKey → connection. */
  private readonly sessions = new Map<string, TurnStreamSession>();
  private readonly streamStats = createTurnStreamStats();
  private readonly limits: Required<TurnStreamOptions>;
  private readonly failures: FailureCounter;
  private readonly abortListener = (): void => void this.close();
  private timer: Timer | undefined;
  private timerAt = Infinity;
  private closing: Promise<void> | undefined;

  private constructor(options: TurnServerOptions, pool: RelaySocketPool, core: TurnServerCore, endpoints: TurnServerEndpoint[], supplied: ReadonlySet<PacketSocket>) {
    this.env = options.env;
    this.options = options;
    this.pool = pool;
    this.supplied = supplied;
    this.core = core;
    this.endpoints = endpoints;
    this.failures = new FailureCounter('turn server', options.env.logger, options.onError);
    this.limits = {
      maxConnections: options.maxConnections ?? 1024,
      idleTimeoutMs: options.idleTimeoutMs ?? 30_000,
      maxMessageBytes: options.maxMessageBytes ?? 65_555,
      maxBackloggedWrites: options.maxBackloggedWrites ?? 1024,
    };
  }

  /** Binds the relay pool, every UDP socket and listener, and starts serving. */
  static async start(options: TurnServerOptions): Promise<TurnServer> {
    const { env, signal } = options;
    throwIfAborted(signal, 'TURN server start');
    const listen = options.listen.map(checkListen);
    const supplied = options.udpSockets ?? [];
    if (listen.length === 0 && supplied.length === 0) throw new NatkitError('ERR_CONFIG', 'listen: expected at least one address');
    const users = { ...options.users, ...(await options.loadUsers?.()) };
    // The server's handler is late-bound: sockets deliver through `ref` once it exists.
    const ref: { server?: TurnServer } = {};
    const pool = await RelaySocketPool.create({
      network: env.network, random: env.random, addresses: options.relayAddresses,
      ...(options.externalAddress !== undefined && { externalAddress: options.externalAddress }),
      ...(options.relayPortRange !== undefined && { minPort: options.relayPortRange.min, maxPort: options.relayPortRange.max }),
      ...(options.spareRelaySockets !== undefined && { spare: options.spareRelaySockets }),
      onPacket: (relayed, data, from) => ref.server?.onPeer(relayed, data, from),
      onError: (err) => {
        if (ref.server !== undefined) ref.server.failures.fail(err);
        else env.logger.warn('turn server: relay socket failure', { error: err.message });
      },
    });
    const opened: { close(): Promise<void> }[] = [pool];
    try {
      const core = new TurnServerCore({
        auth: {
          realm: options.realm, users,
          ...(options.sharedSecrets !== undefined && { sharedSecrets: options.sharedSecrets }),
          ...(options.epochOffsetMs !== undefined && { epochOffsetMs: options.epochOffsetMs }),
          ...(options.nonceLifetimeS !== undefined && { nonceLifetimeS: options.nonceLifetimeS }),
        },
        allocator: pool,
        random: env.random,
        peerPolicy: {
          allow: options.allowPeers ?? [], deny: options.denyPeers ?? [],
          serverAddresses: [...listen.map((l) => l.address), ...supplied.map((s) => s.local.address)].filter((a) => a !== '0.0.0.0' && a !== '::'),
        },
        ...(options.software !== undefined && { software: options.software }),
        ...(options.maxLifetimeS !== undefined && { maxLifetimeS: options.maxLifetimeS }),
        ...(options.maxAllocations !== undefined && { maxAllocations: options.maxAllocations }),
        ...(options.maxAllocationsPerUser !== undefined && { maxAllocationsPerUser: options.maxAllocationsPerUser }),
        ...(options.maxPermissionsPerAllocation !== undefined && { maxPermissionsPerAllocation: options.maxPermissionsPerAllocation }),
        ...(options.maxChannelsPerAllocation !== undefined && { maxChannelsPerAllocation: options.maxChannelsPerAllocation }),
        ...(options.rateLimit !== false && { rateLimit: options.rateLimit ?? {} }),
        ...(options.bandwidth !== undefined && { bandwidth: options.bandwidth }),
        ...(options.legacyChannels !== undefined && { legacyChannels: options.legacyChannels }),
      });
      const endpoints: TurnServerEndpoint[] = supplied.map((socket) => ({ transport: 'udp', local: socket.local }));
      const udp: PacketSocket[] = [...supplied];
      const listeners: StreamListener[] = [];
      const pending: { stream: StreamSocket; transport: 'tcp' | 'tls' }[] = [];
      for (const l of listen) {
        throwIfAborted(signal, 'TURN server start');
        for (const transport of l.transports) {
          const bind = { address: l.address, port: l.port, ...(signal && { signal }) };
          if (transport === 'udp') {
            const socket = await env.network.bindUdp(bind);
            opened.push(socket);
            udp.push(socket);
            endpoints.push({ transport, local: socket.local });
            continue;
          }
          const listener = await env.network.listenStream({ ...bind, ...(transport === 'tls' && l.tls !== undefined && { tls: l.tls }) }, (stream) => {
            if (ref.server !== undefined) ref.server.accept(stream, transport);
            else pending.push({ stream, transport });
          });
          opened.push(listener);
          listeners.push(listener);
          endpoints.push({ transport, local: listener.local });
        }
      }
      const server = new TurnServer(options, pool, core, endpoints, new Set(supplied));
      ref.server = server;
      server.listeners.push(...listeners);
      for (const socket of udp) {
        server.udp.set(endpointKey(socket.local), socket);
        socket.onPacket((data, from) => server.onClient(socket, data, from));
      }
      for (const p of pending) server.accept(p.stream, p.transport);
      if (signal !== undefined) {
        if (signal.aborted) void server.close();
        else signal.addEventListener('abort', server.abortListener, { once: true });
      }
      return server;
    } catch (err) {
      await Promise.allSettled(opened.map((o) => o.close()));
      if (signal?.aborted === true) throw abortError(signal, 'TURN server start');
      throw err;
    }
  }

  /** A snapshot of the counters and gauges. */
  get stats(): TurnServerStats {
    const c = this.core.stats;
    const now = this.env.clock.now();
    let permissions = 0;
    let channels = 0;
    const live = this.core.allocations(now);
    for (const a of live) {
      permissions += a.permissions;
      channels += a.channels;
    }
    let sendErrors = 0;
    for (const s of this.udp.values()) if (!this.supplied.has(s)) sendErrors += s.stats.sendErrors;
    return {
      ...c, errors: { ...c.errors }, dropped: { ...c.dropped },
      allocations: live.length, permissions, channels, relay: this.pool.stats,
      sendErrors, internalErrors: this.failures.count, streams: { ...this.streamStats },
    };
  }

  /** Live allocations with their counters. */
  allocations(): TurnAllocationInfo[] {
    return this.core.allocations(this.env.clock.now());
  }

  /** Loads the users again through `loadUsers` and swaps them in; without the hook, keeps `users`. */
  async reloadUsers(): Promise<void> {
    this.core.setUsers({ ...this.options.users, ...(await this.options.loadUsers?.()) });
  }

  get closed(): boolean {
    return this.closing !== undefined;
  }

  /** Stops: closes listeners, connections, client sockets and every relay socket. Idempotent. */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  private onClient(socket: PacketSocket, data: Uint8Array, from: Endpoint): void {
    this.failures.guard(() => {
      this.deliver(this.core.handleClient({ client: from, server: socket.local, transport: 'udp', data, now: this.env.clock.now() }));
      this.schedule();
    });
  }

  private onPeer(relayed: Endpoint, data: Uint8Array, from: Endpoint): void {
    if (this.closing !== undefined) return;
    this.failures.guard(() => this.deliver(this.core.handlePeer({ data, peer: from, relayed, now: this.env.clock.now() })));
  }

  private onFrame(session: TurnStreamSession, frame: Uint8Array): void {
    this.deliver(this.core.handleClient({ ...session.tuple, data: frame, now: this.env.clock.now() }));
    this.schedule();
  }

  /** Sends what the core decided: to a peer from its relay socket, or to the client on its 5-tuple. */
  private deliver(result: TurnResult): void {
    const out = result.output;
    if (out === undefined) return;
    if (out.kind === 'peer') {
      const socket = this.pool.socketFor(out.from);
      if (socket === undefined) throw new NatkitError('ERR_PROTOCOL', `no relay socket for ${endpointKey(out.from)}`);
      socket.send(out.data, out.to);
    } else {
      this.toClient(out.to, out.data);
    }
  }

  private toClient(tuple: FiveTuple, data: Uint8Array): void {
    if (tuple.transport === 'udp') this.udp.get(endpointKey(tuple.server))?.send(data, tuple.client);
    // A connection that ended has taken its allocation with it (disconnect); nothing to reach.
    else this.sessions.get(fiveTupleKey(tuple))?.write(data);
  }

  /** Keeps one timer at the core's next deadline (an earlier one already armed is kept). */
  private schedule(): void {
    const at = this.core.nextTimerAt();
    if (at === undefined || at >= this.timerAt || this.closing !== undefined) return;
    this.timer?.cancel();
    this.timerAt = at;
    this.timer = this.env.clock.setTimer(Math.max(0, at - this.env.clock.now()), () => {
      this.timer = undefined;
      this.timerAt = Infinity;
      this.failures.guard(() => {
        this.core.expire(this.env.clock.now());
        this.schedule();
      });
    });
  }

  private accept(stream: StreamSocket, transport: 'tcp' | 'tls'): void {
    this.failures.guard(() => {
      if (this.closing !== undefined || this.sessions.size >= this.limits.maxConnections) {
        if (this.closing === undefined) this.streamStats.refused++;
        stream.close().catch((err: unknown) => this.failures.fail(err));
        return;
      }
      this.streamStats.accepted++;
      const session = new TurnStreamSession({
        ...this.limits, clock: this.env.clock, stats: this.streamStats,
        channelData: channelDataRange({ legacyChannels: this.options.legacyChannels ?? false }),
        onFrame: (s, frame) => this.onFrame(s, frame),
        hasAllocation: (tuple) => this.core.hasAllocation(tuple, this.env.clock.now()),
        fail: (err) => this.failures.fail(err),
        ended: (s) => {
          this.sessions.delete(fiveTupleKey(s.tuple));
          this.streamStats.active = this.sessions.size;
          this.core.disconnect(s.tuple);
        },
      }, stream, transport);
      if (!session.finished) this.sessions.set(fiveTupleKey(session.tuple), session);
      this.streamStats.active = this.sessions.size;
    });
  }

  private async shutdown(): Promise<void> {
    this.options.signal?.removeEventListener('abort', this.abortListener);
    this.timer?.cancel();
    this.timer = undefined;
    for (const s of this.udp.values()) s.onPacket(undefined);
    const closing: Promise<void>[] = [];
    for (const l of this.listeners) closing.push(l.close());
    for (const s of this.sessions.values()) closing.push(s.close());
    for (const s of this.udp.values()) if (!this.supplied.has(s)) closing.push(s.close());
    closing.push(this.pool.close());
    const results = await Promise.allSettled(closing);
    this.sessions.clear();
    this.streamStats.active = 0;
    for (const r of results) if (r.status === 'rejected') this.failures.fail(r.reason);
  }
}

/** A listen entry with its defaults filled in and checked. */
function checkListen(l: TurnListen): { address: string; port: number; transports: readonly TurnTransport[]; tls?: TlsServerOptions } {
  const transports = l.transports ?? ['udp', 'tcp'];
  const address = normalizeAddress(l.address);
  if (transports.length === 0) throw new NatkitError('ERR_CONFIG', `listen ${address}: expected at least one transport`);
  if (transports.includes('tls')) {
    if (transports.includes('tcp')) throw new NatkitError('ERR_CONFIG', `listen ${address}: TCP and TLS need different ports (RFC 8656 §3.1)`);
    if (l.tls === undefined) throw new NatkitError('ERR_CONFIG', `listen ${address}: TLS without a certificate and key`);
  }
  const port = l.port ?? (transports.includes('tls') ? 5349 : 3478);
  return { address, port, transports, ...(l.tls !== undefined && { tls: l.tls }) };
}
