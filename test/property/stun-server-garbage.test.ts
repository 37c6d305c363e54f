// fast-check properties of the STUN server core: random bytes, random requests and random
// mutations of valid requests never throw out of handle(), every reply stays within the
// amplification bound (replyBound: no more than the request, or a small fixed floor),
// every STUN reply decodes with the request's transaction ID and leaves from a socket the
// layout has, and the counters always add up.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  BINDING, CHANGE_REQUEST, PADDING, RESPONSE_ADDRESS, RESPONSE_PORT, SOFTWARE, StunClass, StunServerCore, USERNAME, attr, decodeMessage,
  encodeMessage, roleEndpoint, totalDropped, type AttrCodec, type AttrEntry, type ServerLayout, type ServerRole, type ServerTransport,
} from '../../src/stun/index.ts';
import type { Endpoint } from '../../src/net/index.ts';

const runs = { numRuns: 2000 };

const LAYOUTS: readonly ServerLayout[] = [
  { addresses: ['192.0.2.1', '192.0.2.2'], ports: { udp: [3478, 3479], tcp: [3478, 3479], tls: [5349, 5350] } },
  { addresses: ['192.0.2.1'], ports: { udp: [3478], tcp: [3478], tls: [5349] } },
];
const CLIENTS: readonly Endpoint[] = [
  { address: '198.51.100.7', port: 40000, family: 4 },
  { address: '203.0.113.250', port: 1, family: 4 },
];

const raw = (type: number): AttrCodec<Uint8Array> => ({ type, name: `0x${type.toString(16)}`, encode: (v, w) => void w.bytes(v), decode: (r) => r.bytesView(r.remaining) });

/** Attributes a request might carry, well-formed or not. */
const attribute: fc.Arbitrary<AttrEntry> = fc.oneof(
  fc.record({ changeIp: fc.boolean(), changePort: fc.boolean() }).map((v) => attr(CHANGE_REQUEST, v)),
  fc.integer({ min: 1, max: 65535 }).map((v) => attr(RESPONSE_PORT, v)),
  fc.integer({ min: 0, max: 1600 }).map((v) => attr(PADDING, v)),
  fc.constant(attr(RESPONSE_ADDRESS, { address: '203.0.113.9', port: 9, family: 4 })),
  fc.string({ maxLength: 20 }).map((v) => attr(SOFTWARE, v)),
  fc.string({ maxLength: 20 }).map((v) => attr(USERNAME, v)),
  fc.tuple(fc.integer({ min: 0, max: 0xffff }), fc.uint8Array({ maxLength: 24 })).map(([t, v]) => attr(raw(t), v)),
);

interface Req {
  readonly legacy: boolean;
  readonly method: number;
  readonly cls: StunClass;
  readonly attributes: AttrEntry[];
  readonly fingerprint: boolean;
  readonly id: Uint8Array;
}

const requestSpec: fc.Arbitrary<Req> = fc.record({
  legacy: fc.boolean(),
  method: fc.oneof({ weight: 4, arbitrary: fc.constant(BINDING) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 0xfff }) }),
  cls: fc.oneof({ weight: 4, arbitrary: fc.constant(StunClass.REQUEST) }, { weight: 1, arbitrary: fc.constantFrom(StunClass.INDICATION, StunClass.SUCCESS, StunClass.ERROR) }),
  attributes: fc.array(attribute, { maxLength: 6 }),
  fingerprint: fc.boolean(),
  id: fc.uint8Array({ minLength: 16, maxLength: 16 }),
});

const encode = (r: Req): Uint8Array => {
  // A random 16-byte ID almost never holds the cookie; a modern one is 12 bytes.
  const transactionId = r.legacy ? r.id : r.id.subarray(0, 12);
  return encodeMessage({ method: r.method, cls: r.cls, transactionId, attributes: r.attributes }, { fingerprint: r.fingerprint });
};

/** Mutations of a valid request: bit flips, byte overwrites, truncation, extension, a length field lie. */
const mutation = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ kind: fc.constant('set' as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ kind: fc.constant('cut' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('append' as const), bytes: fc.uint8Array({ maxLength: 40 }) }),
  fc.record({ kind: fc.constant('length' as const), value: fc.integer({ min: 0, max: 0xffff }) }),
);
type Mutation = typeof mutation extends fc.Arbitrary<infer M> ? M : never;

const mutate = (bytes: Uint8Array, ms: readonly Mutation[]): Uint8Array => {
  let b = Uint8Array.from(bytes);
  for (const m of ms) {
    if (m.kind === 'flip' && b.length > 0) b[m.at % b.length]! ^= 1 << m.bit;
    else if (m.kind === 'set' && b.length > 0) b[m.at % b.length] = m.value;
    else if (m.kind === 'cut') b = b.subarray(0, m.at % (b.length + 1));
    else if (m.kind === 'append') b = Uint8Array.from([...b, ...m.bytes]);
    else if (m.kind === 'length' && b.length >= 4) {
      b[2] = m.value >> 8;
      b[3] = m.value & 0xff;
    }
  }
  return b;
};

const context = fc.record({
  layout: fc.constantFrom(...LAYOUTS),
  plain: fc.boolean(),
  role: fc.constantFrom<ServerRole>(0, 1, 2, 3),
  transport: fc.constantFrom<ServerTransport>('udp', 'tcp', 'tls'),
  from: fc.constantFrom(...CLIENTS),
});

/** Feeds one input and checks every property of the result. */
function check(core: StunServerCore, data: Uint8Array, c: { role: ServerRole; transport: ServerTransport; from: Endpoint; layout: ServerLayout }): void {
  // Roles a layout lacks never receive anything: the driver has no socket for them.
  const role = roleEndpoint(c.layout, c.transport, c.role) === undefined ? 0 : c.role;
  const result = core.handle({ data, role, from: c.from, transport: c.transport, now: 0 });
  if (result.reply === undefined) {
    assert.equal(result.outcome, 'dropped');
    assert.ok(result.drop);
    return;
  }
  const { reply } = result;
  assert.ok(reply.data.length <= core.maxReplyBytes(data.length), `reply ${reply.data.length} B to ${data.length} B over the bound`);
  assert.ok(roleEndpoint(c.layout, c.transport, reply.via) !== undefined, `reply leaves from a role the layout has (${reply.via})`);
  assert.equal(reply.to.address, c.from.address, 'replies only ever go to the source address');
  if (c.transport !== 'udp') {
    assert.equal(reply.via, role, 'stream replies stay on the connection');
    assert.deepEqual(reply.to, c.from);
  }
  if (result.outcome === 'plain') return;
  const msg = decodeMessage(reply.data);
  assert.equal(msg.method, BINDING);
  assert.deepEqual(Buffer.from(msg.transactionId), Buffer.from(data.subarray(data.length >= 20 && msg.isLegacy ? 4 : 8, 20)));
}

const addsUp = (core: StunServerCore): void => {
  const s = core.stats;
  assert.equal(s.received, s.success + s.badRequest + s.unknownAttribute + s.plain + totalDropped(s));
};

test('random bytes: never a throw, replies within the bound', () => {
  fc.assert(
    fc.property(context, fc.uint8Array({ maxLength: 200 }), (c, data) => {
      const core = new StunServerCore({ layout: c.layout, plain: c.plain, rateLimit: false });
      check(core, data, c);
      addsUp(core);
    }),
    runs,
  );
});

test('random bytes behind a STUN-looking header (cookie, Binding request type, right length)', () => {
  fc.assert(
    fc.property(context, fc.uint8Array({ maxLength: 120 }).map((b) => b.subarray(0, b.length - (b.length % 4))), fc.boolean(), (c, body, cookie) => {
      const head = new Uint8Array(20);
      head.set([0x00, 0x01, body.length >> 8, body.length & 0xff]);
      if (cookie) head.set([0x21, 0x12, 0xa4, 0x42], 4);
      const core = new StunServerCore({ layout: c.layout, plain: c.plain, rateLimit: false });
      check(core, Uint8Array.from([...head, ...body]), c);
      addsUp(core);
    }),
    runs,
  );
});

test('random requests: never a throw, replies within the bound and decodable', () => {
  fc.assert(
    fc.property(context, requestSpec, (c, r) => {
      const core = new StunServerCore({ layout: c.layout, plain: c.plain, rateLimit: false });
      check(core, encode(r), c);
      addsUp(core);
    }),
    runs,
  );
});

test('mutations of valid requests: never a throw, replies within the bound', () => {
  fc.assert(
    fc.property(context, requestSpec, fc.array(mutation, { minLength: 1, maxLength: 4 }), (c, r, ms) => {
      const core = new StunServerCore({ layout: c.layout, plain: c.plain, rateLimit: false });
      check(core, mutate(encode(r), ms), c);
      addsUp(core);
    }),
    runs,
  );
});

test('one core, a long random sequence with rate limiting: counters add up', () => {
  fc.assert(
    fc.property(fc.array(fc.tuple(context, requestSpec, fc.array(mutation, { maxLength: 2 })), { minLength: 1, maxLength: 60 }), (steps) => {
      const core = new StunServerCore({ layout: LAYOUTS[0]!, plain: true, rateLimit: { ratePerS: 5, burst: 10 } });
      for (const [c, r, ms] of steps) check(core, mutate(encode(r), ms), { ...c, layout: LAYOUTS[0]! });
      addsUp(core);
      assert.equal(core.stats.received, steps.length);
    }),
    { numRuns: 300 },
  );
});
