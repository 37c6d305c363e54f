// Transport phase: the replay window (RFC 6479 scheme), packets sealed with their counter
// as the nonce, tampered and replayed packets dropped and counted exactly, and rekeying
// by packet count and by time with reordered packets across the change.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CipherState, REPLAY_WINDOW_BITS, ReplayWindow, Transport, type HandshakeResult } from '../../src/session/index.ts';

test('replay window: fresh, replayed, too old, and a long jump clears it', () => {
  const w = new ReplayWindow();
  assert.equal(w.check(0), 'fresh');
  w.mark(0);
  assert.equal(w.check(0), 'replayed');
  w.mark(5);
  assert.equal(w.check(3), 'fresh');
  assert.equal(w.check(5), 'replayed');
  w.mark(3);
  assert.equal(w.check(3), 'replayed');
  w.mark(10_000);
  assert.equal(w.check(10_000 - REPLAY_WINDOW_BITS), 'too-old');
  assert.equal(w.check(10_000 - 100), 'fresh', 'words the window slid over were cleared');
  assert.equal(w.check(10_000), 'replayed');
});

test('replay window: every counter of a shuffled run is accepted once', () => {
  const w = new ReplayWindow();
  const order = Array.from({ length: 5000 }, (_, i) => i);
  // Local shuffle within blocks of 500: reordering well inside the window.
  for (let b = 0; b < order.length; b += 500) order.splice(b, 500, ...order.slice(b, b + 500).reverse());
  for (const c of order) {
    assert.equal(w.check(c), 'fresh', `counter ${c}`);
    w.mark(c);
  }
  for (const c of [0, 1234, 4999]) assert.notEqual(w.check(c), 'fresh');
});

function pair(options: { rekeyAfterPackets?: number; rekeyAfterMs?: number } = {}): [Transport, Transport] {
  const k1 = new Uint8Array(32).fill(1);
  const k2 = new Uint8Array(32).fill(2);
  const result = (send: Uint8Array, receive: Uint8Array): HandshakeResult => ({
    send: new CipherState(send), receive: new CipherState(receive), handshakeHash: new Uint8Array(32), remoteStatic: new Uint8Array(32),
  });
  return [new Transport(result(k1, k2), 0, options), new Transport(result(k2, k1), 0, options)];
}

const text = (s: string): Uint8Array => new TextEncoder().encode(s);

test('seal and open, out of order; replays and duplicates dropped and counted', () => {
  const [a, b] = pair();
  const packets = [0, 1, 2, 3].map((i) => a.seal(text(`m${i}`), 0));
  for (const i of [2, 0, 3, 1]) assert.deepEqual(b.open(packets[i]!), text(`m${i}`));
  assert.equal(b.open(packets[1]!), 'replayed');
  assert.equal(b.open(packets[3]!), 'replayed');
  assert.equal(b.stats.replayed, 2);
  assert.equal(b.stats.packetsOpened, 4);
});

test('any flipped bit is dropped as tampered and does not move the window', () => {
  const [a, b] = pair();
  const p = a.seal(text('hello'), 0);
  let tampered = 0;
  for (let bit = 8; bit < p.length * 8; bit++) {
    const bad = Uint8Array.from(p);
    bad[bit >> 3]! ^= 1 << (bit & 7);
    const r = b.open(bad);
    assert.ok(typeof r === 'string', `bit ${bit} accepted`);
    if (bit >= 80) assert.equal(r, 'tampered', `bit ${bit} of the ciphertext`);
    if (r === 'tampered') tampered++;
  }
  assert.equal(b.stats.tampered, tampered);
  assert.equal(b.stats.tampered + b.stats.malformed + b.stats.staleEpoch + b.stats.replayed, p.length * 8 - 8);
  assert.deepEqual(b.open(p), text('hello'), 'the genuine packet is still fresh');
  assert.equal(b.open(Uint8Array.of(4, 0, 0)), 'malformed');
});

test('rekey after N packets: the receiver follows, and late packets of the old epoch still open', () => {
  const [a, b] = pair({ rekeyAfterPackets: 3 });
  const packets = Array.from({ length: 7 }, (_, i) => a.seal(text(`m${i}`), 0));
  assert.equal(a.stats.rekeysSent, 2);
  assert.deepEqual([...new Set(packets.map((p) => p[1]))], [0, 1, 2]);
  // Epoch 1 first, then a straggler of epoch 0, then epoch 2.
  for (const i of [3, 4, 0, 5, 1, 2, 6]) {
    const r = b.open(packets[i]!);
    if (i <= 2 && b.stats.rekeysReceived === 2) assert.equal(r, 'stale-epoch', `packet ${i}: epoch 0 is two behind`);
    else assert.deepEqual(r, text(`m${i}`), `packet ${i}`);
  }
  assert.equal(b.stats.rekeysReceived, 2);
});

test('rekey after T ms', () => {
  const [a, b] = pair({ rekeyAfterMs: 1000 });
  const p0 = a.seal(text('early'), 0);
  const p1 = a.seal(text('late'), 1000);
  assert.equal(p0[1], 0);
  assert.equal(p1[1], 1);
  assert.deepEqual(b.open(p1), text('late'));
  assert.deepEqual(b.open(p0), text('early'));
});
