// The TurnServer driver in the simulated world: two hosts behind symmetric NATs (no
// direct path: RFC 4787 address-and-port-dependent mapping and filtering, random ports)
// reach each other through relayed addresses on a server in the internet, one over UDP
// and one over TCP, with lifetimes checked on the virtual clock (RFC 8656 §9: permissions
// last 300 s; §7: allocations end at their lifetime). The sim's internet is 198.18.0.0/15,
// which the peer policy denies by default: it is allow-listed here.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { endpoint, endpointKey } from '../../src/net/index.ts';
import { NAT_PRESETS } from '../../src/net/sim/index.ts';
import { TurnServer } from '../../src/turn/index.ts';
import { simTest } from '../helpers/sim.ts';
import { TurnWireClient, type Delivered } from '../fixtures/turn/wire-client.ts';

const SERVER = '198.18.0.10';
const REALM = 'sim.natkit.test';
const USERS = { alice: 'alice-pw', bob: 'bob-pw' };
const text = (s: string): Uint8Array => new TextEncoder().encode(s);
const show = (d: Delivered | undefined): string => (d === undefined ? 'nothing' : `${new TextDecoder().decode(d.data)} via ${d.channel ?? endpointKey(d.peer!)}`);

test('two hosts behind symmetric NATs talk through their relayed addresses; permissions and allocations expire on the virtual clock', simTest({ seed: 11 }, async (world) => {
  const host = world.addHost({ name: 'turn', addresses: [SERVER] });
  await using server = await world.run(TurnServer.start({
    env: host.env, listen: [{ address: SERVER }], relayAddresses: [SERVER], realm: REALM, users: USERS, allowPeers: ['198.18.0.0/15'],
  }));
  const at = endpoint(SERVER, 3478);
  const alice = world.addRouter({ name: 'home-a', nat: NAT_PRESETS.symmetric }).addHost({ name: 'alice' });
  const bob = world.addRouter({ name: 'home-b', nat: NAT_PRESETS.symmetric }).addHost({ name: 'bob' });
  await using a = await world.run(TurnWireClient.udp(alice.env, at, { username: 'alice', password: USERS.alice, realm: REALM }));
  await using b = await world.run(TurnWireClient.tcp(bob.env, at, { username: 'bob', password: USERS.bob, realm: REALM }));
  const ra = await world.run(a.allocate());
  const rb = await world.run(b.allocate());
  assert.deepEqual([ra.address, rb.address], [SERVER, SERVER]);

  // Alice binds a channel to Bob's relayed address; Bob permits Alice's.
  assert.equal(await world.run(a.bind(0x4000, rb)), 0);
  assert.equal(await world.run(b.permit(ra)), 0);
  a.sendChannel(0x4000, text('hello bob'));
  assert.equal(show(await world.run(b.next())), `hello bob via ${endpointKey(ra)}`);
  b.send(ra, text('hello alice'));
  assert.equal(show(await world.run(a.next())), 'hello alice via 16384');

  // At 200 s both refresh (which keeps their NAT mappings, 300 s, alive) but not permissions.
  await world.elapse(200_000);
  assert.deepEqual(await world.run(Promise.all([a.refresh(600), b.refresh(600)])), [0, 0]);
  await world.elapse(110_000);
  // Bob's permission for Alice lapsed at 300 s (RFC 8656 §9); Alice's channel binding lasts 600 s but its permission not.
  const before = server.stats.dropped['no-permission'];
  b.send(ra, text('too late'));
  a.sendChannel(0x4000, text('too late'));
  assert.equal(await world.run(b.next(1000)), undefined);
  assert.equal(server.stats.dropped['no-permission'], before + 2);
  assert.equal(server.stats.permissions, 0);

  // Allocations end 600 s after the refresh, at 800 s, on the server's one timer.
  await world.elapse(488_000);
  assert.equal(server.stats.allocations, 2);
  await world.elapse(2_000);
  const s = server.stats;
  assert.deepEqual([s.allocations, s.allocationsExpired, s.relay.inUse], [0, 2, 0]);
  assert.equal(s.toPeerPackets, 2);
  assert.equal(s.toClientPackets, 2);
  assert.equal(s.internalErrors, 0);
}));
