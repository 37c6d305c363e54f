// PortMapper on real loopback sockets: the fake NAT-PMP/PCP gateway (a real UDP socket)
// and the fake IGD (real SSDP over UDP, HTTP over TCP). Probe of all three, a mapping
// through each and close() deleting them, UPnP renewal re-making a vanished entry,
// list(), and removeStale() deleting only natkit's own leftovers. Nothing is left open.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { nodeEnv } from '../../src/net/node/index.ts';
import { PortMapper, type PortMapperOptions } from '../../src/portmap/index.ts';
import { FakeIgd } from '../helpers/fake-igd.ts';
import { startFakeGateway, type RunningFakeGateway } from '../helpers/fake-portmap-gateway.ts';
import { noLeaks } from '../helpers/leaks.ts';

const env = nodeEnv();

async function withGateways(body: (gw: RunningFakeGateway, igd: FakeIgd, options: PortMapperOptions) => Promise<void>): Promise<void> {
  await using gw = await startFakeGateway({ externalAddress: '198.51.100.1' });
  await using igd = await FakeIgd.start({ externalAddress: '198.51.100.1' });
  await body(gw, igd, {
    env, gateway: gw.endpoint, localAddress: '127.0.0.1', upnp: { search: [igd.ssdp], multicast: false },
    timeouts: { probeMs: 1000, callMs: 2000, upnpSearchMs: 1000 },
  });
}

test('probe: PCP, NAT-PMP and UPnP all answer, each with the external address', noLeaks(() => withGateways(async (gw, igd, options) => {
  await using m = await PortMapper.create(options);
  const p = await m.probe();
  assert.deepEqual(p.available, ['pcp', 'natpmp', 'upnp']);
  for (const r of [p.pcp, p.natpmp, p.upnp]) assert.equal(r.externalAddress, '198.51.100.1', JSON.stringify(r));
  assert.ok(p.durationMs < 1000, `answered in ${p.durationMs} ms`);
  assert.equal(gw.core.mappings.size, 0, 'the PCP probe deleted its mapping');
  assert.equal(igd.mappings.size, 0);
})));

test('a mapping through each protocol; close() deletes them all', noLeaks(() => withGateways(async (gw, igd, options) => {
  const m = await PortMapper.create(options);
  const pcp = await m.map({ protocol: 'udp', internalPort: 5000, lifetimeS: 600 });
  const natpmp = await m.map({ protocol: 'tcp', internalPort: 5001, lifetimeS: 600, via: 'natpmp' });
  const upnp = await m.map({ protocol: 'udp', internalPort: 5002, externalPort: 45_002, lifetimeS: 600, via: 'upnp' });
  assert.deepEqual([pcp.via, natpmp.via, upnp.via, m.via], ['pcp', 'natpmp', 'upnp', 'pcp']);
  assert.deepEqual([pcp.externalAddress, natpmp.externalAddress, upnp.externalAddress], ['198.51.100.1', '198.51.100.1', '198.51.100.1']);
  assert.equal(upnp.externalPort, 45_002);
  assert.equal(gw.core.mappings.size, 2);
  assert.deepEqual(igd.mappings.get('UDP/45002'), { externalPort: 45_002, protocol: 'UDP', internalPort: 5002, internalClient: '127.0.0.1', description: m.upnpDescription, leaseS: 600 });
  const listed = await m.list();
  assert.deepEqual(listed.mappings.map((l) => `${l.via} ${l.protocol} ${l.internalPort} ${l.ours} ${l.held}`).sort(), ['natpmp tcp 5001 true true', 'pcp udp 5000 true true', 'upnp udp 5002 true true']);
  const report = await m.close();
  assert.deepEqual(report.failed, []);
  assert.equal(report.removed.length, 3);
  assert.equal(gw.core.mappings.size, 0);
  assert.equal(igd.mappings.size, 0);
  assert.deepEqual([pcp.state, natpmp.state, upnp.state], ['removed', 'removed', 'removed']);
})));

test('a record kept by an earlier process is deleted by a new mapper (PCP with the same nonce)', noLeaks(() => withGateways(async (gw, _igd, options) => {
  const first = await PortMapper.create(options);
  const kept = first.release(await first.map({ protocol: 'udp', internalPort: 5003, lifetimeS: 600, via: 'pcp' }));
  await first.close();
  assert.equal(gw.core.mappings.size, 1, 'a released mapping outlives its mapper');
  await using later = await PortMapper.create(options);
  await later.unmap(JSON.parse(JSON.stringify(kept)) as typeof kept);
  assert.equal(gw.core.mappings.size, 0);
})));

test('UPnP: an entry that vanished is made again at the next renewal', noLeaks(() => withGateways(async (_gw, igd, options) => {
  await using m = await PortMapper.create(options);
  const a = await m.map({ protocol: 'udp', internalPort: 5004, lifetimeS: 2, via: 'upnp' });
  for (const entry of igd.table.list()) igd.table.remove(entry); // as a router that lost it
  assert.equal(igd.mappings.size, 0);
  // Renewal comes between 1 and 1.25 s (1/2 to 5/8 of 2 s).
  await new Promise((resolve) => setTimeout(resolve, 1600));
  assert.equal(igd.mappings.get(`UDP/${a.externalPort}`)?.internalPort, 5004, 'made again');
  assert.equal(a.state, 'active');
})));

test('removeStale: only natkit\'s own leftovers for this host go; other programs\' and other hosts\' stay', noLeaks(() => withGateways(async (_gw, igd, options) => {
  const earlier = await PortMapper.create({ ...options, instance: 'earlier1' });
  earlier.release(await earlier.map({ protocol: 'udp', internalPort: 5005, externalPort: 45_005, via: 'upnp' }));
  earlier.release(await earlier.map({ protocol: 'tcp', internalPort: 5006, externalPort: 45_006, via: 'upnp' }));
  await earlier.close();
  igd.addMapping({ externalPort: 45_007, protocol: 'UDP', internalPort: 5007, internalClient: '127.0.0.1', description: 'natkit-helper 1', leaseS: 600 });
  igd.addMapping({ externalPort: 45_008, protocol: 'UDP', internalPort: 5008, internalClient: '127.0.0.2', description: 'natkit other', leaseS: 600 });
  igd.addMapping({ externalPort: 45_009, protocol: 'UDP', internalPort: 5009, internalClient: '127.0.0.1', description: 'Skype', leaseS: 600 });
  await using m = await PortMapper.create(options);
  const held = await m.map({ protocol: 'udp', internalPort: 5010, externalPort: 45_010, via: 'upnp' });
  const removed = await m.removeStale({ keep: (e) => e.externalPort === 45_006 });
  assert.deepEqual(removed.map((e) => e.externalPort), [45_005]);
  assert.deepEqual([...igd.mappings.keys()].sort(), ['TCP/45006', 'UDP/45007', 'UDP/45008', 'UDP/45009', `UDP/${held.externalPort}`].sort());
  const listed = await m.list();
  assert.deepEqual(listed.mappings.filter((l) => l.ours).map((l) => l.externalPort).sort(), [45_006, 45_008, 45_010]);
})));
