// Token-bucket rate limiting per key: `ratePerS` tokens a second accumulate up to
// `burst`; each event takes one. Time is passed in, so it runs the same on a real and a virtual clock.
// Memory is bounded: keys are kept in least-recently-used order, a bucket idle long
// enough to be full again is forgotten, and past `maxKeys` the least recently used goes.
import { NatkitError } from './errors.ts';

/** Rate limit settings. */
export interface RateLimiterOptions {
  /** Tokens added per second (sustained rate). @default 20 */
  readonly ratePerS?: number;
  /** Bucket size: the most taken at once after a quiet period. @default 40 */
  readonly burst?: number;
  /** Most keys tracked at once; the least recently used is evicted beyond it. @default 65536 */
  readonly maxKeys?: number;
}

/** Counters a rate limiter keeps. */
export interface RateLimiterStats {
  allowed: number;
  denied: number;
  /** Buckets dropped before they refilled because `maxKeys` was reached. */
  evicted: number;
}

interface Bucket {
  tokens: number;
  lastMs: number;
}

/** How many idle buckets take() may forget per millisecond of its clock (64 k/s): each call stays O(1). */
const PRUNE_PER_MS = 64;

/** Per-key token buckets with bounded memory. */
export class RateLimiter<K = string> {
  readonly ratePerS: number;
  readonly burst: number;
  readonly maxKeys: number;
  readonly stats: RateLimiterStats = { allowed: 0, denied: 0, evicted: 0 };
  // Map iteration order is insertion order; re-inserting on use makes it LRU order.
  private readonly buckets = new Map<K, Bucket>();
  private readonly fullAfterMs: number;
  /** The key inserted or moved last, i.e. the last in LRU order while it is in the map. */
  private newest: K | undefined;
  /** take() prunes at most once per millisecond: a Map iterator per packet costs more than the work. */
  private nextPruneMs = -Infinity;

  constructor(options: RateLimiterOptions = {}) {
    this.ratePerS = options.ratePerS ?? 20;
    this.burst = options.burst ?? 40;
    this.maxKeys = options.maxKeys ?? 65536;
    if (!(this.ratePerS > 0) || !Number.isFinite(this.ratePerS)) {
      throw new NatkitError('ERR_INVALID_ARGUMENT', `ratePerS: expected a positive number, got ${this.ratePerS}`);
    }
    if (!(this.burst >= 1) || !Number.isFinite(this.burst)) {
      throw new NatkitError('ERR_INVALID_ARGUMENT', `burst: expected a number ≥ 1, got ${this.burst}`);
    }
    if (!Number.isInteger(this.maxKeys) || this.maxKeys < 1) {
      throw new NatkitError('ERR_INVALID_ARGUMENT', `maxKeys: expected an integer ≥ 1, got ${this.maxKeys}`);
    }
    this.fullAfterMs = (this.burst / this.ratePerS) * 1000;
  }

  /** Keys currently tracked. */
  get size(): number {
    return this.buckets.size;
  }

  /** Takes `cost` tokens from `key`'s bucket at `nowMs`; false (and nothing taken) when short. */
  take(key: K, nowMs: number, cost = 1): boolean {
    if (nowMs >= this.nextPruneMs) {
      this.nextPruneMs = nowMs + 1;
      this.prune(nowMs, PRUNE_PER_MS);
    }
    let bucket = this.buckets.get(key);
    if (bucket === undefined) {
      if (this.buckets.size >= this.maxKeys) this.evictOldest();
      bucket = { tokens: this.burst, lastMs: nowMs };
      this.buckets.set(key, bucket);
    } else {
      // Move to the end of LRU order, unless it is there already (one busy source).
      if (key !== this.newest) {
        this.buckets.delete(key);
        this.buckets.set(key, bucket);
      }
      // A clock that steps back refills nothing rather than draining the bucket.
      const elapsed = Math.max(0, nowMs - bucket.lastMs);
      bucket.tokens = Math.min(this.burst, bucket.tokens + (elapsed * this.ratePerS) / 1000);
      bucket.lastMs = Math.max(bucket.lastMs, nowMs);
    }
    this.newest = key;
    if (bucket.tokens >= cost) {
      bucket.tokens -= cost;
      this.stats.allowed++;
      return true;
    }
    this.stats.denied++;
    return false;
  }

  /** Forgets up to `limit` least recently used buckets that are full again by `nowMs`. */
  prune(nowMs: number, limit = Infinity): void {
    let n = 0;
    for (const [key, bucket] of this.buckets) {
      if (n >= limit || nowMs - bucket.lastMs < this.fullAfterMs) return;
      this.buckets.delete(key);
      n++;
    }
  }

  /** Forgets every bucket. */
  clear(): void {
    this.buckets.clear();
  }

  private evictOldest(): void {
    const oldest = this.buckets.keys().next();
    if (oldest.done === true) return;
    this.buckets.delete(oldest.value);
    this.stats.evicted++;
  }
}
