// natkit's TurnClient against natkit's TurnServer in the simulated world, through NATs:
// a relayed address used like any PacketSocket (RFC 8656), kept alive over half an hour
// of virtual time by the client's own Refresh, CreatePermission and ChannelBind schedule
// (§7.4, §9, §11), deleted by close() (§7.5); two relayed sockets over TCP and TLS
// talking to each other; STUN and TURN sharing one socket; ALTERNATE-SERVER followed
// once (RFC 8489 §10). The sim's internet is
// 198.18.0.0/15, which the server's peer policy denies by default: it is allow-listed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { endpoint, type Endpoint, type PacketSocket } from '../../src/net/index.ts';
import { NAT_PRESETS, type World } from '../../src/net/sim/index.ts';
import { ALTERNATE_SERVER, ERROR_CODE, StunClass, StunClient, attr, decodeMessage, encodeMessage } from '../../src/stun/index.ts';
import { TurnClient, TurnError, TurnServer, type TurnListen } from '../../src/turn/index.ts';
import { isNatkitError } from '../../src/util/index.ts';
import { collect, simTest } from '../helpers/sim.ts';

const SERVER = '198.18.0.10';
const REALM = 'sim.natkit.test';
const USERS = { alice: 'alice-pw', bob: 'bob-pw' };
const TLS = { cert: 'turn cert', key: 'turn key' };
const text = (s: string): Uint8Array => new TextEncoder().encode(s);

/** A TurnServer on SERVER, listening on UDP and TCP 3478 and TLS 5349. */
function startServer(world: World): Promise<TurnServer> {
  const host = world.addHost({ name: 'turn', addresses: [SERVER] });
  const listen: TurnListen[] = [{ address: SERVER }, { address: SERVER, transports: ['tls'], tls: TLS }];
  return world.run(TurnServer.start({ env: host.env, listen, relayAddresses: [SERVER], realm: REALM, users: USERS, allowPeers: ['198.18.0.0/15'] }));
}

test('UDP through a symmetric NAT: Send/Data then a channel with a public peer, alive after 30 min of refreshes, deleted by close()', simTest({ seed: 3 }, async (world) => {
  await using server = await startServer(world);
  const home = world.addRouter({ name: 'home', nat: NAT_PRESETS.symmetric });
  const alice = home.addHost({ name: 'alice' });
  const peerHost = world.addHost({ name: 'peer' });
  await using peer = await world.run(peerHost.env.network.bindUdp({ address: peerHost.address(), port: 7000 }));
  const relay = await world.run(TurnClient.allocate({ env: alice.env, server: { host: SERVER }, username: 'alice', password: USERS.alice }));
  assert.equal(relay.local.address, SERVER);
  assert.equal(relay.allocation.mapped?.address, home.wanAddress());
  const atPeer = collect(peer);
  const atRelay = collect(relay);

  /** One datagram each way, each checked where it arrives. */
  const roundTrip = async (label: string): Promise<void> => {
    relay.send(text(`to peer ${label}`), peer.local);
    await world.elapse(1000);
    assert.deepEqual(atPeer.at(-1), { from: relay.local, text: `to peer ${label}` });
    peer.send(text(`to alice ${label}`), relay.local);
    await world.elapse(1000);
    assert.deepEqual(atRelay.at(-1), { from: peer.local, text: `to alice ${label}` });
  };
  await roundTrip('first');
  await roundTrip('second');
  const s = relay.core.stats;
  assert.deepEqual([s.indicationsSent, s.channelsBound, s.channelDataSent], [1, 1, 1], 'a Send indication, then the channel');

  // 30 minutes: three allocation lifetimes, six permission lifetimes, three channel lifetimes.
  await world.elapse(30 * 60_000);
  await roundTrip('after 30 min');
  assert.equal(server.stats.allocations, 1);
  assert.equal(server.stats.allocationsExpired, 0);
  assert.ok(relay.core.stats.requests >= 2 + 3 + 7 + 3, `Allocate ×2, Refresh, CreatePermission and ChannelBind refreshes: ${relay.core.stats.requests}`);

  await world.run(relay.close());
  assert.equal(relay.closed, true);
  assert.equal(server.stats.allocations, 0, 'deleted by the Refresh with LIFETIME 0, not left to expire');
  relay.send(text('after close'), peer.local);
  assert.equal(relay.stats.sendErrors, 1);
}));

test('two relayed sockets, over TCP and over TLS, talk to each other like any two sockets', simTest({ seed: 5 }, async (world) => {
  await using server = await startServer(world);
  const alice = world.addRouter({ name: 'home-a', nat: NAT_PRESETS.symmetric }).addHost({ name: 'alice' });
  const bob = world.addRouter({ name: 'home-b', nat: NAT_PRESETS['port-restricted-cone'] }).addHost({ name: 'bob' });
  // close() waits for the server's answer on the virtual clock: it runs under world.run(), not `await using`.
  const a = await world.run(TurnClient.allocate({ env: alice.env, server: endpoint(SERVER, 3478), transport: 'tcp', username: 'alice', password: USERS.alice }));
  const b = await world.run(TurnClient.allocate({
    env: bob.env, server: { host: SERVER }, transport: 'tls', tls: { ca: TLS.cert }, username: 'bob', password: USERS.bob,
  }));
  assert.equal(b.server.port, 5349);
  const atA = collect(a);
  const atB = collect(b);
  // Each side's permission comes with its first send: Alice's first datagram is dropped at
  // Bob's allocation, which has no permission for her relayed address yet (RFC 8656 §9).
  a.send(text('knock'), b.local);
  await world.elapse(1000);
  b.send(text('hello alice'), a.local);
  await world.elapse(1000);
  a.send(text('hello bob'), b.local);
  await world.elapse(1000);
  assert.deepEqual(atA, [{ from: b.local, text: 'hello alice' }]);
  assert.deepEqual(atB, [{ from: a.local, text: 'hello bob' }]);
  assert.equal(server.stats.allocations, 2);
  await world.run(Promise.all([a.close(), b.close()]));
  assert.equal(server.stats.allocations, 0);
}));

test('STUN and TURN on one UDP socket: a Binding answer through `passthrough` names the mapping the allocation uses', simTest({ seed: 7 }, async (world) => {
  await using server = await startServer(world);
  const alice = world.addRouter({ name: 'home', nat: NAT_PRESETS['restricted-cone'] }).addHost({ name: 'alice' });
  await using socket = await world.run(alice.env.network.bindUdp());
  const to: Endpoint = endpoint(SERVER, 3478);
  await using stun = await world.run(StunClient.create({ env: alice.env, server: to, socket, attachHandler: false }));
  const relay = await world.run(TurnClient.allocate({
    env: alice.env, server: to, socket, passthrough: (data, from) => void stun.receive(data, from), username: 'alice', password: USERS.alice,
  }));
  const binding = await world.run(stun.binding());
  assert.ok(binding.ok);
  assert.deepEqual(binding.mapped, relay.allocation.mapped);
  await world.run(relay.close());
  assert.equal(socket.closed, false, 'a socket given to the client stays open');
  assert.equal(server.stats.allocations, 0);
}));

/** A server that answers every request with 300 Try Alternate naming `to` (RFC 8489 §10). */
async function redirector(world: World, name: string, address: string, to: Endpoint): Promise<PacketSocket> {
  const host = world.addHost({ name, addresses: [address] });
  const socket = await world.run(host.env.network.bindUdp({ address, port: 3478 }));
  socket.onPacket((data, from) => {
    const request = decodeMessage(Uint8Array.from(data));
    socket.send(encodeMessage({
      method: request.method, cls: StunClass.ERROR, transactionId: request.transactionId,
      attributes: [attr(ERROR_CODE, { code: 300, reason: 'Try Alternate' }), attr(ALTERNATE_SERVER, to)],
    }), from);
  });
  return socket;
}

test('300 ALTERNATE-SERVER: the client allocates at the alternate; a second redirect is not followed', simTest({ seed: 9 }, async (world) => {
  await using server = await startServer(world);
  await using old = await redirector(world, 'old', '198.18.0.20', endpoint(SERVER, 3478));
  const alice = world.addRouter({ name: 'home', nat: NAT_PRESETS['port-restricted-cone'] }).addHost({ name: 'alice' });
  const relay = await world.run(TurnClient.allocate({ env: alice.env, server: old.local, username: 'alice', password: USERS.alice }));
  assert.deepEqual(relay.server, endpoint(SERVER, 3478));
  assert.deepEqual(relay.allocation.server, relay.server);
  assert.equal(server.stats.allocations, 1);
  await world.run(relay.close());
  assert.equal(server.stats.allocations, 0);

  // 198.18.0.21 sends to .22, which sends back: followed once, then refused (the loop guard).
  await using first = await redirector(world, 'first', '198.18.0.21', endpoint('198.18.0.22', 3478));
  await using second = await redirector(world, 'second', '198.18.0.22', first.local);
  const looped = world.run(TurnClient.allocate({ env: alice.env, server: first.local, username: 'alice', password: USERS.alice }));
  await assert.rejects(looped, (err: unknown) => err instanceof TurnError && err.status === 300 && err.message.includes(`${second.local.address}:3478`));
}));

test('no answer: ERR_TIMEOUT after the transaction\'s schedule; abort: ERR_ABORTED at once; nothing left open', simTest({ seed: 13 }, async (world) => {
  const alice = world.addHost({ name: 'alice' });
  const nowhere = endpoint('198.18.0.99', 3478);
  const quick = { env: alice.env, server: nowhere, username: 'alice', password: USERS.alice, rtoMs: 100, maxTransmissions: 2, lastWaitMultiplier: 2 };
  const started = world.clock.now();
  await assert.rejects(world.run(TurnClient.allocate(quick)), (err: unknown) => err instanceof TurnError && err.code === 'ERR_TIMEOUT');
  assert.equal(world.clock.now() - started, 100 + 200);
  const controller = new AbortController();
  alice.env.clock.setTimer(50, () => controller.abort());
  const abortedAt = world.clock.now();
  await assert.rejects(world.run(TurnClient.allocate({ ...quick, signal: controller.signal })), (err: unknown) => isNatkitError(err, 'ERR_ABORTED'));
  assert.equal(world.clock.now() - abortedAt, 50);
}));

test('the TCP connection drops: onClose hears a TurnError ERR_CLOSED, sends fail, close() still releases', simTest({ seed: 17 }, async (world) => {
  const server = await startServer(world);
  const alice = world.addHost({ name: 'alice' });
  const relay = await world.run(TurnClient.allocate({ env: alice.env, server: endpoint(SERVER, 3478), transport: 'tcp', username: 'alice', password: USERS.alice }));
  const ends: (Error | undefined)[] = [];
  relay.onClose((error) => ends.push(error));
  await world.run(server.close());
  await world.elapse(100);
  assert.equal(ends.length, 1);
  assert.ok(ends[0] instanceof TurnError && ends[0].code === 'ERR_CLOSED', String(ends[0]));
  assert.equal(relay.closed, true);
  relay.send(text('x'), endpoint(SERVER, 9));
  assert.equal(relay.stats.sendErrors, 1);
  await world.run(relay.close());
  assert.equal(ends.length, 1, 'told once');
}));
