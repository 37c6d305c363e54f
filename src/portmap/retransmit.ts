// A sans-I/O retransmitting request for the port-control protocols: RFC 6886 §3.1
// (NAT-PMP: 250 ms, doubling, nine transmissions) and RFC 6887 §8.1.1 (PCP: IRT, MRT,
// MRC, MRD with ±10 % jitter, the RFC 3315 §14 scheme). One schedule covers both: NAT-PMP
// is PCP's with IRT 250 ms, no cap, MRC 9 and no jitter. The driver feeds it the time and
// tells it when an answer came; it says "send these bytes" and "call me again at".
// (STUN's transaction, stun/transaction.ts, differs in kind: transaction IDs, integrity,
// Rm; it stays separate.)
import { NatkitError } from '../util/index.ts';

/** Retransmission timers; every duration in milliseconds. */
export interface RetransmitTimers {
  /** IRT: the wait after the first transmission. */
  readonly initialMs?: number;
  /** MRT: no wait grows beyond this (before jitter). Infinity: no cap. */
  readonly maxIntervalMs?: number;
  /** MRC: transmissions in all, the first included. Infinity: no limit (then maxDurationMs must be finite). */
  readonly maxTransmissions?: number;
  /** MRD: give up this long after the first transmission. Infinity: no limit (then maxTransmissions must be finite). */
  readonly maxDurationMs?: number;
  /** Each wait is scaled by 1 + RAND, RAND uniform in [−jitter, +jitter]; at most 0.5. */
  readonly jitter?: number;
}

/** The timers with every value filled in. */
export type ResolvedTimers = Required<RetransmitTimers>;

/** How a request ended. */
export type RetransmitOutcome =
  | { readonly kind: 'answered'; readonly rttMs: number; readonly transmissions: number }
  | { readonly kind: 'timeout'; readonly elapsedMs: number; readonly transmissions: number };

/** One step for the driver to carry out. */
export interface RetransmitStep {
  /** Bytes to transmit now. */
  readonly send?: Uint8Array;
  /** When to call `poll()` next; absent once done. */
  readonly deadline?: number;
  /** Present once done. */
  readonly outcome?: RetransmitOutcome;
}

function checkTimer(name: string, value: number, min: number, allowInfinity: boolean): number {
  const ok = allowInfinity && value === Infinity ? true : Number.isFinite(value) && value >= min;
  if (!ok) throw new NatkitError('ERR_INVALID_ARGUMENT', `${name}: expected a number ≥ ${min}${allowInfinity ? ' or Infinity' : ''}, got ${value}`);
  return value;
}

/** Fills in `timers` over `defaults` and checks them; throws ERR_INVALID_ARGUMENT. */
export function resolveRetransmitTimers(timers: RetransmitTimers, defaults: ResolvedTimers): ResolvedTimers {
  const t = { ...defaults, ...timers };
  checkTimer('initialMs', t.initialMs, 1, false);
  checkTimer('maxIntervalMs', t.maxIntervalMs, t.initialMs, true);
  checkTimer('maxTransmissions', t.maxTransmissions, 1, true);
  checkTimer('maxDurationMs', t.maxDurationMs, 1, true);
  if (!(t.jitter >= 0 && t.jitter <= 0.5)) throw new NatkitError('ERR_INVALID_ARGUMENT', `jitter: expected 0–0.5, got ${t.jitter}`);
  if (!Number.isInteger(t.maxTransmissions) && t.maxTransmissions !== Infinity) {
    throw new NatkitError('ERR_INVALID_ARGUMENT', `maxTransmissions: expected an integer, got ${t.maxTransmissions}`);
  }
  // The RFC 6887 defaults (MRC 0, MRD 0) mean "forever"; a call that must settle needs a bound.
  if (t.maxTransmissions === Infinity && t.maxDurationMs === Infinity) {
    throw new NatkitError('ERR_INVALID_ARGUMENT', 'retransmission: maxTransmissions and maxDurationMs cannot both be Infinity');
  }
  return t;
}

/**
 * One request retransmitted on a schedule until `answered()` or out of time. `random`
 * returns numbers in [0, 1) for the jitter (only called when jitter > 0).
 */
export class Retransmission {
  readonly request: Uint8Array;
  private readonly timers: ResolvedTimers;
  private readonly random: () => number;
  private startedAt = 0;
  private nextAt: number | undefined;
  /** RT of RFC 6887 §8.1.1: the last wait, jitter included. */
  private rt = 0;
  private sent = 0;
  private result: RetransmitOutcome | undefined;

  constructor(request: Uint8Array, timers: ResolvedTimers, random: () => number) {
    this.request = request;
    this.timers = timers;
    this.random = random;
  }

  /** Transmissions so far. */
  get transmissions(): number {
    return this.sent;
  }

  get outcome(): RetransmitOutcome | undefined {
    return this.result;
  }

  /** When `poll()` is next due; undefined before start and once done. */
  get deadline(): number | undefined {
    return this.result === undefined ? this.nextAt : undefined;
  }

  /** First transmission at `now`. */
  start(now: number): RetransmitStep {
    if (this.sent !== 0 || this.result !== undefined) throw new NatkitError('ERR_INVALID_ARGUMENT', 'retransmission already started');
    this.startedAt = now;
    return this.transmit(now);
  }

  /** Runs the timer: retransmits, or times out once the schedule is spent. */
  poll(now: number): RetransmitStep {
    if (this.result !== undefined) return { outcome: this.result };
    if (this.nextAt === undefined || now < this.nextAt) return this.nextAt === undefined ? {} : { deadline: this.nextAt };
    const elapsed = now - this.startedAt;
    if (this.sent >= this.timers.maxTransmissions || elapsed >= this.timers.maxDurationMs) {
      this.result = { kind: 'timeout', elapsedMs: elapsed, transmissions: this.sent };
      this.nextAt = undefined;
      return { outcome: this.result };
    }
    return this.transmit(now);
  }

  /** The answer came at `now`: stop. Returns the outcome (idempotent). */
  answered(now: number): RetransmitOutcome {
    this.result ??= { kind: 'answered', rttMs: now - this.startedAt, transmissions: this.sent };
    this.nextAt = undefined;
    return this.result;
  }

  private transmit(now: number): RetransmitStep {
    this.sent += 1;
    const t = this.timers;
    // RFC 6887 §8.1.1: RT = (1 + RAND) × IRT, then RT = (1 + RAND) × MIN(2 × RTprev, MRT).
    // RFC 6886 §3.1 is the same with RAND = 0 and no MRT: 250 ms, 500 ms, … doubling.
    const base = this.sent === 1 ? t.initialMs : Math.min(2 * this.rt, t.maxIntervalMs);
    const rand = t.jitter === 0 ? 0 : (2 * this.random() - 1) * t.jitter;
    this.rt = base * (1 + rand);
    // RFC 6887 §8.1.1 (RFC 3315 §14): MRD ends the last wait early.
    this.nextAt = Math.min(now + this.rt, this.startedAt + t.maxDurationMs);
    return { send: this.request, deadline: this.nextAt };
  }
}
