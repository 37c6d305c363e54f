// One TCP or TLS connection of a TURN client (RFC 8656 §3.1, §12.5) on net's FramedSession:
// the driver hands each STUN message or ChannelData frame to the core and writes replies,
// Data indications and ChannelData back on the same connection. A connection without an
// allocation closes after idleTimeoutMs of silence; one with an allocation lives as long
// as the allocation, which its client refreshes. Relayed data can outrun a slow reader
// for a moment, so a client is dropped only after maxBackloggedWrites unread writes.
import { FramedSession, type Clock, type FramedSessionStats, type MuxRange, type StreamSocket } from '../../net/index.ts';
import type { FiveTuple } from './allocation.ts';

/** Limits of the stream side of a TURN server. */
export interface TurnStreamOptions {
  /** Most concurrent TCP and TLS connections together; more are closed at once. @default 1024 */
  readonly maxConnections?: number;
  /** A connection without an allocation that sends nothing for this long is closed. @default 30000 */
  readonly idleTimeoutMs?: number;
  /** Largest message a connection may send, padding included. @default 65555 */
  readonly maxMessageBytes?: number;
  /** Consecutive writes that found the send buffer over its high-water mark before the client is dropped. @default 1024 */
  readonly maxBackloggedWrites?: number;
}

/** Counters of the stream side. */
export interface TurnStreamStats extends FramedSessionStats {
  accepted: number;
  active: number;
  /** Closed at once because maxConnections were open. */
  refused: number;
}

/** Fresh zeroed stream counters. */
export function createTurnStreamStats(): TurnStreamStats {
  return { accepted: 0, active: 0, refused: 0, idleClosed: 0, garbageClosed: 0, slowClosed: 0, errored: 0 };
}

/** What a connection needs from the driver. */
export interface TurnStreamContext extends Required<TurnStreamOptions> {
  readonly clock: Clock;
  readonly stats: TurnStreamStats;
  /** First bytes framed as ChannelData: the channel numbers in force (channelDataRange()). */
  readonly channelData: MuxRange;
  /** One framed message from the client (ChannelData with its padding). */
  readonly onFrame: (session: TurnStreamSession, frame: Uint8Array) => void;
  /** True while an allocation lives on the 5-tuple (the idle timeout then waits). */
  readonly hasAllocation: (tuple: FiveTuple) => boolean;
  readonly fail: (err: unknown) => void;
  /** Called once when the connection has ended. */
  readonly ended: (session: TurnStreamSession) => void;
}

/** Serves one accepted connection until it ends; framing, idle and backlog caps are FramedSession's. */
export class TurnStreamSession {
  readonly tuple: FiveTuple;
  private readonly session: FramedSession;

  constructor(ctx: TurnStreamContext, stream: StreamSocket, transport: 'tcp' | 'tls') {
    const tuple: FiveTuple = { client: stream.remote, server: stream.local, transport };
    this.tuple = tuple;
    this.session = new FramedSession(stream, {
      ...ctx,
      onFrame: (frame) => ctx.onFrame(this, padded(frame)),
      keepIdle: () => ctx.hasAllocation(tuple),
      ended: () => ctx.ended(this),
    });
  }

  get finished(): boolean {
    return this.session.finished;
  }

  /** Writes one message to the client (RFC 8656 §12.5: ChannelData goes out padded). */
  write(data: Uint8Array): void {
    this.session.write(data);
  }

  /** Ends the connection (server closing). */
  close(): Promise<void> {
    return this.session.close();
  }
}

/**
 * The core takes ChannelData from a stream as its whole padded frame (RFC 8656 §12.5);
 * StreamFramer delivers the message without the padding, so it goes back on (zeros).
 */
function padded(frame: Uint8Array): Uint8Array {
  if (frame[0]! < 0x40 || (frame.length & 3) === 0) return frame;
  const out = new Uint8Array((frame.length + 3) & ~3);
  out.set(frame);
  return out;
}
