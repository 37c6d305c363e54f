// RFC 4787 §4.1 mapping and §4.2.1 port assignment in the simulated world, each knob
// observed by packets: a LAN socket asks reflectors on two server addresses and two
// ports what its mapped endpoint is; and NAT behind NAT translates twice.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { endpointKey } from '../../src/net/index.ts';
import type { Dependence, NatOptions, World } from '../../src/net/sim/index.ts';
import { mappedVia, reflectorGrid, simTest, type ReflectorGrid } from '../helpers/sim.ts';

const SERVER_ADDRESSES = ['198.18.0.10', '198.18.0.11'];

/** A two-address server with reflectors on ports 3478 and 3479. */
async function server(world: World): Promise<ReflectorGrid> {
  const host = world.addHost({ name: 'server', addresses: SERVER_ADDRESSES });
  return reflectorGrid(host, SERVER_ADDRESSES, [3478, 3479]);
}

const mappingCases: { mapping: Dependence; sameForOtherPort: boolean; sameForOtherAddress: boolean }[] = [
  { mapping: 'endpoint-independent', sameForOtherPort: true, sameForOtherAddress: true },
  { mapping: 'address-dependent', sameForOtherPort: true, sameForOtherAddress: false },
  { mapping: 'address-and-port-dependent', sameForOtherPort: false, sameForOtherAddress: false },
];

for (const c of mappingCases) {
  test(`§4.1 ${c.mapping} mapping: the mapped endpoint seen from another port and another address`, simTest({}, async (world) => {
    await using grid = await server(world);
    const home = world.addRouter({ name: 'home', nat: { mapping: c.mapping, filtering: 'endpoint-independent' } });
    await using socket = await home.addHost({ name: 'alice' }).network.bindUdp();
    const first = await mappedVia(world, socket, grid.at(0, 0));
    const otherPort = await mappedVia(world, socket, grid.at(0, 1));
    const otherAddress = await mappedVia(world, socket, grid.at(1, 0));
    assert.ok(first?.startsWith(`${home.wanAddress()}:`), `mapped to the router's address, got ${first}`);
    assert.equal(otherPort === first, c.sameForOtherPort, `other port: ${first} vs ${otherPort}`);
    assert.equal(otherAddress === first, c.sameForOtherAddress, `other address: ${first} vs ${otherAddress}`);
    assert.equal(new Set(home.mappings().map((m) => endpointKey(m.external))).size, new Set([first, otherPort, otherAddress]).size);
  }));
}

test('§4.2.1 port preservation: the internal port when free, another one when a second host holds it', simTest({}, async (world) => {
  await using grid = await server(world);
  const home = world.addRouter({ name: 'home', nat: { portAllocation: { kind: 'preserving' } } });
  await using a = await home.addHost({ name: 'alice' }).network.bindUdp({ port: 40_000 });
  await using b = await home.addHost({ name: 'bob' }).network.bindUdp({ port: 40_000 });
  assert.equal(await mappedVia(world, a, grid.at(0, 0)), `${home.wanAddress()}:40000`);
  const second = await mappedVia(world, b, grid.at(0, 0));
  assert.ok(second !== undefined && second !== `${home.wanAddress()}:40000`, `bob gets another port, got ${second}`);
}));

test('§4.2.1 sequential allocation with step 2: each new mapping takes the next port', simTest({}, async (world) => {
  await using grid = await server(world);
  const home = world.addRouter({
    name: 'home',
    nat: { mapping: 'address-and-port-dependent', portAllocation: { kind: 'sequential', step: 2, start: 20_000 } },
  });
  await using socket = await home.addHost({ name: 'alice' }).network.bindUdp();
  const ports: number[] = [];
  for (const [a, p] of [[0, 0], [0, 1], [1, 0], [1, 1]] as const) {
    const mapped = await mappedVia(world, socket, grid.at(a, p));
    ports.push(Number(mapped?.split(':').pop()));
  }
  assert.deepEqual(ports, [20_000, 20_002, 20_004, 20_006]);
}));

test('§4.2.1 random allocation: ports spread over the range, the same for the same seed', async () => {
  const run = async (seed: number): Promise<number[]> => {
    const ports: number[] = [];
    await simTest({ seed }, async (world) => {
      await using grid = await server(world);
      const home = world.addRouter({ name: 'home', nat: { mapping: 'address-and-port-dependent', portAllocation: { kind: 'random' }, portRange: [10_000, 60_000] } });
      await using socket = await home.addHost({ name: 'alice' }).network.bindUdp({ port: 5000 });
      for (const [a, p] of [[0, 0], [0, 1], [1, 0], [1, 1]] as const) ports.push(Number((await mappedVia(world, socket, grid.at(a, p)))?.split(':').pop()));
    })();
    return ports;
  };
  const one = await run(1);
  assert.deepEqual(await run(1), one, 'same seed, same ports');
  assert.notDeepEqual(await run(2), one, 'another seed, other ports');
  assert.ok(one.every((p) => p >= 10_000 && p <= 60_000), `within portRange: ${one.join(', ')}`);
  assert.ok(!one.includes(5000), 'the internal port is not preserved');
  const steps = one.slice(1).map((p, i) => Math.abs(p - (one[i] ?? 0)));
  assert.ok(steps.some((d) => d > 50), `not sequential: ${one.join(', ')}`);
});

test('carrier-grade NAT: a home NAT behind a CGN, translated twice; the server sees the CGN', simTest({}, async (world) => {
  await using grid = await server(world);
  const cgn = world.addRouter({ name: 'cgn', nat: { portAllocation: { kind: 'sequential', start: 30_000 } } });
  const home = cgn.addRouter({ name: 'home' });
  const alice = home.addHost({ name: 'alice' });
  await using socket = await alice.network.bindUdp({ port: 5000 });
  const mapped = await mappedVia(world, socket, grid.at(0, 0));
  assert.ok(home.wanAddress().startsWith('100.64.'), `the home router sits in the CGN's 100.64.0.0/10 space: ${home.wanAddress()}`);
  const [homeMapping] = home.mappings();
  const [cgnMapping] = cgn.mappings();
  assert.deepEqual(homeMapping?.internal, { address: alice.address(), port: 5000, family: 4 });
  assert.deepEqual(homeMapping?.external, { address: home.wanAddress(), port: 5000, family: 4 });
  assert.deepEqual(cgnMapping?.internal, homeMapping?.external, 'the CGN maps the home router\'s external endpoint');
  assert.equal(mapped, `${cgn.wanAddress()}:30000`);
  const translations = world.trace.entries().filter((e) => e.event === 'translate' && e.packet === 1).map((e) => e.at);
  assert.deepEqual(translations, ['home', 'cgn'], 'the first datagram is translated by both, inner first');
}));

test('mappings() lists live mappings; a NAT out of ports drops with ports-exhausted', simTest({}, async (world) => {
  await using grid = await server(world);
  const nat: NatOptions = { mapping: 'address-and-port-dependent', portRange: [7000, 7002] };
  const home = world.addRouter({ name: 'home', nat });
  await using socket = await home.addHost({ name: 'alice' }).network.bindUdp();
  const seen: (string | undefined)[] = [];
  for (const [a, p] of [[0, 0], [0, 1], [1, 0], [1, 1]] as const) seen.push(await mappedVia(world, socket, grid.at(a, p)));
  assert.equal(seen.filter((m) => m !== undefined).length, 3);
  assert.equal(seen[3], undefined);
  assert.deepEqual(home.mappings().map((m) => m.external.port).sort(), [7000, 7001, 7002]);
  assert.ok(world.trace.entries().some((e) => e.reason === 'ports-exhausted'));
}));
