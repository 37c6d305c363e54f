// NAT-PMP codec against the packet formats of RFC 6886: §3.2 (external address request
// and response), §3.3 (MAP request and response), §3.4 (deletion), §3.5 (result codes and
// the 8-byte error form), §3.2.1 (an announcement is an external address response), and
// what the decoders refuse.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  NatPmpDecodeError, NatPmpResultCode, decodeNatPmpRequest, decodeNatPmpResponse, encodeNatPmpRequest, encodeNatPmpResponse,
  natPmpResult, type NatPmpRequest, type NatPmpResponse,
} from '../../src/portmap/index.ts';
import { isNatkitError } from '../../src/util/index.ts';
import { hex } from '../helpers/hex.ts';


const requests: { name: string; request: NatPmpRequest; bytes: string }[] = [
  // §3.2: Vers = 0, OP = 0; two bytes.
  { name: '§3.2 external address request', request: { op: 'external-address' }, bytes: '00 00' },
  // §3.3: Vers, OP (1 UDP, 2 TCP), Reserved, Internal Port, Suggested External Port, Requested Lifetime.
  {
    name: '§3.3 MAP UDP 5000 → 6000 for 7200 s',
    request: { op: 'map', protocol: 'udp', internalPort: 5000, suggestedExternalPort: 6000, lifetimeS: 7200 },
    bytes: '00 01 0000 1388 1770 00001c20',
  },
  {
    name: '§3.3 MAP TCP 443, no preference, 3600 s',
    request: { op: 'map', protocol: 'tcp', internalPort: 443, suggestedExternalPort: 0, lifetimeS: 3600 },
    bytes: '00 02 0000 01bb 0000 00000e10',
  },
  // §3.4: deletion has lifetime 0 and suggested external port 0; internal port 0 too deletes all.
  { name: '§3.4 delete UDP 5000', request: { op: 'map', protocol: 'udp', internalPort: 5000, suggestedExternalPort: 0, lifetimeS: 0 }, bytes: '00 01 0000 1388 0000 00000000' },
  { name: '§3.4 delete every TCP mapping', request: { op: 'map', protocol: 'tcp', internalPort: 0, suggestedExternalPort: 0, lifetimeS: 0 }, bytes: '00 02 0000 0000 0000 00000000' },
];

for (const c of requests) {
  test(`request layout: ${c.name}`, () => {
    assert.deepEqual(encodeNatPmpRequest(c.request), hex(c.bytes));
    assert.deepEqual(decodeNatPmpRequest(hex(c.bytes)), c.request);
  });
}

const responses: { name: string; response: NatPmpResponse; bytes: string }[] = [
  // §3.2: Vers, OP = 128, Result Code, Seconds Since Start of Epoch, External IPv4 Address.
  {
    name: '§3.2 external address 203.0.113.7 at epoch 4660',
    response: { op: 'external-address', resultCode: 0, epochS: 0x1234, externalAddress: '203.0.113.7' },
    bytes: '00 80 0000 00001234 cb007107',
  },
  // §3.3: Vers, OP = 128 + op, Result Code, Epoch, Internal Port, Mapped External Port, Lifetime.
  {
    name: '§3.3 MAP UDP 5000 → 40000 for 3600 s',
    response: { op: 'map', protocol: 'udp', resultCode: 0, epochS: 120, internalPort: 5000, externalPort: 40_000, lifetimeS: 3600 },
    bytes: '00 81 0000 00000078 1388 9c40 00000e10',
  },
  {
    name: '§3.3 MAP TCP refused (result 2) keeps the full layout',
    response: { op: 'map', protocol: 'tcp', resultCode: NatPmpResultCode.NOT_AUTHORIZED, epochS: 7, internalPort: 22, externalPort: 0, lifetimeS: 0 },
    bytes: '00 82 0002 00000007 0016 0000 00000000',
  },
  // §3.5: the 8-byte form — header, result, epoch.
  { name: '§3.5 unsupported version, 8 bytes', response: { op: 'error', opcode: 1, resultCode: 1, epochS: 9 }, bytes: '00 81 0001 00000009' },
  { name: '§3.5 unsupported opcode 9', response: { op: 'error', opcode: 9, resultCode: 5, epochS: 9 }, bytes: '00 89 0005 00000009' },
];

for (const c of responses) {
  test(`response layout: ${c.name}`, () => {
    assert.deepEqual(encodeNatPmpResponse(c.response), hex(c.bytes));
    assert.deepEqual(decodeNatPmpResponse(hex(c.bytes)), c.response);
  });
}

test('§3.2.1: an announcement to 224.0.0.1:5350 decodes as an external address response', () => {
  const r = decodeNatPmpResponse(hex('00 80 0000 0000003c c6336401'));
  assert.deepEqual(r, { op: 'external-address', resultCode: 0, epochS: 60, externalAddress: '198.51.100.1' });
});

test('bytes after the fields of the opcode are ignored', () => {
  const r = decodeNatPmpResponse(hex('00 80 0000 00000001 01020304 deadbeef'));
  assert.equal(r.op === 'external-address' && r.externalAddress, '1.2.3.4');
});

test('result codes 0–5 have names; others are UNKNOWN', () => {
  assert.deepEqual([0, 1, 2, 3, 4, 5, 6, 300].map(natPmpResult), [
    'SUCCESS', 'UNSUPPORTED_VERSION', 'NOT_AUTHORIZED', 'NETWORK_FAILURE', 'OUT_OF_RESOURCES', 'UNSUPPORTED_OPCODE', 'UNKNOWN', 'UNKNOWN',
  ]);
});

const badResponses: { name: string; bytes: string }[] = [
  { name: 'empty', bytes: '' },
  { name: '7 bytes', bytes: '00 80 0000 000000' },
  { name: 'version 2 (a PCP datagram)', bytes: '02 81 0000 00000000 00000000' },
  { name: 'a request (opcode < 128)', bytes: '00 00 0000 00000001 01020304' },
  { name: 'SUCCESS in the 8-byte form', bytes: '00 81 0000 00000001' },
  { name: 'MAP response cut at 12 bytes', bytes: '00 81 0000 00000001 1388 9c40' },
  { name: 'external address cut at 10 bytes', bytes: '00 80 0000 00000001 0102' },
  { name: 'SUCCESS for an unknown opcode', bytes: '00 85 0000 00000001' },
];
for (const c of badResponses) {
  test(`response refused: ${c.name}`, () => {
    assert.throws(() => decodeNatPmpResponse(hex(c.bytes)), (e) => e instanceof NatPmpDecodeError && isNatkitError(e, 'ERR_NATPMP_DECODE'));
  });
}

const badRequests: { name: string; bytes: string; resultCode: number | undefined }[] = [
  { name: 'one byte: dropped', bytes: '00', resultCode: undefined },
  { name: 'a response: dropped (§3.5)', bytes: '00 80', resultCode: undefined },
  { name: 'version 2: UNSUPPORTED_VERSION (§3.5)', bytes: '02 01 0000', resultCode: NatPmpResultCode.UNSUPPORTED_VERSION },
  { name: 'opcode 3: UNSUPPORTED_OPCODE (§3.5)', bytes: '00 03', resultCode: NatPmpResultCode.UNSUPPORTED_OPCODE },
  { name: 'MAP cut short: dropped', bytes: '00 01 0000 1388', resultCode: undefined },
];
for (const c of badRequests) {
  test(`request refused: ${c.name}`, () => {
    assert.throws(() => decodeNatPmpRequest(hex(c.bytes)), (e) => e instanceof NatPmpDecodeError && e.resultCode === c.resultCode);
  });
}

test('encoding checks its fields', () => {
  const bad: NatPmpRequest[] = [
    { op: 'map', protocol: 'udp', internalPort: 70_000, suggestedExternalPort: 0, lifetimeS: 1 },
    { op: 'map', protocol: 'udp', internalPort: 1, suggestedExternalPort: -1, lifetimeS: 1 },
    { op: 'map', protocol: 'tcp', internalPort: 1, suggestedExternalPort: 0, lifetimeS: 2 ** 32 },
  ];
  for (const r of bad) assert.throws(() => encodeNatPmpRequest(r), (e) => isNatkitError(e, 'ERR_INVALID_ARGUMENT'));
  assert.throws(() => encodeNatPmpResponse({ op: 'external-address', resultCode: 0, epochS: 0, externalAddress: '::1' }), (e) => isNatkitError(e, 'ERR_INVALID_ARGUMENT'));
});
