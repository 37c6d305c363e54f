// fast-check properties of the STUN codec: every encodable message round-trips, and
// any bytes in yield a message or our typed StunDecodeError, nothing else.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  ALTERNATE_SERVER, BINDING, CHANGE_REQUEST, ERROR_CODE, MAPPED_ADDRESS, NONCE, OTHER_ADDRESS, PADDING,
  PASSWORD_ALGORITHMS, REALM, RESPONSE_ORIGIN, RESPONSE_PORT, SOFTWARE, StunClass, StunDecodeError, UNKNOWN_ATTRIBUTES,
  USERHASH, USERNAME, XOR_MAPPED_ADDRESS, attr, checkFingerprint, checkIntegrity, decodeMessage, encodeMessage,
  registeredAttributes, type AttrCodec, type AttrEntry,
} from '../../src/stun/index.ts';
import { formatIp } from '../../src/util/ip.ts';
import type { Endpoint } from '../../src/net/types.ts';

const runs = { numRuns: 500 };

/** Comparable form: byte arrays as hex, records as plain objects (fast-check makes null-prototype ones). */
const plain = (v: unknown): unknown =>
  v instanceof Uint8Array ? Buffer.from(v).toString('hex')
  : Array.isArray(v) ? v.map(plain)
  : typeof v === 'object' && v !== null ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)]))
  : v;

const endpoint: fc.Arbitrary<Endpoint> = fc.oneof(
  fc.tuple(fc.uint8Array({ minLength: 4, maxLength: 4 }), fc.integer({ min: 0, max: 65535 }))
    .map(([b, port]) => ({ address: formatIp(b), port, family: 4 as const })),
  fc.tuple(fc.uint8Array({ minLength: 16, maxLength: 16 }), fc.integer({ min: 0, max: 65535 }))
    .map(([b, port]) => ({ address: formatIp(b), port, family: 6 as const })),
);
// RFC 8489 limits: < 128 characters; keep to BMP so characters and code points agree.
const text = fc.string({ unit: 'grapheme-composite', maxLength: 40 }).filter((s) => [...s].length < 128 && Buffer.byteLength(s) <= 763);

/** An attribute entry with the value we expect back. */
const pair = <T,>(codec: AttrCodec<T>) => (v: T): [AttrEntry, unknown] => [attr(codec, v), v];

/** One generated attribute with the value we expect back. */
const entry: fc.Arbitrary<[AttrEntry, unknown]> = fc.oneof(
  endpoint.map(pair(XOR_MAPPED_ADDRESS)),
  endpoint.map(pair(MAPPED_ADDRESS)),
  endpoint.map(pair(OTHER_ADDRESS)),
  endpoint.map(pair(RESPONSE_ORIGIN)),
  endpoint.map(pair(ALTERNATE_SERVER)),
  text.map(pair(SOFTWARE)),
  text.map(pair(REALM)),
  text.map(pair(NONCE)),
  text.map(pair(USERNAME)),
  fc.record({ changeIp: fc.boolean(), changePort: fc.boolean() }).map(pair(CHANGE_REQUEST)),
  fc.integer({ min: 1, max: 65535 }).map(pair(RESPONSE_PORT)),
  fc.integer({ min: 0, max: 600 }).map(pair(PADDING)),
  fc.record({ code: fc.integer({ min: 300, max: 699 }), reason: text }).map(pair(ERROR_CODE)),
  fc.array(fc.integer({ min: 0, max: 65535 }), { maxLength: 8 }).map(pair(UNKNOWN_ATTRIBUTES)),
  fc.uint8Array({ minLength: 32, maxLength: 32 }).map(pair(USERHASH)),
  fc.array(fc.record({ algorithm: fc.integer({ min: 0, max: 65535 }), parameters: fc.uint8Array({ maxLength: 9 }) }), { maxLength: 3 })
    .map(pair(PASSWORD_ALGORITHMS)),
);

const message = fc.record({
  method: fc.integer({ min: 0, max: 0xfff }),
  cls: fc.constantFrom(StunClass.REQUEST, StunClass.INDICATION, StunClass.SUCCESS, StunClass.ERROR),
  transactionId: fc.oneof(fc.uint8Array({ minLength: 12, maxLength: 12 }), fc.uint8Array({ minLength: 16, maxLength: 16 })),
  // Distinct types: only the first of a type is read back (RFC 8489 §14).
  entries: fc.uniqueArray(entry, { maxLength: 8, selector: ([e]) => e.codec.type }),
  key: fc.option(fc.uint8Array({ minLength: 1, maxLength: 32 }), { nil: undefined }),
  integrity: fc.constantFrom<'sha1' | 'sha256' | 'both'>('sha1', 'sha256', 'both'),
  fingerprint: fc.boolean(),
});

test('encode → decode returns every attribute, integrity and fingerprint verify', () => {
  fc.assert(
    fc.property(message, (m) => {
      const bytes = encodeMessage(
        { method: m.method, cls: m.cls, transactionId: m.transactionId, attributes: m.entries.map(([e]) => e) },
        m.key === undefined ? { fingerprint: m.fingerprint } : { key: m.key, integrity: m.integrity, fingerprint: m.fingerprint },
      );
      const msg = decodeMessage(bytes);
      assert.equal(msg.method, m.method);
      assert.equal(msg.cls, m.cls);
      assert.deepEqual(Buffer.from(msg.transactionId), Buffer.from(m.transactionId));
      assert.equal(msg.isLegacy, m.transactionId.length === 16);
      for (const [e, want] of m.entries) {
        assert.deepEqual(plain(msg.get(e.codec)), plain(want), e.codec.name);
      }
      if (m.key !== undefined) assert.equal(checkIntegrity(msg, m.key), 'ok');
      assert.equal(checkFingerprint(msg), m.fingerprint ? 'ok' : 'missing');
    }),
    runs,
  );
});

test('a flipped bit breaks integrity or fingerprint, or the message no longer parses', () => {
  fc.assert(
    fc.property(message, fc.nat(), fc.integer({ min: 0, max: 7 }), (m, at, bit) => {
      const key = m.key ?? new Uint8Array([1]);
      const bytes = Uint8Array.from(encodeMessage(
        { method: m.method, cls: m.cls, transactionId: m.transactionId, attributes: m.entries.map(([e]) => e) },
        { key, integrity: m.integrity, fingerprint: true },
      ));
      bytes[at % bytes.length]! ^= 1 << bit;
      let msg;
      try {
        msg = decodeMessage(bytes);
      } catch (err) {
        assert.ok(err instanceof StunDecodeError);
        return;
      }
      assert.ok(checkFingerprint(msg) !== 'ok' || checkIntegrity(msg, key) !== 'ok');
    }),
    runs,
  );
});

test('any bytes: a message or StunDecodeError; attribute getters too', () => {
  const codecs = registeredAttributes();
  const garbage = fc.oneof(
    fc.uint8Array({ maxLength: 200 }),
    // Valid-looking headers with random bodies reach the attribute parsers.
    fc.tuple(fc.integer({ min: 0, max: 0x3fff }), fc.uint8Array({ maxLength: 120 }), fc.boolean()).map(([type, body, cookie]) => {
      const len = body.length & ~3;
      const b = new Uint8Array(20 + len);
      new DataView(b.buffer).setUint16(0, type);
      new DataView(b.buffer).setUint16(2, len);
      if (cookie) new DataView(b.buffer).setUint32(4, 0x2112a442);
      b.set(body.subarray(0, len), 20);
      return b;
    }),
  );
  fc.assert(
    fc.property(garbage, (bytes) => {
      try {
        const msg = decodeMessage(bytes);
        for (const c of codecs) {
          try {
            msg.get(c);
          } catch (err) {
            assert.ok(err instanceof StunDecodeError, `${c.name} threw ${String(err)}`);
          }
        }
        checkIntegrity(msg, new Uint8Array(16));
        checkFingerprint(msg);
      } catch (err) {
        assert.ok(err instanceof StunDecodeError, `threw ${String(err)}`);
      }
    }),
    { numRuns: 3000 },
  );
});

test('decodeMessage rejects what RFC 8489 §5 forbids', () => {
  const ok = encodeMessage({ method: BINDING, cls: StunClass.REQUEST, transactionId: new Uint8Array(12) });
  const cases: [string, (b: Uint8Array) => Uint8Array][] = [
    ['top bits set', (b) => ((b[0] = 0x80), b)],
    ['length not a multiple of 4', (b) => ((b[3] = 2), b)],
    ['length longer than the datagram', (b) => ((b[3] = 8), b)],
    ['truncated header', (b) => b.subarray(0, 19)],
  ];
  for (const [name, mutate] of cases) {
    assert.throws(() => decodeMessage(mutate(Uint8Array.from(ok))), StunDecodeError, name);
  }
  assert.throws(() => decodeMessage(encodeMessage({ method: BINDING, cls: StunClass.REQUEST, transactionId: new Uint8Array(16) }), { allowLegacy: false }), StunDecodeError);
});
