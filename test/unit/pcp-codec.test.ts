// PCP codec against the packet formats of RFC 6887: the request header (§7.1 Figure 2),
// the response header (§7.2 Figure 3), options (§7.3 Figure 4), MAP (§11.1 Figures 9 and
// 10), THIRD_PARTY, PREFER_FAILURE and FILTER (§13.1–§13.3), IPv4-mapped addresses (§5),
// the §7/§8.3 size rules, §7.3 unknown options, and §9 version answers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  PCP_VERSION, PcpDecodeError, PcpOpcode, PcpResultCode, checkRequestOptions, decodePcpAddress, decodePcpRequest, decodePcpResponse,
  encodePcpAddress, encodePcpRequest, encodePcpResponse, pcpResult, type PcpRequest, type PcpResponse,
} from '../../src/portmap/index.ts';
import { isNatkitError } from '../../src/util/index.ts';
import { hex } from '../helpers/hex.ts';

const NONCE = hex('0102030405060708090a0b0c');
const V4_CLIENT = '00000000000000000000ffff c0a80102'; // ::ffff:192.168.1.2 (§5)
const V4_ANY = '00000000000000000000ffff 00000000'; // ::ffff:0.0.0.0, "no preference" (§11.1)

const MAP_REQUEST: PcpRequest = {
  version: PCP_VERSION, opcode: PcpOpcode.MAP, lifetimeS: 7200, clientAddress: '192.168.1.2', options: [],
  map: { nonce: NONCE, protocol: 17, internalPort: 5000, externalPort: 0, externalAddress: '0.0.0.0' },
};
// Figure 2: version 2, R = 0 and opcode 1, 16 reserved bits, lifetime, client address;
// Figure 9: nonce, protocol 17, 24 reserved bits, internal port, suggested port and address.
const MAP_REQUEST_BYTES = `02 01 0000 00001c20 ${V4_CLIENT} 0102030405060708090a0b0c 11 000000 1388 0000 ${V4_ANY}`;

const requests: { name: string; request: PcpRequest; bytes: string }[] = [
  { name: 'MAP UDP 5000, no preference (Figures 2 and 9)', request: MAP_REQUEST, bytes: MAP_REQUEST_BYTES },
  {
    name: 'ANNOUNCE from an IPv6 client (§14.1: no opcode data)',
    request: { version: PCP_VERSION, opcode: PcpOpcode.ANNOUNCE, lifetimeS: 0, clientAddress: '2001:db8::2', options: [] },
    bytes: '02 00 0000 00000000 20010db8000000000000000000000002',
  },
  {
    // §13.2 PREFER_FAILURE: code 2, length 0. §13.1 THIRD_PARTY: code 1, length 16, an address.
    name: 'MAP TCP 22 → 2222 at 198.51.100.9 with PREFER_FAILURE and THIRD_PARTY',
    request: {
      ...MAP_REQUEST,
      map: { nonce: NONCE, protocol: 6, internalPort: 22, externalPort: 2222, externalAddress: '198.51.100.9' },
      options: [{ kind: 'prefer-failure' }, { kind: 'third-party', address: '192.168.1.50' }],
    },
    bytes: `02 01 0000 00001c20 ${V4_CLIENT} 0102030405060708090a0b0c 06 000000 0016 08ae 00000000000000000000ffff c6336409
            02 00 0000  01 00 0010 00000000000000000000ffff c0a80132`,
  },
  {
    // §13.3 FILTER: code 3, length 20; reserved, prefix length, remote port, remote address.
    name: 'MAP with a FILTER for 203.0.113.0/24 port 443',
    request: { ...MAP_REQUEST, options: [{ kind: 'filter', prefixLength: 24, remotePort: 443, remoteAddress: '203.0.113.0' }] },
    bytes: `${MAP_REQUEST_BYTES} 03 00 0014 00 18 01bb 00000000000000000000ffff cb007100`,
  },
];

for (const c of requests) {
  test(`request layout: ${c.name}`, () => {
    assert.deepEqual(encodePcpRequest(c.request), hex(c.bytes));
    assert.deepEqual(decodePcpRequest(hex(c.bytes)), c.request);
  });
}

const MAP_RESPONSE: PcpResponse = {
  version: PCP_VERSION, opcode: PcpOpcode.MAP, resultCode: 0, lifetimeS: 3600, epochS: 1000, options: [],
  map: { nonce: NONCE, protocol: 17, internalPort: 5000, externalPort: 40_000, externalAddress: '203.0.113.7' },
};

const responses: { name: string; response: PcpResponse; bytes: string }[] = [
  {
    // Figure 3: version, R = 1 and opcode, reserved, result code, lifetime, epoch, 96 reserved bits; Figure 10.
    name: 'MAP success (Figures 3 and 10)',
    response: MAP_RESPONSE,
    bytes: `02 81 00 00 00000e10 000003e8 000000000000000000000000 0102030405060708090a0b0c 11 000000 1388 9c40 00000000000000000000ffff cb007107`,
  },
  {
    name: 'CANNOT_PROVIDE_EXTERNAL (11) with an error lifetime of 30 s',
    response: { ...MAP_RESPONSE, resultCode: PcpResultCode.CANNOT_PROVIDE_EXTERNAL, lifetimeS: 30 },
    bytes: `02 81 00 0b 0000001e 000003e8 000000000000000000000000 0102030405060708090a0b0c 11 000000 1388 9c40 00000000000000000000ffff cb007107`,
  },
  {
    name: 'ANNOUNCE success',
    response: { version: PCP_VERSION, opcode: PcpOpcode.ANNOUNCE, resultCode: 0, lifetimeS: 0, epochS: 5, options: [] },
    bytes: '02 80 00 00 00000000 00000005 000000000000000000000000',
  },
];

for (const c of responses) {
  test(`response layout: ${c.name}`, () => {
    assert.deepEqual(encodePcpResponse(c.response), hex(c.bytes));
    assert.deepEqual(decodePcpResponse(hex(c.bytes)), c.response);
  });
}

test('§5: IPv4 travels as IPv4-mapped IPv6 and comes back as dotted quad', () => {
  assert.deepEqual(encodePcpAddress('192.0.2.1'), hex('00000000000000000000ffff c0000201'));
  assert.deepEqual(encodePcpAddress('0.0.0.0'), hex(V4_ANY));
  assert.deepEqual(encodePcpAddress('::'), new Uint8Array(16));
  assert.equal(decodePcpAddress(hex('00000000000000000000ffff c0000201')), '192.0.2.1');
  assert.equal(decodePcpAddress(new Uint8Array(16)), '::');
  assert.equal(decodePcpAddress(hex('20010db8000000000000000000000001')), '2001:db8::1');
  // ::ffff:0:0/96 needs ten zero bytes first: this is IPv6.
  assert.equal(decodePcpAddress(hex('01000000000000000000ffff c0000201')), '100::ffff:c000:201');
});

test('§7.3: an unknown option is padded to 4 bytes and its length excludes the padding', () => {
  const req: PcpRequest = { ...MAP_REQUEST, options: [{ kind: 'unknown', code: 200, data: hex('aabbcc') }] };
  const bytes = encodePcpRequest(req);
  assert.deepEqual(bytes.subarray(60), hex('c8 00 0003 aabbcc00'));
  const back = decodePcpRequest(bytes);
  assert.deepEqual(back.options, [{ kind: 'unknown', code: 200, data: hex('aabbcc') }]);
});

test('§7.3: a client keeps (and so can ignore) unknown options in responses, mandatory ones included', () => {
  const bytes = encodePcpResponse({ ...MAP_RESPONSE, options: [{ kind: 'unknown', code: 99, data: hex('01020304') }] });
  assert.deepEqual(decodePcpResponse(bytes).options, [{ kind: 'unknown', code: 99, data: hex('01020304') }]);
});

const requestVerdicts: { name: string; bytes: string; resultCode: number | undefined }[] = [
  { name: 'version 1: UNSUPP_VERSION (§9)', bytes: MAP_REQUEST_BYTES.replace(/^02/, '01'), resultCode: PcpResultCode.UNSUPP_VERSION },
  { name: 'a response: dropped', bytes: MAP_REQUEST_BYTES.replace(/^02 01/, '02 81'), resultCode: undefined },
  { name: 'three bytes: dropped', bytes: '02 01 00', resultCode: undefined },
  { name: 'not a multiple of 4: MALFORMED_REQUEST (§7)', bytes: `${MAP_REQUEST_BYTES} 00`, resultCode: PcpResultCode.MALFORMED_REQUEST },
  { name: 'header only for MAP: MALFORMED_REQUEST', bytes: `02 01 0000 00001c20 ${V4_CLIENT}`, resultCode: PcpResultCode.MALFORMED_REQUEST },
  { name: 'opcode PEER: UNSUPP_OPCODE', bytes: `02 02 0000 00001c20 ${V4_CLIENT}`, resultCode: PcpResultCode.UNSUPP_OPCODE },
  { name: 'protocol 0 with a port: MALFORMED_REQUEST (§11.1)', bytes: MAP_REQUEST_BYTES.replace(' 11 000000 1388', ' 00 000000 1388'), resultCode: PcpResultCode.MALFORMED_REQUEST },
  { name: 'unknown mandatory option 100: UNSUPP_OPTION (§7.3)', bytes: `${MAP_REQUEST_BYTES} 64 00 0000`, resultCode: PcpResultCode.UNSUPP_OPTION },
  { name: 'PREFER_FAILURE twice: MALFORMED_OPTION', bytes: `${MAP_REQUEST_BYTES} 02 00 0000 02 00 0000`, resultCode: PcpResultCode.MALFORMED_OPTION },
  { name: 'PREFER_FAILURE with data: MALFORMED_OPTION', bytes: `${MAP_REQUEST_BYTES} 02 00 0004 00000000`, resultCode: PcpResultCode.MALFORMED_OPTION },
  { name: 'option longer than the message: MALFORMED_OPTION', bytes: `${MAP_REQUEST_BYTES} 80 00 0008 00000000`, resultCode: PcpResultCode.MALFORMED_OPTION },
  { name: 'FILTER /40 on IPv4: MALFORMED_OPTION (§13.3)', bytes: `${MAP_REQUEST_BYTES} 03 00 0014 00 28 01bb ${V4_ANY}`, resultCode: PcpResultCode.MALFORMED_OPTION },
  { name: 'PREFER_FAILURE on ANNOUNCE: UNSUPP_OPTION (§13.2: MAP only)', bytes: `02 00 0000 00000000 ${V4_CLIENT} 02 00 0000`, resultCode: PcpResultCode.UNSUPP_OPTION },
];
for (const c of requestVerdicts) {
  test(`request refused: ${c.name}`, () => {
    assert.throws(() => decodePcpRequest(hex(c.bytes)), (e) => e instanceof PcpDecodeError && isNatkitError(e, 'ERR_PCP_DECODE') && e.resultCode === c.resultCode);
  });
}

test('an unknown optional-to-process option (128–255) in a request is accepted and ignored (§7.3)', () => {
  assert.equal(checkRequestOptions(PcpOpcode.MAP, [{ kind: 'unknown', code: 128, data: new Uint8Array(0) }]), undefined);
  assert.equal(checkRequestOptions(PcpOpcode.MAP, [{ kind: 'unknown', code: 127, data: new Uint8Array(0) }]), PcpResultCode.UNSUPP_OPTION);
  assert.equal(checkRequestOptions(PcpOpcode.MAP, [
    { kind: 'filter', prefixLength: 32, remotePort: 0, remoteAddress: '192.0.2.1' },
    { kind: 'filter', prefixLength: 32, remotePort: 0, remoteAddress: '192.0.2.2' },
  ]), undefined, 'FILTER may repeat');
});

test('§9: a NAT-PMP gateway\'s 8-byte UNSUPP_VERSION decodes as version 0 with its epoch', () => {
  // RFC 6886 §3.5: Vers 0, OP 128 + 1, result 1, epoch.
  assert.deepEqual(decodePcpResponse(hex('00 81 0001 0000002a')), { version: 0, opcode: PcpOpcode.MAP, resultCode: 1, lifetimeS: 0, epochS: 42, options: [] });
  // A PCP server of another version answers in the PCP layout: epoch after the lifetime.
  assert.deepEqual(decodePcpResponse(hex('03 81 00 01 00000000 00000007 000000000000000000000000')), { version: 3, opcode: 1, resultCode: 1, lifetimeS: 0, epochS: 7, options: [] });
});

test('an error response without MAP data still decodes (a server that could not parse the request)', () => {
  const r = decodePcpResponse(hex('02 81 00 03 00000708 00000001 000000000000000000000000'));
  assert.equal(r.resultCode, PcpResultCode.MALFORMED_REQUEST);
  assert.equal(r.map, undefined);
});

const badResponses: { name: string; bytes: string }[] = [
  { name: '20 bytes (§8.3)', bytes: '02 81 00 00 00000000 00000000 0000000000000000' },
  { name: 'not a multiple of 4 (§8.3)', bytes: '02 80 00 00 00000000 00000000 000000000000000000000000 00' },
  { name: 'more than 1100 bytes (§8.3)', bytes: `02 80 00 00 00000000 00000000 000000000000000000000000 ${'80000000'.repeat(270)}` },
  { name: 'R bit clear (§8.3)', bytes: '02 00 00 00 00000000 00000000 000000000000000000000000' },
  { name: 'SUCCESS without MAP data', bytes: '02 81 00 00 00000708 00000001 000000000000000000000000' },
  { name: 'version 0 but not UNSUPP_VERSION', bytes: '00 81 0000 0000002a 1388 9c40 00000e10' },
];
for (const c of badResponses) {
  test(`response refused: ${c.name}`, () => {
    assert.throws(() => decodePcpResponse(hex(c.bytes)), (e) => e instanceof PcpDecodeError && isNatkitError(e, 'ERR_PCP_DECODE'));
  });
}

test('result codes 0–13 have names; others are UNKNOWN', () => {
  assert.equal(pcpResult(0), 'SUCCESS');
  assert.equal(pcpResult(2), 'NOT_AUTHORIZED');
  assert.equal(pcpResult(11), 'CANNOT_PROVIDE_EXTERNAL');
  assert.equal(pcpResult(13), 'EXCESSIVE_REMOTE_PEERS');
  assert.equal(pcpResult(14), 'UNKNOWN');
});

test('encoding checks its fields', () => {
  assert.throws(() => encodePcpRequest({ ...MAP_REQUEST, map: { ...MAP_REQUEST.map, nonce: new Uint8Array(8) } }), (e) => isNatkitError(e, 'ERR_INVALID_ARGUMENT'));
  assert.throws(() => encodePcpRequest({ ...MAP_REQUEST, lifetimeS: -1 }), (e) => isNatkitError(e, 'ERR_INVALID_ARGUMENT'));
  assert.throws(() => encodePcpRequest({ ...MAP_REQUEST, options: [{ kind: 'filter', prefixLength: 33, remotePort: 0, remoteAddress: '192.0.2.1' }] }), (e) => isNatkitError(e, 'ERR_INVALID_ARGUMENT'));
  assert.throws(() => encodePcpRequest({ ...MAP_REQUEST, options: [{ kind: 'unknown', code: 200, data: new Uint8Array(1100) }] }), (e) => isNatkitError(e, 'ERR_INVALID_ARGUMENT'), 'over 1100 bytes (§7)');
});
