// A sans-I/O STUN client transaction: RFC 8489 §6.2.1 (UDP retransmission: RTO, Rc,
// Rm), §6.2.2–§6.2.3 (TCP/TLS: one transmission, timeout Ti), §6.3.3–§6.3.4 (which
// responses complete a transaction), §7 (FINGERPRINT), §9.1.4 and §9.2.5 (checking
// MESSAGE-INTEGRITY of responses). The driver feeds it the time and the responses
// routed to it and does what it says: "send these bytes", "call me again at".
import { NatkitError } from '../util/index.ts';
import { StunDecodeError, attributeCodec } from './attribute.ts';
import { ErrorCode, HEADER_LENGTH, MAGIC_COOKIE, StunClass, methodOf } from './constants.ts';
import { checkFingerprint, checkIntegrity, transactionKey, type StunMessage } from './message.ts';
import { ERROR_CODE } from './attributes/error.ts';

/** How the request travels: datagrams are retransmitted, streams are not (RFC 8489 §6.2). */
export type TransactionTransport = 'udp' | 'stream';

/** Timers of a transaction (RFC 8489 §6.2.1, §6.2.2). */
export interface TransactionTimers {
  /** Initial retransmission timeout RTO; doubles after each retransmission. @default 500 */
  readonly rtoMs?: number;
  /** Rc: transmissions in all, the first included (UDP). @default 7 */
  readonly maxTransmissions?: number;
  /** Rm: after the last transmission wait Rm × RTO for a response (UDP). @default 16 */
  readonly lastWaitMultiplier?: number;
  /** Ti: how long to wait for a response over TCP or TLS. @default 39500 */
  readonly streamTimeoutMs?: number;
}

/** Options of one transaction. */
export interface TransactionOptions extends TransactionTimers {
  /** How the request travels. */
  readonly transport: TransactionTransport;
  /**
   * The key the request was protected with: responses must then carry a valid
   * MESSAGE-INTEGRITY(-SHA256) (RFC 8489 §9.1.4, §9.2.5). Unset: not checked.
   */
  readonly key?: Uint8Array;
  /**
   * Checks that a response carries what the caller needs, throwing StunDecodeError
   * when it does not; such a response is then handled like a garbled one.
   */
  readonly validate?: (response: StunMessage) => void;
}

/** Stable codes a transaction fails with; the driver throws NatkitErrors with them. */
export type TransactionFailureCode = 'ERR_TIMEOUT' | 'ERR_STUN_INTEGRITY' | 'ERR_STUN_DECODE' | 'ERR_PROTOCOL';

/** How a transaction ended: a response (success or error class), or a failure. */
export type TransactionOutcome =
  | {
      readonly kind: 'response';
      readonly response: StunMessage;
      /** From the first transmission to the response; an RTT sample only when `transmissions` is 1 (Karn). */
      readonly rttMs: number;
      readonly transmissions: number;
    }
  | {
      readonly kind: 'failure';
      readonly code: TransactionFailureCode;
      /** What was expected and what came, for the error message. */
      readonly detail: string;
      /** The decode error behind an ERR_STUN_DECODE failure. */
      readonly cause?: unknown;
      readonly elapsedMs: number;
      readonly transmissions: number;
    };

/** What `receive()` made of a message. */
export type ReceiveVerdict =
  /** It completed the transaction (see `outcome`: a response, or a failure the RFC prescribes). */
  | 'accepted'
  /** Not a response to this request, or the transaction is not pending: ignored. */
  | 'not-mine'
  /** FINGERPRINT present but wrong (RFC 8489 §7): discarded. */
  | 'bad-fingerprint'
  /** Integrity missing or wrong: discarded (UDP) or fatal (stream, see `outcome`). */
  | 'bad-integrity'
  /** An attribute did not decode: discarded (UDP) or fatal (stream, see `outcome`). */
  | 'malformed';

/** One step of the transaction for the driver to carry out. */
export interface TransactionStep {
  /** Bytes to transmit now. */
  readonly send?: Uint8Array;
  /** When to call `poll()` next; absent once the transaction is done. */
  readonly deadline?: number;
  /** Present once the transaction is done. */
  readonly outcome?: TransactionOutcome;
}

/** Transaction state. */
export type TransactionState = 'idle' | 'pending' | 'done';

/** Defaults of RFC 8489 §6.2.1 (RTO, Rc, Rm) and §6.2.2 (Ti). */
export const DEFAULT_TIMERS = {
  rtoMs: 500,
  maxTransmissions: 7,
  lastWaitMultiplier: 16,
  streamTimeoutMs: 39_500,
} as const satisfies Required<TransactionTimers>;

/** The transaction ID of an encoded request: 12 bytes after the cookie, or 16 without it (RFC 3489). */
export function requestTransactionId(request: Uint8Array): Uint8Array {
  if (request.length < HEADER_LENGTH) {
    throw new NatkitError('ERR_INVALID_ARGUMENT', `request: expected at least ${HEADER_LENGTH} bytes, got ${request.length}`);
  }
  const cookie = ((request[4]! << 24) | (request[5]! << 16) | (request[6]! << 8) | request[7]!) >>> 0;
  return request.subarray(cookie === MAGIC_COOKIE ? 8 : 4, HEADER_LENGTH);
}

function positive(name: string, value: number, integer: boolean): number {
  if (!Number.isFinite(value) || value <= 0 || (integer && !Number.isInteger(value))) {
    throw new NatkitError('ERR_INVALID_ARGUMENT', `${name}: expected a positive ${integer ? 'integer' : 'number'}, got ${value}`);
  }
  return value;
}

/** The timers with defaults filled in; throws ERR_INVALID_ARGUMENT for values that are not positive. */
export function resolveTimers(t: TransactionTimers): Required<TransactionTimers> {
  return {
    rtoMs: positive('rtoMs', t.rtoMs ?? DEFAULT_TIMERS.rtoMs, false),
    maxTransmissions: positive('maxTransmissions', t.maxTransmissions ?? DEFAULT_TIMERS.maxTransmissions, true),
    lastWaitMultiplier: positive('lastWaitMultiplier', t.lastWaitMultiplier ?? DEFAULT_TIMERS.lastWaitMultiplier, false),
    streamTimeoutMs: positive('streamTimeoutMs', t.streamTimeoutMs ?? DEFAULT_TIMERS.streamTimeoutMs, false),
  };
}

/** One client transaction, driven by `start`, `poll` and `receive` with the current time. */
export class StunTransaction {
  /** The encoded request, sent as is on every transmission. */
  readonly request: Uint8Array;
  readonly transactionId: Uint8Array;
  /** transactionKey() of the ID: the key in a TransactionTable. */
  readonly key: string;
  readonly method: number;
  readonly transport: TransactionTransport;
  private readonly rtoMs: number;
  private readonly maxTransmissions: number;
  private readonly lastWaitMultiplier: number;
  private readonly streamTimeoutMs: number;
  private readonly integrityKey: Uint8Array | undefined;
  private readonly validate: ((response: StunMessage) => void) | undefined;
  private startedAt = 0;
  private nextAt: number | undefined;
  private interval = 0;
  private sent = 0;
  private result: TransactionOutcome | undefined;
  /** Why the last discarded response was discarded: reported instead of a bare timeout. */
  private discarded: { code: 'ERR_STUN_INTEGRITY' | 'ERR_STUN_DECODE'; detail: string; cause?: unknown } | undefined;

  constructor(request: Uint8Array, options: TransactionOptions) {
    this.request = request;
    this.transactionId = requestTransactionId(request);
    this.key = transactionKey(this.transactionId);
    this.method = methodOf((request[0]! << 8) | request[1]!);
    this.transport = options.transport;
    const t = resolveTimers(options);
    this.rtoMs = t.rtoMs;
    this.maxTransmissions = t.maxTransmissions;
    this.lastWaitMultiplier = t.lastWaitMultiplier;
    this.streamTimeoutMs = t.streamTimeoutMs;
    this.integrityKey = options.key;
    this.validate = options.validate;
  }

  get state(): TransactionState {
    return this.result !== undefined ? 'done' : this.sent === 0 ? 'idle' : 'pending';
  }

  /** Transmissions so far. */
  get transmissions(): number {
    return this.sent;
  }

  /** When the transaction next wants `poll()`; undefined when idle or done. */
  get deadline(): number | undefined {
    return this.result === undefined ? this.nextAt : undefined;
  }

  get outcome(): TransactionOutcome | undefined {
    return this.result;
  }

  /** First transmission at `now`. */
  start(now: number): TransactionStep {
    if (this.sent !== 0 || this.result !== undefined) throw new NatkitError('ERR_INVALID_ARGUMENT', 'transaction already started');
    this.startedAt = now;
    this.interval = this.rtoMs;
    return this.transmit(now);
  }

  /** Runs the timers: retransmits or fails when `now` has reached the deadline. */
  poll(now: number): TransactionStep {
    if (this.result !== undefined) return { outcome: this.result };
    if (this.nextAt === undefined || now < this.nextAt) return this.step();
    if (this.transport === 'udp' && this.sent < this.maxTransmissions) {
      // RFC 8489 §6.2.1: the interval doubles after each retransmission. Timing runs from
      // the actual send, so a late timer delays the schedule instead of bunching sends.
      this.interval *= 2;
      return this.transmit(now);
    }
    // Out of time. RFC 8489 §9.1.4: when every response was discarded for failing the
    // integrity check, signal that rather than a timeout (likewise for garbled ones).
    const d = this.discarded;
    const detail = d
      ? `${d.detail} (no acceptable response after ${this.sent} transmissions)`
      : `no response after ${this.sent} transmission${this.sent === 1 ? '' : 's'} in ${Math.round(now - this.startedAt)} ms`;
    return this.fail(now, d?.code ?? 'ERR_TIMEOUT', detail, d?.cause);
  }

  /** Offers a decoded message that may be the response; see ReceiveVerdict. */
  receive(msg: StunMessage, now: number): ReceiveVerdict {
    if (this.result !== undefined || this.sent === 0) return 'not-mine';
    // RFC 8489 §6.3.3/§6.3.4: a response matches by transaction ID; we also require
    // the request's method, as a response to another method cannot answer ours.
    if ((msg.cls !== StunClass.SUCCESS && msg.cls !== StunClass.ERROR) || msg.method !== this.method) return 'not-mine';
    if (transactionKey(msg.transactionId) !== this.key) return 'not-mine';
    // RFC 8489 §7: a FINGERPRINT that does not match means this is not a STUN message.
    if (checkFingerprint(msg) === 'mismatch') return 'bad-fingerprint';
    if (this.integrityKey !== undefined && needsIntegrity(msg)) {
      const integrity = checkIntegrity(msg, this.integrityKey);
      if (integrity !== 'ok') {
        // RFC 8489 §9.1.4, §9.2.5: over UDP discard it as if never received (retransmits
        // continue); over TCP/TLS the transaction fails.
        return this.discard(now, 'bad-integrity', 'ERR_STUN_INTEGRITY', `expected a response with valid MESSAGE-INTEGRITY, got ${integrity === 'missing' ? 'none' : 'a mismatch'}`);
      }
    }
    let errorCode: number | undefined;
    try {
      errorCode = msg.cls === StunClass.ERROR ? msg.get(ERROR_CODE)?.code : undefined;
    } catch (err) {
      return this.malformed(now, err);
    }
    // RFC 8489 §6.3.3, §6.3.4: unknown comprehension-required attributes, or an error
    // response without ERROR-CODE, make the transaction fail.
    const unknown = msg.attributes.find((a) => a.type < 0x8000 && attributeCodec(a.type) === undefined);
    if (unknown !== undefined) {
      this.fail(now, 'ERR_PROTOCOL', `response carries unknown comprehension-required attribute 0x${unknown.type.toString(16).padStart(4, '0')}`);
      return 'accepted';
    }
    if (msg.cls === StunClass.ERROR && errorCode === undefined) {
      this.fail(now, 'ERR_PROTOCOL', 'expected ERROR-CODE in an error response, got none');
      return 'accepted';
    }
    try {
      this.validate?.(msg);
    } catch (err) {
      return this.malformed(now, err);
    }
    this.result = { kind: 'response', response: msg, rttMs: now - this.startedAt, transmissions: this.sent };
    this.nextAt = undefined;
    return 'accepted';
  }

  private transmit(now: number): TransactionStep {
    this.sent += 1;
    if (this.transport === 'stream') this.nextAt = now + this.streamTimeoutMs;
    else if (this.sent < this.maxTransmissions) this.nextAt = now + this.interval;
    // RFC 8489 §6.2.1: after the Rc-th transmission, wait Rm times the initial RTO.
    else this.nextAt = now + this.lastWaitMultiplier * this.rtoMs;
    return { send: this.request, deadline: this.nextAt };
  }

  private step(): TransactionStep {
    return this.nextAt === undefined ? {} : { deadline: this.nextAt };
  }

  /** Garbled bytes may be spoofed or corrupted over UDP: keep waiting, as for integrity. */
  private malformed(now: number, err: unknown): ReceiveVerdict {
    if (!(err instanceof StunDecodeError)) throw err;
    return this.discard(now, 'malformed', 'ERR_STUN_DECODE', `malformed response: ${err.message}`, err);
  }

  private discard(
    now: number,
    verdict: 'bad-integrity' | 'malformed',
    code: 'ERR_STUN_INTEGRITY' | 'ERR_STUN_DECODE',
    detail: string,
    cause?: unknown,
  ): ReceiveVerdict {
    if (this.transport === 'stream') this.fail(now, code, detail, cause);
    else this.discarded = { code, detail, cause };
    return verdict;
  }

  private fail(now: number, code: TransactionFailureCode, detail: string, cause?: unknown): TransactionStep {
    const base = { kind: 'failure', code, detail, elapsedMs: now - this.startedAt, transmissions: this.sent } as const;
    this.result = cause === undefined ? base : { ...base, cause };
    this.nextAt = undefined;
    return { outcome: this.result };
  }
}

/**
 * Must this response carry valid integrity? RFC 8489 §9.2.5: 401 and 438 challenges come
 * unprotected (the server could not check our credentials); everything else is checked.
 */
function needsIntegrity(msg: StunMessage): boolean {
  if (msg.cls !== StunClass.ERROR) return true;
  let code: number | undefined;
  try {
    code = msg.get(ERROR_CODE)?.code;
  } catch {
    return true; // a garbled ERROR-CODE gets no exemption
  }
  return code !== ErrorCode.UNAUTHENTICATED && code !== ErrorCode.STALE_NONCE;
}

/**
 * Pending transactions by transactionKey(), for drivers that route responses. Responses
 * for IDs it does not hold (late, duplicate, or spoofed) are counted and ignored.
 */
export class TransactionTable<T> {
  private readonly entries = new Map<string, T>();
  /** Responses whose transaction ID matched no pending transaction. */
  unknownResponses = 0;

  get size(): number {
    return this.entries.size;
  }

  /** Adds an entry; throws if the ID is already pending (IDs must be unique, RFC 8489 §5). */
  add(transactionId: Uint8Array, value: T): void {
    const key = transactionKey(transactionId);
    if (this.entries.has(key)) throw new NatkitError('ERR_INVALID_ARGUMENT', `transaction ${key} is already pending`);
    this.entries.set(key, value);
  }

  has(transactionId: Uint8Array): boolean {
    return this.entries.has(transactionKey(transactionId));
  }

  /** The entry of this transaction ID, without counting a miss. */
  get(transactionId: Uint8Array): T | undefined {
    return this.entries.get(transactionKey(transactionId));
  }

  /** The entry a response belongs to, or undefined (counted in `unknownResponses`). */
  route(msg: StunMessage): T | undefined {
    const value = this.entries.get(transactionKey(msg.transactionId));
    if (value === undefined) this.unknownResponses += 1;
    return value;
  }

  /** Removes the entry of this transaction ID; true when it was pending. */
  delete(transactionId: Uint8Array): boolean {
    return this.entries.delete(transactionKey(transactionId));
  }

  values(): IterableIterator<T> {
    return this.entries.values();
  }

  /** Removes and returns every entry (for close). */
  drain(): T[] {
    const all = [...this.entries.values()];
    this.entries.clear();
    return all;
  }
}
