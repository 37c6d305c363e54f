// The rendezvous server and client in the simulated world, through simulated NATs: peers
// register from the very socket they will punch from (a PacketMux shared with STUN), the
// server sees the mapping a STUN server on the same socket sees, CONNECT and rooms give
// both sides each other's reflexive candidate and one start moment, a UDP-blocked peer
// registers over TCP, leases live exactly as long as keepalives come, close() frees
// the name at once (behind a NAT too, from the registered mapping; connect()'s agent as
// well), and a crashed holder keeps its name from other keys until its lease ends.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MUX_STUN, PacketMux, endpoint, endpointKey, type Endpoint } from '../../src/net/index.ts';
import { NAT_PRESETS, type NatOptions, type SimHost, type World } from '../../src/net/sim/index.ts';
import { StunClient, StunServer } from '../../src/stun/index.ts';
import {
  MUX_RENDEZVOUS, RendezvousClient, RendezvousError, RendezvousServer, identityFromSeed, type PunchOrder, type RendezvousIdentity, type RendezvousServerOptions,
} from '../../src/rendezvous/index.ts';
import { connect } from '../../src/punch/index.ts';
import { simTest } from '../helpers/sim.ts';

const SERVER = '198.18.0.10';
const PORT = 3478;

interface Server extends AsyncDisposable {
  readonly rendezvous: RendezvousServer;
  readonly udp: Endpoint;
  readonly tcp: Endpoint;
}

/** STUN and rendezvous on one UDP socket (PacketMux), rendezvous also on TCP. */
async function startServer(world: World, options: Partial<RendezvousServerOptions> = {}): Promise<Server> {
  const host = world.addHost({ name: 'server', addresses: [SERVER] });
  const socket = await world.run(host.env.network.bindUdp({ address: SERVER, port: PORT }));
  const mux = new PacketMux(socket);
  const stun = await world.run(StunServer.create({ env: host.env, udpSockets: [mux.route(MUX_STUN)] }));
  const rendezvous = await world.run(RendezvousServer.start({ env: host.env, udpSockets: [mux.route(MUX_RENDEZVOUS)], tcp: [{ address: SERVER, port: PORT }], ...options }));
  return {
    rendezvous, udp: endpoint(SERVER, PORT), tcp: rendezvous.tcpEndpoints[0]!,
    [Symbol.asyncDispose]: async () => {
      await world.run(rendezvous.close());
      await stun.close();
      await mux.close();
    },
  };
}

interface Peer extends AsyncDisposable {
  readonly host: SimHost;
  readonly client: RendezvousClient;
  readonly mux: PacketMux;
  readonly orders: PunchOrder[];
  readonly publicKey: Uint8Array;
}

/** A host (`hostName`) behind its own router, registered as `name` from one muxed socket (with `identity`, else a new key). */
async function peer(world: World, server: Server, name: string, nat: NatOptions, delayMs = 10, hostName = name, key?: RendezvousIdentity): Promise<Peer> {
  const host = world.addRouter({ name: `${hostName}-nat`, nat, link: { delayMs } }).addHost({ name: hostName });
  const mux = new PacketMux(await world.run(host.env.network.bindUdp()));
  const identity = key ?? identityFromSeed(host.env.random.bytes(32));
  const client = await world.run(RendezvousClient.register({ env: host.env, server: server.udp, socket: mux.route(MUX_RENDEZVOUS), name, identity }))
    .catch(async (err: unknown) => {
      await mux.close();
      throw err;
    });
  const orders: PunchOrder[] = [];
  client.onPunch((o) => orders.push(o));
  return {
    host, client, mux, orders, publicKey: identity.publicKey,
    // close() waits for the server's answer to UNREGISTER: virtual time must run meanwhile.
    [Symbol.asyncDispose]: async () => {
      await world.run(client.close());
      await mux.close();
    },
  };
}

test('CONNECT between a port-restricted cone and a symmetric NAT: each side gets the other\'s mapping and one start moment', simTest({}, async (world) => {
  await using server = await startServer(world);
  await using alice = await peer(world, server, 'alice', NAT_PRESETS['port-restricted-cone'], 15);
  await using bob = await peer(world, server, 'bob', NAT_PRESETS.symmetric, 60);

  // The server sees what a STUN server on the same socket sees: the peer's punching mapping.
  for (const p of [alice, bob]) {
    await using stun = await world.run(StunClient.create({ env: p.host.env, server: server.udp, socket: p.mux.route(MUX_STUN) }));
    const r = await world.run(stun.binding());
    assert.ok(r.ok);
    assert.deepEqual(p.client.reflexive, r.mapped);
    assert.equal(p.client.transport, 'udp');
  }

  const order = await world.run(alice.client.connect('bob'));
  await world.elapse(200);
  const [toBob] = bob.orders;
  assert.ok(toBob !== undefined);
  assert.deepEqual(alice.orders, [order]);
  assert.equal(order.pairId, toBob.pairId);
  assert.equal(order.peer.name, 'bob');
  assert.equal(toBob.peer.name, 'alice');
  assert.equal(endpointKey(order.peer.candidates[0]!.endpoint), endpointKey(bob.client.reflexive));
  assert.equal(endpointKey(toBob.peer.candidates[0]!.endpoint), endpointKey(alice.client.reflexive));
  assert.deepEqual(order.peer.publicKey, bob.publicKey);
  assert.deepEqual(toBob.peer.publicKey, alice.publicKey);
  assert.equal(order.controlling, true);
  assert.equal(toBob.controlling, false);
  // Both hosts share the world's clock: their start moments agree to within a millisecond
  // although bob's path is four times longer, and neither is in the past on arrival.
  assert.ok(Math.abs(order.startAtMs - toBob.startAtMs) <= 1, `${order.startAtMs} vs ${toBob.startAtMs}`);
  assert.ok(order.startAtMs > world.clock.now() - 200);
  assert.equal(server.rendezvous.stats.punchOrders, 2);
}));

test('a UDP-blocked peer falls back to TCP and still gets its PUNCH order', simTest({}, async (world) => {
  await using server = await startServer(world);
  await using alice = await peer(world, server, 'alice', NAT_PRESETS['full-cone']);
  await using blocked = await peer(world, server, 'bob', NAT_PRESETS['udp-blocked']);
  assert.equal(blocked.client.transport, 'tcp');
  assert.equal(alice.client.transport, 'udp');
  const order = await world.run(alice.client.connect('bob'));
  await world.elapse(100);
  assert.equal(order.peer.candidates[0]!.transport, 'tcp');
  assert.equal(blocked.orders.length, 1);
  assert.equal(blocked.orders[0]!.peer.name, 'alice');
  assert.equal(server.rendezvous.stats.streams.accepted, 1);
}));

test('a room of three: every member gets an order for each other member', simTest({}, async (world) => {
  await using server = await startServer(world);
  await using a = await peer(world, server, 'a', NAT_PRESETS['full-cone']);
  await using b = await peer(world, server, 'b', NAT_PRESETS['restricted-cone']);
  await using c = await peer(world, server, 'c', NAT_PRESETS.symmetric);
  for (const p of [a, b, c]) await world.run(p.client.join('pool'));
  await world.elapse(200);
  for (const p of [a, b, c]) {
    assert.deepEqual(p.orders.map((o) => o.peer.name).sort(), ['a', 'b', 'c'].filter((n) => n !== p.client.name));
    assert.ok(p.orders.every((o) => o.room === 'pool'));
  }
}));

test('keepalives hold the lease for minutes; without them it ends after leaseS', simTest({}, async (world) => {
  await using server = await startServer(world, { leaseS: 30, keepaliveS: 10 });
  const alice = await peer(world, server, 'alice', NAT_PRESETS['port-restricted-cone']);
  await using bob = await peer(world, server, 'bob', NAT_PRESETS['port-restricted-cone']);
  await world.elapse(180_000);
  assert.equal(server.rendezvous.stats.expired, 0);
  assert.ok(alice.client.stats.keepalives >= 17);
  // alice vanishes: her socket goes first, so close() cannot send UNREGISTER.
  await alice.mux.close();
  await world.run(alice.client.close());
  await world.elapse(31_000);
  assert.equal(server.rendezvous.stats.expired, 1);
  await assert.rejects(world.run(bob.client.connect('alice')), (err: unknown) => err instanceof Error && 'reason' in err && err.reason === 'not-found');
}));

test('close() unregisters, over UDP and over TCP: the name is free at once for a new key', simTest({}, async (world) => {
  await using server = await startServer(world);
  await using carol = await peer(world, server, 'carol', NAT_PRESETS['full-cone']);
  for (const [name, nat] of [['alice', NAT_PRESETS['port-restricted-cone']], ['bob', NAT_PRESETS['udp-blocked']]] as const) {
    const old = await peer(world, server, name, nat);
    const { unregistered } = server.rendezvous.stats;
    // close() resolves once the server has answered UNREGISTER (the socket closes right after it).
    await old[Symbol.asyncDispose]();
    assert.equal(server.rendezvous.stats.unregistered, unregistered + 1);
    await assert.rejects(world.run(carol.client.connect(name)), (err: unknown) => err instanceof Error && 'reason' in err && err.reason === 'not-found');
    // Another key (a new host's identity) takes the name well within the old lease.
    await using again = await peer(world, server, name, nat, 10, `${name}-restarted`);
    assert.notDeepEqual(again.publicKey, old.publicKey);
    assert.equal((await world.run(carol.client.connect(name))).peer.name, name);
  }
  assert.equal(server.rendezvous.stats.expired, 0);
}));

const nameTaken = (err: unknown): boolean => err instanceof RendezvousError && err.reason === 'name-taken';

test('behind a symmetric NAT, close() and an immediate restart under the same name: a new key, then the old key', simTest({}, async (world) => {
  await using server = await startServer(world);
  const k1 = identityFromSeed(world.random.bytes(32));
  const old = await peer(world, server, 'alice', NAT_PRESETS.symmetric, 40, 'alice', k1);
  // The server sees the NAT's mapping, and UNREGISTER comes from that same mapping.
  assert.notEqual(old.client.reflexive.address, old.mux.socket.local.address);
  await old[Symbol.asyncDispose]();
  assert.equal(server.rendezvous.stats.unregistered, 1);
  assert.equal(server.rendezvous.core.registrationCount, 0);
  // A new key, from a new host behind another NAT, at once; then the first key again.
  const k2 = await peer(world, server, 'alice', NAT_PRESETS.symmetric, 40, 'alice-2');
  await k2[Symbol.asyncDispose]();
  await using again = await peer(world, server, 'alice', NAT_PRESETS['port-restricted-cone'], 40, 'alice-3', k1);
  assert.equal(again.client.transport, 'udp');
  assert.equal(server.rendezvous.stats.unregistered, 2);
  assert.equal(server.rendezvous.stats.errors['name-taken'], 0);
}));

test('a crashed holder (no UNREGISTER): its own key takes the name back at once, another key only after the lease', simTest({}, async (world) => {
  await using server = await startServer(world, { leaseS: 30, keepaliveS: 10 });
  const k1 = identityFromSeed(world.random.bytes(32));
  const crash = async (p: Peer): Promise<void> => {
    await p.mux.close();
    await world.run(p.client.close());
  };
  await crash(await peer(world, server, 'bob', NAT_PRESETS['port-restricted-cone'], 10, 'bob', k1));
  await assert.rejects(peer(world, server, 'bob', NAT_PRESETS['full-cone'], 10, 'bob-other'), nameTaken);
  // The same key from another host: REGISTER moves the registration there.
  await crash(await peer(world, server, 'bob', NAT_PRESETS.symmetric, 10, 'bob-restarted', k1));
  assert.equal(server.rendezvous.stats.reregistered, 1);
  assert.equal(server.rendezvous.stats.unregistered, 0);
  await world.elapse(29_000);
  await assert.rejects(peer(world, server, 'bob', NAT_PRESETS['full-cone'], 10, 'bob-other-2'), nameTaken);
  await world.elapse(1_500);
  await using other = await peer(world, server, 'bob', NAT_PRESETS['full-cone'], 10, 'bob-other-3');
  assert.equal(other.client.name, 'bob');
  assert.equal(server.rendezvous.stats.expired, 1);
}));

test('connect()\'s agent behind a NAT: close() frees the name before it resolves, and a new key registers at once', simTest({}, async (world) => {
  await using server = await startServer(world);
  for (const [round, nat] of [NAT_PRESETS['port-restricted-cone'], NAT_PRESETS.symmetric, NAT_PRESETS['udp-blocked']].entries()) {
    const host = world.addRouter({ name: `carol-${round}-nat`, nat, link: { delayMs: 25 } }).addHost({ name: `carol-${round}` });
    const agent = await world.run(connect({
      env: host.env, identity: identityFromSeed(world.random.bytes(32)), name: 'carol', localAddress: host.address(), rendezvous: server.udp, rendezvousTcp: server.tcp,
    }));
    assert.equal(agent.rendezvous.transport, nat === NAT_PRESETS['udp-blocked'] ? 'tcp' : 'udp');
    await world.run(agent.close());
    assert.equal(server.rendezvous.stats.unregistered, round + 1);
  }
  assert.equal(server.rendezvous.stats.registered, 3);
  assert.equal(server.rendezvous.stats.errors['name-taken'], 0);
}));

test('a NAT that drops the mapping: the keepalive goes unanswered, the client registers again from its new mapping', simTest({}, async (world) => {
  await using server = await startServer(world, { leaseS: 30, keepaliveS: 10 });
  const nat = { ...NAT_PRESETS['port-restricted-cone'], portAllocation: { kind: 'random' }, mappingTimeoutMs: 5_000 } as const;
  await using alice = await peer(world, server, 'alice', nat);
  const before = alice.client.reflexive;
  // The NAT forgets the idle mapping after 5 s; the keepalive at 10 s gets a new one, which
  // the server does not know: not-registered, then a fresh registration.
  await world.elapse(12_000);
  assert.notDeepEqual(alice.client.reflexive, before);
  assert.equal(alice.client.stats.registrations, 2);
  assert.equal(server.rendezvous.stats.reregistered, 1);
}));
