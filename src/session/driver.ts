// SecureSession: the session core (session.ts) run on an Env clock over a datagram path —
// a PeerConnection from natkit/punch (direct or relayed, switching by itself), or any
// object with send()/onMessage(). setPath() moves the session to another path mid-stream;
// the reliable layer resends what the old path lost. close() is graceful (CLOSE after
// every queued message, resolved on its acknowledgement or at a deadline); abort() is not.
import { NatkitError } from '../util/index.ts';
import type { Env, Timer } from '../net/index.ts';
import { keyFingerprint } from '../punch/index.ts';
import {
  SessionCore, type SessionCloseOptions, type SessionClosedBy, type SessionOptions, type SessionPeer, type SessionState, type SessionStats,
} from './session.ts';

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
  private readonly closeWaiters: (() => void)[] = [];
  /** onClose has fired (closed or failed). */
  private ended = false;
  /** No timer and no path handler any more (after the core's linger, or abort()). */
  private stopped = false;
  private readonly stoppedSignal = new AbortController();

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

  /** Who closed the session: 'local' (close(), abort()) or 'peer' (its CLOSE came); undefined while open and after a failure. */
  get closedBy(): SessionClosedBy | undefined {
    return this.core.closedBy;
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

  /** Queues a message (up to maxMessageBytes); delivered once and in order. Throws ERR_CLOSED once closing, closed or failed. */
  send(message: Uint8Array): void {
    this.core.send(message);
    this.pump();
  }

  /** Sets the receiver of the peer's messages. */
  onMessage(handler: ((message: Uint8Array) => void) | undefined): void {
    this.messageHandler = handler;
  }

  /** Called once when the session ends: closed (by close(), abort() or the peer's CLOSE; no error), or failed with its error (ERR_TIMEOUT: handshake, or the peer silent for idleTimeoutMs). */
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

  /**
   * Closes gracefully: every message already queued is sent and acknowledged, then CLOSE;
   * resolves when the peer acknowledged it or after `timeoutMs` (default 3000), closed
   * either way (closedBy 'local'), and never rejects (a failure meanwhile goes to onClose).
   * On a session already ended it stops at once what is left (the linger answering a
   * repeated CLOSE). The path stays the caller's. Idempotent.
   */
  close(options: SessionCloseOptions = {}): Promise<void> {
    if (this.ended) {
      this.stop();
      return Promise.resolve();
    }
    const done = new Promise<void>((resolve) => this.closeWaiters.push(resolve));
    this.core.close(this.env.clock.now(), options);
    this.pump();
    return done;
  }

  /** Stops at once, sending nothing more (no CLOSE: the peer notices by its idle timeout); what was queued is dropped. Idempotent. */
  abort(): void {
    this.core.abort();
    this.end();
    this.stop();
  }

  /**
   * Resolves once the session holds no timer and listens to its path no more: after
   * close() or abort(), a failure, or — when the peer closed — at the end of the linger in
   * which it still acknowledges a repeated CLOSE. Then the path may go.
   */
  whenStopped(): Promise<void> {
    const { signal } = this.stoppedSignal;
    return signal.aborted ? Promise.resolve() : new Promise((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  private input(data: Uint8Array): void {
    this.core.receive(data, this.env.clock.now());
    this.pump();
  }

  private pump(): void {
    if (this.stopped) return;
    const now = this.env.clock.now();
    for (const d of this.core.poll(now)) this.path.send(d);
    const peer = this.core.peer;
    if (peer !== undefined && this.waiters.length > 0) for (const w of this.waiters.splice(0)) w.resolve(peer);
    // Every message before a CLOSE is handed over before onClose.
    for (const m of this.core.takeDelivered()) this.messageHandler?.(m);
    if (this.core.state === 'failed' || this.core.state === 'closed') this.end();
    if (this.stopped) return;
    const at = this.core.nextTimerAt();
    if (at === undefined && this.ended) {
      this.stop();
      return;
    }
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

  /** The session is over for the caller: waiters settle, onClose fires (once). */
  private end(): void {
    if (this.ended) return;
    this.ended = true;
    const error = this.core.error;
    for (const w of this.waiters.splice(0)) w.reject(error ?? new NatkitError('ERR_CLOSED', 'session closed before it opened'));
    for (const resolve of this.closeWaiters.splice(0)) resolve();
    this.closeHandler?.(error);
  }

  /** No more timer or input. */
  private stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.timer?.cancel();
    this.timer = undefined;
    this.timerAt = undefined;
    this.path.onMessage(undefined);
    this.stoppedSignal.abort();
  }
}
