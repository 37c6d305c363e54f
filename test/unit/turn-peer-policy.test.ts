// The relay's peer policy (RFC 8656 §21.3) and the port pool (RFC 8656 §7.2): what is
// denied by default, what an allow-list admits, IPv4 hidden in IPv6, configuration errors,
// and EVEN-PORT bookkeeping.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PeerPolicy, PortPoolAllocator } from '../../src/turn/index.ts';
import { isNatkitError } from '../../src/util/index.ts';
import { fixedRandom } from '../fixtures/turn/harness.ts';

const cases: readonly { address: string; permitted: boolean; policy?: ConstructorParameters<typeof PeerPolicy>[0] }[] = [
  { address: '8.8.8.8', permitted: true },
  { address: '2606:4700::1111', permitted: true },
  { address: '169.254.169.254', permitted: false },
  { address: '172.31.255.255', permitted: false },
  { address: '172.32.0.1', permitted: true },
  { address: '100.127.255.255', permitted: false },
  { address: '100.128.0.1', permitted: true },
  { address: '::ffff:8.8.8.8', permitted: true },
  { address: '::ffff:127.0.0.1', permitted: false },
  { address: '64:ff9b::7f00:1', permitted: false },
  { address: '2002:7f00:1::1', permitted: false },
  { address: 'fc00::1', permitted: false },
  { address: 'not an address', permitted: false },
  { address: '10.9.8.7', permitted: true, policy: { allow: ['10.0.0.0/8'] } },
  { address: '::ffff:10.9.8.7', permitted: true, policy: { allow: ['10.0.0.0/8'] } },
  { address: '8.8.4.4', permitted: false, policy: { deny: ['8.8.4.0/24'] } },
  { address: '8.8.8.8', permitted: false, policy: { serverAddresses: ['8.8.8.8'] } },
  { address: '8.8.8.8', permitted: true, policy: { serverAddresses: ['8.8.8.8'], allow: ['8.8.8.8'] } },
];
for (const c of cases) {
  test(`${c.address} ${c.permitted ? 'permitted' : 'denied'}${c.policy ? ` with ${JSON.stringify(c.policy)}` : ''}`, () => {
    assert.equal(new PeerPolicy(c.policy).permits(c.address), c.permitted);
  });
}

test('bad prefixes fail at construction with ERR_CONFIG', () => {
  for (const allow of ['10.0.0.0/33', 'fe80::/129', 'example.com', '10.0.0.0/x']) {
    assert.throws(() => new PeerPolicy({ allow: [allow] }), (e) => isNatkitError(e, 'ERR_CONFIG'), allow);
  }
});

test('port pool: even ports, the next one held for R, released ports reused, exhaustion, bad ranges', () => {
  const pool = new PortPoolAllocator({ addresses: { 4: '192.0.2.1' }, minPort: 50000, maxPort: 50003, random: fixedRandom() });
  assert.equal(pool.supports(6), false);
  assert.equal(pool.allocate({ family: 6, evenPort: false, reserveNext: false }), undefined);
  const pair = pool.allocate({ family: 4, evenPort: true, reserveNext: true });
  assert.ok(pair?.reserved);
  assert.equal(pair.relayed.port % 2, 0);
  assert.equal(pair.reserved.port, pair.relayed.port + 1);
  const second = pool.allocate({ family: 4, evenPort: true, reserveNext: true });
  assert.ok(second?.reserved);
  assert.equal(pool.inUse(4), 4);
  assert.equal(pool.allocate({ family: 4, evenPort: false, reserveNext: false }), undefined);
  pool.release(second.reserved);
  assert.deepEqual(pool.allocate({ family: 4, evenPort: false, reserveNext: false })?.relayed, second.reserved);
  for (const range of [{ minPort: 0, maxPort: 10 }, { minPort: 10, maxPort: 10 }, { minPort: 1, maxPort: 70000 }]) {
    assert.throws(() => new PortPoolAllocator({ addresses: { 4: '192.0.2.1' }, ...range, random: fixedRandom() }), (e) => isNatkitError(e, 'ERR_CONFIG'));
  }
  assert.throws(() => new PortPoolAllocator({ addresses: { 4: '::1' }, random: fixedRandom() }), (e) => isNatkitError(e, 'ERR_CONFIG'));
});
