// Unexpected failures of a long-running driver (STYLE.md: "a driver loop counts the failure
// and emits it"): counted, handed to the owner's handler or logged, never thrown back into
// a socket or timer callback.
import { NatkitError } from '../util/index.ts';
import type { Logger } from './types.ts';

/** Counts and reports what a driver's handlers and timers throw. */
export class FailureCounter {
  /** Failures so far. */
  count = 0;
  private readonly what: string;
  private readonly logger: Logger;
  private readonly onError: ((error: Error) => void) | undefined;

  /** `what` names the driver in log lines; `onError`, when given, replaces the log line. */
  constructor(what: string, logger: Logger, onError?: (error: Error) => void) {
    this.what = what;
    this.logger = logger;
    this.onError = onError;
  }

  fail(err: unknown): void {
    this.count++;
    const error = err instanceof Error ? err : new NatkitError('ERR_PROTOCOL', `non-error thrown: ${String(err)}`, { cause: err });
    try {
      if (this.onError !== undefined) this.onError(error);
      else this.logger.warn(`${this.what}: unexpected failure`, { error: error.message });
    } catch {
      // A throwing error handler must not take the driver down; the failure is counted.
    }
  }

  /** Runs `fn`, counting what it throws. */
  guard(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.fail(err);
    }
  }
}
