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
  const b = new ReliableChannel({ ackDelayMs: 0 });
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

// Congestion control (congestionControl 'reno', RFC 5681): slow start, a halving on fast
// retransmit held through the recovery, the loss window on a timeout, the bounds.

/** Sends `count` one-fragment messages from `a`. */
function queue(a: ReliableChannel, count: number): void {
  for (let i = 0; i < count; i++) a.send(Uint8Array.of(i & 0xff));
}

/** Gives `to` the frames for which `keep(seq)` holds, then returns its ACK. */
function carry(frames: readonly Uint8Array[], to: ReliableChannel, now: number, keep: (seq: number) => boolean = () => true): Uint8Array {
  for (const f of frames) if (keep(new DataView(f.buffer, f.byteOffset).getUint32(2))) to.receive(f, now);
  const [ack] = to.poll(now);
  assert.equal(ack?.[0], FRAME_ACK);
  return ack;
}

/** A 'reno' channel with one 10 ms RTT sample (SRTT 10 ms, RTO 200 ms) and its peer. */
function measured(options: ReliableOptions = {}): [ReliableChannel, ReliableChannel] {
  const a = new ReliableChannel({ congestionControl: 'reno', ...options });
  const b = new ReliableChannel({ ackDelayMs: 0 });
  queue(a, 1);
  a.receive(carry(a.poll(0), b, 5), 10);
  assert.equal(a.stats.srttMs, 10);
  return [a, b];
}

test('congestionControl \'none\': the window is maxInFlight and loss does not change it', () => {
  const a = new ReliableChannel({ maxInFlight: 64, congestionControl: 'none' });
  queue(a, 100);
  assert.equal(a.poll(0).length, 64);
  a.onTimer(10_000);
  assert.equal(a.stats.timeouts, 1);
  assert.equal(a.stats.cwnd, 64);
  assert.equal(a.stats.ssthresh, Infinity);
});

test('congestion control is on by default (RFC 8085 §3.1): the first flight is initialWindow fragments', () => {
  const a = new ReliableChannel();
  queue(a, 100);
  assert.equal(a.poll(0).length, 10);
  assert.equal(a.stats.cwnd, 10);
});

test('slow start: the window starts at initialWindow and grows by one per fragment acknowledged', () => {
  const [a, b] = measured({ initialWindow: 4 });
  assert.equal(a.stats.cwnd, 5, 'the sample\'s ACK added one');
  queue(a, 100);
  let now = 20;
  const sent: number[] = [];
  for (let round = 0; round < 4; round++, now += 20) {
    const frames = a.poll(now);
    sent.push(frames.length);
    a.receive(carry(frames, b, now + 5), now + 10);
  }
  // One ACK per flight here (each acknowledges the whole flight): at most 2 more per ACK (RFC 3465 L = 2).
  assert.deepEqual(sent, [5, 7, 9, 11]);
  assert.equal(a.stats.cwnd, 13);
});

test('fast retransmit halves the window (ssthresh = FlightSize / 2) once per flight; recovery holds it', () => {
  const [a, b] = measured({ initialWindow: 16 });
  queue(a, 200);
  const flight = a.poll(20);
  assert.equal(flight.length, 17);
  // Two of the flight are lost; the other 15 arrive and are SACKed. A fragment counts as lost
  // on an ACK at least 1.25 SRTT after it was sent (the reorder window): here a repeat.
  const ack = carry(flight, b, 25, (seq) => seq !== 1 && seq !== 2);
  a.receive(ack, 40);
  assert.equal(a.stats.fastRetransmits, 0, 'within the reorder window');
  assert.equal(a.stats.cwnd, 17 + 2, 'slow start: +2 for the ACK');
  a.receive(ack, 70);
  assert.equal(a.stats.fastRetransmits, 2, 'both lost fragments go again');
  assert.equal(a.stats.ssthresh, 17 / 2, 'one reduction: FlightSize 17 (sent, not cumulatively acknowledged) / 2');
  assert.equal(a.stats.cwnd, 8.5);
  const next = a.poll(70);
  assert.equal(next.length, 2 + 6, 'the two retransmissions, and new fragments up to cwnd (8) in flight');
  // Recovery: the window holds until what was sent before the reduction is acknowledged …
  a.receive(carry(next.slice(0, 1), b, 75), 80);
  assert.equal(a.stats.cwnd, 8.5, 'held at ssthresh through the recovery');
  // … then congestion avoidance: + n / cwnd per ACK.
  a.receive(carry(next.slice(1), b, 85), 90);
  assert.ok(a.stats.cwnd > 8.5 && a.stats.cwnd < 10, `cwnd ${a.stats.cwnd}`);
});

test('a timeout sets the window to one fragment (ssthresh = FlightSize / 2); slow start follows', () => {
  const [a, b] = measured({ initialWindow: 10 });
  queue(a, 100);
  const flight = a.poll(20);
  assert.equal(flight.length, 11);
  a.onTimer(a.nextTimerAt()!);
  assert.equal(a.stats.timeouts, 1);
  assert.equal(a.stats.cwnd, 1);
  assert.equal(a.stats.ssthresh, 5.5);
  const again = a.poll(300);
  assert.equal(again.length, 11, 'the expired fragments go again, nothing new beyond the window');
  a.receive(carry(again, b, 305), 310);
  assert.equal(a.stats.cwnd, 3, 'slow start: at most 2 per ACK');
  assert.equal(a.poll(310).length, 3);
});

test('the window never exceeds maxInFlight nor the peer\'s receive window', () => {
  const a = new ReliableChannel({ congestionControl: 'reno', initialWindow: 10, maxInFlight: 32 });
  const b = new ReliableChannel({ receiveWindow: 20 });
  queue(a, 2000);
  let most = 0;
  for (let now = 0; now < 5000; now += 10) {
    const frames = a.poll(now);
    if (frames.length === 0) continue;
    most = Math.max(most, frames.length);
    a.receive(carry(frames, b, now + 2), now + 5);
    b.takeDelivered();
  }
  assert.equal(a.stats.cwnd, 32, 'grown up to maxInFlight');
  assert.ok(most <= 20, `at most the peer's window per flight: ${most}`);
  assert.equal(a.unacknowledged, 0);
});

for (const c of cases) {
  test(`with congestion control: messages arrive once, in order, whole: ${c.name}`, () => {
    const a = new ReliableChannel({ maxFrameBytes: 200, congestionControl: 'reno', ...c.options });
    const b = new ReliableChannel({ maxFrameBytes: 200, ...c.options });
    const sent = Array.from({ length: 300 }, (_, i) => msg(i, (i * 53) % 700));
    for (const m of sent) a.send(m);
    const got: Uint8Array[] = [];
    drive(a, b, c.wire, 7, () => {
      got.push(...b.takeDelivered());
      return got.length === sent.length && a.unacknowledged === 0;
    });
    assert.equal(got.length, sent.length);
    got.forEach((m, i) => assert.deepEqual(m, sent[i], `message ${i}`));
    if (c.wire.lossRate > 0) assert.ok(a.stats.cwnd < 256 && a.stats.ssthresh < Infinity, `the losses shrank the window: ${a.stats.cwnd}`);
  });
}

test('delayed ACK (RFC 5681 §4.2): every second fragment at once, a lone one after ackDelayMs, anything out of order at once', () => {
  const a = new ReliableChannel({ maxFrameBytes: 100 });
  const b = new ReliableChannel({ ackDelayMs: 10 });
  a.send(Uint8Array.of(1));
  for (const f of a.poll(0)) b.receive(f, 0);
  assert.deepEqual(b.poll(0), [], 'a lone fragment waits');
  assert.equal(b.nextTimerAt(), 10);
  b.onTimer(10);
  const late = b.poll(10);
  assert.equal(late.length, 1, 'acknowledged after ackDelayMs');
  assert.equal(late[0]![0], FRAME_ACK);
  for (const f of late) a.receive(f, 10);
  assert.equal(a.unacknowledged, 0);

  a.send(new Uint8Array(250)); // three fragments
  const frames = a.poll(20);
  assert.equal(frames.length, 3);
  b.receive(frames[0]!, 20);
  b.receive(frames[1]!, 20);
  assert.equal(b.poll(20).length, 1, 'the second in-order fragment is acknowledged at once');
  b.receive(frames[2]!, 20);
  assert.deepEqual(b.poll(20), []);

  a.send(new Uint8Array(250));
  const more = a.poll(30);
  b.receive(more[1]!, 30);
  assert.equal(b.poll(30).length, 1, 'out of order: at once (the sender\'s loss signal)');
  b.receive(more[1]!, 30);
  assert.equal(b.poll(30).length, 1, 'a duplicate: at once');
  assert.equal(b.stats.acksSent, 4);
});

test('a forged ACK: nothing beyond what was sent is acknowledged, and huge SACK ranges cost no more than what is in flight', () => {
  const a = new ReliableChannel({ maxFrameBytes: 100 });
  a.send(new Uint8Array(250)); // three fragments, seq 0–2
  assert.equal(a.poll(0).length, 3);
  const ack = (cumulative: number, blocks: [number, number][]): Uint8Array => {
    const f = new Uint8Array(8 + blocks.length * 8);
    const v = new DataView(f.buffer);
    f[0] = FRAME_ACK;
    v.setUint32(1, cumulative);
    v.setUint16(5, 512);
    f[7] = blocks.length;
    blocks.forEach(([s, e], i) => {
      v.setUint32(8 + i * 8, s);
      v.setUint32(12 + i * 8, e);
    });
    return f;
  };
  a.receive(ack(10, []), 1);
  assert.equal(a.stats.malformedFrames, 1, 'a cumulative beyond what was sent');
  assert.equal(a.unacknowledged, 3);
  // Walked seq by seq these 16 blocks would be 2^36 steps: the test would not end.
  a.receive(ack(0, Array.from({ length: 16 }, () => [0, 0xffff_ffff] as [number, number])), 2);
  assert.equal(a.unacknowledged, 0, 'the three in flight, and nothing else');
});
