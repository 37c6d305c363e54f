// The port-mapping gateway server on a simulated router (router.host.env, backend: the
// router itself): a LAN host maps a port with NAT-PMP, PCP, PCP-with-fallback and UPnP
// IGD, a host on the internet reaches it through the NAT, and after a delete or the end
// of the lifetime the same packet is dropped. A gateway restart shows up as gatewayReset;
// a TCP mapping reaches a LAN listener.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { endpoint, type Endpoint, type PacketSocket } from '../../src/net/index.ts';
import { NAT_PRESETS, type SimHost, type SimRouter, type World } from '../../src/net/sim/index.ts';
import { NatPmpClient, PcpClient, PortControlClient, PortMapGatewayServer, UpnpGateway } from '../../src/portmap/index.ts';
import { collect, sendText, simTest } from '../helpers/sim.ts';

interface Setup {
  readonly router: SimRouter;
  readonly alice: SimHost;
  readonly remote: SimHost;
  readonly gateway: PortMapGatewayServer;
  /** Alice's application socket, the one mappings point at. */
  readonly app: PacketSocket;
  readonly sender: PacketSocket;
  readonly external: (port: number) => Endpoint;
  close(): Promise<void>;
}

async function setup(world: World, preset: 'port-restricted-cone' | 'symmetric' = 'port-restricted-cone'): Promise<Setup> {
  const router = world.addRouter({ name: 'home', nat: NAT_PRESETS[preset] });
  const alice = router.addHost({ name: 'alice' });
  const remote = world.addHost({ name: 'remote' });
  const gateway = await PortMapGatewayServer.start({ env: router.host.env, backend: router, externalAddress: router.wanAddress(), lanAddress: router.lanAddress(), upnp: { version: 2 } });
  const app = await alice.network.bindUdp({ address: alice.address(), port: 7000 });
  const sender = await remote.network.bindUdp({ address: remote.address() });
  return {
    router, alice, remote, gateway, app, sender,
    external: (port) => endpoint(router.wanAddress(), port),
    close: async () => {
      await Promise.all([gateway.close(), app.close(), sender.close()]);
    },
  };
}

/** True when a datagram from the internet to `to` reaches Alice's app socket. */
async function reaches(world: World, s: Setup, to: Endpoint): Promise<boolean> {
  const got = collect(s.app);
  sendText(s.sender, to, `hello ${world.clock.now()}`);
  await world.elapse(50);
  s.app.onPacket(undefined);
  return got.length === 1;
}

const gatewayOf = (s: Setup): string => s.router.lanAddress();

test('NAT-PMP: the mapping opens the NAT; delete closes it', simTest({}, async (world) => {
  const s = await setup(world);
  await using c = await NatPmpClient.create({ env: s.alice.env, gateway: gatewayOf(s), localAddress: s.alice.address() });
  assert.equal(await reaches(world, s, s.external(7000)), false, 'closed before the mapping');
  const m = await world.run(c.map({ protocol: 'udp', internalPort: 7000, lifetimeS: 600 }));
  assert.ok(m.ok);
  assert.deepEqual(s.gateway.mappings().map((g) => [g.origin, g.externalPort]), [['natpmp', m.externalPort]]);
  assert.ok(await reaches(world, s, s.external(m.externalPort)));
  assert.ok((await world.run(c.delete({ protocol: 'udp', internalPort: 7000 }))).ok);
  assert.equal(await reaches(world, s, s.external(m.externalPort)), false);
  assert.ok(world.trace.entries().some((e) => e.event === 'drop' && e.at === 'home' && e.dst.port === m.externalPort && e.reason === 'no-mapping'));
  await s.close();
}));

test('PCP on a symmetric NAT: the mapping ends with its lifetime on the virtual clock', simTest({}, async (world) => {
  const s = await setup(world, 'symmetric');
  await using c = await PcpClient.create({ env: s.alice.env, gateway: gatewayOf(s), localAddress: s.alice.address() });
  const m = await world.run(c.map({ protocol: 'udp', internalPort: 7000, suggestedExternalPort: 7000, lifetimeS: 30 }));
  assert.ok(m.ok);
  assert.deepEqual([m.mapping.externalAddress, m.mapping.externalPort, m.mapping.lifetimeS], [s.router.wanAddress(), 7000, 30]);
  assert.ok(await reaches(world, s, s.external(7000)));
  await world.elapse(31_000);
  assert.deepEqual(s.gateway.mappings(), []);
  assert.equal(await reaches(world, s, s.external(7000)), false);
  await s.close();
}));

test('PortControlClient (PCP) and UPnP share one table: a port held by one conflicts for the other', simTest({}, async (world) => {
  const s = await setup(world);
  await using pc = await PortControlClient.create({ env: s.alice.env, gateway: gatewayOf(s), localAddress: s.alice.address() });
  const r = await world.run(pc.map({ protocol: 'udp', internalPort: 7000, suggestedExternalPort: 7000 }));
  assert.ok(r.ok && r.via === 'pcp');
  assert.ok(await reaches(world, s, s.external(r.mapping.externalPort)));

  const igd = await world.run(UpnpGateway.discover({ env: s.alice.env, multicast: false, unicast: [endpoint(gatewayOf(s), 1900)] }));
  assert.equal(igd.version, 2);
  assert.equal(await world.run(igd.getExternalIPAddress()), s.router.wanAddress());
  // Port 7000 is PCP's: AddAnyPortMapping gets the next one.
  const u = await world.run(igd.mapPort({ protocol: 'UDP', internalPort: 7000, externalPort: 7000 }));
  assert.deepEqual([u.action, u.externalPort], ['AddAnyPortMapping', 7001]);
  assert.ok(await reaches(world, s, s.external(7001)));
  await world.run(igd.deletePortMapping({ externalPort: 7001, protocol: 'UDP' }));
  assert.equal(await reaches(world, s, s.external(7001)), false);
  assert.ok((await world.run(pc.delete(r.mapping))).ok);
  assert.equal(await reaches(world, s, s.external(7000)), false);
  await s.close();
}));

test('UPnP IGD:1 mapPort by unicast M-SEARCH opens the NAT', simTest({}, async (world) => {
  const router = world.addRouter({ name: 'home' });
  const alice = router.addHost({ name: 'alice' });
  const remote = world.addHost({ name: 'remote' });
  await using gateway = await PortMapGatewayServer.start({ env: router.host.env, backend: router, externalAddress: router.wanAddress(), lanAddress: router.lanAddress(), natpmp: false, pcp: false });
  assert.equal(gateway.portControl, undefined);
  await using app = await alice.network.bindUdp({ address: alice.address(), port: 9000 });
  await using sender = await remote.network.bindUdp({ address: remote.address() });
  const igd = await world.run(UpnpGateway.discover({ env: alice.env, multicast: false, unicast: [endpoint(router.lanAddress(), 1900)] }));
  assert.equal(igd.ssdp?.bootId, 1);
  const m = await world.run(igd.mapPort({ protocol: 'UDP', internalPort: 9000, leaseS: 120 }));
  assert.equal(m.action, 'AddPortMapping');
  const got = collect(app);
  sendText(sender, endpoint(router.wanAddress(), m.externalPort), 'in');
  await world.elapse(50);
  assert.deepEqual(got.map((g) => g.text), ['in']);
  await world.elapse(121_000);
  sendText(sender, endpoint(router.wanAddress(), m.externalPort), 'late');
  await world.elapse(50);
  assert.equal(got.length, 1, 'the lease ended');
}));

test('a gateway restart: the next answer reports gatewayReset, and the mappings are gone', simTest({}, async (world) => {
  const s = await setup(world);
  await using natpmp = await NatPmpClient.create({ env: s.alice.env, gateway: gatewayOf(s), localAddress: s.alice.address() });
  await using pcp = await PcpClient.create({ env: s.alice.env, gateway: gatewayOf(s), localAddress: s.alice.address() });
  await world.elapse(120_000);
  const before = await world.run(natpmp.map({ protocol: 'udp', internalPort: 7000 }));
  assert.ok(before.ok && !before.gatewayReset);
  assert.ok((await world.run(pcp.announce())).ok);
  s.gateway.restart();
  assert.equal(await reaches(world, s, s.external(before.externalPort)), false, 'the restart removed the forward');
  const after = await world.run(natpmp.externalAddress());
  assert.ok(after.gatewayReset);
  const announce = await world.run(pcp.announce());
  assert.ok(announce.gatewayReset);
  await s.close();
}));

test('a TCP mapping reaches a LAN listener', simTest({}, async (world) => {
  const s = await setup(world);
  const received: string[] = [];
  await using listener = await s.alice.network.listenStream({ address: s.alice.address(), port: 8080 }, (stream) => {
    stream.onData((d) => received.push(new TextDecoder().decode(d)));
  });
  await using c = await PcpClient.create({ env: s.alice.env, gateway: gatewayOf(s), localAddress: s.alice.address() });
  const m = await world.run(c.map({ protocol: 'tcp', internalPort: listener.local.port, suggestedExternalPort: 80 }));
  assert.ok(m.ok);
  const stream = await world.run(s.remote.network.connectStream(s.external(m.mapping.externalPort)));
  stream.write(new TextEncoder().encode('GET / over a mapping'));
  await world.elapse(20);
  assert.deepEqual(received, ['GET / over a mapping']);
  await stream.close();
  await world.elapse(20);
  await s.close();
}));
