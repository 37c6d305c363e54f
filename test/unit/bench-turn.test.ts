// The TURN section of `npm run bench`: which runs select it, the medians over runs, the
// natkit/coturn ratios and the table, from made-up tool output.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { UsageError, parseBenchArgs } from '../../bench/lib/options.ts';
import { formatTurnBench, summariseTurn, turnRatios, type TurnBenchResult, type TurnLoad, type TurnRun, type TurnServerResult } from '../../bench/lib/turn.ts';

test('--only turn runs the TURN section alone; the default run adds it; other --only lists leave it out', () => {
  const only = parseBenchArgs(['--only', 'turn']);
  assert.deepEqual([only.turn, only.check, only.only], ['on', 'off', []]);
  assert.equal(parseBenchArgs([]).turn, 'auto');
  assert.equal(parseBenchArgs(['--only', 'natkit,check']).turn, 'off');
  assert.deepEqual([parseBenchArgs(['--only', 'turn,check']).turn, parseBenchArgs(['--only', 'turn,check']).check], ['on', 'on']);
  assert.throws(() => parseBenchArgs(['--only', 'turns']), (e) => e instanceof UsageError && /expected some of .*turn.*got "turns"/.test(e.message));
});

const load = (size: number, pps: number, extra: Partial<TurnLoad> = {}): TurnLoad => ({
  size, sent: pps, received: pps, lost: 0, round_trips_per_s: pps / 2, relayed_pps: pps, relayed_mbps: (pps * size * 8) / 1e6,
  loss_pct: 0, p50_us: 1000, p99_us: 2000, generator_cpu_pct: 50, ...extra,
});

const run = (n: number, pps100: number, pps1000: number, kib: number | undefined, cpu: number | undefined): TurnRun => ({
  run: n, loads: [{ load: load(100, pps100), serverCpuPct: cpu }, { load: load(1000, pps1000, { loss_pct: n }), serverCpuPct: cpu }], kibPerAllocation: kib,
});

test('summariseTurn: the median of each figure per payload size; memory from the runs that have it', () => {
  const s = summariseTurn([run(1, 30_000, 20_000, 12, 100), run(2, 40_000, 10_000, undefined, 100), run(3, 35_000, 30_000, 14, 100)]);
  assert.ok(s);
  assert.deepEqual(s.medians.map((m) => [m.size, m.pps, m.lossPct, m.serverCpuPct]), [[100, 35_000, 0, 100], [1000, 20_000, 2, 100]]);
  assert.equal(s.medians[1]!.mbps, 160, '20,000 datagrams/s × 1000 B × 8');
  assert.equal(s.kibPerAllocation, 13);
  assert.equal(summariseTurn([run(1, 1, 1, undefined, undefined)])?.medians[0]!.serverCpuPct, undefined);
  assert.equal(summariseTurn([]), undefined);
});

function server(id: 'natkit' | 'coturn', runs: TurnRun[]): TurnServerResult {
  const s = summariseTurn(runs)!;
  return { id, label: id, status: 'ok', runs, medians: s.medians, ...(s.kibPerAllocation !== undefined && { kibPerAllocation: s.kibPerAllocation }) };
}

test('turnRatios: natkit over coturn per size and for memory; undefined without both', () => {
  const natkit = server('natkit', [run(1, 40_000, 30_000, 6, 100)]);
  const coturn = server('coturn', [run(1, 100_000, 60_000, 4, 100)]);
  assert.deepEqual(turnRatios([natkit, coturn]), { pps: [{ size: 100, ratio: 0.4 }, { size: 1000, ratio: 0.5 }], memory: 1.5 });
  assert.equal(turnRatios([natkit]), undefined);
  assert.equal(turnRatios([natkit, { id: 'coturn', label: 'coturn', status: 'not installed', runs: [] }]), undefined);
});

test('formatTurnBench: one row per server and size, failures as notes, the ratio line', () => {
  const natkit = server('natkit', [run(1, 40_000, 30_000, 6, 100)]);
  const coturn = server('coturn', [run(1, 100_000, 60_000, 4, 100)]);
  const result: TurnBenchResult = {
    config: { durationS: 3, warmupS: 0.5, window: 128, timeoutMs: 200, runs: 1, allocations: 1000, pinning: 'no pinning' },
    servers: [natkit, coturn], natkitVsCoturn: turnRatios([natkit, coturn]),
  };
  const text = formatTurnBench(result);
  assert.match(text, /^natkit\s+100\s+40,000\s+32\.0\s+0\.00\s+1,000\s+2,000\s+100\s+6\.0$/m);
  assert.match(text, /^coturn\s+1000\s+60,000\s+480\.0\s+1\.00\s+/m);
  assert.match(text, /natkit \/ coturn: 0\.40× datagrams\/s at 100 B, 0\.50× datagrams\/s at 1000 B; 1\.50× memory per allocation/);
  const failed = formatTurnBench({ ...result, servers: [natkit, { id: 'coturn', label: 'coturn', status: 'failed', error: 'boom', runs: [] }], natkitVsCoturn: undefined });
  assert.match(failed, /^coturn\s+failed: boom$/m);
  assert.doesNotMatch(failed, /natkit \/ coturn/);
});
