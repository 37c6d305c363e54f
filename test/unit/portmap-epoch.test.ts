// Gateway reboot detection: RFC 6886 §3.6 (NAT-PMP: at least 7/8 of the elapsed time,
// less 2 s) and RFC 6887 §8.5 (PCP: never back by more than 1 s; both clocks agree within
// 2 s plus 1/16), as tables, and the tracker that applies them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EpochTracker, natPmpEpochRule, pcpEpochRule, type EpochRule } from '../../src/portmap/index.ts';

interface Case {
  readonly name: string;
  /** Previous epoch (s), at client time 0. */
  readonly prevS: number;
  /** Current epoch (s) and client time elapsed (s). */
  readonly currS: number;
  readonly elapsedS: number;
  readonly valid: boolean;
}

const natpmp: Case[] = [
  { name: 'in step', prevS: 1000, currS: 1100, elapsedS: 100, valid: true },
  { name: 'gateway clock 12 % slow (within 7/8)', prevS: 1000, currS: 1088, elapsedS: 100, valid: true },
  // 1000 + 87.5 − 2 = 1085.5
  { name: 'just above the bound', prevS: 1000, currS: 1086, elapsedS: 100, valid: true },
  { name: 'just below the bound: rebooted', prevS: 1000, currS: 1085, elapsedS: 100, valid: false },
  { name: 'going backwards: rebooted', prevS: 1000, currS: 5, elapsedS: 10, valid: false },
  { name: 'back by 1 s at once: within the 2 s slack', prevS: 1000, currS: 999, elapsedS: 0, valid: true },
  { name: 'back by 3 s: rebooted', prevS: 1000, currS: 997, elapsedS: 0, valid: false },
  { name: 'gateway clock fast is fine', prevS: 1000, currS: 5000, elapsedS: 10, valid: true },
];

const pcp: Case[] = [
  { name: 'in step', prevS: 1000, currS: 1100, elapsedS: 100, valid: true },
  { name: 'back by 1 s (reordering): valid', prevS: 1000, currS: 999, elapsedS: 0, valid: true },
  { name: 'back by 2 s: state lost', prevS: 1000, currS: 998, elapsedS: 0, valid: false },
  // server 100 s, client 100 − 100/16 − 2 = 91.75 s: the server ran too fast for it
  { name: 'server ahead beyond 1/16 + 2 s', prevS: 1000, currS: 1100, elapsedS: 91, valid: false },
  { name: 'server ahead within 1/16 + 2 s', prevS: 1000, currS: 1100, elapsedS: 92, valid: true },
  // client 100 s, server needs ≥ 100 − 6.25 − 2 = 91.75 s
  { name: 'server behind beyond 1/16 + 2 s (rebooted)', prevS: 1000, currS: 1091, elapsedS: 100, valid: false },
  { name: 'server behind within 1/16 + 2 s', prevS: 1000, currS: 1092, elapsedS: 100, valid: true },
];

function table(name: string, rule: EpochRule, cases: readonly Case[]): void {
  for (const c of cases) {
    test(`${name}: ${c.name}`, () => {
      assert.equal(rule({ epochS: c.prevS, atMs: 0 }, { epochS: c.currS, atMs: c.elapsedS * 1000 }), c.valid);
    });
  }
}

table('RFC 6886 §3.6', natPmpEpochRule, natpmp);
table('RFC 6887 §8.5', pcpEpochRule, pcp);

test('the tracker: first, valid, reset, and it records every sample', () => {
  const t = new EpochTracker(natPmpEpochRule);
  assert.equal(t.observe(100, 0), 'first');
  assert.equal(t.observe(110, 10_000), 'valid');
  assert.equal(t.observe(3, 20_000), 'reset', 'a reboot');
  assert.deepEqual(t.previous, { epochS: 3, atMs: 20_000 });
  assert.equal(t.observe(13, 30_000), 'valid', 'compared with the post-reboot sample');
  t.forget();
  assert.equal(t.observe(0, 40_000), 'first');
});
