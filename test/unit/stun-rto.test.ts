// RtoCache (RFC 8489 §6.2.1 with RFC 6298) and KeyedSlots (RFC 8489 §6.2's ten
// outstanding transactions), and the StunClient using both.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { RtoCache } from '../../src/stun/index.ts';
import { KeyedSlots, isNatkitError } from '../../src/util/index.ts';

test('first sample: SRTT = R, RTTVAR = R/2, RTO = SRTT + 4·RTTVAR (RFC 6298 §2.2)', () => {
  const c = new RtoCache({ minMs: 1 });
  assert.equal(c.rto('198.51.100.1', 0), 500, 'no estimate: the initial RTO');
  c.sample('198.51.100.1', 40, 10);
  assert.equal(c.rto('198.51.100.1', 20), 40 + 4 * 20);
  assert.equal(c.rto('198.51.100.2', 20), 500, 'estimates are per server address');
});

test('later samples smooth with α = 1/8, β = 1/4 (RFC 6298 §2.3), 1 ms accuracy kept', () => {
  const c = new RtoCache({ minMs: 1 });
  c.sample('a', 100, 0);
  c.sample('a', 60, 1);
  // RTTVAR = 3/4·50 + 1/4·|100 − 60| = 47.5; SRTT = 7/8·100 + 1/8·60 = 95
  assert.equal(c.rto('a', 2), 95 + 4 * 47.5);
});

test('floor, ceiling, backoff on timeout and staleness after 10 minutes', () => {
  const c = new RtoCache();
  c.sample('a', 1, 0);
  assert.equal(c.rto('a', 0), 100, 'the default floor absorbs scheduling jitter');
  c.timedOut('a', 0);
  assert.equal(c.rto('a', 0), 200, 'RFC 6298 §5.5: back off');
  for (let i = 0; i < 20; i++) c.timedOut('a', 0);
  assert.equal(c.rto('a', 0), 60_000, 'never past maxMs');
  assert.equal(c.rto('a', 600_000), 60_000, 'used at 0, still fresh at 10 minutes');
  assert.equal(c.rto('a', 1_200_001), 500, 'stale after 10 minutes without transactions');
  c.timedOut('b', 0);
  assert.equal(c.rto('b', 0), 500, 'a timeout alone makes no estimate');
});

test('at most maxServers estimates; the least recently used goes', () => {
  const c = new RtoCache({ maxServers: 2, minMs: 1 });
  c.sample('a', 10, 0);
  c.sample('b', 20, 0);
  c.sample('a', 10, 1);
  c.sample('c', 30, 2);
  assert.equal(c.size, 2);
  assert.equal(c.rto('b', 3), 500, 'b was least recently used');
  assert.notEqual(c.rto('a', 3), 500);
});

test('bad settings are refused with ERR_INVALID_ARGUMENT', () => {
  for (const o of [{ minMs: 0 }, { initialMs: 50, minMs: 100 }, { maxMs: 100 }, { staleMs: 0 }, { maxServers: 0 }]) {
    assert.throws(() => new RtoCache(o), (e) => isNatkitError(e, 'ERR_INVALID_ARGUMENT'), JSON.stringify(o));
  }
});

test('property: the RTO stays within [minMs, maxMs] for any samples and timeouts', () => {
  fc.assert(
    fc.property(fc.array(fc.oneof(fc.double({ min: 0, max: 1e6, noNaN: true }), fc.constant(-1)), { maxLength: 50 }), (events) => {
      const c = new RtoCache();
      events.forEach((e, t) => (e < 0 ? c.timedOut('x', t) : c.sample('x', e, t)));
      const rto = c.rto('x', events.length);
      return rto >= c.minMs && rto <= c.maxMs;
    }),
  );
});

test('KeyedSlots: limit per key, FIFO hand-over, abortable waits, failWaiters', async () => {
  const s = new KeyedSlots(2);
  await s.acquire('a');
  await s.acquire('a');
  assert.equal(s.tryAcquire('a'), false);
  assert.equal(s.tryAcquire('b'), true, 'keys are independent');
  const order: string[] = [];
  const first = s.acquire('a').then(() => order.push('first'));
  const abort = new AbortController();
  const second = s.acquire('a', abort.signal);
  const third = s.acquire('a').then(() => order.push('third'));
  assert.equal(s.waiting('a'), 3);
  abort.abort();
  await assert.rejects(second, (e) => isNatkitError(e, 'ERR_ABORTED'));
  s.release('a');
  s.release('a');
  await Promise.all([first, third]);
  assert.deepEqual(order, ['first', 'third'], 'the aborted waiter is skipped, order kept');
  assert.equal(s.holders('a'), 2, 'slots were handed over, not freed');
  const fourth = s.acquire('a');
  s.failWaiters(new Error('closing'));
  await assert.rejects(fourth, /closing/);
  s.release('a');
  s.release('a');
  s.release('a');
  assert.equal(s.holders('a'), 0, 'extra releases do no harm');
  assert.throws(() => new KeyedSlots(0), (e) => isNatkitError(e, 'ERR_INVALID_ARGUMENT'));
});
