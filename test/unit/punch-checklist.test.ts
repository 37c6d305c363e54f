// The check list (sans-I/O): transmissions leave in the order pairs were scheduled,
// at most `max` per call, each pair at its interval and no more often than its tries;
// re-scheduling adds tries without losing the place; an unanswered nomination is dropped;
// nominations and triggered checks jump the queue; a technique's probes can be cancelled.
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

/** 100 birthday probes behind 2 ordinary checks, as the engine schedules them. */
function probes(): CheckList<typeof base> {
  const list = new CheckList<typeof base>();
  list.schedule(base, to(1), 'reflexive', 2, 0, 200);
  list.schedule(base, to(2), 'host', 2, 0, 200);
  for (let port = 10_000; port < 10_100; port++) list.schedule(base, to(port), 'birthday', 1, 0, 200);
  return list;
}

test('a nomination jumps the queue of probes', () => {
  const list = probes();
  assert.deepEqual(ports(list.due(0, 4)), [1, 2, 10_000, 10_001]);
  const hit = list.pairs.get(CheckList.key(base, to(10_001)))!;
  hit.nominating = true;
  list.schedule(base, hit.remote, hit.method, 3, 10, 200);
  assert.deepEqual(ports(list.due(10, 4)), [10_001, 10_002, 10_003, 10_004], 'the nomination first, then the probes in order');
  // Its retransmissions go first as well.
  assert.equal(ports(list.due(210, 4))[0], 10_001);
});

test('a triggered check goes ahead of the probes for its tries only', () => {
  const list = probes();
  list.due(0, 2);
  list.schedule(base, to(10_050), 'birthday', 1, 10, 200, { ahead: true });
  assert.deepEqual(ports(list.due(10, 3)), [10_050, 10_000, 10_001]);
  list.prune(10);
  assert.equal(list.pairs.get(CheckList.key(base, to(10_050)))?.ahead, false, 'nothing left to send: back in line');
});

test('a birthday success stops the probes not yet sent; other pairs and the winner keep theirs', () => {
  const list = probes();
  assert.equal(list.due(0, 12).length, 12);
  const hit = list.pairs.get(CheckList.key(base, to(10_005)))!;
  hit.succeeded = true;
  const winner = list.schedule(base, to(10_007), 'birthday', 2, 0, 200);
  assert.equal(list.cancel('birthday', winner), 90 + 0, '90 probes were never sent');
  const sent: number[] = [];
  for (let t = 10; t <= 2000; t += 10) {
    sent.push(...ports(list.due(t, 32)));
    list.prune(t);
  }
  assert.deepEqual(sent.sort((x, y) => x - y), [1, 2, 10_007, 10_007], 'one more transmission of each ordinary check, the winner\'s retries');
  assert.equal(list.cancel('birthday'), 0, 'nothing left to cancel');
});
