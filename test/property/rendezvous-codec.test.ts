// fast-check properties of the rendezvous codec and server core: any bytes decode to a
// message or a RendezvousDecodeError and nothing else; every well-formed message
// round-trips; mutated frames stay within the same two outcomes; the core never throws on
// any input and answers an unregistered source only at its own address, never with more
// bytes than it sent.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { endpoint, sameEndpoint, type Endpoint } from '../../src/net/index.ts';
import {
  RendezvousCore, RendezvousDecodeError, decodeFrame, encodeFrame, type Candidate, type NatSummary, type RendezvousMessage,
} from '../../src/rendezvous/index.ts';

const runs = { numRuns: 2000 };

const outcome = (data: Uint8Array): 'message' | 'error' => {
  try {
    decodeFrame(data);
    return 'message';
  } catch (err) {
    if (err instanceof RendezvousDecodeError) return 'error';
    throw err;
  }
};

const bytes = (n: number): fc.Arbitrary<Uint8Array> => fc.uint8Array({ minLength: n, maxLength: n });
/** Names: no control characters (C0 and DEL), at most 64 bytes of UTF-8. */
const name = fc.string({ minLength: 1, maxLength: 20, unit: 'grapheme' })
  .filter((s) => [...s].every((ch) => ch.charCodeAt(0) >= 0x20 && ch.charCodeAt(0) !== 0x7f) && new TextEncoder().encode(s).length <= 64);
const ms = fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER });
const ep: fc.Arbitrary<Endpoint> = fc.oneof(
  fc.tuple(fc.ipV4(), fc.integer({ min: 0, max: 65535 })).map(([a, p]) => endpoint(a, p)),
  fc.tuple(fc.ipV6(), fc.integer({ min: 0, max: 65535 })).map(([a, p]) => endpoint(a, p)),
);
const candidate: fc.Arbitrary<Candidate> = fc.record({
  kind: fc.constantFrom('host', 'server-reflexive', 'port-mapped', 'relayed'),
  transport: fc.constantFrom('udp', 'tcp'),
  endpoint: ep,
});
const behaviour = fc.constantFrom('endpoint-independent', 'address-dependent', 'address-and-port-dependent', 'unknown');
const nat: fc.Arbitrary<NatSummary> = fc.record({
  mapping: behaviour,
  filtering: behaviour,
  allocation: fc.oneof(
    fc.constantFrom({ kind: 'preserving' } as const, { kind: 'random' } as const, { kind: 'unknown' } as const),
    fc.integer({ min: -32768, max: 32767 }).map((step) => ({ kind: 'sequential', step }) as const),
  ),
  hairpinning: fc.constantFrom(true, false, undefined),
});
const txid = bytes(8);
/** `{ key: value }` or `{}`: an optional TLV present or absent. */
const opt = <K extends string, T>(key: K, a: fc.Arbitrary<T>): fc.Arbitrary<Partial<Record<K, T>>> =>
  fc.option(a, { nil: undefined }).map((v) => (v === undefined ? {} : { [key]: v }) as Partial<Record<K, T>>);

const message: fc.Arbitrary<RendezvousMessage> = fc.oneof(
  fc.tuple(txid, opt('padding', fc.integer({ min: 0, max: 200 }))).map(([t, o]) => ({ type: 'hello' as const, transactionId: t, ...o })),
  fc.record({ transactionId: txid, nonce: bytes(24), serverTimeMs: ms }).map((m) => ({ type: 'challenge', ...m }) as const),
  fc.tuple(fc.record({
    transactionId: txid, name, publicKey: bytes(32), nonce: bytes(24), signature: bytes(64), candidates: fc.array(candidate, { maxLength: 8 }),
  }), opt('nat', nat)).map(([m, o]) => ({ type: 'register' as const, ...m, ...o })),
  fc.record({
    transactionId: txid, reflexive: ep, serverTimeMs: ms, session: bytes(16),
    timers: fc.integer({ min: 2, max: 65535 }).chain((leaseS) => fc.integer({ min: 1, max: leaseS - 1 }).map((keepaliveS) => ({ leaseS, keepaliveS }))),
  }).map((m) => ({ type: 'registered', ...m }) as const),
  fc.tuple(txid, bytes(16), opt('rttMs', fc.integer({ min: 0, max: 2 ** 32 - 1 }))).map(([t, s, o]) => ({ type: 'keepalive' as const, transactionId: t, session: s, ...o })),
  fc.record({ transactionId: txid, session: bytes(16), name }).map((m) => ({ type: 'connect', ...m }) as const),
  fc.record({ transactionId: txid, session: bytes(16), room: name }).map((m) => ({ type: 'join', ...m }) as const),
  fc.record({ transactionId: txid, session: bytes(16), room: name }).map((m) => ({ type: 'leave', ...m }) as const),
  txid.map((t) => ({ type: 'ok', transactionId: t }) as const),
  fc.tuple(fc.record({
    transactionId: txid, pairId: bytes(8), name, publicKey: bytes(32), candidates: fc.array(candidate, { maxLength: 8 }), serverTimeMs: ms, startAtMs: ms,
    offsetMs: fc.integer({ min: 0, max: 2 ** 32 - 1 }), controlling: fc.boolean(),
  }), opt('nat', nat), opt('room', name)).map(([m, a, b]) => ({ type: 'punch' as const, ...m, ...a, ...b })),
  fc.tuple(txid, fc.integer({ min: 0, max: 65535 }), opt('reason', fc.string({ maxLength: 40 })), opt('versions', fc.constant({ min: 1, max: 1 })))
    .map(([t, code, a, b]) => ({ type: 'error' as const, transactionId: t, code, ...a, ...b })),
  fc.record({ transactionId: txid, session: bytes(16) }).map((m) => ({ type: 'unregister', ...m }) as const),
);

test('any bytes decode to a message or a RendezvousDecodeError', () => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 1400 }), (data) => void outcome(data)), runs);
});

test('bytes behind a valid magic and version decode to a message or a RendezvousDecodeError', () => {
  fc.assert(fc.property(fc.integer({ min: 0, max: 0x10 }), fc.uint8Array({ maxLength: 300 }), (type, body) => {
    const frame = Uint8Array.from([0xd0, 1, type, 0, body.length >> 8, body.length & 0xff, 1, 2, 3, 4, 5, 6, 7, 8, ...body]);
    void outcome(frame);
  }), runs);
});

test('every well-formed message round-trips', () => {
  fc.assert(fc.property(message, (m) => {
    const decoded = decodeFrame(encodeFrame(m));
    if (m.type === 'error' && m.reason !== undefined && decoded.type === 'error') {
      // A reason over 128 bytes is cut on encode, at a character boundary.
      assert.ok(decoded.reason !== undefined && new TextEncoder().encode(decoded.reason).length <= 128);
      assert.ok(m.reason.startsWith(decoded.reason.replace(/\ufffd$/, '')));
      assert.deepEqual({ ...decoded, reason: '' }, structuredClone({ ...m, reason: '' }));
      return;
    }
    assert.deepEqual(decoded, structuredClone(m));
  }), runs);
});

test('mutated frames decode to a message or a RendezvousDecodeError', () => {
  const mutation = fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 }));
  fc.assert(fc.property(message, fc.array(mutation, { minLength: 1, maxLength: 4 }), fc.nat(), (m, flips, cut) => {
    const frame = encodeFrame(m).slice();
    for (const [at, value] of flips) frame[at % frame.length] = value;
    void outcome(frame);
    void outcome(frame.subarray(0, cut % (frame.length + 1)));
  }), runs);
});

test('the core never throws on any input and answers unknown sources only at their address, within their size', () => {
  let n = 0;
  const core = new RendezvousCore<number>({ random: { bytes: (k) => Uint8Array.from({ length: k }, () => n++ & 0xff) } });
  const from = endpoint('198.51.100.9', 4000);
  const input = fc.oneof(fc.uint8Array({ maxLength: 1300 }), message.map((m) => encodeFrame(m)));
  fc.assert(fc.property(input, fc.integer({ min: 0, max: 1e9 }), (data, now) => {
    const result = core.handle({ data, from, link: 7, transport: 'udp', now });
    for (const s of result.sends) {
      assert.ok(sameEndpoint(s.to, from));
      assert.equal(s.link, 7);
      assert.ok(s.data.length <= data.length, `answer of ${s.data.length} bytes to ${data.length}`);
    }
  }), runs);
});
