// One TCP or TLS connection to the STUN server: RFC 8489 §6.2.2 (framing on a stream,
// responses on the same connection, the server keeps it open until the client closes it
// or it times out) and the seed's plain TCP reply. Messages are framed by StreamFramer;
// the core decides what to answer. Caps: an idle timeout, one buffered message of at
// most maxMessageBytes, and no unread backlog (a peer that does not read is closed).
//
// Plain mode on a stream: the seed answered `ip,port\n` as soon as a connection arrived.
// A STUN client speaks first, so we wait: a connection silent for plainGreetingMs, or
// whose first byte cannot start a STUN message (RFC 7983 §7: 0–3), gets `ip,port\n` and
// is closed — `nc host port` prints the address — while STUN clients are served as usual.
import { StreamFramer, type Clock, type StreamSocket, type Timer } from '../../net/index.ts';
import { DecodeError } from '../../util/index.ts';
import type { StunServerCore } from './core.ts';
import type { ServerRole, ServerTransport } from './roles.ts';

/** Limits of the stream side of a STUN server. */
export interface StunServerStreamOptions {
  /** Most concurrent TCP and TLS connections together; more are closed at once. @default 1024 */
  readonly maxConnections?: number;
  /** A connection that sends nothing for this long is closed. @default 30000 */
  readonly idleTimeoutMs?: number;
  /** Largest message a connection may send (what one connection can make us buffer). @default 8192 */
  readonly maxMessageBytes?: number;
  /**
   * Plain mode: a connection silent for this long gets `ip,port\n` and is closed, so
   * `nc host port` prints the address. @default 500
   */
  readonly plainGreetingMs?: number;
}

/** Counters of the stream side. */
export interface StunServerStreamStats {
  /** Connections accepted and served. */
  accepted: number;
  /** Connections open now. */
  active: number;
  /** Connections closed at once because maxConnections were open. */
  refused: number;
  /** Closed after idleTimeoutMs of silence. */
  idleClosed: number;
  /** Closed because their bytes could not be framed (garbage, or a message over the limit). */
  garbageClosed: number;
  /** Closed because replies piled up unread (the peer does not read). */
  slowClosed: number;
  /** Closed after a plain `ip,port\n` reply. */
  plainClosed: number;
  /** Connections that ended with a socket error. */
  errored: number;
}

/** Fresh zeroed stream counters. */
export function createStreamStats(): StunServerStreamStats {
  return { accepted: 0, active: 0, refused: 0, idleClosed: 0, garbageClosed: 0, slowClosed: 0, plainClosed: 0, errored: 0 };
}

/** What a connection needs from its server. */
export interface StreamContext {
  readonly core: StunServerCore;
  readonly clock: Clock;
  readonly stats: StunServerStreamStats;
  readonly idleTimeoutMs: number;
  readonly maxMessageBytes: number;
  readonly plainGreetingMs: number;
  /** Counts and reports an unexpected failure. */
  readonly fail: (err: unknown) => void;
  /** Called once when the connection has ended. */
  readonly ended: (session: StreamSession) => void;
}

/** Serves one accepted connection until it ends. */
export class StreamSession {
  readonly stream: StreamSocket;
  private readonly ctx: StreamContext;
  private readonly role: ServerRole;
  private readonly transport: ServerTransport;
  private readonly framer: StreamFramer;
  private lastActivity: number;
  private idleTimer: Timer | undefined;
  private greetingTimer: Timer | undefined;
  private started = false;
  /** Set once we decided to hang up: later bytes are ignored. */
  private stopped = false;
  /** Set once the stream has closed. */
  private done = false;

  constructor(ctx: StreamContext, stream: StreamSocket, role: ServerRole, transport: ServerTransport) {
    this.ctx = ctx;
    this.stream = stream;
    this.role = role;
    this.transport = transport;
    this.framer = new StreamFramer({ maxMessageBytes: ctx.maxMessageBytes });
    this.lastActivity = ctx.clock.now();
    stream.onClose((error) => this.onClosed(error));
    stream.onData((chunk) => this.guard(() => this.onData(chunk)));
    if (stream.closed) {
      this.onClosed();
      return;
    }
    this.idleTimer = ctx.clock.setTimer(ctx.idleTimeoutMs, () => this.guard(() => this.checkIdle()));
    if (ctx.core.plain) {
      this.greetingTimer = ctx.clock.setTimer(ctx.plainGreetingMs, () => this.guard(() => this.greet()));
    }
  }

  /** True once the connection has ended and the server was told. */
  get finished(): boolean {
    return this.done;
  }

  /** Ends the connection (server closing). */
  close(): Promise<void> {
    this.stopped = true;
    this.cancelTimers();
    return this.stream.close();
  }

  private onData(chunk: Uint8Array): void {
    if (this.stopped || chunk.length === 0) return;
    this.lastActivity = this.ctx.clock.now();
    if (!this.started) {
      this.started = true;
      this.greetingTimer?.cancel();
      this.greetingTimer = undefined;
      // Plain mode: a first byte that cannot start a STUN message (RFC 7983 §7: 0–3) means
      // a person or the seed's client; answer them and hang up.
      if (this.ctx.core.plain && chunk[0]! > 3) {
        this.greet();
        return;
      }
    }
    try {
      this.framer.push(chunk, (frame) => this.onFrame(frame));
    } catch (err) {
      this.end();
      if (!(err instanceof DecodeError)) throw err;
      // No way to resynchronise a stream (RFC 8656 §12.5): count and hang up.
      this.ctx.core.countDrop('not-stun', chunk.length);
      this.ctx.stats.garbageClosed++;
    }
  }

  private onFrame(frame: Uint8Array): void {
    if (this.stopped) return;
    const result = this.ctx.core.handle({ data: frame, role: this.role, from: this.stream.remote, transport: this.transport, now: this.ctx.clock.now() });
    if (result.reply === undefined) return;
    // RFC 8489 §6.3.1.2: over a stream the response goes back on the same connection.
    if (!this.stream.write(result.reply.data)) {
      // Node queues beyond its high-water mark (16 KiB): far more than a STUN client ever
      // leaves unread. Such a peer only makes us buffer; drop it.
      this.ctx.stats.slowClosed++;
      this.end();
    }
  }

  /** Plain reply, then close. */
  private greet(): void {
    if (this.stopped) return;
    this.started = true;
    const reply = this.ctx.core.plainStreamReply(this.stream.remote, this.role);
    if (reply !== undefined) this.stream.write(reply.data);
    this.ctx.stats.plainClosed++;
    this.end();
  }

  private checkIdle(): void {
    this.idleTimer = undefined;
    if (this.stopped) return;
    const idle = this.ctx.clock.now() - this.lastActivity;
    if (idle >= this.ctx.idleTimeoutMs) {
      this.ctx.stats.idleClosed++;
      this.end();
      return;
    }
    this.idleTimer = this.ctx.clock.setTimer(this.ctx.idleTimeoutMs - idle, () => this.guard(() => this.checkIdle()));
  }

  /** Closes the stream; onClosed follows from the stream's close handler. */
  private end(): void {
    this.stopped = true;
    this.cancelTimers();
    this.stream.close().catch((err: unknown) => this.ctx.fail(err));
  }

  private onClosed(error?: Error): void {
    if (this.done) return;
    this.done = true;
    this.stopped = true;
    this.cancelTimers();
    if (error !== undefined) this.ctx.stats.errored++;
    this.stream.onData(undefined);
    this.stream.onClose(undefined);
    this.ctx.ended(this);
  }

  private cancelTimers(): void {
    this.idleTimer?.cancel();
    this.idleTimer = undefined;
    this.greetingTimer?.cancel();
    this.greetingTimer = undefined;
  }

  /** Runs a callback from the socket or a timer: a throw is counted and ends the connection, never unhandled. */
  private guard(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.ctx.fail(err);
      if (!this.stopped) this.end();
    }
  }
}
