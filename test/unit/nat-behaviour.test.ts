// The pure half of NAT discovery: RFC 4787 behaviours → RFC 3489 labels, the
// port-allocation pattern, and the advice, as tables.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { advice, classicType, portAllocation, type Behaviour, type ClassicInputs, type ClassicType } from '../../src/nat/index.ts';

const EIM: Behaviour = 'endpoint-independent';
const ADM: Behaviour = 'address-dependent';
const APDM: Behaviour = 'address-and-port-dependent';

const classic: [ClassicInputs, ClassicType][] = [
  [{ udp: false, natted: undefined, mapping: 'unknown', filtering: 'unknown' }, 'udp-blocked'],
  [{ udp: true, natted: false, mapping: EIM, filtering: EIM }, 'open-internet'],
  [{ udp: true, natted: false, mapping: EIM, filtering: APDM }, 'symmetric-udp-firewall'],
  [{ udp: true, natted: false, mapping: EIM, filtering: ADM }, 'symmetric-udp-firewall'],
  [{ udp: true, natted: true, mapping: EIM, filtering: EIM }, 'full-cone'],
  [{ udp: true, natted: true, mapping: EIM, filtering: ADM }, 'restricted-cone'],
  [{ udp: true, natted: true, mapping: EIM, filtering: APDM }, 'port-restricted-cone'],
  [{ udp: true, natted: true, mapping: ADM, filtering: APDM }, 'symmetric'],
  [{ udp: true, natted: true, mapping: APDM, filtering: EIM }, 'symmetric'],
  [{ udp: true, natted: true, mapping: 'unknown', filtering: EIM }, 'unknown'],
  [{ udp: true, natted: true, mapping: EIM, filtering: 'unknown' }, 'unknown'],
  [{ udp: true, natted: undefined, mapping: EIM, filtering: EIM }, 'unknown'],
];
for (const [inputs, expected] of classic) {
  test(`classic label: ${JSON.stringify(inputs)} → ${expected}`, () => {
    assert.equal(classicType(inputs), expected);
  });
}

const ports = (...pairs: [number, number][]) => pairs.map(([localPort, mappedPort]) => ({ localPort, mappedPort }));
const allocation: [string, ReturnType<typeof ports>, ReturnType<typeof portAllocation>][] = [
  ['nothing measured', [], { kind: 'unknown' }],
  ['every port kept', ports([4000, 4000], [5000, 5000]), { kind: 'preserving' }],
  ['step 1', ports([4000, 20000], [4100, 20001], [4200, 20002], [4300, 20003]), { kind: 'sequential', step: 1 }],
  ['step 2', ports([4000, 20000], [4100, 20002], [4200, 20004]), { kind: 'sequential', step: 2 }],
  ['step −1', ports([4000, 20000], [4100, 19999], [4200, 19998]), { kind: 'sequential', step: -1 }],
  ['two samples say nothing of a sequence', ports([4000, 20000], [4100, 20001]), { kind: 'unknown' }],
  ['uneven steps', ports([4000, 20000], [4100, 20001], [4200, 20003]), { kind: 'random' }],
  ['large jumps', ports([4000, 20000], [4100, 41234], [4200, 9876]), { kind: 'random' }],
  ['one port kept, others not', ports([4000, 4000], [4100, 4101], [4200, 4202]), { kind: 'random' }],
];
for (const [name, samples, expected] of allocation) {
  test(`port allocation: ${name}`, () => {
    assert.deepEqual(portAllocation(samples), expected);
  });
}

test('property: a sequence with any constant small step is read as that step', () => {
  fc.assert(
    fc.property(fc.integer({ min: 1024, max: 60000 }), fc.integer({ min: -16, max: 16 }).filter((s) => s !== 0), fc.integer({ min: 3, max: 8 }), (start, step, n) => {
      const samples = Array.from({ length: n }, (_, i) => ({ localPort: 1000 + i, mappedPort: start + i * step }));
      assert.deepEqual(portAllocation(samples), { kind: 'sequential', step });
    }),
  );
});

const base = { hairpinning: true, allocation: { kind: 'preserving' } as const, bindingAliveS: undefined, bindingExpiredS: undefined };
test('advice names the consequence of each finding', () => {
  assert.match(advice({ ...base, udp: false, natted: undefined, mapping: 'unknown', filtering: 'unknown' }).join(' '), /relay over TCP or TLS/);
  assert.match(advice({ ...base, udp: true, natted: true, mapping: APDM, filtering: APDM, allocation: { kind: 'sequential', step: 1 } }).join(' '), /need a relay[^]*steps of 1/);
  assert.match(advice({ ...base, udp: true, natted: true, mapping: EIM, filtering: APDM }).join(' '), /symmetric NAT will need a relay/);
  assert.match(advice({ ...base, udp: true, natted: true, mapping: EIM, filtering: EIM, hairpinning: false }).join(' '), /No hairpinning/);
  const keepalive = advice({ ...base, udp: true, natted: true, mapping: EIM, filtering: EIM, bindingAliveS: 30, bindingExpiredS: 60 }).join(' ');
  assert.match(keepalive, /survive at least 30 s and are gone by 60 s: send keepalives every 24 s/);
  assert.match(advice({ ...base, udp: true, natted: true, mapping: EIM, filtering: EIM, bindingExpiredS: 2 }).join(' '), /keepalives every 1 s/);
});
