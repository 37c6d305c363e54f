// TURN codec: every attribute against its RFC 8656 §18 layout (hex written field by field),
// ChannelData framing (§12.4, §12.5) with its typed errors, and the numbers against the
// committed IANA registry copy (test/fixtures/iana), as the STUN codec's tests do.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { StunClass, attr, attributeCodec, decodeMessage, encodeMessage, type AttrEntry } from '../../src/stun/index.ts';
import { isNatkitError } from '../../src/util/index.ts';
import {
  ADDITIONAL_ADDRESS_FAMILY, ADDRESS_ERROR_CODE, ALLOCATE, CHANNEL_BIND, CHANNEL_NUMBER, CREATE_PERMISSION, DATA, DATA_ATTRIBUTE, DONT_FRAGMENT,
  EVEN_PORT, ICMP, LIFETIME, REFRESH, REQUESTED_ADDRESS_FAMILY, REQUESTED_TRANSPORT, RESERVATION_TOKEN, SEND, TURN_REASON_PHRASES,
  TurnDecodeError, XOR_PEER_ADDRESS, XOR_RELAYED_ADDRESS, allOf, decodeChannelData, encodeChannelData,
} from '../../src/turn/index.ts';
import { hex } from '../helpers/hex.ts';
import { rawAttribute } from '../fixtures/turn/harness.ts';

const ID = hex('b7e7a701 bc34d686 fa87dfae');

function table(file: string): Map<number, string> {
  const rows = readFileSync(new URL(`../fixtures/iana/${file}`, import.meta.url), 'utf8').trim().split('\n').slice(1);
  const out = new Map<number, string>();
  for (const row of rows) {
    const [value = '', name = ''] = row.split(',');
    if (/^(0x)?[0-9A-Fa-f]+$/.test(value)) out.set(Number(value), name);
  }
  return out;
}

const ATTRIBUTES = [
  CHANNEL_NUMBER, LIFETIME, XOR_PEER_ADDRESS, DATA_ATTRIBUTE, XOR_RELAYED_ADDRESS, REQUESTED_ADDRESS_FAMILY, EVEN_PORT, REQUESTED_TRANSPORT,
  DONT_FRAGMENT, RESERVATION_TOKEN, ADDITIONAL_ADDRESS_FAMILY, ADDRESS_ERROR_CODE, ICMP,
];

test('IANA: the thirteen TURN attributes, registered in the STUN registry under their IANA numbers and names', () => {
  const iana = table('stun-attributes.csv');
  const expected: Record<number, string> = {
    0x000c: 'CHANNEL-NUMBER', 0x000d: 'LIFETIME', 0x0012: 'XOR-PEER-ADDRESS', 0x0013: 'DATA', 0x0016: 'XOR-RELAYED-ADDRESS',
    0x0017: 'REQUESTED-ADDRESS-FAMILY', 0x0018: 'EVEN-PORT', 0x0019: 'REQUESTED-TRANSPORT', 0x001a: 'DONT-FRAGMENT',
    0x0022: 'RESERVATION-TOKEN', 0x8000: 'ADDITIONAL-ADDRESS-FAMILY', 0x8001: 'ADDRESS-ERROR-CODE', 0x8004: 'ICMP',
  };
  assert.equal(ATTRIBUTES.length, 13);
  for (const codec of ATTRIBUTES) {
    assert.equal(iana.get(codec.type), codec.name, `0x${codec.type.toString(16)}`);
    assert.equal(expected[codec.type], codec.name);
    assert.equal(attributeCodec(codec.type), codec, 'reachable through the STUN registry');
  }
});

test('IANA: TURN methods and error codes with their reason phrases', () => {
  const methods = table('stun-methods.csv');
  assert.deepEqual(
    [ALLOCATE, REFRESH, SEND, DATA, CREATE_PERMISSION, CHANNEL_BIND].map((m) => methods.get(m)),
    ['Allocate', 'Refresh', 'Send', 'Data', 'CreatePermission', 'ChannelBind'],
  );
  const errors = table('stun-error-codes.csv');
  assert.deepEqual(Object.keys(TURN_REASON_PHRASES).map(Number), [403, 437, 438, 440, 441, 442, 443, 486, 508]);
  for (const [code, reason] of Object.entries(TURN_REASON_PHRASES)) assert.equal(errors.get(Number(code)), reason, code);
});

/** Value bytes (after the TLV header, before padding) of one attribute as encoded in a message. */
const valueOf = (entry: AttrEntry): Uint8Array => {
  const m = decodeMessage(encodeMessage({ method: ALLOCATE, cls: StunClass.REQUEST, transactionId: ID, attributes: [entry] }));
  return m.value(entry.codec.type)!;
};

const layouts: readonly { name: string; entry: AttrEntry; bytes: string; back?: unknown }[] = [
  { name: 'CHANNEL-NUMBER 0x4001 + RFFU', entry: attr(CHANNEL_NUMBER, 0x4001), bytes: '4001 0000' },
  { name: 'LIFETIME 600', entry: attr(LIFETIME, 600), bytes: '00000258' },
  // XOR-PEER-ADDRESS 192.0.2.1:32853 → port ^ 0x2112, address ^ 0x2112a442 (RFC 8489 §14.2).
  { name: 'XOR-PEER-ADDRESS IPv4', entry: attr(XOR_PEER_ADDRESS, { address: '192.0.2.1', port: 32853, family: 4 }), bytes: '00 01 a147 e112a643' },
  { name: 'XOR-RELAYED-ADDRESS IPv6', entry: attr(XOR_RELAYED_ADDRESS, { address: '2001:db8::1', port: 49152, family: 6 }), bytes: '00 02 e112 0113a9fa b7e7a701 bc34d686 fa87dfaf' },
  { name: 'DATA', entry: attr(DATA_ATTRIBUTE, Uint8Array.of(1, 2, 3)), bytes: '010203' },
  { name: 'REQUESTED-ADDRESS-FAMILY IPv6', entry: attr(REQUESTED_ADDRESS_FAMILY, 2), bytes: '02 000000' },
  { name: 'ADDITIONAL-ADDRESS-FAMILY IPv6', entry: attr(ADDITIONAL_ADDRESS_FAMILY, 2), bytes: '02 000000' },
  { name: 'EVEN-PORT with R', entry: attr(EVEN_PORT, { reserveNext: true }), bytes: '80' },
  { name: 'EVEN-PORT without R', entry: attr(EVEN_PORT, { reserveNext: false }), bytes: '00' },
  { name: 'REQUESTED-TRANSPORT UDP', entry: attr(REQUESTED_TRANSPORT, 17), bytes: '11 000000' },
  { name: 'DONT-FRAGMENT', entry: attr(DONT_FRAGMENT, true), bytes: '' },
  { name: 'RESERVATION-TOKEN', entry: attr(RESERVATION_TOKEN, hex('0102030405060708')), bytes: '0102030405060708' },
  { name: 'ADDRESS-ERROR-CODE 440', entry: attr(ADDRESS_ERROR_CODE, { family: 2, code: 440, reason: 'Address Family not Supported' }), bytes: `02 00 04 28 ${Buffer.from('Address Family not Supported').toString('hex')}` },
  { name: 'ICMP type 3 code 4, MTU 1400', entry: attr(ICMP, { type: 3, code: 4, errorData: 1400 }), bytes: '0000 0604 00000578' },
];
for (const l of layouts) {
  test(`layout: ${l.name} (RFC 8656 §18)`, () => {
    const value = valueOf(l.entry);
    assert.deepEqual(value, hex(l.bytes));
    const m = decodeMessage(encodeMessage({ method: ALLOCATE, cls: StunClass.REQUEST, transactionId: ID, attributes: [l.entry] }));
    assert.deepEqual(m.get(l.entry.codec), l.entry.value);
  });
}

const malformed: readonly { name: string; type: number; bytes: string }[] = [
  { name: 'CHANNEL-NUMBER of 2 bytes', type: 0x000c, bytes: '4001' },
  { name: 'LIFETIME of 8 bytes', type: 0x000d, bytes: '0000000000000258' },
  { name: 'EVEN-PORT of 4 bytes', type: 0x0018, bytes: '80000000' },
  { name: 'DONT-FRAGMENT with a value', type: 0x001a, bytes: '00000000' },
  { name: 'RESERVATION-TOKEN of 4 bytes', type: 0x0022, bytes: '01020304' },
  { name: 'ADDRESS-ERROR-CODE family 3', type: 0x8001, bytes: '03000428' },
  { name: 'ADDRESS-ERROR-CODE class 7', type: 0x8001, bytes: '02000728' },
  { name: 'ICMP of 4 bytes', type: 0x8004, bytes: '00000604' },
  { name: 'XOR-PEER-ADDRESS family 3', type: 0x0012, bytes: '0003a147e112a643' },
];
for (const m of malformed) {
  test(`malformed: ${m.name} → ERR_STUN_DECODE`, () => {
    const bytes = encodeMessage({ method: ALLOCATE, cls: StunClass.REQUEST, transactionId: ID, attributes: [attr(rawAttribute(m.type), hex(m.bytes))] });
    const codec = attributeCodec(m.type)!;
    assert.throws(() => decodeMessage(bytes).get(codec), (e) => isNatkitError(e, 'ERR_STUN_DECODE'));
  });
}

test('allOf: every XOR-PEER-ADDRESS of a CreatePermission, in order', () => {
  const peers = [{ address: '198.18.0.1', port: 1, family: 4 as const }, { address: '2001:db8:ff::2', port: 2, family: 6 as const }];
  const m = decodeMessage(encodeMessage({ method: CREATE_PERMISSION, cls: StunClass.REQUEST, transactionId: ID, attributes: peers.map((p) => attr(XOR_PEER_ADDRESS, p)) }));
  assert.deepEqual(allOf(m, XOR_PEER_ADDRESS), peers);
  assert.deepEqual(allOf(m, LIFETIME), []);
});

test('ChannelData: header, data, padding over streams only (RFC 8656 §12.4, §12.5)', () => {
  assert.deepEqual(encodeChannelData({ channel: 0x4000, data: Uint8Array.of(1, 2, 3, 4, 5) }), hex('4000 0005 0102030405'));
  assert.deepEqual(encodeChannelData({ channel: 0x4fff, data: Uint8Array.of(1, 2, 3, 4, 5) }, 'stream'), hex('4fff 0005 0102030405 000000'));
  assert.deepEqual(encodeChannelData({ channel: 0x4000, data: new Uint8Array(0) }, 'stream'), hex('4000 0000'));
  // Over UDP, padding may or may not be there.
  assert.deepEqual(decodeChannelData(hex('4001 0002 aabb')), { channel: 0x4001, data: hex('aabb') });
  assert.deepEqual(decodeChannelData(hex('4001 0002 aabb 0000')), { channel: 0x4001, data: hex('aabb') });
  assert.deepEqual(decodeChannelData(hex('4001 0002 aabb 0000'), { framing: 'stream' }), { channel: 0x4001, data: hex('aabb') });
});

const badFrames: readonly { name: string; bytes: string; framing?: 'stream' }[] = [
  { name: 'shorter than the header', bytes: '4000 00' },
  { name: 'channel 0x3fff', bytes: '3fff 0000' },
  { name: 'channel 0x5000 (reserved)', bytes: '5000 0000' },
  { name: 'length past the end', bytes: '4000 0004 0102' },
  { name: 'unpadded on a stream', bytes: '4000 0001 01', framing: 'stream' },
  { name: 'extra bytes on a stream', bytes: '4000 0001 01000000 00000000', framing: 'stream' },
];
for (const b of badFrames) {
  test(`ChannelData ${b.name} → TurnDecodeError (ERR_TURN_DECODE)`, () => {
    assert.throws(() => decodeChannelData(hex(b.bytes), b.framing === undefined ? {} : { framing: b.framing }), (e) => e instanceof TurnDecodeError && e.code === 'ERR_TURN_DECODE');
  });
}

test('ChannelData encode refuses bad channels and oversize data with ERR_INVALID_ARGUMENT', () => {
  for (const channel of [0x3fff, 0x5000, 1.5]) {
    assert.throws(() => encodeChannelData({ channel, data: new Uint8Array(1) }), (e) => isNatkitError(e, 'ERR_INVALID_ARGUMENT'));
  }
  assert.throws(() => encodeChannelData({ channel: 0x4000, data: new Uint8Array(0x10000) }), (e) => isNatkitError(e, 'ERR_INVALID_ARGUMENT'));
});
