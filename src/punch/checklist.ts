// The check list (RFC 8445 §6.1.2 candidate pairs, §6.1.4 their scheduling): which pairs
// exist, which still have transmissions left and when each is due, paced so that a burst
// of probes (a prediction window, birthday probes) leaves a bounded number per tick
// (§14.2). Nominations and triggered checks go ahead of the ordinary ones (§6.1.4.2 serves
// the triggered-check queue first), and a technique's remaining probes can be dropped once
// one of them worked. Sans-I/O: times go in, the pairs to transmit now come out; the engine sends.
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
  /** Its transmissions carry USE-CANDIDATE (RFC 8445 §8.1.1); they go ahead of ordinary ones. */
  nominating: boolean;
  /** A triggered check (RFC 8445 §7.3.1.4): its transmissions go ahead of ordinary ones until it has none left. */
  ahead: boolean;
}

/** How schedule() queues a pair. */
export interface ScheduleOptions {
  /** Ahead of ordinary checks (a triggered check, RFC 8445 §6.1.4.2). @default false */
  readonly ahead?: boolean;
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
  schedule(base: B, remote: Endpoint, method: PathMethod, tries: number, at: number, intervalMs: number, options: ScheduleOptions = {}): CheckPair<B> {
    const key = CheckList.key(base, remote);
    let pair = this.pairs.get(key);
    if (pair === undefined) {
      pair = { key, base, remote, method, triesLeft: 0, intervalMs, nextAt: at, succeeded: false, nominating: false, ahead: false };
      this.pairs.set(key, pair);
    }
    const isIdle = !this.queue.has(pair);
    if (isIdle) this.queue.add(pair);
    if (options.ahead === true) pair.ahead = true;
    pair.triesLeft = Math.max(pair.triesLeft, tries);
    pair.nextAt = isIdle ? at : Math.min(pair.nextAt, at);
    pair.intervalMs = intervalMs;
    return pair;
  }

  /**
   * The pairs to transmit at `now`, at most `max`: nominations and triggered checks first,
   * then the rest in schedule order (lockstep prediction depends on it); each is counted as
   * sent and its next transmission set an interval later. A nomination queued behind a
   * burst of probes would otherwise wait for all of them (2048 birthday probes are 64 ticks).
   */
  due(now: number, max: number): CheckPair<B>[] {
    const out: CheckPair<B>[] = [];
    const take = (isFirst: boolean): void => {
      for (const p of this.queue) {
        if (out.length >= max) return;
        if (p.triesLeft === 0 || p.nextAt > now || (p.nominating || p.ahead) !== isFirst) continue;
        p.triesLeft--;
        p.nextAt = now + p.intervalMs;
        out.push(p);
      }
    };
    take(true);
    take(false);
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
      p.ahead = false;
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

  /**
   * Stops the transmissions left on the pairs found by `method`, except nominations, pairs
   * that succeeded and `keep`: once one birthday pair worked, the other probes only cost
   * datagrams. Returns how many transmissions were dropped.
   */
  cancel(method: PathMethod, keep?: CheckPair<B>): number {
    let dropped = 0;
    for (const p of this.queue) {
      if (p.method !== method || p === keep || p.nominating || p.succeeded) continue;
      dropped += p.triesLeft;
      p.triesLeft = 0;
      p.ahead = false;
      this.queue.delete(p);
    }
    return dropped;
  }

  /** Stops every schedule except nominations in flight (with `keepNominations`). */
  stop(keepNominations = false): void {
    for (const p of this.queue) {
      if (keepNominations && p.nominating) continue;
      p.triesLeft = 0;
      p.ahead = false;
      this.queue.delete(p);
    }
  }
}
