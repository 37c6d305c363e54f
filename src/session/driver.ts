// SecureSession: the session core (session.ts) run on an Env clock over a datagram path —
// a PeerConnection from natkit/punch (direct or relayed, switching by itself), or any
// object with send()/onMessage(). setPath() moves the session to another path mid-stream;
// the reliable layer resends what the old path lost.
import { NatkitError } from '../util/index.ts';
import type { Env, Timer } from '../net/index.ts';
import { keyFingerprint } from '../punch/index.ts';
import { SessionCore, type SessionOptions, type SessionPeer, type SessionState, type SessionStats } from './session.ts';

/** What a session sends over: one peer, datagrams both ways. PeerConnection is one. */
export interface DatagramPath {
  send(data: Uint8Array): void;
  onMessage(handler: ((data: Uint8Array) => void) | undefined): void;
}

export interface SecureSessionOptions extends Omit<SessionOptions, 'random'> {
  readonly env: Env;
  readonly path: DatagramPath;
}

/** An authenticated, encrypted, reliable and ordered message channel to one peer. */
export class SecureSession implements AsyncDisposable {
  private readonly env: Env;
  private readonly core: SessionCore;
  private path: DatagramPath;
  private timer: Timer | undefined;
  private timerAt: number | undefined;
  private messageHandler: ((message: Uint8Array) => void) | undefined;
  private closeHandler: ((error?: Error) => void) | undefined;
  private readonly waiters: { resolve: (peer: SessionPeer) => void; reject: (err: Error) => void }[] = [];
  private ended = false;

  /** Starts the handshake on `path` at once. */
  constructor(options: SecureSessionOptions) {
    this.env = options.env;
    this.path = options.path;
    this.core = new SessionCore({ ...options, random: (n) => options.env.random.bytes(n) });
    this.path.onMessage((data) => this.input(data));
    this.core.start(this.env.clock.now());
    this.pump();
  }

  get state(): SessionState {
    return this.core.state;
  }

  /** The authenticated peer once open; `fingerprint` is keyFingerprint() of its identity key. */
  get peer(): (SessionPeer & { readonly fingerprint: string }) | undefined {
    const p = this.core.peer;
    return p === undefined ? undefined : { ...p, fingerprint: keyFingerprint(p.identityKey) };
  }

  get stats(): SessionStats {
    return this.core.stats;
  }

  /** Messages sent and not yet acknowledged. */
  get unacknowledged(): number {
    return this.core.unacknowledged;
  }

  /** Resolves with the peer once the handshake completes; rejects with ERR_TIMEOUT, ERR_CLOSED or ERR_ABORTED. */
  opened(options: { signal?: AbortSignal } = {}): Promise<SessionPeer> {
    const peer = this.core.peer;
    if (peer !== undefined) return Promise.resolve(peer);
    if (this.ended) return Promise.reject(this.core.error ?? new NatkitError('ERR_CLOSED', 'session closed'));
    if (options.signal?.aborted === true) return Promise.reject(new NatkitError('ERR_ABORTED', 'aborted waiting for the session', { cause: options.signal.reason }));
    return new Promise((resolve, reject) => {
      const waiter = { resolve, reject };
      this.waiters.push(waiter);
      options.signal?.addEventListener('abort', () => {
        const i = this.waiters.indexOf(waiter);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(new NatkitError('ERR_ABORTED', 'aborted waiting for the session', { cause: options.signal?.reason }));
      }, { once: true });
    });
  }

  /** Queues a message (up to maxMessageBytes); delivered once and in order. Throws ERR_CLOSED after close or failure. */
  send(message: Uint8Array): void {
    this.core.send(message);
    this.pump();
  }

  /** Sets the receiver of the peer's messages. */
  onMessage(handler: ((message: Uint8Array) => void) | undefined): void {
    this.messageHandler = handler;
  }

  /** Called once when the session ends: after close(), or with the error it failed with. */
  onClose(handler: ((error?: Error) => void) | undefined): void {
    this.closeHandler = handler;
  }

  /** Moves the session to another path to the same peer; what was in flight on the old one is resent. */
  setPath(path: DatagramPath): void {
    this.path.onMessage(undefined);
    this.path = path;
    path.onMessage((data) => this.input(data));
    this.pump();
  }

  /** Stops the session and its timer; the path stays the caller's. Idempotent. */
  close(): Promise<void> {
    this.core.close();
    this.finish();
    return Promise.resolve();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  private input(data: Uint8Array): void {
    this.core.receive(data, this.env.clock.now());
    this.pump();
  }

  private pump(): void {
    if (this.ended) return;
    const now = this.env.clock.now();
    for (const d of this.core.poll(now)) this.path.send(d);
    const peer = this.core.peer;
    if (peer !== undefined && this.waiters.length > 0) for (const w of this.waiters.splice(0)) w.resolve(peer);
    for (const m of this.core.takeDelivered()) this.messageHandler?.(m);
    if (this.core.state === 'failed' || this.core.state === 'closed') {
      this.finish();
      return;
    }
    const at = this.core.nextTimerAt();
    // Keep an earlier timer: firing early is harmless, and rescheduling per packet is not free.
    if (at === undefined || (this.timerAt !== undefined && this.timerAt <= at)) return;
    this.timer?.cancel();
    this.timerAt = at;
    this.timer = this.env.clock.setTimer(Math.max(0, at - now), () => {
      this.timer = undefined;
      this.timerAt = undefined;
      this.core.onTimer(this.env.clock.now());
      this.pump();
    });
  }

  private finish(): void {
    if (this.ended) return;
    this.ended = true;
    this.timer?.cancel();
    this.timer = undefined;
    this.path.onMessage(undefined);
    const error = this.core.error;
    for (const w of this.waiters.splice(0)) w.reject(error ?? new NatkitError('ERR_CLOSED', 'session closed before it opened'));
    this.closeHandler?.(error);
  }
}
