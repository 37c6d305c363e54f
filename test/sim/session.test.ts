// The secure session in the simulated world: two peers start on a relayed path (a
// forwarder host standing for TURN) over links that lose, duplicate, reorder and delay,
// with an attacker on the relay flipping bits and replaying packets; halfway through a
// 10,000-message stream both move to a direct path on new sockets. Every message
// arrives once, in order, intact; tampered and replayed packets are dropped and counted.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Endpoint, PacketSocket } from '../../src/net/index.ts';
import type { World } from '../../src/net/sim/index.ts';
import { identityFromSeed } from '../../src/rendezvous/index.ts';
import { SecureSession, type DatagramPath } from '../../src/session/index.ts';
import { simTest } from '../helpers/sim.ts';

const COUNT = 10_000;
const LINK = { delayMs: 10, jitterMs: 4, lossRate: 0.05, duplicateRate: 0.05, reorderRate: 0.1, reorderDelayMs: 15 };

function socketPath(socket: PacketSocket, to: Endpoint): DatagramPath {
  return {
    send: (data) => socket.send(data, to),
    onMessage: (handler) => socket.onPacket(handler === undefined ? undefined : (data) => handler(data)),
  };
}

/** Message i: its number, then a body whose length cycles 0–2999 bytes (so some span three fragments). */
function message(i: number): Uint8Array {
  const m = new Uint8Array(4 + ((i * 37) % 3000));
  new DataView(m.buffer).setUint32(0, i);
  for (let j = 4; j < m.length; j++) m[j] = (i + j) & 0xff;
  return m;
}

interface Attack {
  tampered: number;
  replayed: number;
}

/** A relay forwarding between two sockets; transport packets are sometimes altered or replayed later. */
async function relay(world: World, attack: Attack): Promise<{ forA: PacketSocket; forB: PacketSocket; close: () => Promise<void> }> {
  const host = world.addHost({ name: 'relay' });
  const forA = await host.network.bindUdp({ address: host.address(), port: 3478 });
  const forB = await host.network.bindUdp({ address: host.address(), port: 3479 });
  const random = host.env.random;
  const seen: Uint8Array[] = [];
  let a: Endpoint | undefined;
  let b: Endpoint | undefined;
  const forward = (data: Uint8Array, out: PacketSocket, to: Endpoint | undefined): void => {
    if (to === undefined) return;
    out.send(data, to);
    if (data[0] !== 0x04) return;
    const roll = random.bytes(1)[0]!;
    if (roll < 8) {
      // Flip one bit past the header: a transport packet the AEAD must refuse.
      const bad = Uint8Array.from(data);
      bad[10 + (random.bytes(1)[0]! % (bad.length - 10))]! ^= 0x20;
      out.send(bad, to);
      attack.tampered++;
    } else if (roll < 16 && seen.length > 0) {
      out.send(seen[random.bytes(1)[0]! % seen.length]!, to);
      attack.replayed++;
    }
    if (seen.length < 256) seen.push(Uint8Array.from(data));
    else seen[random.bytes(1)[0]!] = Uint8Array.from(data);
  };
  forA.onPacket((data, from) => {
    a = from;
    forward(data, forB, b);
  });
  forB.onPacket((data, from) => {
    b = from;
    forward(data, forA, a);
  });
  return { forA, forB, close: async () => { await forA.close(); await forB.close(); } };
}

test('10,000 messages over a lossy, duplicating, reordering path that switches from relay to direct: each arrives once, in order', simTest({ seed: 2026, traceCapacity: 2000 }, async (world) => {
  const alice = world.addHost({ name: 'alice', link: LINK });
  const bob = world.addHost({ name: 'bob', link: LINK });
  const attack: Attack = { tampered: 0, replayed: 0 };
  const r = await relay(world, attack);
  const aliceRelay = await alice.network.bindUdp();
  const bobRelay = await bob.network.bindUdp();
  // Each side greets the relay first so it learns where to forward (as a TURN permission would).
  aliceRelay.send(Uint8Array.of(0), r.forA.local);
  bobRelay.send(Uint8Array.of(0), r.forB.local);
  await world.elapse(100);

  const aliceId = identityFromSeed(alice.env.random.bytes(32));
  const bobId = identityFromSeed(bob.env.random.bytes(32));
  // Reliability under 5 % random loss is the subject, not congestion: loss-based control
  // would read every loss as congestion and crawl (the 'reno' test below has its own link).
  const a = new SecureSession({ env: alice.env, path: socketPath(aliceRelay, r.forA.local), role: 'initiator', identity: aliceId, peerIdentityKey: bobId.publicKey, congestionControl: 'none' });
  const b = new SecureSession({ env: bob.env, path: socketPath(bobRelay, r.forB.local), role: 'responder', identity: bobId, peerIdentityKey: aliceId.publicKey });
  const got: Uint8Array[] = [];
  b.onMessage((m) => got.push(m));
  const [pa, pb] = await world.run(Promise.all([a.opened(), b.opened()]));
  assert.deepEqual(pa.identityKey, bobId.publicKey);
  assert.deepEqual(pb.identityKey, aliceId.publicKey);

  for (let i = 0; i < COUNT; i++) a.send(message(i));
  for (let t = 0; t < 600 && got.length < COUNT / 2; t++) await world.elapse(50);
  assert.ok(got.length >= COUNT / 2, `half the stream over the relay: ${got.length}`);

  // The switch: new sockets, straight to each other; what was in flight on the relay is lost.
  const aliceDirect = await alice.network.bindUdp({ address: alice.address() });
  const bobDirect = await bob.network.bindUdp({ address: bob.address() });
  a.setPath(socketPath(aliceDirect, bobDirect.local));
  b.setPath(socketPath(bobDirect, aliceDirect.local));
  for (let t = 0; t < 1200 && (got.length < COUNT || a.unacknowledged > 0); t++) await world.elapse(50);

  assert.equal(got.length, COUNT, 'every message arrives once');
  for (let i = 0; i < COUNT; i++) assert.deepEqual(got[i], message(i), `message ${i} in order and intact`);
  assert.equal(a.unacknowledged, 0);

  const ts = b.stats.transport!;
  const rs = a.stats.reliable;
  assert.ok(attack.tampered > 0 && attack.replayed > 0, `the attacker acted: ${JSON.stringify(attack)}`);
  assert.ok(ts.tampered > 0 && ts.tampered <= attack.tampered, `tampered dropped and counted: ${ts.tampered} of ${attack.tampered} sent`);
  assert.ok(ts.replayed > 0, `replayed (and duplicated) dropped and counted: ${ts.replayed}`);
  assert.ok(rs.retransmissions > 0 && rs.srttMs !== undefined, `retransmissions ${rs.retransmissions}, srtt ${rs.srttMs}`);
  assert.equal(b.stats.reliable.messagesDelivered, COUNT);

  // A graceful close: alice's CLOSE is acknowledged; bob was closed by it.
  await world.run(a.close());
  assert.equal(a.closedBy, 'local');
  assert.equal(a.stats.closeTimeouts, 0, 'the CLOSE was acknowledged');
  await world.run(b.close());
  assert.equal(b.closedBy, 'peer');
  for (const s of [aliceRelay, bobRelay, aliceDirect, bobDirect]) await s.close();
  await r.close();
}));

test('a peer proving another identity than expected: opened() rejects with ERR_TIMEOUT and onClose gets the error', simTest({ seed: 7 }, async (world) => {
  const alice = world.addHost({ name: 'alice' });
  const bob = world.addHost({ name: 'bob' });
  const sa = await alice.network.bindUdp({ address: alice.address() });
  const sb = await bob.network.bindUdp({ address: bob.address() });
  const expected = identityFromSeed(alice.env.random.bytes(32));
  const a = new SecureSession({ env: alice.env, path: socketPath(sa, sb.local), role: 'initiator', identity: identityFromSeed(alice.env.random.bytes(32)), peerIdentityKey: expected.publicKey });
  const b = new SecureSession({ env: bob.env, path: socketPath(sb, sa.local), role: 'responder', identity: identityFromSeed(bob.env.random.bytes(32)), handshakeTimeoutMs: 1000 });
  let closedWith: Error | undefined;
  a.onClose((err) => (closedWith = err));
  await assert.rejects(world.run(a.opened()), (err: Error & { code?: string }) => err.code === 'ERR_TIMEOUT' && /expected/.test(err.message));
  assert.equal(closedWith?.message.includes('expected'), true);
  assert.ok(a.stats.handshakeRejected > 0);
  await assert.rejects(b.opened(), { code: 'ERR_TIMEOUT' }, 'the responder never got message 3');
  assert.equal(b.state, 'failed');
  await a.close();
  await b.close();
  await sa.close();
  await sb.close();
}));

test('congestion control (reno): a stream over a link with 1 % loss arrives whole; losses shrink the window, it grows back', simTest({ seed: 31 }, async (world) => {
  const link = { delayMs: 15, jitterMs: 2, lossRate: 0.01 };
  const alice = world.addHost({ name: 'alice', link });
  const bob = world.addHost({ name: 'bob', link });
  const sa = await alice.network.bindUdp({ address: alice.address() });
  const sb = await bob.network.bindUdp({ address: bob.address() });
  const aliceId = identityFromSeed(alice.env.random.bytes(32));
  const bobId = identityFromSeed(bob.env.random.bytes(32));
  const a = new SecureSession({ env: alice.env, path: socketPath(sa, sb.local), role: 'initiator', identity: aliceId, peerIdentityKey: bobId.publicKey, congestionControl: 'reno' });
  const b = new SecureSession({ env: bob.env, path: socketPath(sb, sa.local), role: 'responder', identity: bobId, peerIdentityKey: aliceId.publicKey });
  const got: Uint8Array[] = [];
  b.onMessage((m) => got.push(m));
  await world.run(Promise.all([a.opened(), b.opened()]));
  const count = 2000;
  for (let i = 0; i < count; i++) a.send(message(i));
  let largest = 0;
  for (let t = 0; t < 1200 && (got.length < count || a.unacknowledged > 0); t++) {
    await world.elapse(50);
    largest = Math.max(largest, a.stats.reliable.cwnd);
  }
  assert.equal(got.length, count);
  for (let i = 0; i < count; i++) assert.deepEqual(got[i], message(i), `message ${i}`);
  const rs = a.stats.reliable;
  assert.ok(rs.retransmissions > 0 && rs.ssthresh < Infinity, `losses cut the window: ssthresh ${rs.ssthresh}`);
  assert.ok(largest > rs.ssthresh && largest <= 256, `it grew beyond ssthresh again (largest ${largest}), within maxInFlight`);
  await world.run(a.close());
  assert.equal(b.closedBy, 'peer');
  await sa.close();
  await sb.close();
}));
