// The session core: the XX handshake with identity binding (each static key signed by the
// peer's Ed25519 identity, checked against the key the PUNCH order named), recovery from
// lost handshake messages, forged and tampered handshake messages dropped, then messages.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { identityFromSeed } from '../../src/rendezvous/index.ts';
import type { PeerConnection } from '../../src/punch/index.ts';
import { PACKET_HANDSHAKE_2, SessionCore, checkIdentityProof, identityProof, x25519KeyPair, type DatagramPath, type SessionOptions } from '../../src/session/index.ts';

const random = (n: number): Uint8Array => new Uint8Array(randomBytes(n));
const alice = identityFromSeed(random(32));
const bob = identityFromSeed(random(32));
const mallory = identityFromSeed(random(32));

function cores(extra: { a?: Partial<SessionOptions>; b?: Partial<SessionOptions> } = {}): [SessionCore, SessionCore] {
  const a = new SessionCore({ role: 'initiator', identity: alice, peerIdentityKey: bob.publicKey, random, ...extra.a });
  const b = new SessionCore({ role: 'responder', identity: bob, peerIdentityKey: alice.publicKey, random, ...extra.b });
  a.start(0);
  b.start(0);
  return [a, b];
}

/** Delivers everything both sides have to send, `rounds` times; `filter` may drop or alter a datagram. */
function exchange(a: SessionCore, b: SessionCore, now: number, rounds = 4, filter: (d: Uint8Array, from: SessionCore) => Uint8Array | undefined = (d) => d): void {
  for (let r = 0; r < rounds; r++) {
    for (const [from, to] of [[a, b], [b, a]] as const) {
      for (const d of from.poll(now)) {
        const f = filter(d, from);
        if (f !== undefined) to.receive(f, now);
      }
    }
  }
}

test('identity proof: verifies for its static key only', () => {
  const s = x25519KeyPair(random(32)).publicKey;
  const proof = identityProof(alice, s);
  assert.deepEqual(checkIdentityProof(proof, s), alice.publicKey);
  assert.equal(checkIdentityProof(proof, x25519KeyPair(random(32)).publicKey), undefined);
  assert.equal(checkIdentityProof(proof.subarray(1), s), undefined);
});

test('handshake: both open, agree on the hash, and know each other by identity and static key', () => {
  const [a, b] = cores();
  exchange(a, b, 0);
  assert.equal(a.state, 'open');
  assert.equal(b.state, 'open');
  assert.deepEqual(a.handshakeHash, b.handshakeHash);
  assert.deepEqual(a.peer?.identityKey, bob.publicKey);
  assert.deepEqual(b.peer?.identityKey, alice.publicKey);
  assert.deepEqual(a.peer?.staticKey, b.staticKey);
  a.send(new TextEncoder().encode('hi bob'));
  b.send(new TextEncoder().encode('hi alice'));
  exchange(a, b, 10);
  assert.deepEqual(b.takeDelivered(), [new TextEncoder().encode('hi bob')]);
  assert.deepEqual(a.takeDelivered(), [new TextEncoder().encode('hi alice')]);
});

test('a peer with another identity than the PUNCH order named is refused; the handshake times out saying why', () => {
  const [a] = cores();
  const m = new SessionCore({ role: 'responder', identity: mallory, random });
  m.start(0);
  exchange(a, m, 0);
  assert.equal(a.state, 'handshaking');
  assert.equal(a.stats.handshakeRejected, 1);
  a.onTimer(10_000);
  assert.equal(a.state, 'failed');
  assert.equal(a.error?.code, 'ERR_TIMEOUT');
  assert.match(a.error?.message ?? '', /identity key .* expected/);
});

test('without an expected key any proven identity is accepted and exposed (to pin)', () => {
  const [, b] = cores();
  const a = new SessionCore({ role: 'initiator', identity: alice, random });
  a.start(0);
  exchange(a, b, 0);
  assert.equal(a.state, 'open');
  assert.deepEqual(a.peer?.identityKey, bob.publicKey);
});

test('lost message 2 and lost message 3 are recovered by retransmission', () => {
  const [a, b] = cores();
  let dropped = 0;
  // Drop the first message 2 and the first message 3.
  const seen = new Set<number>();
  const filter = (d: Uint8Array): Uint8Array | undefined => {
    if ((d[0] === 2 || d[0] === 3) && !seen.has(d[0])) {
      seen.add(d[0]);
      dropped++;
      return undefined;
    }
    return d;
  };
  exchange(a, b, 0, 4, filter);
  assert.equal(a.state, 'handshaking');
  a.onTimer(250);
  exchange(a, b, 250, 4, filter);
  assert.equal(a.state, 'open');
  assert.equal(b.state, 'handshaking', 'message 3 was lost');
  a.send(Uint8Array.of(1));
  exchange(a, b, 260, 2, filter);
  assert.ok(b.stats.early > 0, 'data before the handshake completed is dropped and counted');
  b.onTimer(10_000 - 1);
  exchange(a, b, 10_000 - 1);
  assert.equal(b.state, 'open');
  a.onTimer(10_000);
  exchange(a, b, 10_000);
  assert.deepEqual(b.takeDelivered(), [Uint8Array.of(1)]);
  assert.equal(dropped, 2);
});

test('a tampered message 2 is dropped without ending the handshake', () => {
  const [a, b] = cores();
  let tampered = false;
  exchange(a, b, 0, 4, (d) => {
    if (d[0] !== PACKET_HANDSHAKE_2 || tampered) return d;
    tampered = true;
    const bad = Uint8Array.from(d);
    bad[40]! ^= 1;
    // The altered copy first, then the genuine one.
    a.receive(bad, 0);
    return d;
  });
  assert.equal(a.stats.handshakeRejected, 1);
  assert.equal(a.state, 'open');
  assert.equal(b.state, 'open');
});

test('garbage never throws and is counted', () => {
  const [a, b] = cores();
  exchange(a, b, 0);
  for (let i = 0; i < 200; i++) {
    const g = random(1 + (i % 90));
    a.receive(g, 1);
    b.receive(g, 1);
  }
  const count = (c: SessionCore): number => {
    const s = c.stats;
    return s.unknown + s.handshakeRejected + (s.transport ? s.transport.tampered + s.transport.malformed + s.transport.replayed + s.transport.staleEpoch : 0);
  };
  assert.ok(count(a) > 0 && count(b) > 0);
  assert.equal(a.state, 'open');
  assert.equal(b.state, 'open');
});

test('a PeerConnection is a DatagramPath (checked by the compiler)', () => {
  const fits = (conn: PeerConnection): DatagramPath => conn;
  assert.equal(typeof fits, 'function');
});
