// planPunch (pure) for every preset pair, from each preset's RFC 4787 truth: the outcome
// matches the matrix table (the sim test checks the same table end to end), both sides
// agree, and each technique's plan has its shape: windows of predicted ports, lockstep
// order, birthday roles with their probability, the packet budget.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Endpoint } from '../../src/net/index.ts';
import { DEFAULT_BUDGET, birthdayProbability, planPunch, predictPorts, type PunchOffer } from '../../src/punch/index.ts';
import type { Candidate, NatSummary } from '../../src/rendezvous/index.ts';
import { EXPECTED_TABLE, PRESETS, parseTable, type Preset } from '../sim/punch-world.ts';

const EI = 'endpoint-independent';
const AD = 'address-dependent';
const APD = 'address-and-port-dependent';

const TRUTH: Readonly<Record<Preset, NatSummary>> = {
  'open': { mapping: EI, filtering: EI, allocation: { kind: 'preserving' }, hairpinning: true },
  'full-cone': { mapping: EI, filtering: EI, allocation: { kind: 'preserving' }, hairpinning: false },
  'restricted': { mapping: EI, filtering: AD, allocation: { kind: 'preserving' }, hairpinning: false },
  'port-restricted': { mapping: EI, filtering: APD, allocation: { kind: 'preserving' }, hairpinning: false },
  'symmetric-seq': { mapping: APD, filtering: APD, allocation: { kind: 'sequential', step: 1 }, hairpinning: false },
  'symmetric-random': { mapping: APD, filtering: APD, allocation: { kind: 'random' }, hairpinning: false },
  'double-nat': { mapping: EI, filtering: APD, allocation: { kind: 'random' }, hairpinning: false },
  'udp-blocked': { mapping: 'unknown', filtering: 'unknown', allocation: { kind: 'unknown' }, hairpinning: undefined },
  'firewall': { mapping: EI, filtering: APD, allocation: { kind: 'preserving' }, hairpinning: true },
};

const at = (address: string, port: number): Endpoint => ({ address, port, family: 4 });
const udp = (kind: Candidate['kind'], endpoint: Endpoint): Candidate => ({ kind, transport: 'udp', endpoint });

/** A peer's offer: host and reflexive candidates, or host and relayed when UDP is blocked. */
function offer(preset: Preset, n: number): PunchOffer {
  const host = udp('host', at(`100.64.${n}.2`, 40000));
  const second = preset === 'udp-blocked' ? udp('relayed', at('198.18.0.20', 50000 + n)) : udp('server-reflexive', at(`198.18.0.${100 + n}`, 40000 + n));
  return { candidates: [host, second], nat: TRUTH[preset] };
}

const EXPECTED = parseTable(EXPECTED_TABLE);

for (const a of PRESETS) {
  for (const b of PRESETS) {
    const expected = EXPECTED.get(`${a}|${b}`)!;
    test(`${a} × ${b}: ${expected}, the same from both sides`, () => {
      const mine = planPunch(offer(a, 1), offer(b, 2));
      const theirs = planPunch(offer(b, 2), offer(a, 1));
      assert.equal(mine.outcome, expected, mine.reason);
      assert.equal(theirs.outcome, expected, theirs.reason);
      assert.equal(mine.reason, theirs.reason);
      assert.ok(mine.packetBudget >= mine.targets.reduce((n, t) => n + t.tries, 0));
    });
  }
}

test('prediction against a sequential allocator: the filtering side probes the window after the last port', () => {
  const plan = planPunch(offer('port-restricted', 1), offer('symmetric-seq', 2));
  const predicted = plan.targets.filter((t) => t.method === 'predicted');
  assert.deepEqual(predicted.map((t) => t.endpoint.port), predictPorts(40002, 1, DEFAULT_BUDGET.predictionWindow, DEFAULT_BUDGET.portRange));
  assert.deepEqual(predicted[0], { endpoint: at('198.18.0.102', 40003), method: 'predicted', tries: DEFAULT_BUDGET.predictionTries });
  assert.equal(plan.targets[0]?.method, 'host', 'ordinary checks first, the window after');
  // The sequential side only checks the cone's candidates: its new port is what the window catches.
  const other = planPunch(offer('symmetric-seq', 2), offer('port-restricted', 1));
  assert.deepEqual(other.targets.map((t) => t.method), ['host', 'reflexive']);
});

test('lockstep prediction: both sequential sides send to the window first, in the same order', () => {
  const plan = planPunch(offer('symmetric-seq', 1), offer('symmetric-seq', 2), { predictionWindow: 4 });
  assert.deepEqual(plan.targets.map((t) => `${t.method} ${t.endpoint.port}`), [
    'predicted 40003', 'predicted 40004', 'predicted 40005', 'predicted 40006', 'host 40000', 'reflexive 40002',
  ]);
});

/** A sequential peer whose offer lists several server-reflexive mappings, in the given order. */
function sequential(n: number, step: number, ports: readonly number[]): PunchOffer {
  const nat: NatSummary = { ...TRUTH['symmetric-seq'], allocation: { kind: 'sequential', step } };
  return { candidates: [udp('host', at(`100.64.${n}.2`, 40000)), ...ports.map((p) => udp('server-reflexive', at(`198.18.0.${100 + n}`, p)))], nat };
}

// The lab's sequential × sequential row ended on the relay: the offers listed checkNat's
// first mapping (the rendezvous server's view) before the freshest. Prediction counts from
// the mapping furthest along in allocation order, whatever the order of the list.
const freshest = [
  { name: 'oldest first', step: 1, ports: [40000, 40005], want: [40006, 40007, 40008] },
  { name: 'freshest first', step: 1, ports: [40005, 40000], want: [40006, 40007, 40008] },
  { name: 'three, shuffled, step 2', step: 2, ports: [40002, 40000, 40006, 40004], want: [40008, 40010, 40012] },
  { name: 'negative step: the lowest port', step: -1, ports: [40000, 39995, 39998], want: [39994, 39993, 39992] },
  { name: 'wrapped past the top of the range', step: 1, ports: [65534, 1025, 65535], want: [1026, 1027, 1028] },
  { name: 'wrapped past the bottom, negative step', step: -1, ports: [1025, 65534, 1024], want: [65533, 65532, 65531] },
  { name: 'one mapping listed twice', step: 1, ports: [40003, 40003], want: [40004, 40005, 40006] },
];
for (const c of freshest) {
  test(`prediction counts from the freshest reflexive mapping: ${c.name}`, () => {
    const budget = { predictionWindow: 3 };
    const lockstep = planPunch(sequential(1, c.step, [41000]), sequential(2, c.step, c.ports), budget);
    assert.deepEqual(lockstep.targets.slice(0, 3).map((t) => `${t.method} ${t.endpoint.port}`), c.want.map((p) => `predicted ${p}`));
    // Every advertised mapping is still checked, after the window.
    assert.deepEqual(lockstep.targets.filter((t) => t.method === 'reflexive').map((t) => t.endpoint.port), c.ports);
    const cone = planPunch(offer('port-restricted', 1), sequential(2, c.step, c.ports), budget);
    assert.deepEqual(cone.targets.filter((t) => t.method === 'predicted').map((t) => t.endpoint.port), c.want);
  });
}

test('lockstep from both sides: each predicts from the other\'s freshest mapping, in either list order', () => {
  const budget = { predictionWindow: 2 };
  const a = sequential(1, 1, [30000, 30004]);
  const b = sequential(2, 1, [50007, 50001]);
  const ports = (p: ReturnType<typeof planPunch>): number[] => p.targets.filter((t) => t.method === 'predicted').map((t) => t.endpoint.port);
  assert.deepEqual(ports(planPunch(a, b, budget)), [50008, 50009]);
  assert.deepEqual(ports(planPunch(b, a, budget)), [30005, 30006]);
});

test('random ports: the birthday target is the first reflexive candidate (no order to read)', () => {
  const random: PunchOffer = { ...offer('symmetric-random', 1), candidates: [...offer('symmetric-random', 1).candidates, udp('server-reflexive', at('198.18.0.101', 50000))] };
  const plan = planPunch(offer('port-restricted', 2), random);
  assert.deepEqual(plan.birthdayProbes?.address, '198.18.0.101');
  assert.deepEqual(planPunch(random, offer('port-restricted', 2)).birthdaySockets?.target, at('198.18.0.102', 40002));
});

test('birthday method: sockets on the random side, probes on the other, probability beside the budget', () => {
  const random = planPunch(offer('symmetric-random', 1), offer('port-restricted', 2));
  const cone = planPunch(offer('port-restricted', 2), offer('symmetric-random', 1));
  assert.deepEqual(random.birthdaySockets, { count: 256, target: at('198.18.0.102', 40002), tries: 2 });
  assert.equal(random.birthdayProbes, undefined);
  assert.equal(cone.birthdaySockets, undefined);
  assert.deepEqual(cone.birthdayProbes, { address: '198.18.0.101', count: 2048, portRange: [1024, 65535] });
  // 1 − (1 − 256/64512)^2048 ≈ 0.9997
  assert.ok(cone.birthdayProbability !== undefined && cone.birthdayProbability > 0.999 && cone.birthdayProbability < 1);
  assert.equal(random.birthdayProbability, cone.birthdayProbability);
  assert.equal(cone.packetBudget, 2 * 10 + 2048);
  assert.equal(random.packetBudget, 2 * 10 + 256 * 2);
  assert.equal(cone.directMs, 2 * DEFAULT_BUDGET.directMs);
});

test('relay plans keep only the host checks (same-LAN peers) and a short direct time', () => {
  const plan = planPunch(offer('udp-blocked', 1), offer('full-cone', 2));
  assert.deepEqual(plan.targets.map((t) => t.method), ['host']);
  assert.equal(plan.directMs, DEFAULT_BUDGET.relayHostMs);
});

test('a port mapping makes a side reachable whatever its NAT', () => {
  const mapped: PunchOffer = { ...offer('symmetric-random', 1), candidates: [...offer('symmetric-random', 1).candidates, udp('port-mapped', at('198.18.0.101', 7000))] };
  const plan = planPunch(offer('symmetric-random', 2), mapped);
  assert.equal(plan.outcome, 'direct');
  assert.deepEqual(plan.targets.map((t) => t.method), ['host', 'mapped', 'reflexive']);
});

test('an unmeasured NAT reads as the strictest: relay against a random allocator, direct to a reachable peer', () => {
  const unknown: PunchOffer = { ...offer('port-restricted', 1), nat: undefined };
  assert.equal(planPunch(unknown, offer('symmetric-random', 2)).outcome, 'relay');
  assert.equal(planPunch(unknown, offer('full-cone', 2)).outcome, 'direct');
});

const cases = [
  { name: 'plain window', base: 40000, step: 1, window: 3, want: [40001, 40002, 40003] },
  { name: 'step 2', base: 40000, step: 2, window: 2, want: [40002, 40004] },
  { name: 'negative step', base: 40000, step: -1, window: 2, want: [39999, 39998] },
  { name: 'wraps at the top', base: 65534, step: 1, window: 3, want: [65535, 1024, 1025] },
  { name: 'wraps at the bottom', base: 1025, step: -1, window: 3, want: [1024, 65535, 65534] },
];
for (const c of cases) {
  test(`predictPorts: ${c.name}`, () => assert.deepEqual(predictPorts(c.base, c.step, c.window, [1024, 65535]), c.want));
}

test('birthdayProbability: the closed form at its edges', () => {
  assert.equal(birthdayProbability(0, 1000, 64512), 0);
  assert.equal(birthdayProbability(64512, 1, 64512), 1);
  assert.ok(Math.abs(birthdayProbability(256, 1024, 64512) - (1 - Math.exp(-256 * 1024 / 64512))) < 0.001);
});
