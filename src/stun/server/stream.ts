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
import { FramedSession, type Clock, type StreamSocket, type Timer } from '../../net/index.ts';
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

/** Serves one accepted connection until it ends: framing, idle and backlog caps are FramedSession's. */
export class StreamSession {
  private readonly ctx: StreamContext;
  private readonly role: ServerRole;
  private readonly transport: ServerTransport;
  private readonly session: FramedSession;
  private greetingTimer: Timer | undefined;

  constructor(ctx: StreamContext, stream: StreamSocket, role: ServerRole, transport: ServerTransport) {
    this.ctx = ctx;
    this.role = role;
    this.transport = transport;
    this.session = new FramedSession(stream, {
      clock: ctx.clock, stats: ctx.stats, idleTimeoutMs: ctx.idleTimeoutMs, maxMessageBytes: ctx.maxMessageBytes,
      // Node queues beyond its high-water mark (16 KiB): far more than a STUN client ever
      // leaves unread. Such a peer only makes us buffer; drop it at once.
      maxBackloggedWrites: 1,
      onFrame: (frame) => this.onFrame(frame),
      onFirstChunk: (chunk) => this.onFirstChunk(chunk),
      // No way to resynchronise a stream (RFC 8656 §12.5): count and hang up.
      onGarbage: (bytes) => ctx.core.countDrop('not-stun', bytes),
      fail: ctx.fail,
      ended: () => {
        this.cancelGreeting();
        ctx.ended(this);
      },
    });
    if (ctx.core.plain && !this.session.stopped) {
      this.greetingTimer = ctx.clock.setTimer(ctx.plainGreetingMs, () => this.session.guard(() => this.greet()));
    }
  }

  /** True once the connection has ended and the server was told. */
  get finished(): boolean {
    return this.session.finished;
  }

  /** Ends the connection (server closing). */
  close(): Promise<void> {
    this.cancelGreeting();
    return this.session.close();
  }

  /** Plain mode: a first byte that cannot start a STUN message (RFC 7983 §7: 0–3) means a person or the seed's client; answer them and hang up. */
  private onFirstChunk(chunk: Uint8Array): boolean {
    this.cancelGreeting();
    if (!this.ctx.core.plain || chunk[0]! <= 3) return true;
    this.greet();
    return false;
  }

  private onFrame(frame: Uint8Array): void {
    const stream = this.session.stream;
    const result = this.ctx.core.handle({ data: frame, role: this.role, from: stream.remote, transport: this.transport, now: this.ctx.clock.now() });
    // RFC 8489 §6.3.1.2: over a stream the response goes back on the same connection.
    if (result.reply !== undefined) this.session.write(result.reply.data);
  }

  /** Plain reply, then close. */
  private greet(): void {
    this.greetingTimer = undefined;
    if (this.session.stopped) return;
    const stream = this.session.stream;
    const reply = this.ctx.core.plainStreamReply(stream.remote, this.role);
    if (reply !== undefined) stream.write(reply.data);
    this.ctx.stats.plainClosed++;
    this.session.end();
  }

  private cancelGreeting(): void {
    this.greetingTimer?.cancel();
    this.greetingTimer = undefined;
  }
}
