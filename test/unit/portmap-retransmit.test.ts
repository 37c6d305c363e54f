// The shared retransmission core on a fake timeline: RFC 6886 §3.1 (NAT-PMP: 250 ms
// doubling, nine transmissions, then 64 s) and RFC 6887 §8.1.1 (PCP: IRT 3 s, MRT cap,
// MRD, ±10 % jitter), answers, and the checks of the timers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  NATPMP_TIMERS, PCP_TIMERS, Retransmission, resolveRetransmitTimers, type ResolvedTimers, type RetransmitOutcome,
} from '../../src/portmap/index.ts';
import { isNatkitError } from '../../src/util/index.ts';

const REQUEST = Uint8Array.of(0, 0);

/** Runs a retransmission with no answer, polling exactly at each deadline. */
function silent(timers: ResolvedTimers, random = (): number => 0.5): { sends: number[]; endAt: number; outcome: RetransmitOutcome } {
  const rtx = new Retransmission(REQUEST, timers, random);
  const sends: number[] = [];
  let step = rtx.start(0);
  let now = 0;
  if (step.send) sends.push(now);
  for (let guard = 0; step.outcome === undefined && guard < 1000; guard++) {
    assert.ok(step.deadline !== undefined && step.deadline >= now);
    now = step.deadline;
    step = rtx.poll(now);
    if (step.send) {
      assert.equal(step.send, REQUEST, 'every transmission sends the same bytes');
      sends.push(now);
    }
  }
  assert.ok(step.outcome);
  return { sends, endAt: now, outcome: step.outcome };
}

const cases: { name: string; timers: ResolvedTimers; random?: () => number; sends: number[]; endAt: number }[] = [
  {
    // RFC 6886 §3.1: 250 ms, then 500 ms, … doubling; after the ninth attempt wait 64 s.
    name: 'NAT-PMP defaults (RFC 6886 §3.1)',
    timers: NATPMP_TIMERS,
    sends: [0, 250, 750, 1750, 3750, 7750, 15750, 31750, 63750],
    endAt: 127_750,
  },
  {
    // RFC 6887 §8.1.1 with RAND = 0: 3 s, 6 s, 12 s, 24 s …, cut at our MRD of 60 s.
    name: 'PCP defaults without jitter (RAND = 0)',
    timers: PCP_TIMERS,
    sends: [0, 3000, 9000, 21_000, 45_000],
    endAt: 60_000,
  },
  {
    name: 'PCP jitter at its low bound (RAND = −0.1)',
    timers: { ...PCP_TIMERS, maxDurationMs: 30_000 },
    random: () => 0,
    // RT1 = 0.9 × 3000 = 2700; RT2 = 0.9 × 5400 = 4860; RT3 = 0.9 × 9720 = 8748; RT4 = 0.9 × 17496 = 15746.4
    sends: [0, 2700, 7560, 16_308],
    endAt: 30_000,
  },
  {
    name: 'MRT caps the interval (before jitter)',
    timers: { initialMs: 100, maxIntervalMs: 300, maxTransmissions: 6, maxDurationMs: Infinity, jitter: 0 },
    sends: [0, 100, 300, 600, 900, 1200],
    endAt: 1500,
  },
  {
    name: 'MRC 1 waits one IRT',
    timers: { ...NATPMP_TIMERS, maxTransmissions: 1 },
    sends: [0],
    endAt: 250,
  },
];

for (const c of cases) {
  test(`schedule: ${c.name}`, () => {
    const { sends, endAt, outcome } = silent(c.timers, c.random);
    assert.deepEqual(sends.map((t) => Math.round(t * 1000) / 1000), c.sends);
    assert.ok(Math.abs(endAt - c.endAt) < 1e-6, `ends at ${endAt}, expected ${c.endAt}`);
    assert.deepEqual(outcome, { kind: 'timeout', elapsedMs: endAt, transmissions: c.sends.length });
  });
}

test('jitter stays within ±jitter of the doubled interval (RFC 6887 §8.1.1)', () => {
  for (const r of [0, 0.1, 0.5, 0.9, 0.999_999]) {
    const { sends } = silent({ ...PCP_TIMERS, maxTransmissions: 8, maxDurationMs: Infinity }, () => r);
    let prev = 0;
    for (let i = 1; i < sends.length; i++) {
      const rt = sends[i]! - sends[i - 1]!;
      const base = i === 1 ? PCP_TIMERS.initialMs : Math.min(2 * prev, PCP_TIMERS.maxIntervalMs);
      assert.ok(rt >= base * 0.9 - 1e-9 && rt <= base * 1.1 + 1e-9, `RT ${rt} within 10 % of ${base}`);
      prev = rt;
    }
  }
});

test('an answer stops the schedule; polls after it change nothing', () => {
  const rtx = new Retransmission(REQUEST, NATPMP_TIMERS, () => 0.5);
  rtx.start(1000);
  assert.equal(rtx.poll(1250).send, REQUEST);
  assert.deepEqual(rtx.answered(1300), { kind: 'answered', rttMs: 300, transmissions: 2 });
  assert.equal(rtx.deadline, undefined);
  assert.deepEqual(rtx.poll(99_999), { outcome: { kind: 'answered', rttMs: 300, transmissions: 2 } });
  assert.deepEqual(rtx.answered(2000), { kind: 'answered', rttMs: 300, transmissions: 2 }, 'idempotent');
});

test('an early poll only repeats the deadline', () => {
  const rtx = new Retransmission(REQUEST, NATPMP_TIMERS, () => 0.5);
  assert.deepEqual(rtx.start(0), { send: REQUEST, deadline: 250 });
  assert.deepEqual(rtx.poll(100), { deadline: 250 });
  assert.throws(() => rtx.start(5), (e) => isNatkitError(e, 'ERR_INVALID_ARGUMENT'));
});

const invalid: { name: string; timers: Parameters<typeof resolveRetransmitTimers>[0] }[] = [
  { name: 'initialMs 0', timers: { initialMs: 0 } },
  { name: 'maxIntervalMs below initialMs', timers: { initialMs: 500, maxIntervalMs: 100 } },
  { name: 'maxTransmissions 0', timers: { maxTransmissions: 0 } },
  { name: 'maxTransmissions 2.5', timers: { maxTransmissions: 2.5 } },
  { name: 'jitter 0.6', timers: { jitter: 0.6 } },
  { name: 'NaN duration', timers: { maxDurationMs: NaN } },
  { name: 'unbounded (MRC and MRD both Infinity)', timers: { maxTransmissions: Infinity, maxDurationMs: Infinity } },
];
for (const c of invalid) {
  test(`timers rejected: ${c.name}`, () => {
    assert.throws(() => resolveRetransmitTimers(c.timers, PCP_TIMERS), (e) => isNatkitError(e, 'ERR_INVALID_ARGUMENT'));
  });
}
