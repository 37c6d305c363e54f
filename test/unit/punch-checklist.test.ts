// The check list (sans-I/O): transmissions leave in the order pairs were scheduled,
// at most `max` per call, each pair at its interval and no more often than its tries;
// re-scheduling adds tries without losing the place; an unanswered nomination is dropped.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Endpoint } from '../../src/net/index.ts';
import { CheckList } from '../../src/punch/index.ts';

const base = { id: 0 };
const to = (port: number): Endpoint => ({ address: '198.18.0.2', port, family: 4 });
const ports = (pairs: readonly { readonly remote: Endpoint }[]): number[] => pairs.map((p) => p.remote.port);

test('due(): schedule order, at most max per call, the rest next time', () => {
  const list = new CheckList<typeof base>();
  for (const port of [5, 3, 9, 1]) list.schedule(base, to(port), 'predicted', 1, 0, 100);
  assert.deepEqual(ports(list.due(0, 3)), [5, 3, 9]);
  assert.equal(list.nextAt(), 0, 'the fourth is still due');
  assert.deepEqual(ports(list.due(10, 3)), [1]);
  list.prune(10);
  assert.equal(list.nextAt(), Infinity);
});

test('tries and intervals bound the transmissions', () => {
  const list = new CheckList<typeof base>();
  list.schedule(base, to(1), 'reflexive', 3, 0, 200);
  const sent: number[] = [];
  for (let t = 0; t <= 2000; t += 50) {
    if (list.due(t, 10).length > 0) sent.push(t);
    list.prune(t);
  }
  assert.deepEqual(sent, [0, 200, 400]);
});

test('scheduling a queued pair again keeps its place, adds tries and only brings it forward', () => {
  const list = new CheckList<typeof base>();
  list.schedule(base, to(1), 'host', 1, 0, 100);
  list.schedule(base, to(2), 'reflexive', 1, 0, 100);
  const again = list.schedule(base, to(1), 'relay', 4, 500, 100);
  assert.equal(again.method, 'host', 'a pair keeps the method it was found by');
  assert.equal(again.triesLeft, 4);
  assert.equal(again.nextAt, 0);
  assert.deepEqual(ports(list.due(0, 10)), [1, 2]);
  assert.equal(list.pairs.size, 2);
});

test('a nomination waits one interval for its answer, then stops nominating', () => {
  const list = new CheckList<typeof base>();
  const pair = list.schedule(base, to(1), 'reflexive', 1, 0, 200);
  pair.nominating = true;
  pair.succeeded = true;
  list.due(0, 10);
  list.prune(100);
  assert.ok(list.isNominating(), 'still waiting at 100 ms');
  list.prune(200);
  assert.equal(list.isNominating(), false);
  assert.deepEqual([pair.nominating, pair.succeeded], [false, false]);
});

test('stop(true) keeps nominations in flight; stop() ends everything', () => {
  const list = new CheckList<typeof base>();
  list.schedule(base, to(1), 'reflexive', 5, 0, 100);
  list.schedule(base, to(2), 'reflexive', 5, 0, 100).nominating = true;
  list.stop(true);
  assert.deepEqual(ports(list.due(0, 10)), [2]);
  list.stop();
  assert.equal(list.nextAt(), Infinity);
});
