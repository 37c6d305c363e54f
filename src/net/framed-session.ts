// A server's end of one TCP or TLS connection carrying STUN and TURN ChannelData, shared by
// the STUN and TURN server drivers: StreamFramer cuts the messages (bytes that cannot be
// framed end the connection: RFC 8656 §12.5 gives a stream no way to resynchronise), a
// Clock timer closes a silent connection, a peer that leaves too many writes unread is
// dropped, and a throw in any callback ends the connection instead of escaping.
import { DecodeError } from '../util/index.ts';
import { StreamFramer } from './framing.ts';
import type { MuxRange } from './mux.ts';
import type { Clock, StreamSocket, Timer } from './types.ts';

/** How connections ended, counted by their server. */
export interface FramedSessionStats {
  /** Closed after the idle timeout. */
  idleClosed: number;
  /** Closed because their bytes could not be framed. */
  garbageClosed: number;
  /** Closed because they left writes unread. */
  slowClosed: number;
  /** Ended with a socket error. */
  errored: number;
}

/** What a session needs from its server. */
export interface FramedSessionOptions {
  readonly clock: Clock;
  readonly stats: FramedSessionStats;
  /** A connection that sends nothing for this long is closed (unless keepIdle says otherwise). */
  readonly idleTimeoutMs: number;
  /** Largest message accepted, padding included. */
  readonly maxMessageBytes: number;
  /** First bytes framed as ChannelData (StreamFramerOptions.channelData). @default MUX_TURN_CHANNEL */
  readonly channelData?: MuxRange;
  /** Consecutive writes that find the send buffer over its high-water mark before the peer is dropped. */
  readonly maxBackloggedWrites: number;
  /** One framed message (a view that stays valid). */
  readonly onFrame: (frame: Uint8Array) => void;
  /** Sees the first bytes before framing; false when it ended the session itself. @default none */
  readonly onFirstChunk?: (chunk: Uint8Array) => boolean;
  /** Asked once the idle timeout has passed: true keeps the connection another timeout. @default none */
  readonly keepIdle?: () => boolean;
  /** Bytes that could not be framed (the connection is closing). @default none */
  readonly onGarbage?: (bytes: number) => void;
  /** Counts and reports an unexpected failure. */
  readonly fail: (err: unknown) => void;
  /** Called once when the connection has ended. */
  readonly ended: () => void;
}

/** Serves one accepted connection until it ends. */
export class FramedSession {
  readonly stream: StreamSocket;
  private readonly o: FramedSessionOptions;
  private readonly framer: StreamFramer;
  private lastActivity: number;
  private idleTimer: Timer | undefined;
  private backlogged = 0;
  private started = false;
  /** Set once we decided to hang up: later bytes are ignored. */
  private halted = false;
  private done = false;

  constructor(stream: StreamSocket, options: FramedSessionOptions) {
    this.stream = stream;
    this.o = options;
    this.framer = new StreamFramer({ maxMessageBytes: options.maxMessageBytes, ...(options.channelData !== undefined && { channelData: options.channelData }) });
    this.lastActivity = options.clock.now();
    stream.onClose((error) => this.onClosed(error));
    stream.onData((chunk) => this.guard(() => this.onData(chunk)));
    if (stream.closed) this.onClosed();
    else this.armIdle(options.idleTimeoutMs);
  }

  /** True once the connection has ended and the server was told. */
  get finished(): boolean {
    return this.done;
  }

  /** True once the session hangs up or has ended. */
  get stopped(): boolean {
    return this.halted;
  }

  /** Writes one message; a peer over maxBackloggedWrites unread writes is dropped. */
  write(data: Uint8Array): void {
    if (this.halted) return;
    if (this.stream.write(data)) {
      this.backlogged = 0;
      return;
    }
    if (++this.backlogged < this.o.maxBackloggedWrites) return;
    this.o.stats.slowClosed++;
    this.end();
  }

  /** Hangs up; `ended` follows from the stream's close. */
  end(): void {
    this.halted = true;
    this.idleTimer?.cancel();
    this.stream.close().catch((err: unknown) => this.o.fail(err));
  }

  /** Ends the connection (server closing). */
  close(): Promise<void> {
    this.halted = true;
    this.idleTimer?.cancel();
    return this.stream.close();
  }

  /** Runs a socket or timer callback: a throw is counted and ends the connection. */
  guard(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.o.fail(err);
      if (!this.halted) this.end();
    }
  }

  private onData(chunk: Uint8Array): void {
    if (this.halted || chunk.length === 0) return;
    this.lastActivity = this.o.clock.now();
    if (!this.started) {
      this.started = true;
      if (this.o.onFirstChunk !== undefined && !this.o.onFirstChunk(chunk)) return;
    }
    try {
      this.framer.push(chunk, (frame) => {
        if (!this.halted) this.o.onFrame(frame);
      });
    } catch (err) {
      this.end();
      if (!(err instanceof DecodeError)) throw err;
      this.o.onGarbage?.(chunk.length);
      this.o.stats.garbageClosed++;
    }
  }

  private armIdle(delayMs: number): void {
    this.idleTimer = this.o.clock.setTimer(delayMs, () => this.guard(() => this.checkIdle()));
  }

  private checkIdle(): void {
    this.idleTimer = undefined;
    if (this.halted) return;
    const idle = this.o.clock.now() - this.lastActivity;
    if (idle < this.o.idleTimeoutMs) this.armIdle(this.o.idleTimeoutMs - idle);
    else if (this.o.keepIdle?.() === true) this.armIdle(this.o.idleTimeoutMs);
    else {
      this.o.stats.idleClosed++;
      this.end();
    }
  }

  private onClosed(error?: Error): void {
    if (this.done) return;
    this.done = true;
    this.halted = true;
    this.idleTimer?.cancel();
    if (error !== undefined) this.o.stats.errored++;
    this.stream.onData(undefined);
    this.stream.onClose(undefined);
    this.o.ended();
  }
}
