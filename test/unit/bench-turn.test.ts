// The TURN section of `npm run bench`: which runs select it, the medians over runs per mode
// and size, unsupported modes, the natkit/coturn and natkit/node-turn ratios and the table,
// from made-up tool output.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { UsageError, parseBenchArgs } from '../../bench/lib/options.ts';
import { formatTurnBench, summariseTurn, turnRatios, type TurnBenchResult, type TurnLoad, type TurnMode, type TurnRun, type TurnServerResult } from '../../bench/lib/turn.ts';

test('--only turn runs the TURN section alone; the default run adds it; other --only lists leave it out', () => {
  const only = parseBenchArgs(['--only', 'turn']);
  assert.deepEqual([only.turn, only.check, only.only], ['on', 'off', []]);
  assert.equal(parseBenchArgs([]).turn, 'auto');
  assert.equal(parseBenchArgs(['--only', 'natkit,check']).turn, 'off');
  assert.deepEqual([parseBenchArgs(['--only', 'turn,check']).turn, parseBenchArgs(['--only', 'turn,check']).check], ['on', 'on']);
  assert.throws(() => parseBenchArgs(['--only', 'turns']), (e) => e instanceof UsageError && /expected some of .*turn.*got "turns"/.test(e.message));
});

const load = (size: number, pps: number, extra: Partial<TurnLoad> = {}): TurnLoad => ({
  mode: 'channel', size, sent: pps, received: pps, lost: 0, round_trips_per_s: pps / 2, relayed_pps: pps, relayed_mbps: (pps * size * 8) / 1e6,
  loss_pct: 0, p50_us: 1000, p99_us: 2000, generator_cpu_pct: 50, ...extra,
});

/** One run in channel mode, and in send mode at `send` (the channel figures × that) when given. */
const run = (n: number, pps100: number, pps1000: number, kib: number | undefined, cpu: number | undefined, send?: number): TurnRun => ({
  run: n,
  loads: [
    { load: load(100, pps100), serverCpuPct: cpu }, { load: load(1000, pps1000, { loss_pct: n }), serverCpuPct: cpu },
    ...(send === undefined ? [] : [
      { load: load(100, pps100 * send, { mode: 'send' }), serverCpuPct: cpu }, { load: load(1000, pps1000 * send, { mode: 'send' }), serverCpuPct: cpu },
    ]),
  ],
  kibPerAllocation: kib,
});

/** A run in which channel mode relayed nothing (tried at 100 B only, as measureRun does) and send mode worked. */
const noChannel = (n: number, pps100: number, pps1000: number, kib: number): TurnRun => ({
  run: n,
  loads: [
    { load: load(100, 0, { sent: 640, lost: 640, loss_pct: 100 }), serverCpuPct: 1 },
    { load: load(100, pps100, { mode: 'send' }), serverCpuPct: 100 }, { load: load(1000, pps1000, { mode: 'send' }), serverCpuPct: 100 },
  ],
  kibPerAllocation: kib,
});

const at = (medians: readonly { mode: TurnMode; size: number; pps: number }[]): [TurnMode, number, number][] => medians.map((m) => [m.mode, m.size, m.pps]);

test('summariseTurn: the median of each figure per mode and payload size; memory from the runs that have it', () => {
  const s = summariseTurn([run(1, 30_000, 20_000, 12, 100), run(2, 40_000, 10_000, undefined, 100), run(3, 35_000, 30_000, 14, 100)]);
  assert.ok(s);
  assert.deepEqual(s.medians.map((m) => [m.mode, m.size, m.pps, m.lossPct, m.serverCpuPct]), [['channel', 100, 35_000, 0, 100], ['channel', 1000, 20_000, 2, 100]]);
  assert.equal(s.medians[1]!.mbps, 160, '20,000 datagrams/s × 1000 B × 8');
  assert.equal(s.kibPerAllocation, 13);
  assert.deepEqual(s.unsupported, []);
  assert.equal(summariseTurn([run(1, 1, 1, undefined, undefined)])?.medians[0]!.serverCpuPct, undefined);
  assert.equal(summariseTurn([]), undefined);
  const both = summariseTurn([run(1, 30_000, 20_000, 12, 100, 0.5), run(2, 40_000, 10_000, 12, 100, 0.5)]);
  assert.deepEqual(at(both!.medians), [['channel', 100, 35_000], ['channel', 1000, 15_000], ['send', 100, 17_500], ['send', 1000, 7_500]]);
});

test('summariseTurn: a mode in which nothing came back in any run is unsupported, not a row of zeros', () => {
  const s = summariseTurn([noChannel(1, 10_000, 8_000, 30), noChannel(2, 12_000, 9_000, 32)]);
  assert.ok(s);
  assert.deepEqual(s.unsupported, [{ mode: 'channel', sent: 1280 }]);
  assert.deepEqual(at(s.medians), [['send', 100, 11_000], ['send', 1000, 8_500]]);
  // Nothing back in one run only: a slow or lossy server, measured (zeros included), not unsupported.
  const once = summariseTurn([noChannel(1, 10_000, 8_000, 30), run(2, 20_000, 10_000, 30, 100)]);
  assert.deepEqual(once!.unsupported, []);
  assert.deepEqual(at(once!.medians).slice(0, 2), [['channel', 100, 10_000], ['channel', 1000, 10_000]]);
});

function server(id: TurnServerResult['id'], runs: TurnRun[], label: string = id): TurnServerResult {
  const s = summariseTurn(runs)!;
  return {
    id, label, status: 'ok', runs, medians: s.medians,
    ...(s.unsupported.length > 0 && { unsupported: s.unsupported }), ...(s.kibPerAllocation !== undefined && { kibPerAllocation: s.kibPerAllocation }),
  };
}

test('turnRatios: natkit over coturn (or node-turn) per mode and size and for memory; undefined without both', () => {
  const natkit = server('natkit', [run(1, 40_000, 30_000, 6, 100)]);
  const coturn = server('coturn', [run(1, 100_000, 60_000, 4, 100)]);
  assert.deepEqual(turnRatios([natkit, coturn]), { pps: [{ mode: 'channel', size: 100, ratio: 0.4 }, { mode: 'channel', size: 1000, ratio: 0.5 }], memory: 1.5 });
  assert.equal(turnRatios([natkit]), undefined);
  assert.equal(turnRatios([natkit, { id: 'coturn', label: 'coturn', status: 'not installed', runs: [] }]), undefined);
  const natkit2 = server('natkit', [run(1, 40_000, 30_000, 6, 100, 0.5)]);
  const nodeTurn = server('node-turn', [noChannel(1, 10_000, 5_000, 24)]);
  assert.deepEqual(turnRatios([natkit2, coturn, nodeTurn], 'node-turn'), { pps: [{ mode: 'send', size: 100, ratio: 2 }, { mode: 'send', size: 1000, ratio: 3 }], memory: 0.25 });
  assert.deepEqual(turnRatios([natkit2, coturn, nodeTurn], 'coturn')?.pps.map((p) => p.mode), ['channel', 'channel'], 'coturn has no send figures here');
});

function result(servers: TurnServerResult[]): TurnBenchResult {
  return {
    config: { durationS: 3, warmupS: 0.5, window: 128, timeoutMs: 200, runs: 1, allocations: 1000, pinning: 'no pinning' },
    servers, natkitVsCoturn: turnRatios(servers, 'coturn'), natkitVsNodeTurn: turnRatios(servers, 'node-turn'),
  };
}

test('formatTurnBench: one row per server, mode and size, failures as notes, the ratio line', () => {
  const natkit = server('natkit', [run(1, 40_000, 30_000, 6, 100)]);
  const coturn = server('coturn', [run(1, 100_000, 60_000, 4, 100)]);
  const text = formatTurnBench(result([natkit, coturn]));
  assert.match(text, /^natkit\s+channel\s+100\s+40,000\s+32\.0\s+0\.00\s+1,000\s+2,000\s+100\s+6\.0$/m);
  assert.match(text, /^coturn\s+channel\s+1000\s+60,000\s+480\.0\s+1\.00\s+/m);
  assert.match(text, /^natkit \/ coturn: 0\.40× datagrams\/s at 100 B, 0\.50× at 1000 B with ChannelData; 1\.50× memory per allocation$/m);
  assert.doesNotMatch(text, /natkit \/ node-turn/);
  const failed = formatTurnBench(result([natkit, { id: 'coturn', label: 'coturn', status: 'failed', error: 'boom', runs: [] }]));
  assert.match(failed, /^coturn\s+failed: boom$/m);
  assert.doesNotMatch(failed, /natkit \/ coturn/);
});

test('formatTurnBench: node-turn as a third row, its unsupported mode said so, natkit / node-turn next to natkit / coturn', () => {
  const natkit = server('natkit', [run(1, 40_000, 30_000, 6, 100, 0.5)]);
  const coturn = server('coturn', [run(1, 100_000, 60_000, 4, 100, 0.5)]);
  const nodeTurn = server('node-turn', [noChannel(1, 10_000, 5_000, 24)], 'node-turn 0.0.6');
  const text = formatTurnBench(result([natkit, coturn, nodeTurn]));
  assert.match(text, /^node-turn 0\.0\.6\s+channel\s+unsupported: no ChannelData \(0 of 640 datagrams came back\)$/m);
  assert.match(text, /^node-turn 0\.0\.6\s+send\s+100\s+10,000\s+8\.0\s+0\.00\s+1,000\s+2,000\s+100\s+24\.0$/m);
  assert.match(text, /^natkit\s+send\s+1000\s+15,000\s+120\.0\s+/m);
  // The unsupported row's mode sits in the mode column.
  const rows = text.split('\n');
  const sendRow = rows.find((l) => l.startsWith('node-turn 0.0.6') && l.includes(' send '))!;
  const gapRow = rows.find((l) => l.startsWith('node-turn 0.0.6') && l.includes('unsupported'))!;
  assert.equal(gapRow.indexOf('channel'), sendRow.indexOf('send'));
  assert.match(text, /^natkit \/ coturn: 0\.40× datagrams\/s at 100 B, 0\.50× at 1000 B with ChannelData; 0\.40× datagrams\/s at 100 B, 0\.50× at 1000 B with Send\/Data indications; 1\.50× memory per allocation$/m);
  assert.match(text, /^natkit \/ node-turn: ChannelData: none \(node-turn unsupported\); 2\.00× datagrams\/s at 100 B, 3\.00× at 1000 B with Send\/Data indications; 0\.25× memory per allocation$/m);
  assert.ok(text.indexOf('natkit / coturn') < text.indexOf('natkit / node-turn'));
  const missing = formatTurnBench(result([natkit, coturn, { id: 'node-turn', label: 'node-turn', status: 'not installed', runs: [] }]));
  assert.match(missing, /^node-turn\s+not installed$/m);
  assert.doesNotMatch(missing, /natkit \/ node-turn/);
});
