// The punch section of `npm run bench` (bench/lib/punch.ts), its pure part: a pair's row
// from its runs (medians over the connected runs, paths, problems), the goals
// over the matrix, and the table people read.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { UsageError, parseBenchArgs } from '../../bench/lib/options.ts';
import { formatPunchBench, punchGoal, summarisePunchRow, type PunchRow, type PunchRun } from '../../bench/lib/punch.ts';
import type { PathMethod } from '../../src/punch/index.ts';
import { expectPair, judgePair, type PairReports, type PeerReport, type PunchPair } from '../lab/lib/punch-lab.ts';

const PORT_SYM: PunchPair = { a: 'port-restricted-cone', b: 'symmetric-sequential', sameNat: false };
const SYM_SYM: PunchPair = { a: 'symmetric-sequential', b: 'symmetric', sameNat: false };
const SAME: PunchPair = { a: 'symmetric', b: 'symmetric', sameNat: true };

/** One side's report: on `method` (relay → a relay path), with its times and counts. */
function peer(name: string, method: PathMethod, punchMs: number, packetsSent: number, o: { answered?: number; rttMs?: number } = {}): PeerReport {
  return {
    name, outcome: 'direct-predicted', reason: 'test',
    path: { kind: method === 'relay' ? 'relay' : 'direct', method, local: '100.64.1.2:40000', remote: '198.18.0.102:40001' },
    punchMs, totalMs: punchMs + 700, packetsSent, checksSent: packetsSent - 2, birthdaySockets: 0,
    messages: { sent: 5, answered: o.answered ?? 5, received: 5 }, rttMs: o.rttMs ?? 0.2,
  };
}

const ok = (run: number, reports: PairReports, wrong: readonly string[] = []): PunchRun => ({ run, ok: true, reports, wrong });
const row = (pair: PunchPair, runs: PunchRun[]): PunchRow => ({ pair, expected: expectPair(pair), runs });

test('--only punch runs the NAT matrix alone; the default run adds it when it can; other --only lists leave it out', () => {
  const only = parseBenchArgs(['--only', 'punch']);
  assert.deepEqual([only.punch, only.check, only.turn, only.only], ['on', 'off', 'off', []]);
  assert.equal(parseBenchArgs([]).punch, 'auto');
  assert.equal(parseBenchArgs(['--only', 'natkit,check']).punch, 'off');
  assert.throws(() => parseBenchArgs(['--only', 'punches']), (e) => e instanceof UsageError && /expected some of .*punch.*got "punches"/.test(e.message));
});

test('a pair\'s row: medians over the connected runs, the later side\'s times, both sides\' packets, every problem', () => {
  const s = summarisePunchRow(row(PORT_SYM, [
    ok(1, [peer('a', 'predicted', 300, 100), peer('b', 'reflexive', 320, 40)]),
    { run: 2, ok: false, error: 'punch-peer b-2-0 not ready after 15000 ms' },
    ok(3, [peer('a', 'predicted', 500, 120), peer('b', 'reflexive', 400, 60, { rttMs: 0.4 })]),
  ]));
  assert.equal(s.name, 'port-restricted-cone × symmetric-sequential');
  assert.deepEqual(s.expected, { outcome: 'direct-predicted', kind: 'direct', method: undefined });
  assert.deepEqual([s.runs, s.connected, s.right], [3, 2, 2]);
  assert.deepEqual([s.kinds, s.methods], [['direct'], ['predicted/reflexive']]);
  assert.deepEqual(s.median, { punchMs: 410, totalMs: 1100, packets: 160, rttMs: 0.25 });
  assert.deepEqual(s.problems, ['run 2: punch-peer b-2-0 not ready after 15000 ms']);
});

test('unanswered messages do not count as connected; a wrong path counts as connected, not right', () => {
  const onRelay = 'a ended on relay (relay), expected direct';
  const s = summarisePunchRow(row(PORT_SYM, [
    ok(1, [peer('a', 'relay', 4100, 90), peer('b', 'relay', 4100, 80)], [onRelay]),
    ok(2, [peer('a', 'predicted', 300, 90, { answered: 3 }), peer('b', 'reflexive', 300, 80)], ['a: 3 of 5 messages answered']),
    ok(3, [peer('a', 'relay', 4100, 90), peer('b', 'relay', 4100, 80)], [onRelay]),
  ]));
  assert.deepEqual([s.connected, s.right, s.kinds], [2, 0, ['relay']]);
  assert.deepEqual(s.problems, [`runs 1, 3: ${onRelay}`, 'run 2: a: 3 of 5 messages answered'], 'one line per problem, naming its runs');
});

test('judgePair: what is wrong with each side, nothing for a right pair; behind one NAT only the host path is right', () => {
  const e = expectPair(PORT_SYM);
  assert.deepEqual(judgePair(e, [peer('a', 'predicted', 300, 90), peer('b', 'reflexive', 300, 80)]), []);
  assert.deepEqual(judgePair(e, [peer('a', 'relay', 4100, 90), peer('b', 'reflexive', 300, 80, { answered: 4 })]), [
    'a ended on relay (relay), expected direct', 'b: 4 of 5 messages answered',
  ]);
  const same = expectPair(SAME);
  assert.deepEqual(same, { outcome: 'relay', kind: 'direct', method: 'host' }, 'the plan is the relay; the LAN decides');
  const relayPlan = (r: PeerReport): PeerReport => ({ ...r, outcome: 'relay' });
  assert.deepEqual(judgePair(same, [relayPlan(peer('a', 'reflexive', 30, 40)), relayPlan(peer('b', 'host', 30, 40))]), ['a found its path by reflexive, expected host']);
});

test('the goals: every pair connects, no direct pair on the relay, direct in under 1 s + 1 RTT; each names who missed it', () => {
  const fast = summarisePunchRow(row(PORT_SYM, [ok(1, [peer('a', 'predicted', 999, 10, { rttMs: 1 }), peer('b', 'reflexive', 900, 10, { rttMs: 1 })])]));
  const relayed = summarisePunchRow(row(SYM_SYM, [ok(1, [peer('a', 'relay', 1050, 10), peer('b', 'relay', 1050, 10)])]));
  assert.deepEqual(punchGoal([fast, relayed]), {
    everyPairConnects: { met: true, missed: [] }, noDirectPairOnRelay: { met: true, missed: [] }, directInTime: { met: true, missed: [] },
  }, 'a relay pair is no miss, and 999 ms < 1000 ms + 1 ms');
  const slowOnRelay = summarisePunchRow(row(PORT_SYM, [ok(1, [peer('a', 'relay', 4100, 10), peer('b', 'relay', 4100, 10)])]));
  const failed = summarisePunchRow(row(SAME, [{ run: 1, ok: false, error: 'timeout' }]));
  const g = punchGoal([slowOnRelay, failed]);
  assert.deepEqual(g.everyPairConnects, { met: false, missed: ['symmetric (both behind it)'] });
  assert.deepEqual(g.noDirectPairOnRelay, { met: false, missed: ['port-restricted-cone × symmetric-sequential'] });
  assert.deepEqual(g.directInTime.missed, ['port-restricted-cone × symmetric-sequential', 'symmetric (both behind it)']);
});

test('the table: one line per pair with expected, outcome, paths and medians; failures and goals below', () => {
  const rows = [
    summarisePunchRow(row(PORT_SYM, [ok(1, [peer('a', 'predicted', 310, 150), peer('b', 'reflexive', 305, 40, { rttMs: 0.3 })])])),
    summarisePunchRow(row(SAME, [{ run: 1, ok: false, error: 'a ended with 1' }])),
  ];
  const text = formatPunchBench({ runs: 1, rows, goal: punchGoal(rows) });
  const lines = text.split('\n');
  assert.match(lines.find((l) => l.startsWith('pair'))!, /^pair\s+expected\s+outcome\s+path a\/b\s+punch ms\s+connect\(\) ms\s+packets\s+rtt ms$/);
  assert.match(lines.find((l) => l.startsWith('port-restricted-cone'))!, /× symmetric-sequential\s+direct \(predicted\)\s+direct 1\/1\s+predicted\/reflexive\s+310\s+1010\s+190\s+0\.25$/);
  assert.match(lines.find((l) => l.startsWith('symmetric (both'))!, /expected direct via host: FAILED 1\/1: run 1: a ended with 1$/);
  assert.ok(lines.includes('goal: every pair connects: NOT met (symmetric (both behind it))'), text);
  assert.ok(lines.includes('goal: no pair that can go direct uses the relay: met'), text);
  assert.ok(lines.includes('goal: direct path in < 1000 ms + 1 RTT (median punch ms): NOT met (symmetric (both behind it))'), text);
});
