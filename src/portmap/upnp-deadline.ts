// One deadline for a whole UPnP operation (connect, send, read; or a run of SOAP calls):
// a timer on env.clock and the caller's signal folded into one AbortSignal that every
// step honours, and the error that explains why it fired.
import type { Clock, Timer } from '../net/index.ts';
import { NatkitError, abortError, throwIfAborted } from '../util/index.ts';

/** Fires after `timeoutMs` on `clock`, or when `parent` aborts; dispose to cancel. */
export class Deadline implements Disposable {
  readonly signal: AbortSignal;
  private readonly controller = new AbortController();
  private readonly clock: Clock;
  private readonly at: number;
  private readonly what: string;
  private readonly parent: AbortSignal | undefined;
  private readonly timer: Timer;
  private readonly onParentAbort = (): void => this.fire(abortError(this.parent, this.what));
  private reason: NatkitError | undefined;

  /** Throws ERR_ABORTED at once when `parent` has already aborted. */
  constructor(clock: Clock, timeoutMs: number, parent: AbortSignal | undefined, what: string) {
    throwIfAborted(parent, what);
    if (!(timeoutMs >= 0) || !Number.isFinite(timeoutMs)) throw new NatkitError('ERR_INVALID_ARGUMENT', `${what}: timeoutMs must be a finite number ≥ 0, got ${timeoutMs}`);
    this.clock = clock;
    this.what = what;
    this.parent = parent;
    this.signal = this.controller.signal;
    this.at = clock.now() + timeoutMs;
    this.timer = clock.setTimer(timeoutMs, () => this.fire(new NatkitError('ERR_TIMEOUT', `${what}: no answer within ${timeoutMs} ms`)));
    parent?.addEventListener('abort', this.onParentAbort, { once: true });
  }

  /** Milliseconds left, never below 0. */
  get remainingMs(): number {
    return Math.max(0, this.at - this.clock.now());
  }

  /** Why the deadline fired (ERR_TIMEOUT or ERR_ABORTED), or undefined while it has not. */
  get error(): NatkitError | undefined {
    return this.reason;
  }

  /** Throws the deadline's error when it has fired. */
  check(): void {
    if (this.reason !== undefined) throw this.reason;
  }

  /**
   * The error to reject with after `err` ended a step: the deadline's own when it fired
   * (whatever the step reported about being aborted), else `err` itself.
   */
  explain(err: unknown): unknown {
    return this.reason ?? err;
  }

  [Symbol.dispose](): void {
    this.timer.cancel();
    this.parent?.removeEventListener('abort', this.onParentAbort);
  }

  private fire(reason: NatkitError): void {
    if (this.reason !== undefined) return;
    this.reason = reason;
    this.timer.cancel();
    this.controller.abort(reason);
  }
}
