// The session core's lifecycle, sans-I/O on a hand-driven clock: a graceful close (CLOSE
// after every queued message, acknowledged, closedBy on both sides), CLOSE held back
// behind a lost fragment, a lost CLOSE and a lost ACK of it, the close deadline, a
// tampered, reflected or replayed CLOSE dropped, keepalives, and the idle timeout.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { identityFromSeed } from '../../src/rendezvous/index.ts';
import { SessionCore, type SessionOptions } from '../../src/session/index.ts';

const random = (n: number): Uint8Array => new Uint8Array(randomBytes(n));
const alice = identityFromSeed(random(32));
const bob = identityFromSeed(random(32));
const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);

type Filter = (d: Uint8Array, from: SessionCore) => Uint8Array | undefined;

/** Two cores, opened at time 0 (unless `open` is false). */
function cores(extra: { a?: Partial<SessionOptions>; b?: Partial<SessionOptions>; open?: boolean } = {}): [SessionCore, SessionCore] {
  const a = new SessionCore({ role: 'initiator', identity: alice, peerIdentityKey: bob.publicKey, random, ...extra.a });
  const b = new SessionCore({ role: 'responder', identity: bob, peerIdentityKey: alice.publicKey, random, ...extra.b });
  a.start(0);
  b.start(0);
  if (extra.open !== false) {
    exchange(a, b, 0);
    assert.equal(a.state, 'open');
    assert.equal(b.state, 'open');
  }
  return [a, b];
}

/** Delivers everything both sides have to send, `rounds` times; `filter` may drop or alter a datagram. */
function exchange(a: SessionCore, b: SessionCore, now: number, rounds = 4, filter: Filter = (d) => d): void {
  for (let r = 0; r < rounds; r++) {
    for (const [from, to] of [[a, b], [b, a]] as const) {
      for (const d of from.poll(now)) {
        const f = filter(d, from);
        if (f !== undefined) to.receive(f, now);
      }
    }
  }
}

/** Runs both cores' timers and exchanges until `until` ms, stepping to each timer (bounded). */
function run(a: SessionCore, b: SessionCore, from: number, until: number, filter: Filter = (d) => d): number {
  let now = from;
  for (let steps = 0; steps < 10_000; steps++) {
    a.onTimer(now);
    b.onTimer(now);
    exchange(a, b, now, 2, filter);
    const next = Math.min(a.nextTimerAt() ?? Infinity, b.nextTimerAt() ?? Infinity);
    if (next > until) return until;
    now = Math.max(now + 1, next);
  }
  assert.fail('run() did not reach its end time');
}

test('close: every queued message first, then CLOSE; the peer is closed by it and we by its ACK', () => {
  // All 51 in one exchange: no congestion window to open first.
  const [a, b] = cores({ a: { congestionControl: 'none' } });
  for (let i = 0; i < 50; i++) a.send(utf8(`m${i}`));
  a.send(new Uint8Array(5000));
  a.close(1);
  assert.equal(a.state, 'closing');
  assert.throws(() => a.send(utf8('late')), { code: 'ERR_CLOSED' });
  assert.equal(a.closedBy, undefined);
  exchange(a, b, 2);
  const got = b.takeDelivered();
  assert.equal(got.length, 51);
  assert.deepEqual(got.slice(0, 3), [utf8('m0'), utf8('m1'), utf8('m2')]);
  assert.equal(b.state, 'closed');
  assert.equal(b.closedBy, 'peer');
  assert.equal(b.error, undefined);
  assert.equal(a.state, 'closed');
  assert.equal(a.closedBy, 'local');
  assert.equal(a.stats.closeTimeouts, 0);
  assert.throws(() => b.send(utf8('after')), { code: 'ERR_CLOSED' });
  assert.equal(a.nextTimerAt(), undefined, 'the closer has nothing left to do');
});

test('CLOSE waits behind a lost fragment: the peer closes only after the retransmission delivered it', () => {
  const [a, b] = cores();
  a.send(utf8('one'));
  a.send(utf8('two'));
  a.close(0);
  let n = 0;
  // Drop alice's first transport packet ('one').
  exchange(a, b, 0, 4, (d, from) => (from === a && n++ === 0 ? undefined : d));
  assert.equal(b.state, 'open', 'CLOSE arrived but is held behind the missing fragment');
  assert.deepEqual(b.takeDelivered(), []);
  run(a, b, 1, 2000);
  assert.deepEqual(b.takeDelivered(), [utf8('one'), utf8('two')]);
  assert.equal(b.closedBy, 'peer');
  assert.equal(a.closedBy, 'local');
  assert.ok(a.stats.reliable.retransmissions > 0);
});

test('a lost CLOSE is retransmitted; a lost ACK of it is answered again by the lingering peer', () => {
  const [a, b] = cores({ a: { initialRtoMs: 200 } });
  a.close(0);
  let closesDropped = 0;
  let acksDropped = 0;
  const filter: Filter = (d, from) => {
    if (from === a && closesDropped < 2) {
      closesDropped++;
      return undefined;
    }
    if (from === b && acksDropped < 1) {
      acksDropped++;
      return undefined;
    }
    return d;
  };
  const end = run(a, b, 0, 10_000, filter);
  assert.equal(closesDropped, 2);
  assert.equal(acksDropped, 1);
  assert.equal(b.closedBy, 'peer');
  assert.equal(a.closedBy, 'local');
  assert.equal(a.stats.closeTimeouts, 0, 'acknowledged before the 3 s deadline');
  assert.ok(a.stats.reliable.retransmissions >= 3, `retransmissions ${a.stats.reliable.retransmissions}`);
  assert.ok(b.stats.reliable.acksSent >= 2, 'bob acknowledged the repeated CLOSE after he was closed');
  assert.equal(end, 10_000);
  assert.equal(b.nextTimerAt(), undefined, 'the linger ended');
});

test('close deadline: a peer that never answers leaves us closed (local) at timeoutMs', () => {
  const [a] = cores();
  a.send(utf8('into the void'));
  a.close(100, { timeoutMs: 1500 });
  let now = 100;
  for (let steps = 0; a.state === 'closing' && steps < 100; steps++) {
    now = a.nextTimerAt() ?? now;
    a.onTimer(now);
    a.poll(now);
  }
  assert.equal(now, 1600);
  assert.equal(a.state, 'closed');
  assert.equal(a.closedBy, 'local');
  assert.equal(a.stats.closeTimeouts, 1);
  assert.equal(a.stats.reliable.discardedFragments, 2, 'the message and the CLOSE, never acknowledged');
  assert.equal(a.error, undefined);
});

test('close during the handshake: CLOSE goes once the session opens, after the queued messages', () => {
  const [a, b] = cores({ open: false });
  a.send(utf8('early'));
  a.close(0);
  assert.equal(a.state, 'closing');
  exchange(a, b, 0);
  assert.deepEqual(b.takeDelivered(), [utf8('early')]);
  assert.equal(b.closedBy, 'peer');
  assert.equal(a.closedBy, 'local');
});

test('both close at once: each side delivers the other\'s messages and ends when its own CLOSE is acknowledged', () => {
  const [a, b] = cores();
  a.send(utf8('from a'));
  b.send(utf8('from b'));
  a.close(0);
  b.close(0);
  // Bob's packets: his ACK of alice's CLOSE, 'from b', his CLOSE. 'from b' is lost once:
  // alice has her ACK but waits for bob's CLOSE, which waits behind the retransmission.
  let n = 0;
  const filter: Filter = (d, from) => (from === b && n++ === 1 ? undefined : d);
  exchange(a, b, 0, 4, filter);
  assert.equal(a.state, 'closing', 'alice\'s CLOSE is acknowledged, but bob is closing too');
  assert.deepEqual(a.takeDelivered(), []);
  run(a, b, 1, 5000, filter);
  assert.deepEqual(a.takeDelivered(), [utf8('from b')]);
  assert.deepEqual(b.takeDelivered(), [utf8('from a')]);
  assert.equal(a.closedBy, 'local');
  assert.equal(b.closedBy, 'local');
});

test('a tampered, reflected or replayed CLOSE is dropped and closes nothing', () => {
  const [a, b] = cores();
  a.close(0);
  const [close] = a.poll(0);
  assert.ok(close !== undefined);
  // Tampered: any flipped bit (header or ciphertext) fails the AEAD tag.
  for (const at of [3, 12, close.length - 1]) {
    const bad = Uint8Array.from(close);
    bad[at]! ^= 0x01;
    b.receive(bad, 1);
  }
  assert.equal(b.state, 'open');
  assert.equal(b.stats.transport?.tampered, 3);
  // Reflected back to its sender: alice's receive key is not her send key.
  a.receive(close, 1);
  assert.equal(a.state, 'closing');
  assert.equal(a.stats.transport?.tampered, 1);
  // Replayed into a later session of the same two peers: other keys.
  const [a2, b2] = cores();
  b2.receive(close, 2);
  assert.equal(b2.state, 'open');
  assert.equal(b2.stats.transport?.tampered, 1);
  // The genuine one closes bob; the same packet again is a replay (counted; he stays closed by the peer).
  b.receive(close, 3);
  assert.equal(b.closedBy, 'peer');
  b.receive(close, 4);
  assert.equal(b.stats.transport?.replayed, 1);
  // The later session is not disturbed.
  a2.send(utf8('still here'));
  exchange(a2, b2, 5);
  assert.deepEqual(b2.takeDelivered(), [utf8('still here')]);
});

test('keepalives: an idle session stays open far past idleTimeoutMs', () => {
  const [a, b] = cores({ a: { keepaliveMs: 1000, idleTimeoutMs: 3000 }, b: { keepaliveMs: 1000, idleTimeoutMs: 3000 } });
  run(a, b, 0, 60_000);
  assert.equal(a.state, 'open');
  assert.equal(b.state, 'open');
  // One keepalive a second from each side, nothing else.
  assert.ok(a.stats.keepalivesSent >= 55 && a.stats.keepalivesSent <= 61, `alice's keepalives: ${a.stats.keepalivesSent}`);
  assert.ok(b.stats.keepalivesSent >= 55 && b.stats.keepalivesSent <= 61, `bob's keepalives: ${b.stats.keepalivesSent}`);
  assert.deepEqual([a.takeDelivered(), b.takeDelivered()], [[], []], 'a keepalive delivers nothing');
  assert.equal(a.stats.reliable.fragmentsSent, 0);
});

test('idle timeout: a peer that goes silent fails the session with ERR_TIMEOUT after idleTimeoutMs', () => {
  const [a, b] = cores({ a: { idleTimeoutMs: 30_000 }, b: { ackDelayMs: 0 } });
  a.send(utf8('last words'));
  exchange(a, b, 1000);
  // Bob vanishes: nothing of his arrives any more; alice keeps sending keepalives into the void.
  let now = 1000;
  for (let steps = 0; a.state === 'open' && steps < 100; steps++) {
    now = a.nextTimerAt()!;
    a.onTimer(now);
    a.poll(now);
  }
  assert.equal(a.state, 'failed');
  assert.equal(now, 31_000, 'exactly idleTimeoutMs after the last packet from bob');
  assert.equal(a.error?.code, 'ERR_TIMEOUT');
  assert.match(a.error?.message ?? '', /peer silent for 30000 ms/);
  assert.equal(a.closedBy, undefined);
  assert.ok(a.stats.keepalivesSent >= 2);
});

test('a one-way stream never times out: the receiver\'s ACKs keep the sender hearing it (keepalives off)', () => {
  const off = { keepaliveMs: 0, idleTimeoutMs: 5000 };
  const [a, b] = cores({ a: off, b: off });
  for (let now = 0; now <= 60_000; now += 1000) {
    a.send(utf8(`tick ${now}`));
    a.onTimer(now);
    b.onTimer(now);
    exchange(a, b, now);
  }
  assert.equal(a.state, 'open');
  assert.equal(b.state, 'open');
  assert.equal(b.takeDelivered().length, 61);
  assert.equal(a.stats.keepalivesSent + b.stats.keepalivesSent, 0);
  assert.equal(b.stats.reliable.fragmentsSent, 0, 'bob sent no data, only ACKs');
});

test('abort: closed at once, nothing more goes out, no CLOSE', () => {
  const [a, b] = cores();
  a.send(utf8('dropped'));
  a.abort();
  assert.equal(a.state, 'closed');
  assert.equal(a.closedBy, 'local');
  assert.deepEqual(a.poll(1), []);
  assert.equal(a.nextTimerAt(), undefined);
  exchange(a, b, 1);
  assert.equal(b.state, 'open');
});
