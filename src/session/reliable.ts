// Reliable, ordered messages over an unreliable datagram channel, sans-I/O: messages are
// cut into fragments with sequence numbers; the receiver returns cumulative and selective
// acknowledgements (the SACK idea of RFC 2018) with the window it can still buffer (flow
// control); the sender retransmits on a timeout computed as RFC 6298 says (SRTT, RTTVAR,
// Karn's rule, backoff) and, sooner, a fragment that three later ones overtook (the
// duplicate-threshold rule of RFC 5681 §3.2 / RFC 6675, here read from the SACK blocks).
// Fragments are delivered in sequence order, so a message is whole when its LAST arrives.
// CLOSE takes the sequence number after the last fragment, as TCP's FIN does (RFC 9293
// §3.4, §3.6): it is retransmitted like data, delivered only after everything before it,
// and its cumulative acknowledgement says the peer has had every message. Optionally
// (congestionControl 'reno') a congestion window: slow start, congestion avoidance, a
// halving on fast retransmit held through the recovery, one fragment after a timeout
// (RFC 5681 §3.1–3.2, RFC 6582's "recover", RFC 3465 L = 2).
import { NatkitError } from '../util/index.ts';

export const FRAME_DATA = 0x01;
export const FRAME_ACK = 0x02;
/** The sender's last frame: no payload, the next sequence number after its last fragment. */
export const FRAME_CLOSE = 0x03;
const FLAG_FIRST = 1;
const FLAG_LAST = 2;
/** kind (1) + flags (1) + seq (4); DATA and CLOSE. */
export const DATA_HEADER_BYTES = 6;
/** ACK byte 7, high bit: the sender has queued its CLOSE (more may come before it); low bits: the SACK block count. */
const ACK_CLOSING = 0x80;
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
  /** Fragments in flight at most, whatever the peer's window and the congestion window. @default 256 */
  readonly maxInFlight?: number;
  /**
   * 'reno': a congestion window in fragments, slow start and AIMD as RFC 5681 says (below
   * maxInFlight and the peer's window) — RFC 8085 §3.1 asks it of applications on UDP.
   * 'none': only those two bound what is in flight, for paths known to be uncongested (a
   * LAN, loopback) or tests of reliability under random loss, which loss-based control
   * reads as congestion (about 1.2/√p fragments per RTT, Mathis et al. 1997). @default 'reno'
   */
  readonly congestionControl?: 'reno' | 'none';
  /** With congestionControl 'reno': the congestion window at the start, fragments (RFC 6928's 10 segments). @default 10 */
  readonly initialWindow?: number;
  /** RTO before the first RTT sample, ms (RFC 6298 §2.1). @default 1000 */
  readonly initialRtoMs?: number;
  /** Lower bound of the RTO, ms. RFC 6298 §2.4 says 1 s; like most stacks we go lower on a path we measure. @default 200 */
  readonly minRtoMs?: number;
  /** Upper bound of the RTO, ms (RFC 6298 §2.5). @default 60000 */
  readonly maxRtoMs?: number;
  /**
   * Longest an in-order fragment waits for a second one before it is acknowledged alone,
   * ms (RFC 5681 §4.2 delayed ACK; QUIC's max_ack_delay is 25 ms). Every second fragment,
   * and anything out of order, duplicated or closing, is acknowledged at once. 0: every
   * fragment at once. @default 10
   */
  readonly ackDelayMs?: number;
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
  /** Fragments never acknowledged, dropped because the peer closed first. */
  discardedFragments: number;
  /** Smoothed RTT (RFC 6298), ms; undefined before a sample. */
  srttMs: number | undefined;
  rtoMs: number;
  /** Congestion window (RFC 5681 cwnd), fragments; fractional in congestion avoidance; maxInFlight without congestion control. */
  cwnd: number;
  /** Slow-start threshold, fragments; Infinity until the first loss. */
  ssthresh: number;
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
  /** One past the highest sequence number sent (TCP's SND.NXT; nextSeq also counts the queue). */
  private sndNxt = 0;
  private readonly inFlight = new Map<number, InFlight>();
  private peerWindow: number;
  private srtt: number | undefined;
  private rttvar = 0;
  private rto: number;
  /** No further backoff before this time (one backoff per RTO). */
  private backoffUntil = -Infinity;
  private readonly isCongestionControlled: boolean;
  private cwnd: number;
  private ssthresh = Infinity;
  /** After a loss, no further reduction until every fragment below this one is acknowledged (RFC 6582's "recover"). */
  private recoverAt: number | undefined;
  /** Fast recovery (RFC 5681 §3.2, RFC 6675): cwnd holds at ssthresh until recoverAt is acknowledged. */
  private isFastRecovery = false;
  /** Our CLOSE's sequence number once close() queued it. */
  private closeSeq: number | undefined;
  // Receiver.
  private rcvNext = 0;
  private readonly buffered = new Map<number, { kind: number; flags: number; payload: Uint8Array }>();
  private partial: Uint8Array[] = [];
  private partialBytes = 0;
  private ackPending = false;
  private readonly ackDelayMs: number;
  /** In-order fragments not yet acknowledged, and when the first of them must be. */
  private unackedFragments = 0;
  private ackDueAt: number | undefined;
  /** The peer's CLOSE was delivered (everything before it was). */
  private peerClosedValue = false;
  /** The peer has queued its CLOSE: its CLOSE came, or an ACK with ACK_CLOSING. */
  private peerClosingValue = false;
  private readonly delivered: Uint8Array[] = [];
  private readonly out: Uint8Array[] = [];

  constructor(options: ReliableOptions = {}) {
    this.maxFrameBytes = options.maxFrameBytes ?? 1168;
    this.ackDelayMs = options.ackDelayMs ?? 10;
    this.maxMessageBytes = options.maxMessageBytes ?? 1_048_576;
    this.receiveWindow = options.receiveWindow ?? 512;
    this.maxInFlight = options.maxInFlight ?? 256;
    this.minRtoMs = options.minRtoMs ?? 200;
    this.maxRtoMs = options.maxRtoMs ?? 60_000;
    this.rto = options.initialRtoMs ?? 1000;
    this.peerWindow = this.receiveWindow;
    this.isCongestionControlled = (options.congestionControl ?? 'reno') === 'reno';
    this.cwnd = this.isCongestionControlled ? Math.max(1, options.initialWindow ?? 10) : this.maxInFlight;
    if (this.maxFrameBytes <= DATA_HEADER_BYTES + 8 * 2 + 8) throw new NatkitError('ERR_INVALID_ARGUMENT', `maxFrameBytes ${this.maxFrameBytes} leaves no room for data`);
    this.stats = {
      messagesSent: 0, messagesDelivered: 0, fragmentsSent: 0, retransmissions: 0, timeouts: 0, fastRetransmits: 0,
      duplicateFragments: 0, outOfWindow: 0, acksSent: 0, malformedFrames: 0, discardedFragments: 0, srttMs: undefined, rtoMs: this.rto,
      cwnd: this.cwnd, ssthresh: this.ssthresh,
    };
  }

  /** Fragments not yet acknowledged, queued or in flight. */
  get unacknowledged(): number {
    return this.queue.length - this.queueHead + this.inFlight.size;
  }

  /** Our CLOSE is acknowledged cumulatively: the peer has had every message before it. */
  get closeAcknowledged(): boolean {
    return this.closeSeq !== undefined && this.sndUna > this.closeSeq;
  }

  /** The peer's CLOSE arrived, after every message it sent before it (all delivered). */
  get peerClosed(): boolean {
    return this.peerClosedValue;
  }

  /**
   * The peer closes too (a simultaneous close): what it still sends before its CLOSE is
   * to be delivered, so the closing side waits for that CLOSE as well as its own ACK.
   */
  get peerClosing(): boolean {
    return this.peerClosingValue;
  }

  /** Queues a message; throws ERR_INVALID_ARGUMENT beyond maxMessageBytes, ERR_CLOSED after close(). */
  send(message: Uint8Array): void {
    if (this.closeSeq !== undefined) throw new NatkitError('ERR_CLOSED', 'reliable channel closed: no message after CLOSE');
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

  /** Queues CLOSE after everything queued (once); see closeAcknowledged. */
  close(): void {
    if (this.closeSeq !== undefined) return;
    const frame = new Uint8Array(DATA_HEADER_BYTES);
    frame[0] = FRAME_CLOSE;
    this.closeSeq = this.nextSeq++;
    new DataView(frame.buffer).setUint32(2, this.closeSeq);
    this.queue.push(frame);
  }

  /**
   * Gives up what is not yet acknowledged: queued and in-flight fragments are dropped and
   * counted (discardedFragments); no timer remains. Acknowledgements still go out.
   */
  abandon(): void {
    this.stats.discardedFragments += this.unacknowledged;
    this.queue.length = 0;
    this.queueHead = 0;
    this.inFlight.clear();
  }

  /** An ACK goes out at the next poll() even with nothing to acknowledge (a keepalive). */
  requestAck(): void {
    this.ackPending = true;
  }

  /** Takes a frame the peer sent (already authenticated by the transport). */
  receive(frame: Uint8Array, nowMs: number): void {
    try {
      if ((frame[0] === FRAME_DATA || frame[0] === FRAME_CLOSE) && frame.length >= DATA_HEADER_BYTES) this.onData(frame, nowMs);
      else if (frame[0] === FRAME_ACK && frame.length >= 8) this.onAck(frame, nowMs);
      else this.stats.malformedFrames++;
    } catch (err) {
      if (!(err instanceof RangeError)) throw err;
      this.stats.malformedFrames++;
    }
  }

  /** Runs the retransmission timer; call at nextTimerAt() (earlier is harmless). */
  onTimer(nowMs: number): void {
    if (this.ackDueAt !== undefined && nowMs >= this.ackDueAt) this.ackPending = true;
    let expired = false;
    for (const f of this.inFlight.values()) {
      if (f.deadlineMs > nowMs) continue;
      if (!expired && nowMs >= this.backoffUntil) {
        // RFC 6298 §5.5: back off once per expiry of the (one, §5.1) timer: fragments sent
        // just after the one that expired, expiring just after it, do not double it again.
        this.stats.timeouts++;
        this.rto = Math.min(this.maxRtoMs, this.rto * 2);
        this.stats.rtoMs = this.rto;
        this.backoffUntil = nowMs + this.rto;
        this.congestion(1);
      }
      expired = true;
      this.retransmit(f, nowMs);
    }
  }


  /** The frames to send now: acknowledgement first, then new fragments the windows allow. */
  poll(nowMs: number): Uint8Array[] {
    if (this.ackPending) {
      this.out.unshift(this.ackFrame());
      this.ackPending = false;
      this.unackedFragments = 0;
      this.ackDueAt = undefined;
      this.stats.acksSent++;
    }
    // Flow control: only sequence numbers below the peer's right edge (cumulative ack plus
    // its window). With nothing in flight one fragment goes anyway, so a reopened window
    // cannot be missed (TCP's persist probe, RFC 9293 §3.8.6.1).
    // Congestion: new fragments only while fewer than cwnd are in flight (retransmissions go when due).
    const limit = Math.min(this.maxInFlight, Math.max(1, Math.floor(this.cwnd)));
    while (this.queueHead < this.queue.length && this.inFlight.size < limit) {
      const frame = this.queue[this.queueHead]!;
      const seq = seqOf(frame);
      if (seq >= this.sndUna + this.peerWindow && this.inFlight.size > 0) break;
      this.queue[this.queueHead++] = EMPTY;
      this.inFlight.set(seq, { frame, sentAtMs: nowMs, deadlineMs: nowMs + this.rto, tries: 1 });
      this.sndNxt = seq + 1;
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
    let at = this.ackDueAt;
    for (const f of this.inFlight.values()) if (at === undefined || f.deadlineMs < at) at = f.deadlineMs;
    return at;
  }

  private onData(frame: Uint8Array, nowMs: number): void {
    const kind = frame[0]!;
    const flags = frame[1]!;
    const seq = seqOf(frame);
    // RFC 5681 §4.2: acknowledge every second in-order fragment, the others within
    // ackDelayMs; at once anything out of order or duplicated (the sender's loss signal,
    // §4.2 and RFC 2018), a CLOSE, and a fragment that fills a gap.
    if (this.ackDelayMs === 0 || kind === FRAME_CLOSE || seq !== this.rcvNext || this.buffered.size > 0 || ++this.unackedFragments >= 2) this.ackPending = true;
    else this.ackDueAt ??= nowMs + this.ackDelayMs;
    if (seq < this.rcvNext || this.buffered.has(seq)) {
      this.stats.duplicateFragments++;
      return;
    }
    if (this.peerClosedValue || (kind === FRAME_CLOSE && frame.length !== DATA_HEADER_BYTES)) {
      // Nothing follows a CLOSE; a CLOSE carries nothing.
      this.stats.malformedFrames++;
      return;
    }
    if (seq >= this.rcvNext + this.receiveWindow) {
      this.stats.outOfWindow++;
      return;
    }
    this.buffered.set(seq, { kind, flags, payload: frame.slice(DATA_HEADER_BYTES) });
    for (let next = this.buffered.get(this.rcvNext); next !== undefined; next = this.buffered.get(this.rcvNext)) {
      this.buffered.delete(this.rcvNext++);
      if (next.kind === FRAME_CLOSE) {
        // In order, so every message before it was delivered. A message it cut short is dropped.
        this.peerClosedValue = true;
        this.peerClosingValue = true;
        if (this.partialBytes > 0 || this.partial.length > 0) this.stats.malformedFrames++;
        this.partial = [];
        this.partialBytes = 0;
        this.buffered.clear();
        break;
      }
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

  /** ACK: kind, cumulative (next expected seq, u32), window (u16), ACK_CLOSING | block count (u8), blocks [start, end) (u32 pairs). */
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
    frame[7] = blocks.length | (this.closeSeq === undefined ? 0 : ACK_CLOSING);
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
    const count = frame[7]! & ~ACK_CLOSING;
    // Nothing can be acknowledged that was never sent: a cumulative beyond sndNxt is forged or broken.
    if (frame.length < 8 + count * 8 || cumulative > this.sndNxt) {
      this.stats.malformedFrames++;
      return;
    }
    if (frame[7]! & ACK_CLOSING) this.peerClosingValue = true;
    this.peerWindow = window;
    if (this.recoverAt !== undefined && cumulative >= this.recoverAt) {
      this.recoverAt = undefined;
      this.isFastRecovery = false;
    }
    // What it acknowledges is looked up among the fragments in flight (≤ maxInFlight), not
    // walked seq by seq across the ranges it names: an ACK costs the same whatever it claims.
    let highest = cumulative - 1;
    const blocks: [number, number][] = [];
    for (let i = 0; i < count; i++) {
      const start = view.getUint32(8 + i * 8);
      const end = Math.min(view.getUint32(12 + i * 8), this.sndNxt);
      if (end <= start) continue;
      blocks.push([start, end]);
      highest = Math.max(highest, end - 1);
    }
    let newly = 0;
    // In flight in ascending seq order (a Map keeps insertion order; a retransmission keeps its key).
    const limit = Math.max(cumulative, highest + 1);
    for (const seq of this.inFlight.keys()) {
      if (seq >= limit) break;
      if (seq < cumulative || blocks.some(([start, end]) => seq >= start && seq < end)) newly += this.acked(seq, nowMs);
    }
    this.sndUna = Math.max(this.sndUna, cumulative);
    if (newly > 0) this.grow(newly);
    // Lost by the duplicate threshold: DUP_THRESHOLD later fragments arrived. Once per RTT per fragment.
    // A quarter RTT more, for reordering (RACK's reorder window, RFC 8985 §6.2).
    const wait = (this.srtt ?? this.rto) * 1.25;
    for (const [seq, f] of this.inFlight) {
      if (seq + DUP_THRESHOLD > highest) break;
      if (nowMs - f.sentAtMs < wait) continue;
      this.stats.fastRetransmits++;
      this.congestion(undefined);
      this.retransmit(f, nowMs);
    }
  }

  /** 1 when `seq` was in flight (now acknowledged), else 0. */
  private acked(seq: number, nowMs: number): number {
    const f = this.inFlight.get(seq);
    if (f === undefined) return 0;
    this.inFlight.delete(seq);
    // Karn's rule (RFC 6298 §3): no sample from a retransmitted fragment.
    if (f.tries === 1) this.sample(nowMs - f.sentAtMs);
    return 1;
  }

  /**
   * An ACK acknowledged `n` fragments. RFC 5681 §3.1: slow start (cwnd < ssthresh) adds
   * up to n, at most 2 per ACK (appropriate byte counting, RFC 3465 L = 2); congestion
   * avoidance adds n / cwnd (about one per window). Not in fast recovery: the window holds
   * at ssthresh. Never beyond maxInFlight (the peer's window bounds it at sending).
   */
  private grow(n: number): void {
    if (!this.isCongestionControlled || this.isFastRecovery) return;
    this.cwnd = Math.min(this.maxInFlight, this.cwnd < this.ssthresh ? this.cwnd + Math.min(n, 2) : this.cwnd + n / this.cwnd);
    this.stats.cwnd = this.cwnd;
  }

  /**
   * A loss: ssthresh = max(FlightSize / 2, 2) (RFC 5681 eq. 4). A fast retransmit (`cwnd`
   * undefined, §3.2) sets cwnd to ssthresh and holds it there until what was in flight is
   * acknowledged; another loss of that flight does not reduce again (RFC 6582). A timeout
   * sets cwnd to `cwnd` (1, the loss window, §3.1), from which slow start grows again;
   * ssthresh is kept when it repeats within the same flight.
   */
  private congestion(cwnd: number | undefined): void {
    if (!this.isCongestionControlled) return;
    const recovering = this.recoverAt !== undefined;
    if (recovering && cwnd === undefined) return;
    // FlightSize: sent and not cumulatively acknowledged.
    if (!recovering) this.ssthresh = Math.max((this.sndNxt - this.sndUna) / 2, 2);
    this.cwnd = cwnd ?? this.ssthresh;
    this.isFastRecovery = cwnd === undefined;
    this.recoverAt = this.sndNxt;
    this.stats.cwnd = this.cwnd;
    this.stats.ssthresh = this.ssthresh;
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
