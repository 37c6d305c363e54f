// Errors with stable codes: callers branch on `code`, never on the message.

/** Every stable error code natkit throws. */
export type NatkitErrorCode =
  | 'ERR_INVALID_ARGUMENT'
  | 'ERR_DECODE'
  | 'ERR_STUN_DECODE'
  | 'ERR_STUN_INTEGRITY'
  | 'ERR_NATPMP_DECODE'
  | 'ERR_PCP_DECODE'
  | 'ERR_SSDP_DECODE'
  | 'ERR_HTTP_DECODE'
  | 'ERR_HTTP_STATUS'
  | 'ERR_XML'
  | 'ERR_UPNP_FAULT'
  | 'ERR_UPNP_NOT_FOUND'
  | 'ERR_PORTMAP_UNAVAILABLE'
  | 'ERR_PORTMAP_REFUSED'
  | 'ERR_TIMEOUT'
  | 'ERR_ABORTED'
  | 'ERR_CLOSED'
  | 'ERR_SOCKET'
  | 'ERR_CONFIG'
  | 'ERR_PROTOCOL'
  | 'ERR_TURN_DECODE'
  | 'ERR_RENDEZVOUS_DECODE'
  | 'ERR_RENDEZVOUS_REFUSED'
  | 'ERR_CHAT_DECODE';

/** Base class of every error natkit throws on purpose. */
export class NatkitError extends Error {
  readonly code: NatkitErrorCode;

  constructor(code: NatkitErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'NatkitError';
    this.code = code;
  }
}

/** Byte-level decode failure: what was expected, at which offset. */
export class DecodeError extends NatkitError {
  readonly offset: number;

  constructor(message: string, offset: number, options?: { cause?: unknown; code?: NatkitErrorCode }) {
    super(options?.code ?? 'ERR_DECODE', message, options);
    this.name = 'DecodeError';
    this.offset = offset;
  }
}

/** True when `err` is a NatkitError, optionally with the given code. */
export function isNatkitError(err: unknown, code?: NatkitErrorCode): err is NatkitError {
  return err instanceof NatkitError && (code === undefined || err.code === code);
}

/** The error an aborted call rejects with; keeps the signal's reason as cause. */
export function abortError(signal: AbortSignal | undefined, what: string): NatkitError {
  return new NatkitError('ERR_ABORTED', `${what} aborted`, { cause: signal?.reason });
}

/** Throws abortError when the signal has already fired. */
export function throwIfAborted(signal: AbortSignal | undefined, what: string): void {
  if (signal?.aborted === true) throw abortError(signal, what);
}
