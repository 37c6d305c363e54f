// fast-check properties of the session layers: any bytes into an open session core or a
// reliable channel never throw (the core delivers nothing); any message sizes and any
// loss/duplication/reordering pattern give every message once, in order.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { identityFromSeed } from '../../src/rendezvous/index.ts';
import { ReliableChannel, SessionCore } from '../../src/session/index.ts';

const random = (n: number): Uint8Array => new Uint8Array(randomBytes(n));

function openPair(): [SessionCore, SessionCore] {
  const ia = identityFromSeed(random(32));
  const ib = identityFromSeed(random(32));
  const a = new SessionCore({ role: 'initiator', identity: ia, peerIdentityKey: ib.publicKey, random });
  const b = new SessionCore({ role: 'responder', identity: ib, peerIdentityKey: ia.publicKey, random });
  a.start(0);
  b.start(0);
  for (let r = 0; r < 3; r++) {
    for (const d of a.poll(0)) b.receive(d, 0);
    for (const d of b.poll(0)) a.receive(d, 0);
  }
  assert.equal(a.state, 'open');
  assert.equal(b.state, 'open');
  return [a, b];
}

test('garbage into an open session core never throws, never delivers, never closes it', () => {
  const [a, b] = openPair();
  fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), fc.constantFrom(1, 2, 3, 4), (data, type) => {
    const d = Uint8Array.from(data);
    if (d.length > 0 && data[0]! % 2 === 0) d[0] = type;
    a.receive(d, 1);
    b.receive(d, 1);
    assert.deepEqual(a.takeDelivered(), []);
    assert.deepEqual(b.takeDelivered(), []);
  }), { numRuns: 500 });
  assert.equal(a.state, 'open');
  assert.equal(b.state, 'open');
});

test('garbage frames into a reliable channel never throw and are counted', () => {
  const c = new ReliableChannel();
  fc.assert(fc.property(fc.uint8Array({ maxLength: 100 }), (data) => {
    c.receive(data, 0);
    c.poll(0);
  }), { numRuns: 1000 });
  // A garbage frame can be a well-formed DATA frame (the transport's AEAD keeps those out in a session).
  assert.ok(c.stats.malformedFrames + c.stats.duplicateFragments + c.stats.outOfWindow + c.stats.messagesDelivered > 0);
});

test('any sizes over any loss, duplication and reordering pattern: every message once, in order', () => {
  fc.assert(fc.property(
    fc.array(fc.nat({ max: 600 }), { minLength: 1, maxLength: 40 }),
    fc.array(fc.nat({ max: 9 }), { minLength: 50, maxLength: 200 }),
    (sizes, fate) => {
      const a = new ReliableChannel({ maxFrameBytes: 64, initialRtoMs: 100, minRtoMs: 50 });
      const b = new ReliableChannel({ maxFrameBytes: 64 });
      const sent = sizes.map((n, i) => Uint8Array.from({ length: n }, (_, j) => (i + j) & 0xff));
      for (const m of sent) a.send(m);
      const got: Uint8Array[] = [];
      let k = 0;
      let held: Uint8Array[] = [];
      for (let now = 0; now < 60_000 && (got.length < sent.length || a.unacknowledged > 0); now += 10) {
        const out = a.poll(now);
        // fate 0: lost, 1: duplicated, 2: held back one round, else: delivered.
        const next: Uint8Array[] = [];
        for (const f of out) {
          const v = fate[k++ % fate.length]!;
          if (v === 0 && now < 30_000) continue;
          if (v === 2) next.push(f);
          else {
            b.receive(f, now);
            if (v === 1) b.receive(f, now);
          }
        }
        for (const f of held) b.receive(f, now);
        held = next;
        for (const f of b.poll(now)) a.receive(f, now);
        got.push(...b.takeDelivered());
        a.onTimer(now);
      }
      assert.equal(got.length, sent.length);
      got.forEach((m, i) => assert.deepEqual(m, sent[i]));
    },
  ), { numRuns: 100 });
});
