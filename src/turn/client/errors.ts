// How a TURN client reports a refusal: a NatkitError that also carries the error
// response's code (RFC 8656 §19, RFC 8489 §14.8) for callers that branch on it.
import { NatkitError, type NatkitErrorCode } from '../../util/index.ts';

/** A TURN operation that failed; `status` is the server's error code when it answered with one. */
export class TurnError extends NatkitError {
  /** 437, 441, 442, 486, 508…; undefined when no error response came (timeout, closed, malformed). */
  readonly status: number | undefined;

  constructor(code: NatkitErrorCode, message: string, options: { readonly cause?: unknown; readonly status?: number } = {}) {
    super(code, message, options.cause === undefined ? {} : { cause: options.cause });
    this.name = 'TurnError';
    this.status = options.status;
  }
}
