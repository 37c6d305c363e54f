// The reliable channel, sans-I/O, on a hand-driven clock: fragmentation and reassembly,
// in-order delivery over a path that loses, duplicates and reorders, selective acks and
// fast retransmission, RFC 6298 RTT estimation and backoff, the flow window.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DATA_HEADER_BYTES, FRAME_ACK, ReliableChannel, type ReliableOptions } from '../../src/session/index.ts';

/** A seeded xorshift, so each case is reproducible. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

interface Wire {
  readonly lossRate: number;
  readonly duplicateRate: number;
  readonly delayMs: number;
  readonly jitterMs: number;
}

/** Runs two channels over a simulated wire until `done()` or the time bound; returns the time taken. */
function drive(a: ReliableChannel, b: ReliableChannel, wire: Wire, seed: number, done: () => boolean, maxMs = 120_000): number {
  const random = rng(seed);
  const inFlight: { at: number; to: ReliableChannel; frame: Uint8Array }[] = [];
  let now = 0;
  const ship = (from: ReliableChannel, to: ReliableChannel): void => {
    for (const frame of from.poll(now)) {
      if (random() < wire.lossRate) continue;
      const copies = random() < wire.duplicateRate ? 2 : 1;
      for (let c = 0; c < copies; c++) inFlight.push({ at: now + wire.delayMs + random() * wire.jitterMs, to, frame });
    }
  };
  while (now < maxMs && !done()) {
    ship(a, b);
    ship(b, a);
    inFlight.sort((x, y) => x.at - y.at);
    const timers = [a.nextTimerAt(), b.nextTimerAt()].filter((t): t is number => t !== undefined);
    const next = Math.min(inFlight[0]?.at ?? Infinity, ...timers);
    if (next === Infinity) break;
    now = Math.max(now, next);
    while (inFlight.length > 0 && inFlight[0]!.at <= now) {
      const p = inFlight.shift()!;
      p.to.receive(p.frame, now);
    }
    a.onTimer(now);
    b.onTimer(now);
  }
  return now;
}

const msg = (i: number, size: number): Uint8Array => {
  const m = new Uint8Array(size);
  for (let j = 0; j < size; j++) m[j] = (i * 7 + j) & 0xff;
  return m;
};

const cases: { name: string; wire: Wire; options?: ReliableOptions }[] = [
  { name: 'clean', wire: { lossRate: 0, duplicateRate: 0, delayMs: 20, jitterMs: 0 } },
  { name: '20% loss, 10% duplication, jitter reordering', wire: { lossRate: 0.2, duplicateRate: 0.1, delayMs: 20, jitterMs: 30 } },
  { name: 'small window', wire: { lossRate: 0.05, duplicateRate: 0, delayMs: 5, jitterMs: 10 }, options: { receiveWindow: 8, maxInFlight: 8 } },
];

for (const c of cases) {
  test(`messages arrive once, in order, whole: ${c.name}`, () => {
    const a = new ReliableChannel({ maxFrameBytes: 200, ...c.options });
    const b = new ReliableChannel({ maxFrameBytes: 200, ...c.options });
    const sent: Uint8Array[] = [];
    for (let i = 0; i < 300; i++) {
      const m = msg(i, (i * 53) % 700);
      sent.push(m);
      a.send(m);
    }
    const got: Uint8Array[] = [];
    drive(a, b, c.wire, 42, () => {
      got.push(...b.takeDelivered());
      return got.length === sent.length && a.unacknowledged === 0;
    });
    assert.equal(got.length, sent.length);
    got.forEach((m, i) => assert.deepEqual(m, sent[i], `message ${i}`));
    assert.equal(a.unacknowledged, 0);
    assert.equal(a.nextTimerAt(), undefined, 'no timer once everything is acknowledged');
    if (c.wire.lossRate > 0) assert.ok(a.stats.retransmissions > 0);
  });
}

test('fragments: a message is cut at maxFrameBytes and empty messages travel too', () => {
  const a = new ReliableChannel({ maxFrameBytes: 100 });
  a.send(new Uint8Array(250));
  a.send(new Uint8Array(0));
  const frames = a.poll(0);
  assert.deepEqual(frames.map((f) => f.length), [100, 100, 250 - 2 * (100 - DATA_HEADER_BYTES) + DATA_HEADER_BYTES, DATA_HEADER_BYTES]);
  assert.throws(() => new ReliableChannel({ maxMessageBytes: 10 }).send(new Uint8Array(11)), { code: 'ERR_INVALID_ARGUMENT' });
});

test('RTT: SRTT and RTO follow RFC 6298; a timeout doubles the RTO and retransmits', () => {
  const a = new ReliableChannel({ initialRtoMs: 1000, minRtoMs: 200 });
  const b = new ReliableChannel();
  a.send(Uint8Array.of(1));
  const [f1] = a.poll(0);
  assert.equal(a.nextTimerAt(), 1000);
  b.receive(f1!, 50);
  const [ack] = b.poll(50);
  assert.equal(ack![0], FRAME_ACK);
  a.receive(ack!, 100);
  // First sample R = 100: SRTT = 100, RTTVAR = 50, RTO = 100 + 4 * 50 = 300.
  assert.equal(a.stats.srttMs, 100);
  assert.equal(a.stats.rtoMs, 300);
  a.send(Uint8Array.of(2));
  a.poll(100);
  assert.equal(a.nextTimerAt(), 400);
  a.onTimer(400);
  assert.equal(a.stats.timeouts, 1);
  assert.equal(a.stats.rtoMs, 600);
  assert.equal(a.poll(400).length, 1, 'the fragment goes again');
  assert.equal(a.nextTimerAt(), 1000);
});

test('duplicates and garbage frames are counted, never delivered', () => {
  const a = new ReliableChannel();
  const b = new ReliableChannel();
  a.send(Uint8Array.of(9));
  const [f] = a.poll(0);
  b.receive(f!, 1);
  b.receive(f!, 2);
  assert.equal(b.takeDelivered().length, 1);
  assert.equal(b.stats.duplicateFragments, 1);
  b.receive(Uint8Array.of(0x77, 1, 2), 3);
  b.receive(Uint8Array.of(FRAME_ACK, 0, 0), 3);
  a.receive(Uint8Array.of(FRAME_ACK, 0, 0, 0, 9, 0, 0, 5), 3);
  assert.equal(b.stats.malformedFrames, 2);
  assert.equal(a.stats.malformedFrames, 1);
});
