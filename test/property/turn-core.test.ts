// fast-check properties of the TURN codec and core: any bytes into the core end as a reply,
// a relayed datagram, a counted keepalive or a counted drop, never a throw; every reply
// decodes with the request's transaction ID; ChannelData and the TURN attributes
// round-trip, and any bytes decode to a value or our typed error; 10 000 garbage inputs leave the core serving a
// valid client, with no allocation or permission created by them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { StunClass, attr, attributeCodec, decodeMessage, encodeMessage, looksLikeStun, type AttrEntry } from '../../src/stun/index.ts';
import { DecodeError } from '../../src/util/index.ts';
import {
  ALLOCATE, CHANNEL_BIND, CHANNEL_NUMBER, CREATE_PERMISSION, DATA_ATTRIBUTE, EVEN_PORT, ICMP, LIFETIME, REFRESH, REQUESTED_ADDRESS_FAMILY,
  REQUESTED_TRANSPORT, RESERVATION_TOKEN, SEND, TURN_DROP_REASONS, TurnDecodeError, XOR_PEER_ADDRESS, decodeChannelData, encodeChannelData,
  type TurnResult, type TurnServerCore,
} from '../../src/turn/index.ts';
import type { Endpoint } from '../../src/net/index.ts';
import { PEER, TestClient, errorOf, makeCore, newId, rawAttribute } from '../fixtures/turn/harness.ts';

const runs = { numRuns: 2000 };

const endpoint: fc.Arbitrary<Endpoint> = fc.oneof(
  fc.tuple(fc.ipV4(), fc.integer({ min: 0, max: 65535 })).map(([address, port]) => ({ address, port, family: 4 as const })),
  fc.constant(PEER),
);

/** TURN-ish attributes, well-formed or not. */
const attribute: fc.Arbitrary<AttrEntry> = fc.oneof(
  fc.integer({ min: 0, max: 255 }).map((v) => attr(REQUESTED_TRANSPORT, v)),
  fc.integer({ min: 0, max: 0xffffffff }).map((v) => attr(LIFETIME, v)),
  fc.integer({ min: 0, max: 0xffff }).map((v) => attr(CHANNEL_NUMBER, v)),
  endpoint.map((v) => attr(XOR_PEER_ADDRESS, v)),
  fc.uint8Array({ maxLength: 40 }).map((v) => attr(DATA_ATTRIBUTE, v)),
  fc.boolean().map((v) => attr(EVEN_PORT, { reserveNext: v })),
  fc.integer({ min: 0, max: 255 }).map((v) => attr(REQUESTED_ADDRESS_FAMILY, v)),
  fc.uint8Array({ minLength: 8, maxLength: 8 }).map((v) => attr(RESERVATION_TOKEN, v)),
  fc.tuple(fc.integer({ min: 0, max: 0xffff }), fc.uint8Array({ maxLength: 24 })).map(([type, v]) => attr(rawAttribute(type), v)),
);

const message: fc.Arbitrary<Uint8Array> = fc.record({
  method: fc.constantFrom(ALLOCATE, REFRESH, CREATE_PERMISSION, CHANNEL_BIND, SEND, 0x001, 0x00a),
  cls: fc.constantFrom(StunClass.REQUEST, StunClass.INDICATION, StunClass.SUCCESS, StunClass.ERROR),
  attributes: fc.array(attribute, { maxLength: 6 }),
  fingerprint: fc.boolean(),
}).map((m) => encodeMessage({ method: m.method, cls: m.cls, transactionId: newId(), attributes: m.attributes }, { fingerprint: m.fingerprint }));

/** Random bytes, messages, messages with bytes flipped or cut, and ChannelData-looking frames. */
const garbage: fc.Arbitrary<Uint8Array> = fc.oneof(
  fc.uint8Array({ maxLength: 120 }),
  message,
  fc.tuple(message, fc.nat(), fc.integer({ min: 0, max: 255 })).map(([m, at, v]) => {
    const b = Uint8Array.from(m);
    b[at % b.length] = v;
    return b;
  }),
  fc.tuple(message, fc.nat()).map(([m, cut]) => m.subarray(0, cut % (m.length + 1))),
  fc.tuple(fc.integer({ min: 0x4000, max: 0x7fff }), fc.integer({ min: 0, max: 0xffff }), fc.uint8Array({ maxLength: 20 })).map(([c, n, d]) =>
    Uint8Array.from([c >> 8, c & 0xff, n >> 8, n & 0xff, ...d])),
);

/** Checks one result: exactly one of output, keepalive or drop; a reply to a STUN request carries its transaction ID. */
function checkResult(input: Uint8Array, r: TurnResult): void {
  assert.equal([r.output, r.keepalive, r.drop].filter((x) => x !== undefined).length, 1, 'one output, one keepalive or one drop');
  if (r.drop !== undefined) assert.ok(TURN_DROP_REASONS.includes(r.drop));
  if (r.output?.kind === 'client' && looksLikeStun(r.output.data)) {
    const reply = decodeMessage(r.output.data);
    if (reply.cls !== StunClass.INDICATION) assert.deepEqual(reply.transactionId, input.subarray(8, 20));
  }
}

/** received = replies + relayed both ways + keepalives + Σ dropped. */
function checkCounters(core: TurnServerCore): void {
  const s = core.stats;
  const dropped = TURN_DROP_REASONS.reduce((n, r) => n + s.dropped[r], 0);
  assert.equal(s.received, s.replies + s.toPeerPackets + s.toClientPackets + s.keepalives + dropped);
}

test('any bytes from a client, over UDP or a stream: a reply, a relay, a keepalive or a counted drop, never a throw', () => {
  const core = makeCore();
  fc.assert(fc.property(garbage, endpoint, fc.constantFrom<'udp' | 'tcp' | 'tls'>('udp', 'tcp', 'tls'), fc.nat(10_000_000), (data, client, transport, now) => {
    checkResult(data, core.handleClient({ data, client, server: PEER, transport, now }));
  }), runs);
  checkCounters(core);
  assert.equal(core.allocationCount, 0, 'nothing unauthenticated allocates');
});

test('mutated authenticated requests on a live allocation never throw, and never reach a peer without a permission', () => {
  const core = makeCore();
  const c = new TestClient(core);
  c.request(ALLOCATE, [attr(REQUESTED_TRANSPORT, 17)]);
  fc.assert(fc.property(fc.array(attribute, { maxLength: 5 }), fc.constantFrom(ALLOCATE, REFRESH, CREATE_PERMISSION, CHANNEL_BIND), fc.nat(), fc.integer({ min: 0, max: 255 }), (attributes, method, at, v) => {
    c.requestRaw(method, attributes); // the valid form first, then a byte of it changed
    const m = Uint8Array.from(encodeMessage({ method, cls: StunClass.REQUEST, transactionId: newId(), attributes }, { key: c.key }));
    m[at % m.length] = v;
    checkResult(m, c.send(m));
    const out = c.send(encodeMessage({ method: SEND, cls: StunClass.INDICATION, transactionId: newId(), attributes: [attr(XOR_PEER_ADDRESS, { address: '198.18.200.1', port: 1, family: 4 }), attr(DATA_ATTRIBUTE, Uint8Array.of(1))] }));
    assert.equal(out.output, undefined, 'no permission was ever created for 198.18.200.1');
  }), { numRuns: 300 });
  checkCounters(core);
});

test('any bytes from any peer to any address: never a throw, never relayed without a permission', () => {
  const core = makeCore();
  fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), endpoint, endpoint, fc.nat(), (data, peer, relayed, now) => {
    const r = core.handlePeer({ data, peer, relayed, now });
    assert.equal(r.output, undefined);
    checkResult(data, r);
  }), runs);
  checkCounters(core);
});

test('decodeChannelData: any bytes → a value or TurnDecodeError; valid frames round-trip both framings', () => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 80 }), fc.constantFrom<'udp' | 'stream'>('udp', 'stream'), (bytes, framing) => {
    try {
      const d = decodeChannelData(bytes, { framing });
      assert.ok(d.channel >= 0x4000 && d.channel <= 0x4fff && d.data.length <= bytes.length - 4);
    } catch (err) {
      assert.ok(err instanceof TurnDecodeError, String(err));
    }
  }), runs);
  fc.assert(fc.property(fc.integer({ min: 0x4000, max: 0x4fff }), fc.uint8Array({ maxLength: 300 }), fc.constantFrom<'udp' | 'stream'>('udp', 'stream'), (channel, data, framing) => {
    const bytes = encodeChannelData({ channel, data }, framing);
    assert.equal(bytes.length % 4 === 0 || framing === 'udp', true);
    assert.deepEqual(decodeChannelData(bytes, { framing }), { channel, data });
  }), runs);
});

test('TURN attributes: encoded values decode to themselves; any value bytes decode or throw ERR_STUN_DECODE', () => {
  const entries: fc.Arbitrary<AttrEntry> = fc.oneof(
    attribute.filter((a) => attributeCodec(a.codec.type) === a.codec),
    fc.record({ type: fc.integer({ min: 0, max: 127 }), code: fc.integer({ min: 0, max: 511 }), errorData: fc.integer({ min: 0, max: 0xffffffff }) }).map((v) => attr(ICMP, { ...v })),
  );
  fc.assert(fc.property(entries, (entry) => {
    const m = decodeMessage(encodeMessage({ method: ALLOCATE, cls: StunClass.REQUEST, transactionId: newId(), attributes: [entry] }));
    assert.deepEqual(m.get(entry.codec), entry.value);
  }), runs);
  const types = [0x000c, 0x000d, 0x0012, 0x0013, 0x0016, 0x0017, 0x0018, 0x0019, 0x001a, 0x0022, 0x8000, 0x8001, 0x8004];
  fc.assert(fc.property(fc.constantFrom(...types), fc.uint8Array({ maxLength: 24 }), (type, value) => {
    const m = decodeMessage(encodeMessage({ method: ALLOCATE, cls: StunClass.REQUEST, transactionId: newId(), attributes: [attr(rawAttribute(type), value)] }));
    try {
      m.get(attributeCodec(type)!);
    } catch (err) {
      assert.ok(err instanceof DecodeError && err.code === 'ERR_STUN_DECODE', String(err));
    }
  }), runs);
});

test('10 000 garbage inputs, then a valid client is served end to end', () => {
  const core = makeCore();
  const samples = fc.sample(fc.tuple(garbage, endpoint, fc.boolean()), { numRuns: 10_000, seed: 42 });
  let now = 0;
  for (const [data, from, toRelay] of samples) {
    now += 10;
    const r = toRelay
      ? core.handlePeer({ data, peer: from, relayed: { address: '198.51.100.1', port: 49152 + (data.length % 100), family: 4 }, now })
      : core.handleClient({ data, client: from, server: PEER, transport: 'udp', now });
    checkResult(data, r);
  }
  assert.equal(core.stats.received, 10_000);
  assert.equal(core.allocationCount, 0);
  const c = new TestClient(core);
  c.now = now;
  const reply = c.request(ALLOCATE, [attr(REQUESTED_TRANSPORT, 17)]);
  assert.equal(errorOf(reply), undefined);
  assert.equal(errorOf(c.request(CHANNEL_BIND, [attr(CHANNEL_NUMBER, 0x4000), attr(XOR_PEER_ADDRESS, PEER)])), undefined);
  const out = c.send(encodeChannelData({ channel: 0x4000, data: Uint8Array.of(42) })).output;
  assert.ok(out?.kind === 'peer');
  assert.deepEqual(out.to, PEER);
  checkCounters(core);
});
