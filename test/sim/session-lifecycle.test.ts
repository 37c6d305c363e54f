// The secure session's lifecycle in the simulated world: a graceful close over a lossy
// link hands over every queued message before the peer's onClose; a lost CLOSE and a lost
// ACK of it are recovered; close() gives up at its deadline when the peer is gone;
// keepalives hold a NAT binding and an idle session open far past idleTimeoutMs; a peer
// that vanishes fails the session with ERR_TIMEOUT after idleTimeoutMs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Endpoint, PacketSocket } from '../../src/net/index.ts';
import type { SimHost, World } from '../../src/net/sim/index.ts';
import { identityFromSeed } from '../../src/rendezvous/index.ts';
import { SecureSession, type DatagramPath, type SecureSessionOptions } from '../../src/session/index.ts';
import { simTest } from '../helpers/sim.ts';

const LOSSY = { delayMs: 10, jitterMs: 4, lossRate: 0.05, duplicateRate: 0.05, reorderRate: 0.1, reorderDelayMs: 15 };
const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);
const text = (b: Uint8Array): string => new TextDecoder().decode(b);

/** A path over `socket` to `to`; without `to`, to wherever the last datagram came from. `drop` may refuse a datagram to send. */
function socketPath(socket: PacketSocket, to?: Endpoint, drop: (data: Uint8Array) => boolean = () => false): DatagramPath {
  let peer = to;
  let handler: ((data: Uint8Array) => void) | undefined;
  socket.onPacket((data, from) => {
    peer ??= from;
    if (to === undefined) peer = from;
    handler?.(data);
  });
  return {
    send: (data) => {
      if (peer !== undefined && !drop(data)) socket.send(data, peer);
    },
    onMessage: (h) => void (handler = h),
  };
}

type Extra = Partial<Omit<SecureSessionOptions, 'env' | 'path' | 'role' | 'identity' | 'peerIdentityKey'>>;

/** Alice (initiator) and Bob on their own sockets, open. */
async function pair(world: World, hosts: { alice: SimHost; bob: SimHost }, options: { a?: Extra; b?: Extra; dropA?: (d: Uint8Array) => boolean; dropB?: (d: Uint8Array) => boolean } = {}) {
  const sa = await hosts.alice.network.bindUdp();
  const sb = await hosts.bob.network.bindUdp({ address: hosts.bob.address(), port: 4000 });
  const aliceId = identityFromSeed(hosts.alice.env.random.bytes(32));
  const bobId = identityFromSeed(hosts.bob.env.random.bytes(32));
  const a = new SecureSession({ env: hosts.alice.env, path: socketPath(sa, sb.local, options.dropA), role: 'initiator', identity: aliceId, peerIdentityKey: bobId.publicKey, ...options.a });
  const b = new SecureSession({ env: hosts.bob.env, path: socketPath(sb, undefined, options.dropB), role: 'responder', identity: bobId, peerIdentityKey: aliceId.publicKey, ...options.b });
  await world.run(Promise.all([a.opened(), b.opened()]));
  return { a, b, sockets: [sa, sb], close: async () => { await sa.close(); await sb.close(); } };
}

/** A message of `i`: its number, then a body of 0–2999 bytes (some span three fragments). */
function message(i: number): Uint8Array {
  const m = new Uint8Array(4 + ((i * 97) % 3000));
  new DataView(m.buffer).setUint32(0, i);
  return m;
}

test('graceful close over a lossy link: every queued message in order, then onClose on the peer (closedBy peer)', simTest({ seed: 11 }, async (world) => {
  const hosts = { alice: world.addHost({ name: 'alice', link: LOSSY }), bob: world.addHost({ name: 'bob', link: LOSSY }) };
  const p = await pair(world, hosts);
  const events: string[] = [];
  p.b.onMessage((m) => events.push(`message ${new DataView(m.buffer, m.byteOffset).getUint32(0)}`));
  p.b.onClose((error) => events.push(`close ${error?.message ?? 'clean'}`));
  let aliceClosed: string | undefined;
  p.a.onClose((error) => (aliceClosed = error?.message ?? 'clean'));

  const COUNT = 300;
  for (let i = 0; i < COUNT; i++) p.a.send(message(i));
  // Close at once, with everything still queued.
  const closing = p.a.close({ timeoutMs: 20_000 });
  assert.equal(p.a.state, 'closing');
  assert.throws(() => p.a.send(utf8('late')), { code: 'ERR_CLOSED' });
  const started = world.clock.now();
  await world.run(closing);

  assert.deepEqual(events, [...Array.from({ length: COUNT }, (_, i) => `message ${i}`), 'close clean']);
  assert.equal(aliceClosed, 'clean');
  assert.equal(p.a.state, 'closed');
  assert.equal(p.a.closedBy, 'local');
  assert.equal(p.b.state, 'closed');
  assert.equal(p.b.closedBy, 'peer');
  assert.equal(p.a.stats.closeTimeouts, 0, `acknowledged after ${world.clock.now() - started} ms`);
  assert.equal(p.a.unacknowledged, 0);
  assert.ok(p.a.stats.reliable.retransmissions > 0, 'the link cost retransmissions');
  assert.throws(() => p.b.send(utf8('too late')), { code: 'ERR_CLOSED' });
  await world.run(p.b.close());
  await p.close();
}));

test('a lost CLOSE is retransmitted, a lost ACK of it answered again: close() still ends acknowledged', simTest({ seed: 12 }, async (world) => {
  const hosts = { alice: world.addHost({ name: 'alice', link: { delayMs: 10 } }), bob: world.addHost({ name: 'bob', link: { delayMs: 10 } }) };
  let closesDropped = 0;
  let acksDropped = 0;
  // Alice's first two datagrams after close() (the CLOSE and its first repeat) and bob's first after he closed (its ACK).
  const s: { a?: SecureSession; b?: SecureSession } = {};
  const p = await pair(world, hosts, {
    dropA: () => s.a?.state === 'closing' && closesDropped < 2 && ++closesDropped > 0,
    dropB: () => s.b?.state === 'closed' && acksDropped < 1 && ++acksDropped > 0,
  });
  Object.assign(s, { a: p.a, b: p.b });
  p.a.send(utf8('before the close'));
  await world.elapse(100);
  const got: string[] = [];
  p.b.onMessage((m) => got.push(text(m)));
  let bobClosed = false;
  p.b.onClose((error) => (bobClosed = error === undefined));
  const started = world.clock.now();
  await world.run(p.a.close());
  const took = world.clock.now() - started;
  assert.deepEqual([closesDropped, acksDropped], [2, 1]);
  assert.equal(bobClosed, true);
  assert.equal(p.b.closedBy, 'peer');
  assert.equal(p.a.closedBy, 'local');
  assert.equal(p.a.stats.closeTimeouts, 0, `acknowledged after ${took} ms`);
  assert.ok(took < 3000, `closed in ${took} ms`);
  assert.ok(p.a.stats.reliable.retransmissions >= 3, `retransmissions: ${p.a.stats.reliable.retransmissions}`);
  await p.close();
}));

for (const timeoutMs of [undefined, 500]) {
  test(`close() when the peer is gone: closed (local) after ${timeoutMs ?? 'the default 3000'} ms`, simTest({ seed: 13 }, async (world) => {
    const hosts = { alice: world.addHost({ name: 'alice' }), bob: world.addHost({ name: 'bob' }) };
    const p = await pair(world, hosts);
    p.b.abort();
    assert.equal(p.b.closedBy, 'local');
    p.a.send(utf8('nobody listens'));
    const started = world.clock.now();
    let closed = false;
    p.a.onClose((error) => (closed = error === undefined));
    await world.run(p.a.close(timeoutMs === undefined ? {} : { timeoutMs }));
    assert.equal(world.clock.now() - started, timeoutMs ?? 3000);
    assert.equal(closed, true);
    assert.equal(p.a.state, 'closed');
    assert.equal(p.a.closedBy, 'local');
    assert.equal(p.a.stats.closeTimeouts, 1);
    await p.close();
  }));
}

for (const keepalive of [true, false]) {
  test(`an idle session behind a NAT (20 s binding timeout), 120 s: ${keepalive ? 'keepalives hold the binding and the session' : 'without keepalives the binding expires'}`, simTest({ seed: 14 }, async (world) => {
    const home = world.addRouter({ name: 'home', nat: { mappingTimeoutMs: 20_000, refreshOnInbound: false } });
    const hosts = { alice: home.addHost({ name: 'alice' }), bob: world.addHost({ name: 'bob' }) };
    const options: Extra = keepalive ? {} : { keepaliveMs: 0, idleTimeoutMs: 0 };
    const p = await pair(world, hosts, { a: options, b: options });
    const got: string[] = [];
    p.a.onMessage((m) => got.push(text(m)));
    await world.elapse(120_000);
    p.b.send(utf8('still there?'));
    await world.elapse(2000);
    if (keepalive) {
      assert.equal(p.a.state, 'open');
      assert.equal(p.b.state, 'open');
      assert.deepEqual(got, ['still there?']);
      for (const s of [p.a, p.b]) assert.ok(s.stats.keepalivesSent >= 11 && s.stats.keepalivesSent <= 13, `keepalives: ${s.stats.keepalivesSent}`);
      await world.run(p.a.close());
      assert.equal(p.b.closedBy, 'peer');
    } else {
      assert.deepEqual(got, [], 'the NAT dropped bob\'s message: alice\'s binding expired');
      assert.equal(p.a.stats.keepalivesSent, 0);
      p.a.abort();
      p.b.abort();
    }
    await p.close();
  }));
}

test('a peer that vanishes: the session fails with ERR_TIMEOUT idleTimeoutMs after its last packet; onClose gets the error', simTest({ seed: 15 }, async (world) => {
  const hosts = { alice: world.addHost({ name: 'alice', link: { delayMs: 10 } }), bob: world.addHost({ name: 'bob', link: { delayMs: 10 } }) };
  const p = await pair(world, hosts);
  let heardAt = 0;
  p.a.onMessage(() => (heardAt = world.clock.now()));
  let failed: { at: number; error: Error | undefined } | undefined;
  p.a.onClose((error) => (failed = { at: world.clock.now(), error }));
  await world.elapse(15_000);
  p.b.send(utf8('goodbye, abruptly'));
  await world.elapse(100);
  p.b.abort();
  await p.sockets[1]!.close();
  await world.elapse(40_000);
  assert.ok(heardAt > 15_000);
  assert.equal(failed?.at, heardAt + 30_000, 'idleTimeoutMs (30 s) after the last packet from bob');
  assert.equal(p.a.state, 'failed');
  assert.equal(p.a.closedBy, undefined);
  assert.equal((failed?.error as { code?: string } | undefined)?.code, 'ERR_TIMEOUT');
  assert.match(failed?.error?.message ?? '', /peer silent for 30000 ms/);
  assert.throws(() => p.a.send(utf8('x')), { code: 'ERR_CLOSED' });
  await world.run(p.a.close());
  await p.sockets[0]!.close();
}));

test('[Symbol.asyncDispose] closes gracefully', simTest({ seed: 16 }, async (world) => {
  const hosts = { alice: world.addHost({ name: 'alice' }), bob: world.addHost({ name: 'bob' }) };
  const p = await pair(world, hosts);
  const got: string[] = [];
  p.b.onMessage((m) => got.push(text(m)));
  p.a.send(utf8('last'));
  await world.run(p.a[Symbol.asyncDispose]());
  assert.deepEqual(got, ['last']);
  assert.equal(p.b.closedBy, 'peer');
  await p.close();
}));

test('whenStopped(): the side the peer closed stops after its linger (3 RTO), the closer and an aborted one at once', simTest({ seed: 17 }, async (world) => {
  const hosts = { alice: world.addHost({ name: 'alice', link: { delayMs: 10 } }), bob: world.addHost({ name: 'bob', link: { delayMs: 10 } }) };
  const { a, b, close } = await pair(world, hosts);
  let bobStoppedAt: number | undefined;
  void b.whenStopped().then(() => (bobStoppedAt = world.clock.now()));
  await world.run(a.close());
  const closedAt = world.clock.now();
  await world.run(a.whenStopped());
  assert.equal(world.clock.now(), closedAt, 'the closer holds nothing after its CLOSE is acknowledged');
  assert.equal(b.closedBy, 'peer');
  assert.equal(bobStoppedAt, undefined, 'bob still lingers to acknowledge a repeated CLOSE');
  const rto = b.stats.reliable.rtoMs;
  await world.elapse(3 * rto + 50);
  assert.ok(bobStoppedAt !== undefined && bobStoppedAt - closedAt <= 3 * rto + 50, `bob stopped ${bobStoppedAt === undefined ? 'never' : bobStoppedAt - closedAt} ms after the close, within 3 RTO (${3 * rto} ms)`);

  const again = await pair(world, { alice: world.addHost({ name: 'alice2' }), bob: world.addHost({ name: 'bob2' }) });
  again.a.abort();
  await world.run(again.a.whenStopped());
  assert.equal(again.a.state, 'closed');
  await world.run(again.b.close({ timeoutMs: 200 }));
  await world.run(again.b.whenStopped());
  await again.close();
  await close();
}));
