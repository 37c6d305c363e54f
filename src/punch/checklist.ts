// The check list (RFC 8445 §6.1.2 candidate pairs, §6.1.4 their scheduling): which pairs
// exist, which still have transmissions left and when each is due, paced so that a burst
// of probes (a prediction window, birthday probes) leaves a bounded number per tick
// (§14.2). Sans-I/O: times go in, the pairs to transmit now come out; the engine sends.
import { endpointKey, type Endpoint } from '../net/index.ts';
import type { PathMethod } from './strategy.ts';

/** A candidate pair and its check schedule; `B` is the engine's local base. */
export interface CheckPair<B> {
  readonly key: string;
  readonly base: B;
  readonly remote: Endpoint;
  readonly method: PathMethod;
  /** Transmissions still to make. */
  triesLeft: number;
  intervalMs: number;
  /** When the next transmission is due. */
  nextAt: number;
  /** A check of ours on it was answered (RFC 8445 §7.2.5.3). */
  succeeded: boolean;
  /** Its transmissions carry USE-CANDIDATE (RFC 8445 §8.1.1). */
  nominating: boolean;
}

/** The pairs of one punch; pairs are keyed by base id and remote endpoint. */
export class CheckList<B extends { readonly id: number }> {
  /** Every pair met, checked or not. */
  readonly pairs = new Map<string, CheckPair<B>>();
  /** Pairs with transmissions left (or a nomination awaiting its answer), in the order first scheduled. */
  private readonly queue = new Set<CheckPair<B>>();

  /** The key of the pair `base` × `remote`. */
  static key(base: { readonly id: number }, remote: Endpoint): string {
    return `${base.id}/${endpointKey(remote)}`;
  }

  /**
   * Adds a pair, or re-arms one: it gets at least `tries` transmissions, the first due at
   * `at` (or sooner, if it was due sooner). A pair met again keeps its method.
   */
  schedule(base: B, remote: Endpoint, method: PathMethod, tries: number, at: number, intervalMs: number): CheckPair<B> {
    const key = CheckList.key(base, remote);
    let pair = this.pairs.get(key);
    if (pair === undefined) {
      pair = { key, base, remote, method, triesLeft: 0, intervalMs, nextAt: at, succeeded: false, nominating: false };
      this.pairs.set(key, pair);
    }
    const isIdle = !this.queue.has(pair);
    if (isIdle) this.queue.add(pair);
    pair.triesLeft = Math.max(pair.triesLeft, tries);
    pair.nextAt = isIdle ? at : Math.min(pair.nextAt, at);
    pair.intervalMs = intervalMs;
    return pair;
  }

  /**
   * The pairs to transmit at `now`, at most `max`, in schedule order (lockstep prediction
   * depends on it); each is counted as sent and its next transmission set an interval later.
   */
  due(now: number, max: number): CheckPair<B>[] {
    const out: CheckPair<B>[] = [];
    for (const p of this.queue) {
      if (out.length >= max) break;
      if (p.triesLeft === 0 || p.nextAt > now) continue;
      p.triesLeft--;
      p.nextAt = now + p.intervalMs;
      out.push(p);
    }
    return out;
  }

  /**
   * Drops the pairs that have nothing left to send. A nomination keeps its place one
   * interval after its last transmission, for the answer; one that got none is no longer
   * nominating nor succeeded: the pair is not usable after all.
   */
  prune(now: number): void {
    for (const p of this.queue) {
      if (p.triesLeft > 0 || (p.nominating && now < p.nextAt)) continue;
      this.queue.delete(p);
      if (p.nominating) {
        p.nominating = false;
        p.succeeded = false;
      }
    }
  }

  /** When something is next due; Infinity when nothing is. */
  nextAt(): number {
    let next = Infinity;
    for (const p of this.queue) next = Math.min(next, p.nextAt);
    return next;
  }

  /** True while a nomination is in flight. */
  isNominating(): boolean {
    for (const p of this.queue) if (p.nominating) return true;
    return false;
  }

  /** Starts a round: the queued pairs must succeed again to count. */
  resetQueued(): void {
    for (const p of this.queue) p.succeeded = false;
  }

  /** Stops every schedule except nominations in flight (with `keepNominations`). */
  stop(keepNominations = false): void {
    for (const p of this.queue) {
      if (keepNominations && p.nominating) continue;
      p.triesLeft = 0;
      this.queue.delete(p);
    }
  }
}
