// The token bucket under the STUN server (src/util/rate-limiter.ts): burst, refill with
// injected time, a clock that steps back, bounded memory (idle buckets forgotten, LRU
// eviction at maxKeys), and option checks.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RateLimiter } from '../../src/util/index.ts';

const takeN = (l: RateLimiter, key: string, now: number, n: number): boolean[] => Array.from({ length: n }, () => l.take(key, now));

test('a full bucket allows `burst` at once, then refills at ratePerS', () => {
  const l = new RateLimiter({ ratePerS: 10, burst: 5 });
  assert.deepEqual(takeN(l, 'a', 0, 6), [true, true, true, true, true, false]);
  assert.deepEqual(takeN(l, 'a', 99, 1), [false], '0.99 of a token after 99 ms');
  assert.deepEqual(takeN(l, 'a', 100, 2), [true, false], 'one token per 100 ms');
  assert.deepEqual(takeN(l, 'a', 10_000, 6), [true, true, true, true, true, false], 'never more than burst');
  assert.deepEqual(l.stats, { allowed: 11, denied: 4, evicted: 0 });
});

test('cost above one takes several tokens; a short bucket takes nothing', () => {
  const l = new RateLimiter({ ratePerS: 1, burst: 4 });
  assert.equal(l.take('a', 0, 3), true);
  assert.equal(l.take('a', 0, 2), false);
  assert.equal(l.take('a', 0, 1), true);
});

test('a clock that steps back refills nothing and does not drain', () => {
  const l = new RateLimiter({ ratePerS: 1, burst: 2 });
  assert.deepEqual(takeN(l, 'a', 5000, 2), [true, true]);
  assert.deepEqual(takeN(l, 'a', 1000, 1), [false]);
  assert.deepEqual(takeN(l, 'a', 6000, 2), [true, false], 'refill counts from the latest time seen');
});

test('idle buckets are forgotten once they would be full again', () => {
  const l = new RateLimiter({ ratePerS: 10, burst: 10 }); // full after 1 s idle
  for (let i = 0; i < 100; i++) l.take(`k${i}`, 0);
  assert.equal(l.size, 100);
  l.prune(999);
  assert.equal(l.size, 100, 'not yet full');
  l.prune(1000);
  assert.equal(l.size, 0);
  // Lazy pruning in take(): up to 64 a millisecond, so steady traffic keeps memory small.
  for (let i = 0; i < 100; i++) l.take(`k${i}`, 0);
  for (let i = 0; i < 10; i++) l.take('busy', 2000);
  assert.equal(l.size, 37, 'once per millisecond: 64 forgotten at 2000 ms');
  l.take('busy', 2001);
  assert.equal(l.size, 1, 'the rest at 2001 ms: only the busy key is left');
});

test('at maxKeys the least recently used key is evicted', () => {
  const l = new RateLimiter({ ratePerS: 1, burst: 1, maxKeys: 3 });
  l.take('a', 0);
  l.take('b', 0);
  l.take('c', 0);
  l.take('a', 0); // a is now the most recent (denied, but touched)
  l.take('d', 0); // evicts b
  assert.equal(l.size, 3);
  assert.equal(l.stats.evicted, 1);
  assert.equal(l.take('a', 0), false, 'a kept its empty bucket');
  assert.equal(l.take('b', 0), true, 'b was forgotten: a fresh bucket');
});

test('a key used again and again stays the most recent; LRU order survives deletes of it', () => {
  const l = new RateLimiter({ ratePerS: 1, burst: 5, maxKeys: 2 });
  l.take('a', 0);
  l.take('b', 0);
  l.take('b', 0); // already the most recent: b stays last
  l.take('a', 0); // a moves after b
  l.take('c', 0); // evicts b
  assert.equal(l.take('a', 0), true);
  assert.equal(l.stats.evicted, 1);
  assert.deepEqual([l.take('b', 0), l.stats.evicted], [true, 2], 'b was evicted (a fresh bucket); c, now the oldest, made room');
  l.clear();
  l.take('b', 0); // the most recent key, now forgotten and taken afresh
  l.take('d', 0);
  l.take('b', 0); // moves after d
  l.take('e', 0); // evicts d
  assert.equal(l.stats.evicted, 3);
  assert.deepEqual([l.take('b', 0), l.size], [true, 2]);
});

test('memory stays bounded under a flood of distinct keys', () => {
  const l = new RateLimiter({ ratePerS: 1, burst: 1, maxKeys: 1000 });
  for (let i = 0; i < 50_000; i++) l.take(`src${i}`, i / 100);
  assert.ok(l.size <= 1000);
});

test('options are checked', () => {
  assert.throws(() => new RateLimiter({ ratePerS: 0 }), { code: 'ERR_INVALID_ARGUMENT' });
  assert.throws(() => new RateLimiter({ ratePerS: Infinity }), { code: 'ERR_INVALID_ARGUMENT' });
  assert.throws(() => new RateLimiter({ burst: 0.5 }), { code: 'ERR_INVALID_ARGUMENT' });
  assert.throws(() => new RateLimiter({ maxKeys: 0 }), { code: 'ERR_INVALID_ARGUMENT' });
  const d = new RateLimiter();
  assert.deepEqual([d.ratePerS, d.burst, d.maxKeys], [20, 40, 65536]);
});
