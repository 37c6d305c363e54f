// RFC 4787 §5 filtering, §6 hairpinning and §4.3 mapping refresh in the simulated world,
// each observed by packets: unsolicited datagrams from another port and another address,
// a LAN host reaching another through the external address, mappings that time out with
// and without inbound refresh; plus UDP blocked, a stateful firewall without NAT, the
// open internet, IPv6 behind a NAT router, port forwards and the router's own sockets.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { endpoint, parseEndpoint, type Endpoint, type PacketSocket } from '../../src/net/index.ts';
import { NAT_PRESETS, type Dependence, type NatOptions, type SimHost, type World } from '../../src/net/sim/index.ts';
import { collect, mappedVia, reflector, sendText, simTest } from '../helpers/sim.ts';

const A1 = '198.18.0.10';
const A2 = '198.18.0.11';

/** A server with a reflector on A1:3478 and plain sockets on A1:3479 and A2:3478 for unsolicited sends. */
async function server(world: World): Promise<{ host: SimHost; reflector: PacketSocket; otherPort: PacketSocket; otherAddress: PacketSocket } & AsyncDisposable> {
  const host = world.addHost({ name: 'server', addresses: [A1, A2, '2001:db8::10'] });
  const sockets = {
    reflector: await reflector(host, A1, 3478),
    otherPort: await host.network.bindUdp({ address: A1, port: 3479 }),
    otherAddress: await host.network.bindUdp({ address: A2, port: 3478 }),
  };
  return {
    host,
    ...sockets,
    [Symbol.asyncDispose]: async () => {
      await Promise.all(Object.values(sockets).map((s) => s.close()));
    },
  };
}

/** Maps `socket` through the reflector and returns its mapped endpoint. */
async function mapped(world: World, socket: PacketSocket, via: PacketSocket): Promise<Endpoint> {
  const text = await mappedVia(world, socket, via.local);
  assert.ok(text !== undefined, 'the reflector answered');
  return parseEndpoint(text);
}

const filteringCases: { filtering: Dependence; admitted: string[] }[] = [
  { filtering: 'endpoint-independent', admitted: ['from another address', 'from another port'] },
  { filtering: 'address-dependent', admitted: ['from another port'] },
  { filtering: 'address-and-port-dependent', admitted: [] },
];

for (const c of filteringCases) {
  test(`§5 ${c.filtering} filtering: unsolicited datagrams from another port and another address`, simTest({}, async (world) => {
    await using srv = await server(world);
    const home = world.addRouter({ name: 'home', nat: { filtering: c.filtering } });
    await using socket = await home.addHost({ name: 'alice' }).network.bindUdp();
    const m = await mapped(world, socket, srv.reflector);
    const got = collect(socket);
    sendText(srv.otherPort, m, 'from another port');
    sendText(srv.otherAddress, m, 'from another address');
    await world.elapse(50);
    assert.deepEqual(got.map((r) => r.text).sort(), c.admitted);
    const refused = world.trace.entries().filter((e) => e.event === 'drop' && e.reason === 'filtered');
    assert.equal(refused.length, 2 - c.admitted.length);
  }));
}

for (const hairpinning of [true, false]) {
  test(`§6 hairpinning ${hairpinning ? 'on' : 'off'}: a LAN host sends to another's external endpoint`, simTest({}, async (world) => {
    await using srv = await server(world);
    // Port-restricted: bob's mapping never sent to alice's, yet §6 forwards hairpinned packets unfiltered.
    const home = world.addRouter({ name: 'home', nat: { ...NAT_PRESETS['port-restricted-cone'], hairpinning } });
    await using alice = await home.addHost({ name: 'alice' }).network.bindUdp();
    await using bob = await home.addHost({ name: 'bob' }).network.bindUdp();
    const aliceOutside = await mapped(world, alice, srv.reflector);
    const bobOutside = await mapped(world, bob, srv.reflector);
    const got = collect(bob);
    sendText(alice, bobOutside, 'hello neighbour');
    await world.elapse(50);
    if (hairpinning) {
      // REQ-9a: it arrives from alice's external endpoint, not her LAN address.
      assert.deepEqual(got, [{ from: aliceOutside, text: 'hello neighbour' }]);
      assert.ok(world.trace.entries().some((e) => e.event === 'hairpin'));
    } else {
      assert.deepEqual(got, []);
      assert.ok(world.trace.entries().some((e) => e.reason === 'hairpin-off'));
    }
  }));
}

const refreshCases: { name: string; refreshOnInbound: boolean; keepaliveMs?: number; delivered: string[]; reasons: string[] }[] = [
  { name: 'inbound refresh on: inbound traffic keeps it', refreshOnInbound: true, delivered: ['40 s', '80 s', '120 s'], reasons: [] },
  { name: 'inbound refresh off: it expires 60 s after the last outbound', refreshOnInbound: false, delivered: ['40 s'], reasons: ['mapping-expired', 'no-mapping'] },
  { name: 'inbound refresh off, outbound keepalive every 50 s (REQ-6)', refreshOnInbound: false, keepaliveMs: 50_000, delivered: ['40 s', '80 s', '120 s'], reasons: [] },
];

for (const c of refreshCases) {
  test(`§4.3 mapping timeout 60 s, ${c.name}`, simTest({}, async (world) => {
    await using srv = await server(world);
    const nat: NatOptions = { filtering: 'endpoint-independent', mappingTimeoutMs: 60_000, refreshOnInbound: c.refreshOnInbound };
    const home = world.addRouter({ name: 'home', nat });
    await using socket = await home.addHost({ name: 'alice' }).network.bindUdp();
    const m = await mapped(world, socket, srv.reflector);
    const got = collect(socket);
    const start = world.clock.now();
    const at = (ms: number, fn: () => void): void => void world.clock.setTimer(ms - (world.clock.now() - start), fn);
    for (const s of [40, 80, 120]) at(s * 1000, () => sendText(srv.otherPort, m, `${s} s`));
    if (c.keepaliveMs !== undefined) for (let t = c.keepaliveMs; t < 130_000; t += c.keepaliveMs) at(t, () => sendText(socket, srv.otherPort.local, 'keepalive'));
    await world.elapse(130_000);
    assert.deepEqual(got.map((r) => r.text), c.delivered);
    const reasons = world.trace.entries().filter((e) => e.event === 'drop').map((e) => e.reason);
    assert.deepEqual(reasons, c.reasons);
    if (c.reasons.length > 0) {
      // Outbound after expiry makes a new mapping (the port is kept: it is free again).
      assert.deepEqual(await mapped(world, socket, srv.reflector), m);
      assert.equal(home.mappings()[0]?.createdMs, world.clock.now() - 100);
    }
  }));
}

test('udp-blocked: no UDP either way, TCP still connects', simTest({}, async (world) => {
  await using srv = await server(world);
  const home = world.addRouter({ name: 'home', nat: NAT_PRESETS['udp-blocked'] });
  const alice = home.addHost({ name: 'alice' });
  await using socket = await alice.network.bindUdp();
  assert.equal(await mappedVia(world, socket, srv.reflector.local), undefined);
  assert.ok(world.trace.entries().some((e) => e.reason === 'udp-blocked'));
  await using listener = await srv.host.network.listenStream({ address: A1, port: 443 }, () => undefined);
  const stream = await world.run(alice.network.connectStream(listener.local));
  assert.equal(stream.remote.port, 443);
  await stream.close();
}));

test('symmetric-udp-firewall: public address kept, only answers to what was sent get in', simTest({}, async (world) => {
  await using srv = await server(world);
  const fw = world.addRouter({ name: 'fw', nat: NAT_PRESETS['symmetric-udp-firewall'] });
  const alice = fw.addHost({ name: 'alice' });
  assert.ok(alice.address().startsWith('198.19.'), `a public LAN address: ${alice.address()}`);
  await using socket = await alice.network.bindUdp({ address: alice.address() });
  assert.deepEqual(await mapped(world, socket, srv.reflector), socket.local, 'no translation');
  const got = collect(socket);
  sendText(srv.otherPort, socket.local, 'unsolicited');
  await world.elapse(10);
  sendText(socket, srv.otherPort.local, 'now I asked');
  await world.elapse(10);
  sendText(srv.otherPort, socket.local, 'answer');
  await world.elapse(10);
  assert.deepEqual(got.map((r) => r.text), ['answer']);
  assert.equal(world.trace.entries().filter((e) => e.reason === 'filtered').length, 1);
}));

test('open-internet router: public address, unsolicited datagrams get in', simTest({}, async (world) => {
  await using srv = await server(world);
  const open = world.addRouter({ name: 'open', nat: NAT_PRESETS['open-internet'] });
  const alice = open.addHost({ name: 'alice' });
  await using socket = await alice.network.bindUdp({ address: alice.address(), port: 6000 });
  const got = collect(socket);
  sendText(srv.otherAddress, socket.local, 'hello stranger');
  await world.elapse(10);
  assert.deepEqual(got, [{ from: srv.otherAddress.local, text: 'hello stranger' }]);
}));

test('IPv6 behind a NAT router: no translation, stateful filtering; ipv6 "off" leaves the LAN without IPv6', simTest({}, async (world) => {
  await using srv = await server(world);
  await using reflector6 = await reflector(srv.host, '2001:db8::10', 3478);
  await using other6 = await srv.host.network.bindUdp({ address: '2001:db8::10', port: 3479 });
  const home = world.addRouter({ name: 'home' });
  const alice = home.addHost({ name: 'alice' });
  assert.equal(home.behaviour[6]?.kind, 'firewall');
  await using socket = await alice.network.bindUdp({ address: '::' });
  assert.deepEqual(await mapped(world, socket, reflector6), endpoint(alice.address(6), socket.local.port));
  const got = collect(socket);
  sendText(other6, endpoint(alice.address(6), socket.local.port), 'unsolicited');
  await world.elapse(10);
  assert.deepEqual(got, []);
  const v4only = world.addRouter({ name: 'v4only', ipv6: 'off' });
  assert.throws(() => v4only.addHost({ name: 'carol' }).address(6), /no IPv6 address/);
}));

test('a port forward admits anyone until removed', simTest({}, async (world) => {
  await using srv = await server(world);
  const home = world.addRouter({ name: 'home' });
  const alice = home.addHost({ name: 'alice' });
  await using socket = await alice.network.bindUdp({ port: 7000 });
  const got = collect(socket);
  const forward = home.forwardPort({ internal: endpoint(alice.address(), 7000), externalPort: 17_000 });
  assert.deepEqual(forward.external, endpoint(home.wanAddress(), 17_000));
  sendText(srv.otherAddress, forward.external, 'through the forward');
  await world.elapse(10);
  assert.equal(home.unforwardPort({ externalPort: 17_000 }), true);
  sendText(srv.otherAddress, forward.external, 'after removal');
  await world.elapse(10);
  assert.deepEqual(got.map((r) => r.text), ['through the forward']);
}));

test('the router\'s own sockets answer on its LAN and WAN addresses', simTest({}, async (world) => {
  await using srv = await server(world);
  const home = world.addRouter({ name: 'home' });
  await using gateway = await reflector(home.host, home.lanAddress(), 5351);
  await using wanService = await reflector(home.host, home.wanAddress(), 9999);
  const alice = home.addHost({ name: 'alice' });
  await using socket = await alice.network.bindUdp({ port: 4000 });
  assert.equal(await mappedVia(world, socket, gateway.local), `${alice.address()}:4000`, 'the gateway sees the LAN address');
  assert.equal(await mappedVia(world, srv.otherPort, wanService.local), `${A1}:3479`);
}));
