// The sans-I/O STUN server core, table-driven: what each request gets (attributes, the
// role it leaves from, where it goes), RFC 5780 §6.1 table 1 for every receiving role ×
// CHANGE-REQUEST flags, RESPONSE-PORT and PADDING (§6.1, §7.5, §7.6), 420 and 400
// (RFC 8489 §6.3.1), RFC 3489 clients, drops by reason, plain mode and rate limiting.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  BINDING, CHANGE_REQUEST, CHANGED_ADDRESS, ERROR_CODE, FINGERPRINT, MAPPED_ADDRESS, OTHER_ADDRESS, PADDING, RESPONSE_ADDRESS,
  RESPONSE_ORIGIN, RESPONSE_PORT, SOFTWARE, SOURCE_ADDRESS, ServerRole, StunClass, StunServerCore, UNKNOWN_ATTRIBUTES,
  XOR_MAPPED_ADDRESS, attr, changedRole, checkFingerprint, decodeMessage, encodeMessage, roleEndpoint, totalDropped,
  type AttrCodec, type AttrEntry, type DropReason, type ServerInput, type ServerLayout, type ServerResult, type ServerRole as Role,
  type ServerTransport, type StunMessage, type StunServerCoreOptions,
} from '../../src/stun/index.ts';
import type { Endpoint } from '../../src/net/index.ts';

const TWO: ServerLayout = { addresses: ['192.0.2.1', '192.0.2.2'], ports: { udp: [3478, 3479], tcp: [3478, 3479], tls: [5349, 5350] } };
const ONE: ServerLayout = { addresses: ['192.0.2.1'], ports: { udp: [3478], tcp: [3478] } };
const CLIENT: Endpoint = { address: '198.51.100.7', port: 40000, family: 4 };
const ID = Uint8Array.from({ length: 12 }, (_, i) => i + 1);
const LEGACY_ID = Uint8Array.from({ length: 16 }, (_, i) => 0xa0 + i);

/** A raw attribute of any type (unknown ones, malformed values). */
const raw = (type: number): AttrCodec<Uint8Array> => ({ type, name: `0x${type.toString(16)}`, encode: (v, w) => void w.bytes(v), decode: (r) => r.bytesView(r.remaining) });

interface RequestSpec {
  readonly attributes?: readonly AttrEntry[];
  readonly id?: Uint8Array;
  readonly method?: number;
  readonly cls?: StunClass;
  readonly fingerprint?: boolean;
}

const request = (o: RequestSpec = {}): Uint8Array =>
  encodeMessage(
    { method: o.method ?? BINDING, cls: o.cls ?? StunClass.REQUEST, transactionId: o.id ?? ID, attributes: o.attributes ?? [] },
    { fingerprint: o.fingerprint ?? false },
  );

const core = (o: Partial<StunServerCoreOptions> = {}): StunServerCore => new StunServerCore({ layout: TWO, rateLimit: false, ...o });

const feed = (c: StunServerCore, data: Uint8Array, o: Partial<Omit<ServerInput, 'data'>> = {}): ServerResult => {
  const result = c.handle({ data, role: o.role ?? ServerRole.PRIMARY, from: o.from ?? CLIENT, transport: o.transport ?? 'udp', now: o.now ?? 0 });
  if (result.reply !== undefined) {
    assert.ok(result.reply.data.length <= c.maxReplyBytes(data.length), `reply of ${result.reply.data.length} bytes to ${data.length} within the bound`);
  }
  return result;
};

const replyOf = (r: ServerResult): StunMessage => {
  assert.ok(r.reply, `expected a reply, got ${r.outcome} ${r.drop ?? ''}`);
  return decodeMessage(r.reply.data);
};

const at = (layout: ServerLayout, t: ServerTransport, role: Role): Endpoint => {
  const e = roleEndpoint(layout, t, role);
  assert.ok(e);
  return e;
};

test('Binding request, two addresses × two ports: XOR-MAPPED, MAPPED, RESPONSE-ORIGIN, OTHER-ADDRESS, SOFTWARE (RFC 5780 §6.1)', () => {
  const r = feed(core(), request());
  assert.equal(r.outcome, 'success');
  assert.equal(r.reply?.via, ServerRole.PRIMARY);
  assert.deepEqual(r.reply?.to, CLIENT);
  const m = replyOf(r);
  assert.equal(m.cls, StunClass.SUCCESS);
  assert.equal(m.method, BINDING);
  assert.deepEqual(m.transactionId, ID);
  assert.deepEqual(m.get(XOR_MAPPED_ADDRESS), CLIENT);
  assert.deepEqual(m.get(MAPPED_ADDRESS), CLIENT);
  assert.deepEqual(m.get(RESPONSE_ORIGIN), at(TWO, 'udp', 0));
  assert.deepEqual(m.get(OTHER_ADDRESS), at(TWO, 'udp', 3));
  assert.equal(m.get(SOFTWARE), 'natkit');
  assert.equal(m.has(FINGERPRINT), false, 'no FINGERPRINT unless the request had one');
});

test('Binding request, one address: only XOR-MAPPED-ADDRESS and SOFTWARE (basic server, RFC 8489 §13)', () => {
  const m = replyOf(feed(core({ layout: ONE }), request()));
  assert.deepEqual(m.attributes.map((a) => a.type), [XOR_MAPPED_ADDRESS.type, SOFTWARE.type]);
  assert.deepEqual(m.get(XOR_MAPPED_ADDRESS), CLIENT);
});

test('FINGERPRINT in the request: the response carries a valid one; software: false leaves SOFTWARE out', () => {
  const m = replyOf(feed(core({ software: false }), request({ fingerprint: true })));
  assert.equal(checkFingerprint(m), 'ok');
  assert.equal(m.has(SOFTWARE), false);
});

test('a wrong FINGERPRINT is dropped silently (RFC 8489 §6.3)', () => {
  const bytes = request({ fingerprint: true });
  bytes[bytes.length - 1]! ^= 0xff;
  const r = feed(core(), bytes);
  assert.equal(r.outcome, 'dropped');
  assert.equal(r.drop, 'bad-fingerprint');
});

test('IPv6 client on an IPv6 layout', () => {
  const layout: ServerLayout = { addresses: ['2001:db8::1', '2001:db8::2'], ports: { udp: [3478, 3479] } };
  const from: Endpoint = { address: '2001:db8:1234::7', port: 50000, family: 6 };
  const m = replyOf(feed(core({ layout }), request(), { from }));
  assert.deepEqual(m.get(XOR_MAPPED_ADDRESS), from);
  assert.deepEqual(m.get(OTHER_ADDRESS), { address: '2001:db8::2', port: 3479, family: 6 });
});

// RFC 5780 §6.1 table 1 for every role the request can arrive on.
for (const role of [0, 1, 2, 3] as const) {
  for (const [changeIp, changePort] of [[false, false], [true, false], [false, true], [true, true]] as const) {
    test(`CHANGE-REQUEST ip=${changeIp} port=${changePort} received on role ${role}: table 1`, () => {
      const c = core();
      const r = feed(c, request({ attributes: [attr(CHANGE_REQUEST, { changeIp, changePort })] }), { role });
      const via = ((role ^ (changeIp ? 2 : 0)) ^ (changePort ? 1 : 0)) as Role;
      assert.equal(r.reply?.via, via);
      assert.equal(changedRole(role, changeIp, changePort), via);
      assert.deepEqual(r.reply?.to, CLIENT);
      const m = replyOf(r);
      assert.deepEqual(m.get(RESPONSE_ORIGIN), at(TWO, 'udp', via), 'RESPONSE-ORIGIN is the socket it leaves from');
      assert.deepEqual(m.get(OTHER_ADDRESS), at(TWO, 'udp', (role ^ 3) as Role), 'OTHER-ADDRESS is Ca:Cp whatever the flags');
      assert.equal(c.stats.changed, changeIp || changePort ? 1 : 0);
    });
  }
}

for (const [changeIp, changePort] of [[false, false], [true, false], [false, true], [true, true]] as const) {
  test(`CHANGE-REQUEST ip=${changeIp} port=${changePort} on a one-address server: 420 (RFC 5780 §6)`, () => {
    const r = feed(core({ layout: ONE }), request({ attributes: [attr(CHANGE_REQUEST, { changeIp, changePort })] }));
    assert.equal(r.outcome, 'error');
    assert.equal(r.errorCode, 420);
    const m = replyOf(r);
    assert.equal(m.cls, StunClass.ERROR);
    assert.equal(m.get(ERROR_CODE)?.code, 420);
    assert.deepEqual(m.get(UNKNOWN_ATTRIBUTES), [CHANGE_REQUEST.type]);
  });
}

test('two addresses but one port: still no alternate, CHANGE-REQUEST gets 420 and no OTHER-ADDRESS', () => {
  const layout: ServerLayout = { addresses: ['192.0.2.1', '192.0.2.2'], ports: { udp: [3478] } };
  const c = core({ layout });
  assert.equal(feed(c, request({ attributes: [attr(CHANGE_REQUEST, { changeIp: true, changePort: false })] })).errorCode, 420);
  assert.equal(replyOf(feed(c, request())).has(OTHER_ADDRESS), false);
});

test('CHANGE-REQUEST over TCP: a flag set is a 400, none set is answered on the same connection', () => {
  const c = core();
  const flagged = feed(c, request({ attributes: [attr(CHANGE_REQUEST, { changeIp: true, changePort: false })] }), { transport: 'tcp', role: 1 });
  assert.equal(flagged.errorCode, 400);
  assert.match(replyOf(flagged).get(ERROR_CODE)?.reason ?? '', /UDP/);
  const plain = feed(c, request({ attributes: [attr(CHANGE_REQUEST, { changeIp: false, changePort: false })] }), { transport: 'tcp', role: 1 });
  assert.equal(plain.reply?.via, 1);
  assert.deepEqual(replyOf(plain).get(RESPONSE_ORIGIN), at(TWO, 'tcp', 1));
});

test('TLS: RESPONSE-ORIGIN and OTHER-ADDRESS use the TLS ports', () => {
  const m = replyOf(feed(core(), request(), { transport: 'tls', role: 0 }));
  assert.deepEqual(m.get(RESPONSE_ORIGIN), { address: '192.0.2.1', port: 5349, family: 4 });
  assert.deepEqual(m.get(OTHER_ADDRESS), { address: '192.0.2.2', port: 5350, family: 4 });
});

test('RESPONSE-PORT: the reply goes to the source address at that port (RFC 5780 §7.5)', () => {
  const c = core();
  const r = feed(c, request({ attributes: [attr(RESPONSE_PORT, 50505)] }));
  assert.equal(r.outcome, 'success');
  assert.deepEqual(r.reply?.to, { ...CLIENT, port: 50505 });
  assert.equal(c.stats.responsePort, 1);
});

test('RESPONSE-PORT with CHANGE-REQUEST: changed socket, RESPONSE-PORT destination', () => {
  const r = feed(core(), request({ attributes: [attr(CHANGE_REQUEST, { changeIp: true, changePort: true }), attr(RESPONSE_PORT, 50505)] }));
  assert.equal(r.reply?.via, 3);
  assert.deepEqual(r.reply?.to, { ...CLIENT, port: 50505 });
});

test('RESPONSE-PORT with PADDING: 400 (RFC 5780 §6.1, §7.5, §10)', () => {
  const r = feed(core(), request({ attributes: [attr(RESPONSE_PORT, 50505), attr(PADDING, 1200)] }));
  assert.equal(r.errorCode, 400);
  assert.deepEqual(r.reply?.to, CLIENT, 'the error goes to the source, not RESPONSE-PORT');
});

test('RESPONSE-PORT 0: 400; RESPONSE-PORT over TCP is ignored (reply on the connection)', () => {
  const zero = new Uint8Array(4);
  assert.equal(feed(core(), request({ attributes: [attr(raw(RESPONSE_PORT.type), zero)] })).errorCode, 400);
  const tcp = feed(core(), request({ attributes: [attr(RESPONSE_PORT, 50505)] }), { transport: 'tcp' });
  assert.deepEqual(tcp.reply?.to, CLIENT);
});

test('PADDING: the response is padded up to the request size, never beyond (RFC 5780 §6.1, §10)', () => {
  const c = core();
  for (const size of [0, 4, 100, 500, 1472]) {
    const req = request({ attributes: [attr(PADDING, size)] });
    const r = feed(c, req);
    const m = replyOf(r);
    assert.ok(m.has(PADDING), 'PADDING MUST be included in the response');
    const len = r.reply!.data.length;
    assert.ok(len <= Math.max(req.length, c.maxReplyBytes(0)), `${len} ≤ request ${req.length}`);
    if (req.length > 200) assert.ok(req.length - len < 4, `padded to within 3 bytes of ${req.length}, got ${len}`);
  }
  assert.equal(c.stats.padded, 5);
});

test('unknown comprehension-required attributes: 420 listing them; unknown optional ones are ignored (RFC 8489 §6.3.1)', () => {
  const c = core();
  const r = feed(c, request({ attributes: [attr(raw(0x7777), new Uint8Array(4)), attr(raw(0xc001), new Uint8Array(4)), attr(raw(0x0024), new Uint8Array(4))], fingerprint: true }));
  assert.equal(r.errorCode, 420);
  const m = replyOf(r);
  assert.deepEqual(m.get(UNKNOWN_ATTRIBUTES), [0x7777, 0x0024]);
  assert.equal(checkFingerprint(m), 'ok', 'FINGERPRINT echoed on errors too');
  assert.equal(feed(c, request({ attributes: [attr(raw(0xc001), new Uint8Array(4))] })).outcome, 'success');
});

test('RESPONSE-ADDRESS from an RFC 5389 client is unknown: 420 (RFC 5389 §12.2)', () => {
  const r = feed(core(), request({ attributes: [attr(RESPONSE_ADDRESS, { address: '203.0.113.9', port: 9, family: 4 })] }));
  assert.equal(r.errorCode, 420);
  assert.deepEqual(replyOf(r).get(UNKNOWN_ATTRIBUTES), [RESPONSE_ADDRESS.type]);
});

test('many unknown attributes: the list is capped at 32 and the reply stays within the bound', () => {
  const attributes = Array.from({ length: 200 }, (_, i) => attr(raw(0x4000 + i), new Uint8Array(0)));
  const m = replyOf(feed(core(), request({ attributes })));
  assert.equal(m.get(UNKNOWN_ATTRIBUTES)?.length, 32);
});

const badRequests: { name: string; bytes: () => Uint8Array }[] = [
  { name: 'CHANGE-REQUEST of 8 bytes', bytes: () => request({ attributes: [attr(raw(CHANGE_REQUEST.type), new Uint8Array(8))] }) },
  { name: 'RESPONSE-PORT of 2 bytes', bytes: () => request({ attributes: [attr(raw(RESPONSE_PORT.type), new Uint8Array(2))] }) },
  {
    name: 'an attribute that overruns the message',
    bytes: () => {
      const b = request({ attributes: [attr(SOFTWARE, 'abcd')] });
      b[HEADER + 3] = 200; // SOFTWARE length 200 in a 28-byte message
      return b;
    },
  },
];
const HEADER = 20;
for (const c of badRequests) {
  test(`400 for a Binding request with ${c.name}, same transaction ID`, () => {
    const r = feed(core(), c.bytes());
    assert.equal(r.errorCode, 400);
    const m = replyOf(r);
    assert.equal(m.get(ERROR_CODE)?.code, 400);
    assert.deepEqual(m.transactionId, ID);
  });
}

const drops: { name: string; bytes: () => Uint8Array; reason: DropReason }[] = [
  { name: 'a Binding indication', bytes: () => request({ cls: StunClass.INDICATION }), reason: 'indication' },
  { name: 'a success response', bytes: () => request({ cls: StunClass.SUCCESS }), reason: 'response' },
  { name: 'an error response', bytes: () => request({ cls: StunClass.ERROR }), reason: 'response' },
  { name: 'an Allocate request (unknown method, RFC 8489 §6.3)', bytes: () => request({ method: 0x003 }), reason: 'unknown-method' },
  { name: 'an unknown-method indication', bytes: () => request({ method: 0x0ab, cls: StunClass.INDICATION }), reason: 'indication' },
  { name: 'text', bytes: () => new TextEncoder().encode('hello, are you a stun server?'), reason: 'not-stun' },
  { name: 'a short datagram', bytes: () => new Uint8Array([0, 1, 0, 0]), reason: 'not-stun' },
  { name: 'an empty datagram', bytes: () => new Uint8Array(0), reason: 'not-stun' },
  {
    name: 'a header whose length disagrees with the datagram',
    bytes: () => {
      const b = request();
      return Uint8Array.from([...b, 0, 0, 0, 0]);
    },
    reason: 'malformed',
  },
  { name: 'ChannelData', bytes: () => Uint8Array.from([0x40, 0x00, 0x00, 0x04, 1, 2, 3, 4]), reason: 'not-stun' },
];
for (const c of drops) {
  test(`dropped: ${c.name} → ${c.reason}`, () => {
    const k = core();
    const r = feed(k, c.bytes());
    assert.equal(r.outcome, 'dropped');
    assert.equal(r.reply, undefined);
    assert.equal(r.drop, c.reason);
    assert.equal(k.stats.dropped[c.reason], 1);
  });
}

const legacyRequest = (attributes: readonly AttrEntry[] = []): Uint8Array => request({ id: LEGACY_ID, attributes });

test('RFC 3489 client: MAPPED-ADDRESS, SOURCE-ADDRESS, CHANGED-ADDRESS, 16-byte ID echoed, no XOR/SOFTWARE/FINGERPRINT', () => {
  const c = core();
  const r = feed(c, legacyRequest(), { role: 1 });
  const m = replyOf(r);
  assert.equal(m.isLegacy, true);
  assert.deepEqual(m.transactionId, LEGACY_ID);
  assert.deepEqual(m.attributes.map((a) => a.type), [MAPPED_ADDRESS.type, SOURCE_ADDRESS.type, CHANGED_ADDRESS.type]);
  assert.deepEqual(m.get(MAPPED_ADDRESS), CLIENT);
  assert.deepEqual(m.get(SOURCE_ADDRESS), at(TWO, 'udp', 1));
  assert.deepEqual(m.get(CHANGED_ADDRESS), at(TWO, 'udp', 2));
  assert.equal(c.stats.legacy, 1);
});

test('RFC 3489 CHANGE-REQUEST: honoured from the changed socket; SOURCE-ADDRESS follows', () => {
  const r = feed(core(), legacyRequest([attr(CHANGE_REQUEST, { changeIp: true, changePort: true })]));
  assert.equal(r.reply?.via, 3);
  assert.deepEqual(replyOf(r).get(SOURCE_ADDRESS), at(TWO, 'udp', 3));
  assert.deepEqual(replyOf(r).get(CHANGED_ADDRESS), at(TWO, 'udp', 3));
});

test('RFC 3489 RESPONSE-ADDRESS: decoded and counted, never acted upon (no reflection)', () => {
  const c = core();
  const r = feed(c, legacyRequest([attr(RESPONSE_ADDRESS, { address: '203.0.113.9', port: 9, family: 4 })]));
  assert.equal(r.outcome, 'success');
  assert.deepEqual(r.reply?.to, CLIENT);
  assert.equal(c.stats.responseAddressIgnored, 1);
});

test('RFC 3489 on a one-address server: no flags answered without CHANGED-ADDRESS; a flag gets 420 in RFC 3489 layout', () => {
  const c = core({ layout: ONE });
  const ok = replyOf(feed(c, legacyRequest([attr(CHANGE_REQUEST, { changeIp: false, changePort: false })])));
  assert.deepEqual(ok.attributes.map((a) => a.type), [MAPPED_ADDRESS.type, SOURCE_ADDRESS.type]);
  const r = feed(c, legacyRequest([attr(CHANGE_REQUEST, { changeIp: false, changePort: true })]));
  assert.equal(r.errorCode, 420);
  const m = replyOf(r);
  assert.deepEqual(m.transactionId, LEGACY_ID);
  // RFC 3489 §11.2.10: an odd count is padded by repeating a type; the reason fills whole words.
  assert.deepEqual(m.get(UNKNOWN_ATTRIBUTES), [CHANGE_REQUEST.type, CHANGE_REQUEST.type]);
  assert.equal(m.value(ERROR_CODE.type)!.length % 4, 0);
  assert.equal(m.has(SOFTWARE), false);
});

test('RFC 3489 with an RFC 5780 attribute (PADDING) is unknown to it: 420', () => {
  assert.equal(feed(core(), legacyRequest([attr(PADDING, 8)])).errorCode, 420);
});

test('legacy: false drops RFC 3489 clients', () => {
  assert.equal(feed(core({ legacy: false }), legacyRequest()).drop, 'legacy-disabled');
});

test('SOURCE-ADDRESS left out on a wildcard address', () => {
  const m = replyOf(feed(core({ layout: { addresses: ['0.0.0.0'], ports: { udp: [3478] } } }), legacyRequest()));
  assert.deepEqual(m.attributes.map((a) => a.type), [MAPPED_ADDRESS.type]);
});

test('plain mode: a non-STUN datagram at least as large as the answer gets "ip,port\\n"', () => {
  const c = core({ plain: true });
  const r = feed(c, new TextEncoder().encode('what is my address, please?'), { role: 2 });
  assert.equal(r.outcome, 'plain');
  assert.equal(new TextDecoder().decode(r.reply?.data), '198.51.100.7,40000\n');
  assert.equal(r.reply?.via, 2);
  assert.deepEqual(r.reply?.to, CLIENT);
  const small = feed(c, new TextEncoder().encode('hi'));
  assert.equal(small.drop, 'plain-too-small');
  assert.equal(replyOf(feed(c, request())).cls, StunClass.SUCCESS, 'STUN is still STUN in plain mode');
  assert.equal(feed(c, request({ cls: StunClass.INDICATION })).drop, 'indication', 'STUN that is not a request is not plain');
  assert.equal(feed(c, new TextEncoder().encode('a stream frame of text'), { transport: 'tcp' }).drop, 'not-stun', 'streams are plain at the driver');
  const s = c.plainStreamReply(CLIENT, 0);
  assert.equal(new TextDecoder().decode(s?.data), '198.51.100.7,40000\n');
  assert.equal(core().plainStreamReply(CLIENT, 0), undefined);
});

test('plain mode over IPv6: "[addr],port" is not used, the seed format is "addr,port"', () => {
  const layout: ServerLayout = { addresses: ['::1'], ports: { udp: [3478] } };
  const from: Endpoint = { address: '2001:db8::7', port: 5, family: 6 };
  const r = feed(core({ layout, plain: true }), new Uint8Array(64).fill(0x41), { from });
  assert.equal(new TextDecoder().decode(r.reply?.data), '2001:db8::7,5\n');
});

test('rate limit: a burst, then refill with time; per source; IPv6 by /64', () => {
  const c = core({ rateLimit: { ratePerS: 2, burst: 3 } });
  const req = request();
  const outcomes = (n: number, o: Partial<ServerInput> = {}): string[] => Array.from({ length: n }, () => feed(c, req, o).outcome);
  assert.deepEqual(outcomes(4), ['success', 'success', 'success', 'dropped']);
  assert.equal(c.stats.dropped['rate-limited'], 1);
  assert.deepEqual(outcomes(1, { now: 499 }), ['dropped']);
  assert.deepEqual(outcomes(3, { now: 1000 }), ['success', 'success', 'dropped'], 'one token back per 500 ms');
  assert.deepEqual(outcomes(1, { now: 1000, from: { ...CLIENT, address: '198.51.100.8' } }), ['success'], 'other sources have their own bucket');
  const v6 = (address: string): Partial<ServerInput> => ({ now: 1000, from: { address, port: 1, family: 6 } });
  const c6 = core({ layout: { addresses: ['2001:db8::1'], ports: { udp: [3478] } }, rateLimit: { ratePerS: 1, burst: 2 } });
  const out6 = ['2001:db8:0:1::1', '2001:db8:0:1::2', '2001:db8:0:1::3', '2001:db8:0:2::1'].map((a) => c6.handle({ data: req, role: 0, transport: 'udp', ...v6(a) } as ServerInput).outcome);
  assert.deepEqual(out6, ['success', 'success', 'dropped', 'success'], 'one bucket per /64');
});

test('counters add up: received = success + 400 + 420 + plain + dropped', () => {
  const c = core({ plain: true, rateLimit: { ratePerS: 1, burst: 5 } });
  const inputs = [
    request(), request({ fingerprint: true }), legacyRequest(), request({ attributes: [attr(raw(0x7777), new Uint8Array(0))] }),
    request({ attributes: [attr(raw(CHANGE_REQUEST.type), new Uint8Array(1))] }), new TextEncoder().encode('plain text question, long enough'),
    request({ cls: StunClass.INDICATION }), new Uint8Array(3), request(), request(),
  ];
  for (const data of inputs) feed(c, data);
  const s = c.stats;
  assert.equal(s.received, inputs.length);
  assert.equal(s.received, s.success + s.badRequest + s.unknownAttribute + s.plain + totalDropped(s));
  assert.equal(s.replies, s.success + s.badRequest + s.unknownAttribute + s.plain);
  assert.equal(s.dropped['rate-limited'], 5);
});

test('configuration errors are thrown at construction', () => {
  assert.throws(() => core({ software: 'x'.repeat(200) }), { code: 'ERR_INVALID_ARGUMENT' });
  assert.throws(() => core({ layout: { addresses: ['192.0.2.1', '2001:db8::1'], ports: {} } }), { code: 'ERR_CONFIG' });
  assert.throws(() => core({ layout: { addresses: ['192.0.2.1', '192.0.2.1'], ports: {} } }), { code: 'ERR_CONFIG' });
  assert.throws(() => core({ layout: { addresses: ['0.0.0.0', '192.0.2.1'], ports: {} } }), { code: 'ERR_CONFIG' });
  assert.throws(() => core({ layout: { addresses: ['not-an-ip'], ports: {} } }), { code: 'ERR_CONFIG' });
  assert.throws(() => core({ layout: { addresses: ['192.0.2.1'], ports: { udp: [70000] } } }), { code: 'ERR_CONFIG' });
  assert.throws(() => core({ layout: { addresses: [], ports: {} } }), { code: 'ERR_CONFIG' });
  assert.throws(() => core({ rateLimit: { ratePerS: 0 } }), { code: 'ERR_INVALID_ARGUMENT' });
});
