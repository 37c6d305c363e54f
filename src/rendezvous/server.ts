// The rendezvous server driver: binds UDP sockets and TCP listeners through env.network
// (or serves UDP sockets the caller gives, e.g. a PacketMux route of a STUN server's
// socket, so both see the same client mapping), feeds every datagram and stream frame to
// the sans-I/O core, sends what it returns on the link it names, and runs lease expiry on
// env.clock. TCP frames travel in the ChannelData-shaped envelope (codec.ts), cut by
// net's FramedSession under an idle timeout and a backlog cap.
import {
  FailureCounter, FramedSession, type Env, type Endpoint, type FramedSessionStats, type PacketSocket, type StreamListener, type StreamSocket, type Timer,
} from '../net/index.ts';
import { throwIfAborted } from '../util/index.ts';
import { MAX_FRAME_BYTES, fromStreamMessage, toStreamMessage } from './codec.ts';
import { RendezvousCore, type CoreSend, type RendezvousCoreOptions } from './core.ts';
import type { RendezvousStats } from './stats.ts';

/** Where to listen: an address and a port (0: the system picks). */
export interface ListenAt {
  /** @default '0.0.0.0' */
  readonly address?: string;
  /** @default 0 */
  readonly port?: number;
}

/** Options of RendezvousServer.start. */
export interface RendezvousServerOptions extends Omit<RendezvousCoreOptions, 'random'> {
  readonly env: Env;
  /** UDP sockets to bind. @default [] */
  readonly udp?: readonly ListenAt[];
  /** Bound UDP sockets to serve too (their packet handler is taken and cleared on close; never closed here). @default [] */
  readonly udpSockets?: readonly PacketSocket[];
  /** TCP listeners, the fallback where UDP is blocked. @default [] */
  readonly tcp?: readonly ListenAt[];
  /** Most concurrent TCP connections. @default 1024 */
  readonly maxConnections?: number;
  /** A TCP connection silent this long is closed (clients keep alive well within it). @default 60000 */
  readonly idleTimeoutMs?: number;
  /** Receives unexpected failures (counted in stats.internalErrors either way). @default env.logger.warn */
  readonly onError?: (error: Error) => void;
  readonly signal?: AbortSignal;
}

/** Counters of a running server. */
export interface RendezvousServerStats extends RendezvousStats {
  /** Unexpected exceptions caught in a handler or timer. */
  internalErrors: number;
  streams: FramedSessionStats & { accepted: number; refused: number; active: number };
}

/** The link a frame came in on: a UDP socket or a TCP session. */
type Link = PacketSocket | FramedSession;

/** A running rendezvous server. Start with `RendezvousServer.start()`; stop with `close()`. */
export class RendezvousServer implements AsyncDisposable {
  readonly core: RendezvousCore<Link>;
  private readonly env: Env;
  /** Sockets bound here (closed on close), then the caller's. */
  private readonly owned: PacketSocket[] = [];
  private readonly supplied: readonly PacketSocket[];
  private readonly listeners: StreamListener[] = [];
  private readonly sessions = new Set<FramedSession>();
  private readonly streamStats = { accepted: 0, refused: 0, active: 0, idleClosed: 0, garbageClosed: 0, slowClosed: 0, errored: 0 };
  private readonly failures: FailureCounter;
  private readonly maxConnections: number;
  private readonly idleTimeoutMs: number;
  private readonly signal: AbortSignal | undefined;
  private readonly abortListener = (): void => void this.close();
  private expiryTimer: Timer | undefined;
  private closing: Promise<void> | undefined;

  private constructor(options: RendezvousServerOptions) {
    this.env = options.env;
    this.core = new RendezvousCore({ ...options, random: options.env.random });
    this.supplied = options.udpSockets ?? [];
    this.failures = new FailureCounter('rendezvous server', options.env.logger, options.onError);
    this.maxConnections = options.maxConnections ?? 1024;
    this.idleTimeoutMs = options.idleTimeoutMs ?? 60_000;
    this.signal = options.signal;
  }

  /** Binds every socket and listener and starts serving. */
  static async start(options: RendezvousServerOptions): Promise<RendezvousServer> {
    const { env, signal } = options;
    throwIfAborted(signal, 'rendezvous server start');
    const server = new RendezvousServer(options);
    try {
      for (const at of options.udp ?? []) server.owned.push(await env.network.bindUdp({ address: at.address ?? '0.0.0.0', port: at.port ?? 0, ...(signal && { signal }) }));
      for (const at of options.tcp ?? []) {
        const listener = await env.network.listenStream(
          { address: at.address ?? '0.0.0.0', port: at.port ?? 0, ...(signal && { signal }) },
          (stream) => server.accept(stream),
        );
        server.listeners.push(listener);
      }
    } catch (err) {
      await server.close();
      throw err;
    }
    for (const socket of server.sockets) socket.onPacket((data, from) => server.failures.guard(() => server.input(data, from, socket, 'udp')));
    if (signal !== undefined) signal.addEventListener('abort', server.abortListener, { once: true });
    return server;
  }

  /** Where the server receives UDP: the sockets it bound, then the supplied ones. */
  get udpEndpoints(): Endpoint[] {
    return this.sockets.map((s) => s.local);
  }

  /** Where the server accepts TCP. */
  get tcpEndpoints(): Endpoint[] {
    return this.listeners.map((l) => l.local);
  }

  private get sockets(): PacketSocket[] {
    return [...this.owned, ...this.supplied];
  }

  /** A snapshot of the counters. */
  get stats(): RendezvousServerStats {
    const c = this.core.stats;
    return { ...c, errors: { ...c.errors }, dropped: { ...c.dropped }, internalErrors: this.failures.count, streams: { ...this.streamStats } };
  }

  /** Stops: closes listeners, connections and the sockets it bound. Idempotent. */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  private input(data: Uint8Array, from: Endpoint, link: Link, transport: 'udp' | 'tcp'): void {
    if (this.closing !== undefined) return;
    const result = this.core.handle({ data, from, link, transport, now: this.env.clock.now() });
    for (const send of result.sends) this.send(send);
    this.scheduleExpiry();
  }

  private send(send: CoreSend<Link>): void {
    if (send.link instanceof FramedSession) send.link.write(toStreamMessage(send.data));
    else send.link.send(send.data, send.to);
  }

  /** One timer, at the earliest lease end; refreshes only move leases later, so it never needs to move earlier. */
  private scheduleExpiry(): void {
    const next = this.core.nextExpiry;
    if (this.expiryTimer !== undefined || next === undefined || this.closing !== undefined) return;
    this.expiryTimer = this.env.clock.setTimer(Math.max(0, next - this.env.clock.now()), () => this.failures.guard(() => {
      this.expiryTimer = undefined;
      this.core.expire(this.env.clock.now());
      this.scheduleExpiry();
    }));
  }

  private accept(stream: StreamSocket): void {
    this.failures.guard(() => {
      if (this.closing !== undefined || this.sessions.size >= this.maxConnections) {
        if (this.closing === undefined) this.streamStats.refused++;
        stream.close().catch((err: unknown) => this.failures.fail(err));
        return;
      }
      this.streamStats.accepted++;
      const session: FramedSession = new FramedSession(stream, {
        clock: this.env.clock, stats: this.streamStats, idleTimeoutMs: this.idleTimeoutMs,
        maxMessageBytes: 4 + MAX_FRAME_BYTES + 3, maxBackloggedWrites: 1,
        onFrame: (message) => {
          const frame = fromStreamMessage(message);
          // Anything but our envelope (e.g. STUN) on this port: hang up, as for garbage.
          if (frame === undefined) session.end();
          else this.input(frame, stream.remote, session, 'tcp');
        },
        fail: (err) => this.failures.fail(err),
        ended: () => {
          this.sessions.delete(session);
          this.streamStats.active = this.sessions.size;
          this.core.linkClosed(session);
        },
      });
      if (!session.finished) this.sessions.add(session);
      this.streamStats.active = this.sessions.size;
    });
  }

  private async shutdown(): Promise<void> {
    this.signal?.removeEventListener('abort', this.abortListener);
    this.expiryTimer?.cancel();
    this.expiryTimer = undefined;
    for (const s of this.sockets) s.onPacket(undefined);
    const closing: Promise<void>[] = [];
    for (const l of this.listeners) closing.push(l.close());
    for (const s of this.sessions) closing.push(s.close());
    for (const s of this.owned) closing.push(s.close());
    const results = await Promise.allSettled(closing);
    this.sessions.clear();
    this.streamStats.active = 0;
    for (const r of results) if (r.status === 'rejected') this.failures.fail(r.reason);
  }
}
