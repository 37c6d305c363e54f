// The session core, sans-I/O: a Noise XX handshake (noise.ts) whose payloads bind each
// side's X25519 static key to its Ed25519 identity (identity-proof.ts), then the transport
// (transport.ts) carrying the reliable channel's frames (reliable.ts). Datagrams and the
// time go in; datagrams to send, whole messages and the next wake-up come out. The path
// is not the core's business: a datagram may leave by the relay and the next one direct.
//
// Datagram types (first byte): 1–3 the handshake messages, 4 transport.
//
// Lifecycle. close() queues the reliable layer's CLOSE after every message (TCP's FIN,
// RFC 9293 §3.6; it is sealed by the transport, so only the peer can send it, once); the
// session is closed when CLOSE is acknowledged, or at the close deadline. The side that
// receives CLOSE has delivered everything before it, acknowledges it, and is closed by
// the peer; it keeps answering a repeated CLOSE with its ACK for 3 RTO (QUIC's draining
// period, RFC 9000 §10.2; TCP's TIME-WAIT) in case that ACK was lost. Keepalives (an
// ACK frame, which elicits nothing, like WireGuard's empty keepalive packet) go
// out after keepaliveMs without sending; idleTimeoutMs without an authentic packet from
// the peer fails the session (RFC 9000 §10.1's idle timeout). When both close at once,
// each also waits for the other's CLOSE (its ACKs say it is closing), so nothing is cut.
import { NatkitError } from '../util/index.ts';
import type { RendezvousIdentity } from '../rendezvous/index.ts';
import { HandshakeState, x25519KeyPair, type HandshakeResult, type KeyPair } from './noise.ts';
import { checkIdentityProof, identityProof } from './identity-proof.ts';
import { PACKET_TRANSPORT, TRANSPORT_OVERHEAD, Transport, type RekeyOptions, type TransportStats } from './transport.ts';
import { ReliableChannel, type ReliableOptions, type ReliableStats } from './reliable.ts';

export const PACKET_HANDSHAKE_1 = 0x01;
export const PACKET_HANDSHAKE_2 = 0x02;
export const PACKET_HANDSHAKE_3 = 0x03;
/** Bound into the handshake hash: a peer speaking another version fails message 2. */
const PROLOGUE = new TextEncoder().encode('natkit-session/1');

export type SessionRole = 'initiator' | 'responder';
/** 'closing': close() was called; CLOSE waits behind queued messages or for its ACK. */
export type SessionState = 'handshaking' | 'open' | 'closing' | 'failed' | 'closed';
/** Who ended a closed session: this side (close(), abort()) or the peer (its CLOSE). */
export type SessionClosedBy = 'local' | 'peer';

export interface SessionOptions extends RekeyOptions, Omit<ReliableOptions, 'maxFrameBytes'> {
  /** Who writes the first handshake message (e.g. the punch's controlling side). */
  readonly role: SessionRole;
  /** This side's Ed25519 identity; its signature binds the static key. */
  readonly identity: RendezvousIdentity;
  /** This side's X25519 static key pair. @default a fresh one from `random` */
  readonly staticKeyPair?: KeyPair;
  /** The peer's Ed25519 key as the rendezvous PUNCH order named it; any other fails the handshake. Unset: accept any and expose it (pin it yourself). */
  readonly peerIdentityKey?: Uint8Array;
  /** Key material (ephemeral and default static keys): `env.random.bytes`. */
  readonly random: (n: number) => Uint8Array;
  /** Largest datagram this side sends, bytes. @default 1200 */
  readonly maxDatagramBytes?: number;
  /** First handshake retransmission, ms; doubles each time. @default 250 */
  readonly handshakeRetryMs?: number;
  /** Give up the handshake after this long, ms. @default 10000 */
  readonly handshakeTimeoutMs?: number;
  /** Send a keepalive when open and nothing was sent for this long, ms; 0 turns it off. Keep it well under the peer's idleTimeoutMs and the NAT's binding timeout. @default 10000 */
  readonly keepaliveMs?: number;
  /** Fail with ERR_TIMEOUT when no authentic packet came from the peer for this long once open, ms; 0 turns it off. @default 30000 */
  readonly idleTimeoutMs?: number;
}

/** Options of SessionCore.close(). */
export interface SessionCloseOptions {
  /** Stop waiting for the peer's acknowledgement of CLOSE after this long, ms; closed either way. @default 3000 */
  readonly timeoutMs?: number;
}

/** Counters of the session; nothing resets them. */
export interface SessionStats {
  handshakePacketsSent: number;
  /** Handshake messages dropped: failed authentication, identity check, or out of place. */
  handshakeRejected: number;
  /** Transport packets that came before the handshake completed (dropped; they are retransmitted). */
  early: number;
  /** Datagrams of no known type. */
  unknown: number;
  /** Keepalives sent (ACK frames after keepaliveMs without sending). */
  keepalivesSent: number;
  /** Closes that ended at their deadline without the peer's acknowledgement. */
  closeTimeouts: number;
  readonly transport: TransportStats | undefined;
  readonly reliable: ReliableStats;
}

/** The peer as the handshake proved it. */
export interface SessionPeer {
  /** Its Ed25519 identity key (raw, 32 bytes). */
  readonly identityKey: Uint8Array;
  /** Its X25519 static key (raw, 32 bytes). */
  readonly staticKey: Uint8Array;
}

/** One end of a secure session. */
export class SessionCore {
  readonly role: SessionRole;
  private stateValue: SessionState = 'handshaking';
  private errorValue: NatkitError | undefined;
  private readonly options: SessionOptions;
  private readonly staticKeyPair: KeyPair;
  private hs: HandshakeState | undefined;
  private transport: Transport | undefined;
  private readonly reliable: ReliableChannel;
  private peerValue: SessionPeer | undefined;
  private handshakeHashValue: Uint8Array | undefined;
  /** The handshake message we would repeat, and its first message when we are the responder. */
  private lastHandshake: Uint8Array | undefined;
  private firstSeen: Uint8Array | undefined;
  private retryAt: number | undefined;
  private retryMs: number;
  private deadline: number | undefined;
  /** Initiator: the peer has shown it completed too (an authentic transport packet came). */
  private confirmed = false;
  private readonly out: Uint8Array[] = [];
  /** Why the last authentic handshake message was refused, for the timeout error. */
  private rejection: string | undefined;
  private readonly counters = { handshakePacketsSent: 0, handshakeRejected: 0, early: 0, unknown: 0, keepalivesSent: 0, closeTimeouts: 0 };
  private readonly keepaliveMs: number;
  private readonly idleTimeoutMs: number;
  /** When a transport packet last went out, and an authentic one last came in. */
  private lastSentMs = 0;
  private lastHeardMs = 0;
  /** close() was called: CLOSE is queued behind the messages. */
  private closing = false;
  private closeDeadline: number | undefined;
  private closedByValue: SessionClosedBy | undefined;
  /** Closed, but still answering a repeated CLOSE with an ACK until then. */
  private lingerUntil: number | undefined;

  constructor(options: SessionOptions) {
    this.options = options;
    this.role = options.role;
    this.staticKeyPair = options.staticKeyPair ?? x25519KeyPair(options.random(32));
    const maxDatagram = options.maxDatagramBytes ?? 1200;
    this.reliable = new ReliableChannel({ ...options, maxFrameBytes: maxDatagram - TRANSPORT_OVERHEAD });
    this.retryMs = options.handshakeRetryMs ?? 250;
    this.keepaliveMs = options.keepaliveMs ?? 10_000;
    this.idleTimeoutMs = options.idleTimeoutMs ?? 30_000;
  }

  get state(): SessionState {
    if (this.closing && (this.stateValue === 'handshaking' || this.stateValue === 'open')) return 'closing';
    return this.stateValue;
  }

  /** Who closed the session: 'local' (close(), abort(), or a close that timed out) or 'peer' (its CLOSE came); undefined until closed, and after a failure. */
  get closedBy(): SessionClosedBy | undefined {
    return this.closedByValue;
  }

  /** Why the session failed (ERR_TIMEOUT, ERR_PROTOCOL). */
  get error(): NatkitError | undefined {
    return this.errorValue;
  }

  /** The authenticated peer, once the handshake is complete. */
  get peer(): SessionPeer | undefined {
    return this.peerValue;
  }

  /** The Noise handshake hash (channel binding, Noise §11.2). */
  get handshakeHash(): Uint8Array | undefined {
    return this.handshakeHashValue;
  }

  /** Our X25519 static public key. */
  get staticKey(): Uint8Array {
    return this.staticKeyPair.publicKey;
  }

  get stats(): SessionStats {
    return { ...this.counters, transport: this.transport?.stats, reliable: this.reliable.stats };
  }

  /** Messages queued or in flight, not yet acknowledged. */
  get unacknowledged(): number {
    return this.reliable.unacknowledged;
  }

  /** Starts the handshake (the initiator sends message 1; the responder waits). */
  start(nowMs: number): void {
    this.deadline = nowMs + (this.options.handshakeTimeoutMs ?? 10_000);
    if (this.role === 'initiator') this.sendFirst(nowMs);
  }

  /** Queues a message; it goes out once the handshake is complete. Throws ERR_CLOSED once closing, closed or failed. */
  send(message: Uint8Array): void {
    if (this.state !== 'handshaking' && this.state !== 'open') throw new NatkitError('ERR_CLOSED', `session is ${this.state}`);
    this.reliable.send(message);
  }

  /** Takes one datagram from the peer, whatever path carried it. */
  receive(datagram: Uint8Array, nowMs: number): void {
    if (this.lingerUntil !== undefined && nowMs >= this.lingerUntil) this.lingerUntil = undefined;
    if (this.lingerUntil !== undefined && datagram[0] === PACKET_TRANSPORT) return this.onTransport(datagram, nowMs);
    if (this.stateValue === 'failed' || this.stateValue === 'closed') return;
    switch (datagram[0]) {
      case PACKET_HANDSHAKE_1: return this.onFirst(datagram, nowMs);
      case PACKET_HANDSHAKE_2: return this.onSecond(datagram, nowMs);
      case PACKET_HANDSHAKE_3: return this.onThird(datagram, nowMs);
      case PACKET_TRANSPORT: return this.onTransport(datagram, nowMs);
      default: this.counters.unknown++;
    }
  }

  /** Runs timers due by `nowMs`. */
  onTimer(nowMs: number): void {
    if (this.lingerUntil !== undefined && nowMs >= this.lingerUntil) this.lingerUntil = undefined;
    if (this.stateValue === 'failed' || this.stateValue === 'closed') return;
    if (this.closeDeadline !== undefined && nowMs >= this.closeDeadline) {
      this.counters.closeTimeouts++;
      this.end('local', nowMs);
      return;
    }
    if (this.stateValue === 'open' && this.idleTimeoutMs > 0 && nowMs >= this.lastHeardMs + this.idleTimeoutMs) {
      this.fail(new NatkitError('ERR_TIMEOUT', `peer silent for ${nowMs - this.lastHeardMs} ms (idleTimeoutMs ${this.idleTimeoutMs})`));
      return;
    }
    if (this.deadline !== undefined && nowMs >= this.deadline && this.stateValue === 'handshaking') {
      const why = this.rejection === undefined ? '' : ` (refused ${this.rejection})`;
      this.fail(new NatkitError('ERR_TIMEOUT', `no secure session within ${this.options.handshakeTimeoutMs ?? 10_000} ms${why}`));
      return;
    }
    if (this.retryAt !== undefined && nowMs >= this.retryAt && this.lastHandshake !== undefined && this.isRetrying()) {
      this.emitHandshake(this.lastHandshake);
      this.retryMs *= 2;
      this.retryAt = nowMs + this.retryMs;
    }
    if (this.stateValue === 'open') {
      this.reliable.onTimer(nowMs);
      if (this.keepaliveMs > 0 && nowMs >= this.lastSentMs + this.keepaliveMs) {
        this.reliable.requestAck();
        this.counters.keepalivesSent++;
        this.lastSentMs = nowMs;
      }
    }
  }

  /** Datagrams to send now. */
  poll(nowMs: number): Uint8Array[] {
    if ((this.stateValue === 'open' || this.lingerUntil !== undefined) && this.transport !== undefined) {
      for (const frame of this.reliable.poll(nowMs)) {
        this.out.push(this.transport.seal(frame, nowMs));
        this.lastSentMs = nowMs;
      }
    }
    return this.out.splice(0);
  }

  /** Messages that arrived whole and in order. */
  takeDelivered(): Uint8Array[] {
    return this.reliable.takeDelivered();
  }

  /** When onTimer() wants to run next; undefined once closed (after the linger) or failed. */
  nextTimerAt(): number | undefined {
    if (this.stateValue === 'failed' || this.stateValue === 'closed') return this.lingerUntil;
    const times: number[] = [];
    if (this.stateValue === 'handshaking' && this.deadline !== undefined) times.push(this.deadline);
    if (this.retryAt !== undefined && this.isRetrying()) times.push(this.retryAt);
    if (this.closeDeadline !== undefined) times.push(this.closeDeadline);
    if (this.stateValue === 'open') {
      const r = this.reliable.nextTimerAt();
      if (r !== undefined) times.push(r);
      if (this.keepaliveMs > 0) times.push(this.lastSentMs + this.keepaliveMs);
      if (this.idleTimeoutMs > 0) times.push(this.lastHeardMs + this.idleTimeoutMs);
    }
    return times.length === 0 ? undefined : Math.min(...times);
  }

  /**
   * Closes gracefully: CLOSE goes after every message queued (after the handshake, if it
   * is still running), and the session is closed (closedBy 'local') when the peer
   * acknowledges it or at `timeoutMs`. No more send(). Idempotent; a no-op once ended.
   */
  close(nowMs: number, options: SessionCloseOptions = {}): void {
    if (this.closing || (this.stateValue !== 'handshaking' && this.stateValue !== 'open')) return;
    this.closing = true;
    this.closeDeadline = nowMs + (options.timeoutMs ?? 3000);
    this.reliable.close();
  }

  /** Stops at once: nothing more goes out or comes in, no CLOSE is sent, no linger; what was not acknowledged is dropped. */
  abort(): void {
    this.lingerUntil = undefined;
    if (this.stateValue === 'handshaking' || this.stateValue === 'open') {
      this.stateValue = 'closed';
      this.closedByValue = 'local';
      this.closeDeadline = undefined;
      this.reliable.abandon();
    }
  }

  /**
   * Whether the last handshake message still needs repeating: until open, and for the
   * initiator after that until the responder shows it has message 3 (an authentic transport
   * packet), but not past the handshake deadline (by then the responder has given up).
   */
  private isRetrying(): boolean {
    if (this.stateValue === 'handshaking') return true;
    if (this.stateValue !== 'open' || this.role === 'responder' || this.confirmed) return false;
    return this.retryAt !== undefined && this.deadline !== undefined && this.retryAt < this.deadline;
  }

  private newHandshake(): HandshakeState {
    return new HandshakeState({
      initiator: this.role === 'initiator', prologue: PROLOGUE, staticKeyPair: this.staticKeyPair,
      ephemeral: () => this.options.random(32),
    });
  }

  private sendFirst(nowMs: number): void {
    this.hs = this.newHandshake();
    this.emitHandshake(framed(PACKET_HANDSHAKE_1, this.hs.writeMessage()), nowMs);
  }

  private onFirst(datagram: Uint8Array, nowMs: number): void {
    if (this.role !== 'responder') return this.reject();
    if (this.firstSeen !== undefined && equal(this.firstSeen, datagram)) {
      // Our message 2 was lost (or is late): repeat it.
      if (this.lastHandshake !== undefined && this.stateValue === 'handshaking') this.emitHandshake(this.lastHandshake);
      return;
    }
    // A new first message: the initiator restarted. Once open, only a new session replaces this one.
    if (this.stateValue !== 'handshaking') return this.reject();
    const hs = this.newHandshake();
    if (hs.tryReadMessage(datagram.subarray(1)) === undefined) return this.reject();
    this.hs = hs;
    this.firstSeen = Uint8Array.from(datagram);
    const second = hs.writeMessage(identityProof(this.options.identity, this.staticKeyPair.publicKey));
    this.retryMs = this.options.handshakeRetryMs ?? 250;
    this.emitHandshake(framed(PACKET_HANDSHAKE_2, second), nowMs);
  }

  private onSecond(datagram: Uint8Array, nowMs: number): void {
    if (this.role !== 'initiator') return this.reject();
    if (this.stateValue === 'open') {
      // Our message 3 was lost: the responder repeats message 2.
      if (!this.confirmed && this.lastHandshake !== undefined) this.emitHandshake(this.lastHandshake);
      return;
    }
    const hs = this.hs;
    if (hs === undefined) return this.reject();
    let identityKey: Uint8Array | undefined;
    const payload = hs.tryReadMessage(datagram.subarray(1), (p, rs) => (identityKey = this.verifyPeer(p, rs)) !== undefined);
    if (payload === undefined || identityKey === undefined) return this.reject();
    const third = hs.writeMessage(identityProof(this.options.identity, this.staticKeyPair.publicKey));
    this.retryMs = this.options.handshakeRetryMs ?? 250;
    this.emitHandshake(framed(PACKET_HANDSHAKE_3, third), nowMs);
    this.open(hs.complete!, identityKey, nowMs);
  }

  private onThird(datagram: Uint8Array, nowMs: number): void {
    if (this.role !== 'responder' || this.stateValue !== 'handshaking' || this.hs === undefined) {
      // A repeated message 3 after we opened is harmless; anything else is out of place.
      if (this.stateValue !== 'open') this.reject();
      return;
    }
    const hs = this.hs;
    let identityKey: Uint8Array | undefined;
    const payload = hs.tryReadMessage(datagram.subarray(1), (p, rs) => (identityKey = this.verifyPeer(p, rs)) !== undefined);
    if (payload === undefined || identityKey === undefined) return this.reject();
    this.open(hs.complete!, identityKey, nowMs);
  }

  private onTransport(datagram: Uint8Array, nowMs: number): void {
    if (this.transport === undefined) {
      this.counters.early++;
      return;
    }
    const plaintext = this.transport.open(datagram);
    if (typeof plaintext === 'string') return;
    this.confirmed = true;
    this.lastHeardMs = nowMs;
    this.reliable.receive(plaintext, nowMs);
    if (this.stateValue !== 'open') return;
    // Ours acknowledged: closed, unless the peer is closing too and its CLOSE (behind what
    // it still sends) has not come. Theirs delivered while we are not closing: closed by
    // the peer (what we had not had acknowledged is dropped).
    const r = this.reliable;
    if (this.closing && r.closeAcknowledged && (r.peerClosed || !r.peerClosing)) this.end('local', nowMs);
    else if (!this.closing && r.peerClosed) this.end('peer', nowMs);
  }

  /** Closed; lingers 3 RTO to acknowledge a repeated CLOSE when the peer's CLOSE came. */
  private end(by: SessionClosedBy, nowMs: number): void {
    this.stateValue = 'closed';
    this.closedByValue = by;
    this.closeDeadline = undefined;
    this.reliable.abandon();
    if (this.reliable.peerClosed && this.transport !== undefined) this.lingerUntil = nowMs + 3 * this.reliable.stats.rtoMs;
  }

  /**
   * The peer's Ed25519 key when its proof holds and matches the expected one. A refused
   * message is dropped, not fatal (anyone can run a Noise handshake with keys of their
   * own); the reason names the timeout error if no right peer answers.
   */
  private verifyPeer(payload: Uint8Array, staticKey: Uint8Array | undefined): Uint8Array | undefined {
    const key = staticKey === undefined ? undefined : checkIdentityProof(payload, staticKey);
    if (key === undefined) {
      this.rejection = 'a handshake whose identity proof did not verify';
      return undefined;
    }
    const expected = this.options.peerIdentityKey;
    if (expected !== undefined && !equal(expected, key)) {
      this.rejection = `a handshake from identity key ${hex(key)}…, expected ${hex(expected)}…`;
      return undefined;
    }
    return key;
  }

  private open(result: HandshakeResult, identityKey: Uint8Array, nowMs: number): void {
    this.transport = new Transport(result, nowMs, this.options);
    this.peerValue = { identityKey, staticKey: result.remoteStatic };
    this.handshakeHashValue = result.handshakeHash;
    this.stateValue = 'open';
    this.hs = undefined;
    this.lastSentMs = nowMs;
    this.lastHeardMs = nowMs;
  }

  private emitHandshake(datagram: Uint8Array, nowMs?: number): void {
    this.lastHandshake = datagram;
    if (nowMs !== undefined) this.retryAt = nowMs + this.retryMs;
    this.out.push(datagram);
    this.counters.handshakePacketsSent++;
  }

  private reject(): void {
    this.counters.handshakeRejected++;
  }

  private fail(error: NatkitError): void {
    this.stateValue = 'failed';
    this.errorValue = error;
    this.closeDeadline = undefined;
  }
}

function framed(type: number, body: Uint8Array): Uint8Array {
  const out = new Uint8Array(1 + body.length);
  out[0] = type;
  out.set(body, 1);
  return out;
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

function hex(b: Uint8Array): string {
  return Buffer.from(b).toString('hex').slice(0, 16);
}
