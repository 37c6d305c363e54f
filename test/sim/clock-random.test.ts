// The simulated world's virtual clock and seeded randomness: event order, cancellation,
// the synchronous drivers and their bounds, run()/elapse()/settle() for code that awaits
// (virtual hours pass in real milliseconds), and reproducible, independent random streams.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SimClock, SimRandom } from '../../src/net/sim/index.ts';
import { isNatkitError } from '../../src/util/index.ts';

test('timers run in time order, scheduling order at equal times; cancel is idempotent', () => {
  const clock = new SimClock();
  const order: string[] = [];
  clock.setTimer(20, () => order.push('b@20'));
  clock.setTimer(10, () => order.push('a@10'));
  clock.setTimer(20, () => order.push('c@20'));
  const cancelled = clock.setTimer(15, () => order.push('never'));
  clock.setTimer(-5, () => order.push('now'));
  clock.setTimer(Number.NaN, () => order.push('now too'));
  clock.setTimer(Infinity, () => order.push('never either'));
  assert.equal(clock.pending, 6);
  cancelled.cancel();
  cancelled.cancel();
  assert.equal(clock.pending, 5);
  assert.equal(clock.runUntilIdle(), 5);
  assert.deepEqual(order, ['now', 'now too', 'a@10', 'b@20', 'c@20']);
  assert.equal(clock.now(), 20);
  assert.equal(clock.steps, 5);
});

test('advance runs what is due, including what events schedule for the same span, and moves time', () => {
  const clock = new SimClock({ startMs: 1000 });
  const seen: number[] = [];
  clock.setTimer(5, () => {
    seen.push(clock.now());
    clock.setTimer(0, () => seen.push(clock.now()));
    clock.setTimer(10, () => seen.push(clock.now()));
  });
  assert.equal(clock.advance(10), 2);
  assert.deepEqual(seen, [1005, 1005]);
  assert.equal(clock.now(), 1010);
  assert.equal(clock.nextEventMs(), 1015);
  clock.advanceTo(1000);
  assert.equal(clock.now(), 1010, 'time never goes back');
});

test('runUntil: a condition (false when nothing is left), a time; runUntilIdle is bounded by maxSteps', () => {
  const clock = new SimClock();
  let n = 0;
  const tick = (): void => {
    n++;
    clock.setTimer(100, tick);
  };
  clock.setTimer(100, tick);
  assert.equal(clock.runUntil(() => n === 3), true);
  assert.equal(clock.now(), 300);
  assert.equal(clock.runUntil(1000), true);
  assert.equal(n, 10);
  assert.throws(() => clock.runUntilIdle({ maxSteps: 50 }), (err: unknown) => isNatkitError(err, 'ERR_TIMEOUT') && /periodic timer/.test(err.message));
  assert.throws(() => clock.advance(1_000_000, { maxSteps: 10 }), (err: unknown) => isNatkitError(err, 'ERR_TIMEOUT'));
  const quiet = new SimClock();
  assert.equal(quiet.runUntil(() => false), false);
});

test('run(): a promise chain with virtual waits settles in no real time; its value and errors come through', async () => {
  const clock = new SimClock();
  const sleep = (ms: number): Promise<void> => new Promise((resolve) => clock.setTimer(ms, resolve));
  const realStart = performance.now();
  const value = await clock.run(async () => {
    for (let i = 0; i < 60; i++) await sleep(60_000);
    return 'an hour later';
  }, { maxMs: 2 * 3_600_000 });
  assert.equal(value, 'an hour later');
  assert.equal(clock.now(), 3_600_000);
  assert.ok(performance.now() - realStart < 1000, 'virtual time, not real time');
  await assert.rejects(clock.run(async () => {
    await sleep(10);
    throw new Error('boom');
  }), /boom/);
});

test('run(): ERR_TIMEOUT when nothing could settle the promise, or after maxMs', async () => {
  const clock = new SimClock();
  await assert.rejects(clock.run(new Promise(() => undefined)), (err: unknown) => isNatkitError(err, 'ERR_TIMEOUT') && /idle/.test(err.message));
  const tick = (): void => void clock.setTimer(1000, tick);
  tick();
  await assert.rejects(clock.run(new Promise(() => undefined), { maxMs: 10_000 }), (err: unknown) => isNatkitError(err, 'ERR_TIMEOUT') && /10000 virtual ms/.test(err.message));
  assert.equal(clock.now(), 10_000);
  assert.equal(await clock.settle({ maxMs: 500 }), false, 'a periodic timer never lets it settle');
  clock.clear();
  assert.equal(await clock.settle(), true);
});

test('elapse(): promise callbacks between events see the virtual time they acted at', async () => {
  const clock = new SimClock();
  const stamps: number[] = [];
  const worker = async (): Promise<void> => {
    for (let i = 0; i < 3; i++) {
      await new Promise<void>((resolve) => clock.setTimer(250, resolve));
      await Promise.resolve();
      stamps.push(clock.now());
    }
  };
  const done = worker();
  await clock.elapse(600);
  assert.deepEqual(stamps, [250, 500]);
  assert.equal(clock.now(), 600);
  await clock.elapse(200);
  await done;
  assert.deepEqual(stamps, [250, 500, 750]);
});

test('SimRandom: the same seed gives the same stream; forks are independent of what the parent drew', () => {
  const a = new SimRandom('seed');
  const b = new SimRandom('seed');
  assert.deepEqual(a.bytes(33), b.bytes(33));
  assert.notDeepEqual(new SimRandom('other').bytes(8), new SimRandom('seed').bytes(8));
  const fork = new SimRandom(7).fork('host:a').uint32();
  const parent = new SimRandom(7);
  parent.bytes(100);
  assert.equal(parent.fork('host:a').uint32(), fork);
  assert.notEqual(parent.fork('host:b').uint32(), fork);
  assert.equal(parent.fork('x').seed, '7/x');
});

test('SimRandom: ranges, probabilities at 0 and 1 draw nothing, a fair spread', () => {
  const r = new SimRandom(3);
  const ints = Array.from({ length: 10_000 }, () => r.int(5, 15));
  assert.ok(ints.every((n) => Number.isInteger(n) && n >= 5 && n < 15));
  assert.equal(new Set(ints).size, 10);
  const floats = Array.from({ length: 10_000 }, () => r.next());
  const mean = floats.reduce((x, y) => x + y, 0) / floats.length;
  assert.ok(Math.abs(mean - 0.5) < 0.02, `mean ${mean}`);
  const before = new SimRandom(9);
  const after = new SimRandom(9);
  assert.equal(after.chance(0), false);
  assert.equal(after.chance(1), true);
  assert.equal(after.uint32(), before.uint32(), 'chance(0) and chance(1) drew nothing');
  assert.throws(() => r.int(3, 3), /min < max/);
  assert.equal(r.bytes(0).length, 0);
});
