// The rendezvous frame codec: every message type round-trips; the header, TLV walk and
// each value refuse what the format does not allow with RendezvousDecodeError, keeping the
// transaction id when the header was sound; the stream envelope; and the mux byte.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MUX_STUN, MUX_TURN_CHANNEL, PacketMux, StreamFramer, endpoint, type PacketSocket } from '../../src/net/index.ts';
import {
  MAX_FRAME_BYTES, MUX_RENDEZVOUS, RendezvousDecodeError, decodeFrame, encodeFrame, errorCodeName, fromStreamMessage, natSummary, toStreamMessage,
  type RendezvousMessage,
} from '../../src/rendezvous/index.ts';
import { isNatkitError } from '../../src/util/index.ts';

const txid = Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8]);
const bytes = (n: number, fill: number): Uint8Array => new Uint8Array(n).fill(fill);
const candidates = [
  { kind: 'host', transport: 'udp', endpoint: endpoint('192.168.1.20', 40000) },
  { kind: 'port-mapped', transport: 'udp', endpoint: endpoint('2001:db8::7', 5000) },
  { kind: 'relayed', transport: 'udp', endpoint: endpoint('198.51.100.1', 49152) },
] as const;
const nat = { mapping: 'address-and-port-dependent', filtering: 'endpoint-independent', allocation: { kind: 'sequential', step: -2 }, hairpinning: false } as const;

const messages: RendezvousMessage[] = [
  { type: 'hello', transactionId: txid, padding: 35 },
  { type: 'challenge', transactionId: txid, nonce: bytes(24, 9), serverTimeMs: 2 ** 40 },
  { type: 'register', transactionId: txid, name: 'alice', publicKey: bytes(32, 1), nonce: bytes(24, 2), signature: bytes(64, 3), candidates: [...candidates], nat },
  { type: 'register', transactionId: txid, name: 'bøb ☃', publicKey: bytes(32, 1), nonce: bytes(24, 2), signature: bytes(64, 3), candidates: [] },
  { type: 'registered', transactionId: txid, reflexive: endpoint('203.0.113.5', 61000), timers: { leaseS: 30, keepaliveS: 10 }, serverTimeMs: 0, session: bytes(16, 4) },
  { type: 'keepalive', transactionId: txid, session: bytes(16, 4), rttMs: 42 },
  { type: 'connect', transactionId: txid, session: bytes(16, 4), name: 'bob' },
  { type: 'join', transactionId: txid, session: bytes(16, 4), room: 'lobby' },
  { type: 'leave', transactionId: txid, session: bytes(16, 4), room: 'lobby' },
  { type: 'ok', transactionId: txid },
  {
    type: 'punch', transactionId: txid, pairId: bytes(8, 5), name: 'bob', publicKey: bytes(32, 6), candidates: [...candidates], serverTimeMs: 1000,
    startAtMs: 1150, offsetMs: 20, controlling: true, nat, room: 'lobby',
  },
  { type: 'error', transactionId: txid, code: 6, reason: 'name-taken', versions: { min: 1, max: 1 } },
  { type: 'unregister', transactionId: txid, session: bytes(16, 4) },
];

for (const m of messages) {
  test(`${m.type} round-trips`, () => {
    const frame = encodeFrame(m);
    assert.equal(frame[0], 0xd0);
    assert.equal(frame[1], 1);
    assert.deepEqual(decodeFrame(frame), m);
  });
}

test('UNREGISTER is type 0x0C and carries SESSION only', () => {
  const frame = encodeFrame({ type: 'unregister', transactionId: txid, session: bytes(16, 4) });
  assert.deepEqual(frame, Uint8Array.from([0xd0, 1, 0x0c, 0, 0, 19, ...txid, 0x0a, 0, 16, ...bytes(16, 4)]));
});

/** A sound header around `body` (type 0x09 ok unless given). */
const frameOf = (body: number[], type = 0x09, version = 1): Uint8Array =>
  Uint8Array.from([0xd0, version, type, 0, body.length >> 8, body.length & 0xff, ...txid, ...body]);

const bad: { name: string; data: Uint8Array; reason?: 'malformed' | 'version' | 'too-large'; hasTxid: boolean }[] = [
  { name: 'empty', data: new Uint8Array(0), hasTxid: false },
  { name: 'short header', data: Uint8Array.from([0xd0, 1, 9]), hasTxid: false },
  { name: 'STUN first byte', data: frameOf([]).map((b, i) => (i === 0 ? 0 : b)), hasTxid: false },
  { name: 'version 2', data: frameOf([], 0x09, 2), reason: 'version', hasTxid: true },
  { name: 'over the size limit', data: frameOf(new Array<number>(MAX_FRAME_BYTES).fill(0)), reason: 'too-large', hasTxid: true },
  { name: 'body length mismatch', data: Uint8Array.from([...frameOf([]), 0]), reason: 'malformed', hasTxid: true },
  { name: 'unknown message type', data: frameOf([], 0x7f), reason: 'malformed', hasTxid: true },
  { name: 'truncated TLV header', data: frameOf([0x14, 0]), reason: 'malformed', hasTxid: true },
  { name: 'TLV overrun', data: frameOf([0x14, 0, 5, 0]), reason: 'malformed', hasTxid: true },
  { name: 'repeated TLV', data: frameOf([0x14, 0, 0, 0x14, 0, 0]), reason: 'malformed', hasTxid: true },
  { name: 'missing required TLV', data: frameOf([], 0x06), reason: 'malformed', hasTxid: true },
  { name: 'UNREGISTER without SESSION', data: frameOf([0x01, 0, 1, 0x61], 0x0c), reason: 'malformed', hasTxid: true },
  { name: 'control character in a name', data: frameOf([0x0a, 0, 16, ...bytes(16, 1), 0x01, 0, 2, 0x61, 0x0a], 0x06), reason: 'malformed', hasTxid: true },
  { name: 'empty name', data: frameOf([0x0a, 0, 16, ...bytes(16, 1), 0x01, 0, 0], 0x06), reason: 'malformed', hasTxid: true },
  { name: 'invalid UTF-8 name', data: frameOf([0x0a, 0, 16, ...bytes(16, 1), 0x01, 0, 1, 0xff], 0x06), reason: 'malformed', hasTxid: true },
  { name: 'short session token', data: frameOf([0x0a, 0, 15, ...bytes(15, 1), 0x01, 0, 1, 0x61], 0x06), reason: 'malformed', hasTxid: true },
  { name: 'keepalive not under the lease', data: frameOf([0x07, 0, 7, 4, 0, 1, 1, 2, 3, 4, 0x08, 0, 4, 0, 10, 0, 10, 0x09, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0x0a, 0, 16, ...bytes(16, 1)], 0x04), reason: 'malformed', hasTxid: true },
  { name: 'address family 5', data: frameOf([0x07, 0, 7, 5, 0, 1, 1, 2, 3, 4, 0x08, 0, 4, 0, 30, 0, 10, 0x09, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0x0a, 0, 16, ...bytes(16, 1)], 0x04), reason: 'malformed', hasTxid: true },
  { name: 'server time over 2^53', data: frameOf([0x03, 0, 24, ...bytes(24, 0), 0x09, 0, 8, ...bytes(8, 0xff)], 0x02), reason: 'malformed', hasTxid: true },
];

for (const c of bad) {
  test(`decode refuses: ${c.name}`, () => {
    assert.throws(() => decodeFrame(c.data), (err: unknown) => {
      assert.ok(err instanceof RendezvousDecodeError);
      assert.ok(isNatkitError(err, 'ERR_RENDEZVOUS_DECODE'));
      if (c.reason !== undefined) assert.equal(err.reason, c.reason);
      assert.deepEqual(err.transactionId, c.hasTxid ? txid : undefined);
      return true;
    });
  });
}

test('unknown TLV types are skipped (later additions within a version)', () => {
  assert.deepEqual(decodeFrame(frameOf([0xee, 0, 2, 1, 2])), { type: 'ok', transactionId: txid });
});

test('an unknown ERROR-CODE decodes as "unknown"', () => {
  const m = decodeFrame(encodeFrame({ type: 'error', transactionId: txid, code: 999 }));
  assert.ok(m.type === 'error');
  assert.equal(errorCodeName(m.code), 'unknown');
  assert.equal(errorCodeName(6), 'name-taken');
});

test('encode refuses values the wire cannot carry', () => {
  const cases: RendezvousMessage[] = [
    { type: 'ok', transactionId: new Uint8Array(4) },
    { type: 'connect', transactionId: txid, session: bytes(16, 0), name: '' },
    { type: 'connect', transactionId: txid, session: bytes(16, 0), name: 'x'.repeat(65) },
    { type: 'connect', transactionId: txid, session: bytes(15, 0), name: 'bob' },
    { type: 'hello', transactionId: txid, padding: MAX_FRAME_BYTES },
    { type: 'registered', transactionId: txid, reflexive: { address: '1.2.3.4', port: 1, family: 6 }, timers: { leaseS: 30, keepaliveS: 10 }, serverTimeMs: 0, session: bytes(16, 0) },
  ];
  for (const m of cases) assert.throws(() => encodeFrame(m), (err: unknown) => isNatkitError(err, 'ERR_INVALID_ARGUMENT'));
});

test('the stream envelope: StreamFramer cuts it, padding and all, and gives the frame back', () => {
  const frames = messages.map((m) => encodeFrame(m));
  const stream = new Uint8Array(frames.reduce((n, f) => n + toStreamMessage(f).length, 0));
  let at = 0;
  for (const f of frames) {
    stream.set(toStreamMessage(f), at);
    at += toStreamMessage(f).length;
  }
  const framer = new StreamFramer();
  const got: Uint8Array[] = [];
  // In chunks of 7 bytes, so frames straddle chunks.
  for (let i = 0; i < stream.length; i += 7) for (const msg of framer.push(stream.subarray(i, i + 7))) got.push(fromStreamMessage(msg)!);
  assert.deepEqual(got.map((g) => decodeFrame(g)), messages);
  assert.equal(fromStreamMessage(Uint8Array.from([0x41, 0, 0, 0])), undefined);
});

test('MUX_RENDEZVOUS shares a socket with STUN and TURN ChannelData', () => {
  const sent: Uint8Array[] = [];
  const socket = { local: endpoint('127.0.0.1', 1), closed: false, stats: { packetsIn: 0, packetsOut: 0, bytesIn: 0, bytesOut: 0, sendErrors: 0 },
    send: (d: Uint8Array) => void sent.push(d), onPacket: (h: unknown) => void (handler = h as typeof handler), close: () => Promise.resolve(),
    [Symbol.asyncDispose]: () => Promise.resolve() } satisfies PacketSocket;
  let handler: ((d: Uint8Array, f: ReturnType<typeof endpoint>) => void) | undefined;
  const mux = new PacketMux(socket);
  const seen: string[] = [];
  mux.route(MUX_STUN, { onPacket: () => seen.push('stun') });
  mux.route(MUX_TURN_CHANNEL, { onPacket: () => seen.push('turn') });
  mux.route(MUX_RENDEZVOUS, { onPacket: (d) => seen.push(decodeFrame(d).type) });
  for (const d of [Uint8Array.of(0, 1), encodeFrame({ type: 'ok', transactionId: txid }), Uint8Array.of(0x40, 0)]) handler?.(d, endpoint('127.0.0.1', 2));
  assert.deepEqual(seen, ['stun', 'ok', 'turn']);
});

test('natSummary takes the RFC 4787 fields of a NatReport', () => {
  const summary = natSummary({ mapping: 'endpoint-independent', filtering: 'address-dependent', portAllocation: { kind: 'preserving' }, hairpinning: true } as Parameters<typeof natSummary>[0]);
  assert.deepEqual(summary, { mapping: 'endpoint-independent', filtering: 'address-dependent', allocation: { kind: 'preserving' }, hairpinning: true });
});
