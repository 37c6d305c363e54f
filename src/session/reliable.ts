// Reliable, ordered messages over an unreliable datagram channel, sans-I/O: messages are
// cut into fragments with sequence numbers; the receiver returns cumulative and selective
// acknowledgements (the SACK idea of RFC 2018) with the window it can still buffer (flow
// control); the sender retransmits on a timeout computed as RFC 6298 says (SRTT, RTTVAR,
// Karn's rule, backoff) and, sooner, a fragment that three later ones overtook (the
// duplicate-threshold rule of RFC 5681 §3.2 / RFC 6675, here read from the SACK blocks).
// Fragments are delivered in sequence order, so a message is whole when its LAST arrives.
import { NatkitError } from '../util/index.ts';

export const FRAME_DATA = 0x01;
export const FRAME_ACK = 0x02;
const FLAG_FIRST = 1;
const FLAG_LAST = 2;
/** kind (1) + flags (1) + seq (4). */
export const DATA_HEADER_BYTES = 6;
/** SACK blocks in one ACK at most. */
const MAX_SACK_BLOCKS = 16;
/** A fragment that this many later fragments overtook is taken as lost (RFC 5681 DupThresh). */
const DUP_THRESHOLD = 3;

export interface ReliableOptions {
  /** Largest plaintext frame the layer below carries, bytes. @default 1168 (a 1200-byte datagram less transport overhead) */
  readonly maxFrameBytes?: number;
  /** Largest message send() accepts and the receiver reassembles, bytes. @default 1048576 */
  readonly maxMessageBytes?: number;
  /** Fragments beyond the next expected one this side accepts (the window it advertises). @default 512 */
  readonly receiveWindow?: number;
  /** Fragments in flight at most, whatever the peer's window. @default 256 */
  readonly maxInFlight?: number;
  /** RTO before the first RTT sample, ms (RFC 6298 §2.1). @default 1000 */
  readonly initialRtoMs?: number;
  /** Lower bound of the RTO, ms. RFC 6298 §2.4 says 1 s; like most stacks we go lower on a path we measure. @default 200 */
  readonly minRtoMs?: number;
  /** Upper bound of the RTO, ms (RFC 6298 §2.5). @default 60000 */
  readonly maxRtoMs?: number;
}

/** Counters of the reliability layer; nothing resets them. */
export interface ReliableStats {
  messagesSent: number;
  messagesDelivered: number;
  fragmentsSent: number;
  retransmissions: number;
  timeouts: number;
  fastRetransmits: number;
  duplicateFragments: number;
  /** Fragments beyond the advertised window, dropped unbuffered. */
  outOfWindow: number;
  acksSent: number;
  malformedFrames: number;
  /** Smoothed RTT (RFC 6298), ms; undefined before a sample. */
  srttMs: number | undefined;
  rtoMs: number;
}

interface InFlight {
  readonly frame: Uint8Array;
  sentAtMs: number;
  deadlineMs: number;
  tries: number;
}

/** One direction pair of a reliable channel: what to send, what arrived, when to wake up. */
export class ReliableChannel {
  readonly stats: ReliableStats;
  private readonly maxFrameBytes: number;
  private readonly maxMessageBytes: number;
  private readonly receiveWindow: number;
  private readonly maxInFlight: number;
  private readonly minRtoMs: number;
  private readonly maxRtoMs: number;
  // Sender.
  private readonly queue: Uint8Array[] = [];
  private queueHead = 0;
  private nextSeq = 0;
  private sndUna = 0;
  private readonly inFlight = new Map<number, InFlight>();
  private peerWindow: number;
  private srtt: number | undefined;
  private rttvar = 0;
  private rto: number;
  // Receiver.
  private rcvNext = 0;
  private readonly buffered = new Map<number, { flags: number; payload: Uint8Array }>();
  private partial: Uint8Array[] = [];
  private partialBytes = 0;
  private ackPending = false;
  private readonly delivered: Uint8Array[] = [];
  private readonly out: Uint8Array[] = [];

  constructor(options: ReliableOptions = {}) {
    this.maxFrameBytes = options.maxFrameBytes ?? 1168;
    this.maxMessageBytes = options.maxMessageBytes ?? 1_048_576;
    this.receiveWindow = options.receiveWindow ?? 512;
    this.maxInFlight = options.maxInFlight ?? 256;
    this.minRtoMs = options.minRtoMs ?? 200;
    this.maxRtoMs = options.maxRtoMs ?? 60_000;
    this.rto = options.initialRtoMs ?? 1000;
    this.peerWindow = this.receiveWindow;
    if (this.maxFrameBytes <= DATA_HEADER_BYTES + 8 * 2 + 8) throw new NatkitError('ERR_INVALID_ARGUMENT', `maxFrameBytes ${this.maxFrameBytes} leaves no room for data`);
    this.stats = {
      messagesSent: 0, messagesDelivered: 0, fragmentsSent: 0, retransmissions: 0, timeouts: 0, fastRetransmits: 0,
      duplicateFragments: 0, outOfWindow: 0, acksSent: 0, malformedFrames: 0, srttMs: undefined, rtoMs: this.rto,
    };
  }

  /** Fragments not yet acknowledged, queued or in flight. */
  get unacknowledged(): number {
    return this.queue.length - this.queueHead + this.inFlight.size;
  }

  /** Queues a message; throws ERR_INVALID_ARGUMENT beyond maxMessageBytes. */
  send(message: Uint8Array): void {
    if (message.length > this.maxMessageBytes) {
      throw new NatkitError('ERR_INVALID_ARGUMENT', `message of ${message.length} bytes exceeds maxMessageBytes ${this.maxMessageBytes}`);
    }
    const room = this.maxFrameBytes - DATA_HEADER_BYTES;
    const count = Math.max(1, Math.ceil(message.length / room));
    for (let i = 0; i < count; i++) {
      const part = message.subarray(i * room, Math.min(message.length, (i + 1) * room));
      const frame = new Uint8Array(DATA_HEADER_BYTES + part.length);
      frame[0] = FRAME_DATA;
      frame[1] = (i === 0 ? FLAG_FIRST : 0) | (i === count - 1 ? FLAG_LAST : 0);
      new DataView(frame.buffer).setUint32(2, this.nextSeq++);
      frame.set(part, DATA_HEADER_BYTES);
      this.queue.push(frame);
    }
    this.stats.messagesSent++;
  }

  /** Takes a frame the peer sent (already authenticated by the transport). */
  receive(frame: Uint8Array, nowMs: number): void {
    try {
      if (frame[0] === FRAME_DATA && frame.length >= DATA_HEADER_BYTES) this.onData(frame);
      else if (frame[0] === FRAME_ACK && frame.length >= 8) this.onAck(frame, nowMs);
      else this.stats.malformedFrames++;
    } catch (err) {
      if (!(err instanceof RangeError)) throw err;
      this.stats.malformedFrames++;
    }
  }

  /** Runs the retransmission timer; call at nextTimerAt() (earlier is harmless). */
  onTimer(nowMs: number): void {
    let expired = false;
    for (const f of this.inFlight.values()) {
      if (f.deadlineMs > nowMs) continue;
      if (!expired) {
        // RFC 6298 §5.5: back off once per expiry.
        expired = true;
        this.stats.timeouts++;
        this.rto = Math.min(this.maxRtoMs, this.rto * 2);
        this.stats.rtoMs = this.rto;
      }
      this.retransmit(f, nowMs);
    }
  }

  /** The frames to send now: acknowledgement first, then new fragments the windows allow. */
  poll(nowMs: number): Uint8Array[] {
    if (this.ackPending) {
      this.out.unshift(this.ackFrame());
      this.ackPending = false;
      this.stats.acksSent++;
    }
    // Flow control: only sequence numbers below the peer's right edge (cumulative ack plus
    // its window). With nothing in flight one fragment goes anyway, so a reopened window
    // cannot be missed (TCP's persist probe, RFC 9293 §3.8.6.1).
    while (this.queueHead < this.queue.length && this.inFlight.size < this.maxInFlight) {
      const frame = this.queue[this.queueHead]!;
      const seq = seqOf(frame);
      if (seq >= this.sndUna + this.peerWindow && this.inFlight.size > 0) break;
      this.queue[this.queueHead++] = EMPTY;
      this.inFlight.set(seq, { frame, sentAtMs: nowMs, deadlineMs: nowMs + this.rto, tries: 1 });
      this.out.push(frame);
      this.stats.fragmentsSent++;
    }
    if (this.queueHead > 1024 && this.queueHead * 2 > this.queue.length) {
      this.queue.splice(0, this.queueHead);
      this.queueHead = 0;
    }
    return this.out.splice(0);
  }

  /** Messages that arrived whole and in order since the last call. */
  takeDelivered(): Uint8Array[] {
    return this.delivered.splice(0);
  }

  /** When onTimer() wants to run next; undefined when nothing waits on a timer. */
  nextTimerAt(): number | undefined {
    let at: number | undefined;
    for (const f of this.inFlight.values()) if (at === undefined || f.deadlineMs < at) at = f.deadlineMs;
    return at;
  }

  private onData(frame: Uint8Array): void {
    const flags = frame[1]!;
    const seq = seqOf(frame);
    this.ackPending = true;
    if (seq < this.rcvNext || this.buffered.has(seq)) {
      this.stats.duplicateFragments++;
      return;
    }
    if (seq >= this.rcvNext + this.receiveWindow) {
      this.stats.outOfWindow++;
      return;
    }
    this.buffered.set(seq, { flags, payload: frame.slice(DATA_HEADER_BYTES) });
    for (let next = this.buffered.get(this.rcvNext); next !== undefined; next = this.buffered.get(this.rcvNext)) {
      this.buffered.delete(this.rcvNext++);
      if (next.flags & FLAG_FIRST) {
        this.partial = [];
        this.partialBytes = 0;
      }
      this.partial.push(next.payload);
      this.partialBytes += next.payload.length;
      if (this.partialBytes > this.maxMessageBytes) {
        // The peer ignores our limit: drop the message, keep the stream going.
        this.stats.malformedFrames++;
        this.partial = [];
        this.partialBytes = 0;
        continue;
      }
      if (next.flags & FLAG_LAST) {
        this.delivered.push(this.partial.length === 1 ? this.partial[0]! : concat(this.partial, this.partialBytes));
        this.stats.messagesDelivered++;
        this.partial = [];
        this.partialBytes = 0;
      }
    }
  }

  /** ACK: kind, cumulative (next expected seq, u32), window (u16), block count (u8), blocks [start, end) (u32 pairs). */
  private ackFrame(): Uint8Array {
    const blocks: [number, number][] = [];
    if (this.buffered.size > 0) {
      const seqs = [...this.buffered.keys()].sort((a, b) => a - b);
      let start = seqs[0]!;
      let end = start + 1;
      for (let i = 1; i <= seqs.length && blocks.length < MAX_SACK_BLOCKS; i++) {
        const s = seqs[i];
        if (s === end) end++;
        else {
          blocks.push([start, end]);
          if (s !== undefined) {
            start = s;
            end = s + 1;
          }
        }
      }
    }
    const frame = new Uint8Array(8 + blocks.length * 8);
    const view = new DataView(frame.buffer);
    frame[0] = FRAME_ACK;
    view.setUint32(1, this.rcvNext);
    // The right edge is rcvNext + window: what onData() accepts. Delivered messages leave at
    // once, so the window stays whole; a reader with backpressure would shrink it here.
    view.setUint16(5, Math.min(0xffff, this.receiveWindow));
    frame[7] = blocks.length;
    blocks.forEach(([s, e], i) => {
      view.setUint32(8 + i * 8, s);
      view.setUint32(12 + i * 8, e);
    });
    return frame;
  }

  private onAck(frame: Uint8Array, nowMs: number): void {
    const view = new DataView(frame.buffer, frame.byteOffset, frame.length);
    const cumulative = view.getUint32(1);
    const window = view.getUint16(5);
    const count = frame[7]!;
    if (frame.length < 8 + count * 8 || cumulative > this.nextSeq) {
      this.stats.malformedFrames++;
      return;
    }
    this.peerWindow = window;
    let highest = cumulative - 1;
    for (let seq = this.sndUna; seq < cumulative; seq++) this.acked(seq, nowMs);
    this.sndUna = Math.max(this.sndUna, cumulative);
    for (let i = 0; i < count; i++) {
      const start = view.getUint32(8 + i * 8);
      const end = Math.min(view.getUint32(12 + i * 8), this.nextSeq);
      for (let seq = Math.max(start, cumulative); seq < end; seq++) this.acked(seq, nowMs);
      highest = Math.max(highest, end - 1);
    }
    // Lost by the duplicate threshold: DUP_THRESHOLD later fragments arrived. Once per RTT per fragment.
    // A quarter RTT more, for reordering (RACK's reorder window, RFC 8985 §6.2).
    const wait = (this.srtt ?? this.rto) * 1.25;
    for (const [seq, f] of this.inFlight) {
      if (seq + DUP_THRESHOLD > highest) break;
      if (nowMs - f.sentAtMs < wait) continue;
      this.stats.fastRetransmits++;
      this.retransmit(f, nowMs);
    }
  }

  private acked(seq: number, nowMs: number): void {
    const f = this.inFlight.get(seq);
    if (f === undefined) return;
    this.inFlight.delete(seq);
    // Karn's rule (RFC 6298 §3): no sample from a retransmitted fragment.
    if (f.tries === 1) this.sample(nowMs - f.sentAtMs);
  }

  /** RFC 6298 §2.2–2.3 with alpha 1/8, beta 1/4, K 4, G 1 ms. */
  private sample(rttMs: number): void {
    if (this.srtt === undefined) {
      this.srtt = rttMs;
      this.rttvar = rttMs / 2;
    } else {
      this.rttvar = 0.75 * this.rttvar + 0.25 * Math.abs(this.srtt - rttMs);
      this.srtt = 0.875 * this.srtt + 0.125 * rttMs;
    }
    this.rto = Math.min(this.maxRtoMs, Math.max(this.minRtoMs, this.srtt + Math.max(1, 4 * this.rttvar)));
    this.stats.srttMs = this.srtt;
    this.stats.rtoMs = this.rto;
  }

  private retransmit(f: InFlight, nowMs: number): void {
    f.tries++;
    f.sentAtMs = nowMs;
    f.deadlineMs = nowMs + this.rto;
    this.out.push(f.frame);
    this.stats.retransmissions++;
  }
}

const EMPTY = new Uint8Array(0);

function concat(parts: readonly Uint8Array[], total: number): Uint8Array {
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function seqOf(frame: Uint8Array): number {
  return new DataView(frame.buffer, frame.byteOffset, frame.length).getUint32(2);
}
