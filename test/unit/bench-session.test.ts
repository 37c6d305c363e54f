// The session section of `npm run bench`: which runs select it, its duration default, the
// latency percentiles, the figures derived from a stream, medians over runs, the session/udp
// ratios and the tables, from made-up child output.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseBenchArgs } from '../../bench/lib/options.ts';
import {
  formatSessionBench, latencySummary, sessionRatios, summariseSession, throughputFigures, udpWindow,
  type PeerReport, type SessionBenchResult, type SessionPathKind, type SessionPathResult, type SessionRun, type ThroughputCase,
} from '../../bench/lib/session.ts';

test('--only session runs the session section alone; the default run adds it; other --only lists leave it out', () => {
  const only = parseBenchArgs(['--only', 'session']);
  assert.deepEqual([only.session, only.turn, only.check, only.punch, only.only], ['on', 'off', 'off', 'off', []]);
  assert.equal(parseBenchArgs([]).session, 'auto');
  assert.equal(parseBenchArgs(['--only', 'turn']).session, 'off');
  assert.equal(parseBenchArgs(['--only', 'session']).sessionDurationS, 1, 'one second per case unless told');
  assert.equal(parseBenchArgs(['--only', 'session', '--duration-s', '2.5']).sessionDurationS, 2.5);
  assert.equal(parseBenchArgs(['--only', 'session']).durationS, 3, 'the other sections keep their default');
});

test('latencySummary: nearest-rank p50 and p99, mean, max, round trips per second', () => {
  const samples = Array.from({ length: 100 }, (_, i) => 100 - i); // 100 … 1, unsorted
  const s = latencySummary(samples, 2);
  assert.deepEqual(s, { roundTrips: 100, roundTripsPerS: 50, p50Us: 50, p99Us: 99, meanUs: 50.5, maxUs: 100 });
  assert.equal(latencySummary([7], 1).p99Us, 7);
  const none = latencySummary([], 1);
  assert.equal(none.roundTrips, 0);
  assert.ok(Number.isNaN(none.p50Us));
});

const stream = (size: number, delivered: number, extra: Partial<ThroughputCase> = {}): ThroughputCase => ({
  size, sent: delivered, delivered, seconds: 1, senderCpuPct: 100, receiverCpuPct: 90, datagramsOut: delivered, datagramsBack: delivered / 16, ...extra,
});

test('udpWindow: 256 datagrams, fewer when they would pass 1 MiB', () => {
  assert.deepEqual([udpWindow(100), udpWindow(1000), udpWindow(4096), udpWindow(16384), udpWindow(1 << 21)], [256, 256, 256, 64, 1]);
});

test('throughputFigures: messages/s and MB/s from what arrived, loss from what was sent, datagrams both ways', () => {
  const f = throughputFigures(stream(1000, 50_000, { sent: 60_000, seconds: 2, datagramsOut: 60_000, datagramsBack: 40_000 }));
  assert.equal(f.messagesPerS, 25_000);
  assert.equal(f.mbPerS, 25, '25,000 × 1000 B per s');
  assert.ok(Math.abs(f.lossPct - 100 / 6) < 1e-9);
  assert.equal(f.datagramsPerS, 50_000);
  assert.equal(f.datagramsPerMessage, 2);
  assert.equal(f.cpuUsPerMessage, 76, '(100 % + 90 %) of 2 s over 50,000 messages');
  assert.equal(f.retransmissions, undefined);
  assert.equal(throughputFigures(stream(100, 10, { sent: 0 })).lossPct, 0);
});

const report = (path: SessionPathKind, rate: number, p50: number, handshakeMs?: number): PeerReport => ({
  path, ...(handshakeMs !== undefined && { handshakeMs }),
  latency: { size: 100, roundTrips: 10_000, roundTripsPerS: 1e6 / p50, p50Us: p50, p99Us: p50 * 3, meanUs: p50, maxUs: p50 * 10, lost: 0 },
  throughput: [stream(100, rate), stream(1000, rate / 2, path === 'session' ? { retransmissions: 2 } : {})],
  socket: {},
});
const run = (n: number, path: SessionPathKind, rate: number, p50: number, handshakeMs?: number): SessionRun =>
  ({ run: n, report: report(path, rate, p50, handshakeMs), receiverStats: undefined });

function pathResult(path: SessionPathKind, runs: SessionRun[]): SessionPathResult {
  return { path, label: path === 'udp' ? 'plain UDP' : 'secure session', status: 'ok', runs, ...summariseSession(runs) };
}

test('summariseSession: the median of each figure per size, of the latency and of the handshake', () => {
  const s = summariseSession([run(1, 'session', 3000, 900, 40), run(2, 'session', 5000, 1100, 30), run(3, 'session', 4000, 1000, 50)]);
  assert.ok(s);
  assert.deepEqual(s.throughput?.map((t) => [t.size, t.messagesPerS, t.retransmissions]), [[100, 4000, undefined], [1000, 2000, 2]]);
  assert.deepEqual([s.latency?.p50Us, s.latency?.p99Us, s.handshakeMs], [1000, 3000, 40]);
  assert.equal(summariseSession([run(1, 'udp', 1, 1)])?.handshakeMs, undefined);
  assert.equal(summariseSession([]), undefined);
});

test('sessionRatios: session over udp per size and for the round trip; undefined without both', () => {
  const udp = pathResult('udp', [run(1, 'udp', 80_000, 50)]);
  const session = pathResult('session', [run(1, 'session', 4000, 1000, 40)]);
  assert.deepEqual(sessionRatios([udp, session]), {
    throughput: [{ size: 100, ratio: 0.05 }, { size: 1000, ratio: 0.05 }], cpuPerMessage: [{ size: 100, ratio: 20 }, { size: 1000, ratio: 20 }], p50: 20, p99: 20,
  });
  assert.equal(sessionRatios([udp]), undefined);
  assert.equal(sessionRatios([udp, { path: 'session', label: 'secure session', status: 'failed', error: 'boom', runs: [] }]), undefined);
});

function result(paths: SessionPathResult[]): SessionBenchResult {
  return {
    config: { durationS: 1, warmupS: 0.5, runs: 1, sizes: [100, 1000], latencySize: 100, udpWindow: 256, udpWindowBytes: 1 << 20, udpAckEvery: 16, sessionQueue: 512, pinning: 'no pinning', profiled: false },
    paths, sessionVsUdp: sessionRatios(paths), profiles: [],
  };
}

test('formatSessionBench: a throughput and a latency table with ×udp, the ratio line, failures and loss as notes', () => {
  const udp = pathResult('udp', [run(1, 'udp', 80_000, 50)]);
  const session = pathResult('session', [run(1, 'session', 4000, 1000, 40)]);
  const text = formatSessionBench(result([udp, session]));
  assert.match(text, /^plain UDP\s+100\s+80,000\s+8\.0\s+0\.00\s+85,000\s+1\.06\s+100\s+90\s+23\.8\s+—\s+1\.00\s+1\.00$/m);
  assert.match(text, /^secure session\s+1000\s+2,000\s+2\.0\s+0\.00\s+2,125\s+1\.06\s+100\s+90\s+950\.0\s+2\s+0\.050\s+20\.00$/m);
  assert.match(text, /^secure session\s+100\s+1,000\s+1,000\s+3,000\s+0\s+20\.00\s+20\.00\s+40\.0$/m);
  assert.match(text, /^plain UDP\s+100\s+20,000\s+50\s+150\s+0\s+1\.00\s+1\.00\s+—$/m);
  assert.match(text, /^session \/ udp: 0\.050× messages\/s at 100 B, 0\.050× at 1000 B; 20\.00× CPU time per message at 100 B, 20\.00× at 1000 B; round trip p50 20\.00×, p99 20\.00×$/m);
  assert.doesNotMatch(text, /not CPU-bound/);
  const idle = pathResult('udp', [{ run: 1, report: { ...report('udp', 80_000, 50), throughput: [stream(100, 30_000, { senderCpuPct: 40, receiverCpuPct: 35 })] }, receiverStats: undefined }]);
  assert.match(formatSessionBench(result([idle, session])), /^note: plain UDP at 100 B was not CPU-bound \(sender 40 %, receiver 35 %\)/m);
  const lossy = pathResult('udp', [{ run: 1, report: { ...report('udp', 80_000, 50), throughput: [stream(100, 75_000, { sent: 100_000 })] }, receiverStats: undefined }]);
  assert.match(formatSessionBench(result([lossy, session])), /^note: plain UDP lost 25\.00 % of 100-byte messages/m);
  const failed = formatSessionBench(result([udp, { path: 'session', label: 'secure session', status: 'failed', error: 'boom', runs: [] }]));
  assert.match(failed, /^secure session\s+failed: boom$/m);
  assert.doesNotMatch(failed, /session \/ udp/);
});
