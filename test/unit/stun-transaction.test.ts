// The sans-I/O client transaction (RFC 8489 §6.2): exact retransmission schedules on a
// fake timeline, stream timeouts, which responses complete it, and the response table.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  BINDING, ERROR_CODE, StunClass, StunDecodeError, StunTransaction, TransactionTable, XOR_MAPPED_ADDRESS, attr,
  decodeMessage, encodeMessage, shortTermKey, type AttrCodec, type AttrEntry, type StunMessage, type TransactionOptions,
  type TransactionOutcome,
} from '../../src/stun/index.ts';

const ID = Uint8Array.from({ length: 12 }, (_, i) => i + 1);
const OTHER_ID = Uint8Array.from({ length: 12 }, (_, i) => 100 + i);
const LEGACY_ID = Uint8Array.from({ length: 16 }, (_, i) => 0x40 + i);
const MAPPED = { address: '192.0.2.7', port: 40000, family: 4 as const };
const KEY = shortTermKey('secret');

const request = (id = ID): Uint8Array => encodeMessage({ method: BINDING, cls: StunClass.REQUEST, transactionId: id });
const response = (
  o: { id?: Uint8Array; cls?: StunClass; method?: number; attributes?: readonly AttrEntry[]; key?: Uint8Array; fingerprint?: boolean } = {},
): StunMessage => {
  const bytes = encodeMessage(
    {
      method: o.method ?? BINDING,
      cls: o.cls ?? StunClass.SUCCESS,
      transactionId: o.id ?? ID,
      attributes: o.attributes ?? [attr(XOR_MAPPED_ADDRESS, MAPPED)],
    },
    { ...(o.key && { key: o.key }), fingerprint: o.fingerprint ?? false },
  );
  return decodeMessage(bytes);
};
/** A codec that writes raw bytes under any type number (unregistered or garbled attributes). */
const raw = (type: number): AttrCodec<Uint8Array> => ({ type, name: `0x${type.toString(16)}`, encode: (v, w) => void w.bytes(v), decode: (r) => r.bytesView(r.remaining) });
const validateMapped = (m: StunMessage): void => {
  if (m.cls === StunClass.SUCCESS && m.get(XOR_MAPPED_ADDRESS) === undefined) throw new StunDecodeError('expected XOR-MAPPED-ADDRESS', 0);
};

/** Drives a transaction with no responses: every poll exactly at its deadline. */
function runSilent(tx: StunTransaction, start = 0): { sends: number[]; endAt: number; outcome: TransactionOutcome } {
  const sends: number[] = [];
  let step = tx.start(start);
  let now = start;
  if (step.send) sends.push(now);
  for (let guard = 0; step.outcome === undefined && guard < 100; guard++) {
    assert.ok(step.deadline !== undefined && step.deadline >= now, 'a pending transaction always has a future deadline');
    now = step.deadline;
    step = tx.poll(now);
    if (step.send) sends.push(now);
  }
  assert.ok(step.outcome, 'the transaction ended');
  return { sends, endAt: now, outcome: step.outcome };
}

const schedules: { name: string; options: TransactionOptions; sends: number[]; endAt: number }[] = [
  { name: 'UDP defaults (RTO 500, Rc 7, Rm 16)', options: { transport: 'udp' }, sends: [0, 500, 1500, 3500, 7500, 15500, 31500], endAt: 39500 },
  { name: 'UDP RTO 100, Rc 3, Rm 4', options: { transport: 'udp', rtoMs: 100, maxTransmissions: 3, lastWaitMultiplier: 4 }, sends: [0, 100, 300], endAt: 700 },
  { name: 'UDP RTO 20, Rc 5, default Rm', options: { transport: 'udp', rtoMs: 20, maxTransmissions: 5 }, sends: [0, 20, 60, 140, 300], endAt: 620 },
  { name: 'UDP Rc 1 waits Rm × RTO', options: { transport: 'udp', maxTransmissions: 1 }, sends: [0], endAt: 8000 },
  { name: 'stream default Ti', options: { transport: 'stream' }, sends: [0], endAt: 39500 },
  { name: 'stream Ti 1000 ignores RTO and Rc', options: { transport: 'stream', streamTimeoutMs: 1000, rtoMs: 10, maxTransmissions: 9 }, sends: [0], endAt: 1000 },
];

for (const c of schedules) {
  test(`schedule: ${c.name}`, () => {
    const { sends, endAt, outcome } = runSilent(new StunTransaction(request(), c.options));
    assert.deepEqual(sends, c.sends);
    assert.equal(endAt, c.endAt);
    assert.equal(outcome.kind, 'failure');
    assert.ok(outcome.kind === 'failure');
    assert.equal(outcome.code, 'ERR_TIMEOUT');
    assert.equal(outcome.transmissions, c.sends.length);
    assert.equal(outcome.elapsedMs, c.endAt);
  });
}

test('schedule is relative to an arbitrary start time', () => {
  const { sends, endAt } = runSilent(new StunTransaction(request(), { transport: 'udp', rtoMs: 100, maxTransmissions: 3, lastWaitMultiplier: 4 }), 1_000_000);
  assert.deepEqual(sends, [1_000_000, 1_000_100, 1_000_300]);
  assert.equal(endAt, 1_000_700);
});

test('every transmission sends the same request bytes', () => {
  const req = request();
  const tx = new StunTransaction(req, { transport: 'udp', rtoMs: 10 });
  assert.equal(tx.start(0).send, req);
  assert.equal(tx.poll(10).send, req);
});

test('poll before the deadline sends nothing and keeps the deadline', () => {
  const tx = new StunTransaction(request(), { transport: 'udp' });
  assert.equal(tx.state, 'idle');
  assert.deepEqual(tx.start(0), { send: tx.request, deadline: 500 });
  assert.equal(tx.state, 'pending');
  assert.deepEqual(tx.poll(499), { deadline: 500 });
  assert.equal(tx.transmissions, 1);
});

test('a late timer shifts the schedule instead of bunching retransmissions', () => {
  const tx = new StunTransaction(request(), { transport: 'udp' });
  tx.start(0);
  assert.deepEqual(tx.poll(800), { send: tx.request, deadline: 1800 });
  assert.deepEqual(tx.poll(5000), { send: tx.request, deadline: 7000 });
  assert.equal(tx.transmissions, 3);
});

test('start twice throws; invalid timers throw', () => {
  const tx = new StunTransaction(request(), { transport: 'udp' });
  tx.start(0);
  assert.throws(() => tx.start(1), { code: 'ERR_INVALID_ARGUMENT' });
  for (const bad of [{ rtoMs: 0 }, { rtoMs: Number.NaN }, { maxTransmissions: 1.5 }, { maxTransmissions: 0 }, { lastWaitMultiplier: -1 }, { streamTimeoutMs: Infinity }]) {
    assert.throws(() => new StunTransaction(request(), { transport: 'udp', ...bad }), { code: 'ERR_INVALID_ARGUMENT' }, JSON.stringify(bad));
  }
  assert.throws(() => new StunTransaction(new Uint8Array(10), { transport: 'udp' }), { code: 'ERR_INVALID_ARGUMENT' });
});

test('a response completes the transaction with RTT and transmissions; later ones are ignored', () => {
  const tx = new StunTransaction(request(), { transport: 'udp' });
  tx.start(1000);
  tx.poll(1500);
  tx.poll(2500);
  const res = response();
  assert.equal(tx.receive(res, 2620), 'accepted');
  assert.equal(tx.state, 'done');
  assert.deepEqual(tx.outcome, { kind: 'response', response: res, rttMs: 1620, transmissions: 3 });
  assert.equal(tx.deadline, undefined);
  assert.deepEqual(tx.poll(99_999), { outcome: tx.outcome });
  assert.equal(tx.receive(response(), 2700), 'not-mine', 'duplicate response');
});

test('a response before start is not taken', () => {
  const tx = new StunTransaction(request(), { transport: 'udp' });
  assert.equal(tx.receive(response(), 0), 'not-mine');
});

const strangers: { name: string; msg: () => StunMessage }[] = [
  { name: 'other transaction ID', msg: () => response({ id: OTHER_ID }) },
  { name: 'other method', msg: () => response({ method: 0x003 }) },
  { name: 'a request with our ID', msg: () => response({ cls: StunClass.REQUEST }) },
  { name: 'an indication with our ID', msg: () => response({ cls: StunClass.INDICATION }) },
  { name: 'legacy ID sharing our first bytes', msg: () => response({ id: Uint8Array.from([...ID, 0, 0, 0, 0]) }) },
];
for (const c of strangers) {
  test(`not mine: ${c.name}`, () => {
    const tx = new StunTransaction(request(), { transport: 'udp' });
    tx.start(0);
    assert.equal(tx.receive(c.msg(), 10), 'not-mine');
    assert.equal(tx.state, 'pending');
  });
}

test('legacy (RFC 3489) request matches its 16-byte ID', () => {
  const tx = new StunTransaction(request(LEGACY_ID), { transport: 'udp' });
  assert.equal(tx.transactionId.length, 16);
  tx.start(0);
  assert.equal(tx.receive(response({ id: OTHER_ID }), 5), 'not-mine');
  assert.equal(tx.receive(response({ id: LEGACY_ID }), 5), 'accepted');
});

test('a wrong FINGERPRINT is discarded on either transport; a good one is accepted', () => {
  for (const transport of ['udp', 'stream'] as const) {
    const tx = new StunTransaction(request(), { transport });
    tx.start(0);
    const good = response({ fingerprint: true });
    const bytes = Uint8Array.from(good.raw);
    bytes[bytes.length - 1]! ^= 0xff;
    assert.equal(tx.receive(decodeMessage(bytes), 1), 'bad-fingerprint');
    assert.equal(tx.state, 'pending');
    assert.equal(tx.receive(good, 2), 'accepted');
  }
});

test('integrity over UDP: bad responses are discarded, retransmits continue, the end reports integrity', () => {
  const tx = new StunTransaction(request(), { transport: 'udp', key: KEY, rtoMs: 10, maxTransmissions: 2, lastWaitMultiplier: 2 });
  tx.start(0);
  assert.equal(tx.receive(response(), 1), 'bad-integrity', 'missing');
  assert.equal(tx.receive(response({ key: shortTermKey('other') }), 2), 'bad-integrity', 'mismatch');
  assert.equal(tx.poll(10).send, tx.request);
  const end = tx.poll(30);
  assert.equal(end.outcome?.kind, 'failure');
  assert.ok(end.outcome?.kind === 'failure');
  assert.equal(end.outcome.code, 'ERR_STUN_INTEGRITY');
  assert.match(end.outcome.detail, /MESSAGE-INTEGRITY/);
});

test('integrity over UDP: a valid response after a bad one is accepted', () => {
  const tx = new StunTransaction(request(), { transport: 'udp', key: KEY });
  tx.start(0);
  assert.equal(tx.receive(response(), 1), 'bad-integrity');
  assert.equal(tx.receive(response({ key: KEY }), 2), 'accepted');
  assert.equal(tx.outcome?.kind, 'response');
});

test('integrity over a stream: a bad response fails the transaction', () => {
  const tx = new StunTransaction(request(), { transport: 'stream', key: KEY });
  tx.start(0);
  assert.equal(tx.receive(response(), 7), 'bad-integrity');
  assert.ok(tx.outcome?.kind === 'failure');
  assert.equal(tx.outcome.code, 'ERR_STUN_INTEGRITY');
  assert.equal(tx.outcome.elapsedMs, 7);
});

for (const code of [401, 438]) {
  test(`integrity: an unprotected ${code} challenge is accepted as a response`, () => {
    const tx = new StunTransaction(request(), { transport: 'udp', key: KEY });
    tx.start(0);
    const msg = response({ cls: StunClass.ERROR, attributes: [attr(ERROR_CODE, { code, reason: 'x' })] });
    assert.equal(tx.receive(msg, 3), 'accepted');
    assert.equal(tx.outcome?.kind, 'response');
  });
}

test('integrity: an unprotected 400 is discarded', () => {
  const tx = new StunTransaction(request(), { transport: 'udp', key: KEY });
  tx.start(0);
  assert.equal(tx.receive(response({ cls: StunClass.ERROR, attributes: [attr(ERROR_CODE, { code: 400, reason: 'Bad Request' })] }), 3), 'bad-integrity');
});

test('malformed over UDP: discarded, and the end reports the decode error', () => {
  const tx = new StunTransaction(request(), { transport: 'udp', rtoMs: 10, maxTransmissions: 1, lastWaitMultiplier: 1, validate: validateMapped });
  tx.start(0);
  const garbled = response({ attributes: [attr(raw(XOR_MAPPED_ADDRESS.type), new Uint8Array(3))] });
  assert.equal(tx.receive(garbled, 1), 'malformed');
  assert.equal(tx.receive(response({ attributes: [] }), 2), 'malformed', 'validate rejects a response without the address');
  const end = tx.poll(10);
  assert.ok(end.outcome?.kind === 'failure');
  assert.equal(end.outcome.code, 'ERR_STUN_DECODE');
  assert.ok(end.outcome.cause instanceof StunDecodeError);
});

test('malformed ERROR-CODE is discarded over UDP and fatal over a stream', () => {
  const garbled = (): StunMessage => response({ cls: StunClass.ERROR, attributes: [attr(raw(ERROR_CODE.type), Uint8Array.of(0, 0, 9, 0))] });
  const udp = new StunTransaction(request(), { transport: 'udp' });
  udp.start(0);
  assert.equal(udp.receive(garbled(), 1), 'malformed');
  assert.equal(udp.state, 'pending');
  const stream = new StunTransaction(request(), { transport: 'stream' });
  stream.start(0);
  assert.equal(stream.receive(garbled(), 1), 'malformed');
  assert.ok(stream.outcome?.kind === 'failure');
  assert.equal(stream.outcome.code, 'ERR_STUN_DECODE');
});

test('unknown comprehension-required attribute fails the transaction (RFC 8489 §6.3.3)', () => {
  const tx = new StunTransaction(request(), { transport: 'udp' });
  tx.start(0);
  const msg = response({ attributes: [attr(XOR_MAPPED_ADDRESS, MAPPED), attr(raw(0x7ff0), new Uint8Array(4))] });
  assert.equal(tx.receive(msg, 1), 'accepted');
  assert.ok(tx.outcome?.kind === 'failure');
  assert.equal(tx.outcome.code, 'ERR_PROTOCOL');
  assert.match(tx.outcome.detail, /0x7ff0/);
});

test('unknown comprehension-optional attribute is fine', () => {
  const tx = new StunTransaction(request(), { transport: 'udp' });
  tx.start(0);
  assert.equal(tx.receive(response({ attributes: [attr(XOR_MAPPED_ADDRESS, MAPPED), attr(raw(0xfff0), new Uint8Array(4))] }), 1), 'accepted');
  assert.equal(tx.outcome?.kind, 'response');
});

test('error response without ERROR-CODE fails the transaction (RFC 8489 §6.3.4)', () => {
  const tx = new StunTransaction(request(), { transport: 'udp' });
  tx.start(0);
  assert.equal(tx.receive(response({ cls: StunClass.ERROR, attributes: [] }), 1), 'accepted');
  assert.ok(tx.outcome?.kind === 'failure');
  assert.equal(tx.outcome.code, 'ERR_PROTOCOL');
});

test('error response with ERROR-CODE is a response, not a failure', () => {
  const tx = new StunTransaction(request(), { transport: 'udp' });
  tx.start(0);
  assert.equal(tx.receive(response({ cls: StunClass.ERROR, attributes: [attr(ERROR_CODE, { code: 420, reason: 'Unknown Attribute' })] }), 1), 'accepted');
  assert.ok(tx.outcome?.kind === 'response');
  assert.equal(tx.outcome.response.get(ERROR_CODE)?.code, 420);
});

test('TransactionTable routes by ID and counts unknown responses', () => {
  const table = new TransactionTable<string>();
  table.add(ID, 'a');
  table.add(LEGACY_ID, 'legacy');
  assert.throws(() => table.add(ID, 'again'), { code: 'ERR_INVALID_ARGUMENT' });
  assert.equal(table.size, 2);
  assert.equal(table.route(response()), 'a');
  assert.equal(table.route(response({ id: LEGACY_ID })), 'legacy');
  assert.equal(table.route(response({ id: OTHER_ID })), undefined);
  assert.equal(table.unknownResponses, 1);
  assert.equal(table.get(ID), 'a');
  assert.equal(table.delete(ID), true);
  assert.equal(table.delete(ID), false);
  assert.equal(table.route(response()), undefined, 'a late response after completion');
  assert.equal(table.unknownResponses, 2);
  assert.deepEqual(table.drain(), ['legacy']);
  assert.equal(table.size, 0);
});
