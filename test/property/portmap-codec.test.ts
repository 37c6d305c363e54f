// fast-check properties of the NAT-PMP and PCP codecs and the route-table parsers: every
// encodable message round-trips, and any bytes (or text) in yield a message or our typed
// decode error, nothing else.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  NatPmpDecodeError, PCP_VERSION, PcpDecodeError, PcpOpcode, decodeNatPmpRequest, decodeNatPmpResponse, decodePcpRequest, decodePcpResponse,
  encodeNatPmpRequest, encodeNatPmpResponse, encodePcpRequest, encodePcpResponse, parseProcNetIpv6Route, parseProcNetRoute,
  type NatPmpRequest, type NatPmpResponse, type PcpOption, type PcpRequest, type PcpResponse,
} from '../../src/portmap/index.ts';
import { DecodeError, formatIp } from '../../src/util/index.ts';

const runs = { numRuns: 500 };
const u16 = fc.integer({ min: 0, max: 0xffff });
const u32 = fc.integer({ min: 0, max: 0xffffffff });
const protocol = fc.constantFrom('udp' as const, 'tcp' as const);
const ipv4 = fc.uint8Array({ minLength: 4, maxLength: 4 }).map(formatIp);
// IPv4-mapped IPv6 would come back as IPv4 (§5): generate IPv6 outside ::ffff:0:0/96.
const ipv6 = fc.uint8Array({ minLength: 16, maxLength: 16 }).filter((b) => !(b.subarray(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff)).map(formatIp);
const address = fc.oneof(ipv4, ipv6);

const natPmpRequest: fc.Arbitrary<NatPmpRequest> = fc.oneof(
  fc.constant({ op: 'external-address' as const }),
  fc.record({ op: fc.constant('map' as const), protocol, internalPort: u16, suggestedExternalPort: u16, lifetimeS: u32 }),
);
const natPmpResponse: fc.Arbitrary<NatPmpResponse> = fc.oneof(
  fc.record({ op: fc.constant('external-address' as const), resultCode: u16, epochS: u32, externalAddress: ipv4 }),
  fc.record({ op: fc.constant('map' as const), protocol, resultCode: u16, epochS: u32, internalPort: u16, externalPort: u16, lifetimeS: u32 }),
  fc.record({ op: fc.constant('error' as const), opcode: fc.integer({ min: 0, max: 127 }), resultCode: fc.integer({ min: 1, max: 0xffff }), epochS: u32 }),
);

const pcpOption: fc.Arbitrary<PcpOption> = fc.oneof(
  address.map((a) => ({ kind: 'third-party' as const, address: a })),
  fc.constant({ kind: 'prefer-failure' as const }),
  fc.oneof(
    fc.record({ kind: fc.constant('filter' as const), prefixLength: fc.integer({ min: 0, max: 32 }), remotePort: u16, remoteAddress: ipv4 }),
    fc.record({ kind: fc.constant('filter' as const), prefixLength: fc.integer({ min: 0, max: 128 }), remotePort: u16, remoteAddress: ipv6 }),
  ),
  fc.record({ kind: fc.constant('unknown' as const), code: fc.integer({ min: 4, max: 255 }), data: fc.uint8Array({ maxLength: 23 }) }),
);
const mapData = fc.record({
  nonce: fc.uint8Array({ minLength: 12, maxLength: 12 }), protocol: fc.integer({ min: 1, max: 255 }), internalPort: u16, externalPort: u16, externalAddress: address,
});
const pcpRequest: fc.Arbitrary<PcpRequest> = fc.oneof(
  fc.record({ version: fc.constant(PCP_VERSION), opcode: fc.constant(PcpOpcode.ANNOUNCE), lifetimeS: u32, clientAddress: address, options: fc.array(pcpOption, { maxLength: 4 }) }),
  fc.record({ version: fc.constant(PCP_VERSION), opcode: fc.constant(PcpOpcode.MAP), lifetimeS: u32, clientAddress: address, map: mapData, options: fc.array(pcpOption, { maxLength: 4 }) }),
);
const pcpResponse: fc.Arbitrary<PcpResponse> = fc.oneof(
  fc.record({ version: fc.constant(PCP_VERSION), opcode: fc.constant(PcpOpcode.ANNOUNCE), resultCode: fc.integer({ min: 0, max: 255 }), lifetimeS: u32, epochS: u32, options: fc.array(pcpOption, { maxLength: 4 }) }),
  fc.record({ version: fc.constant(PCP_VERSION), opcode: fc.constant(PcpOpcode.MAP), resultCode: fc.integer({ min: 0, max: 255 }), lifetimeS: u32, epochS: u32, map: mapData, options: fc.array(pcpOption, { maxLength: 4 }) }),
);

/** Comparable form: byte arrays as hex, records as plain objects. */
const plain = (v: unknown): unknown =>
  v instanceof Uint8Array ? Buffer.from(v).toString('hex')
  : Array.isArray(v) ? v.map(plain)
  : typeof v === 'object' && v !== null ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)]))
  : v;

/** A request as a server decodes it: options it rejects (unknown mandatory, repeats, wrong opcode) make it throw. */
function acceptable(req: PcpRequest): boolean {
  try {
    decodePcpRequest(encodePcpRequest(req));
    return true;
  } catch (err) {
    assert.ok(err instanceof PcpDecodeError && err.resultCode !== undefined, String(err));
    return false;
  }
}

test('NAT-PMP requests round-trip', () => {
  fc.assert(fc.property(natPmpRequest, (r) => assert.deepEqual(plain(decodeNatPmpRequest(encodeNatPmpRequest(r))), plain(r))), runs);
});

test('NAT-PMP responses round-trip', () => {
  fc.assert(fc.property(natPmpResponse, (r) => assert.deepEqual(plain(decodeNatPmpResponse(encodeNatPmpResponse(r))), plain(r))), runs);
});

test('PCP requests round-trip (or the server rejects their options with a result code)', () => {
  fc.assert(fc.property(pcpRequest, (r) => {
    if (acceptable(r)) assert.deepEqual(plain(decodePcpRequest(encodePcpRequest(r))), plain(r));
  }), runs);
});

test('PCP responses round-trip, unknown options included', () => {
  fc.assert(fc.property(pcpResponse, (r) => assert.deepEqual(plain(decodePcpResponse(encodePcpResponse(r))), plain(r))), runs);
});

/** Calls `decode` and accepts only a value or an error of `type`. */
function onlyTyped(decode: (b: Uint8Array) => unknown, type: new (...args: never[]) => Error): (b: Uint8Array) => void {
  return (b) => {
    try {
      decode(b);
    } catch (err) {
      assert.ok(err instanceof type, `expected ${type.name}, got ${String(err)}`);
    }
  };
}

// Garbage with a plausible start reaches deeper than uniform bytes would.
const garbage = fc.oneof(
  fc.uint8Array({ maxLength: 1200 }),
  fc.tuple(fc.constantFrom(0, 2), fc.integer({ min: 0, max: 255 }), fc.uint8Array({ maxLength: 120 })).map(([v, op, rest]) => Uint8Array.from([v, op, ...rest])),
  fc.tuple(fc.integer({ min: 0, max: 30 }), fc.uint8Array({ minLength: 60, maxLength: 60 })).map(([n, body]) => Uint8Array.from([2, 0x81, 0, 0, ...body, ...new Array<number>(n * 4).fill(1)])),
);

for (const [name, decode, type] of [
  ['decodeNatPmpRequest', decodeNatPmpRequest, NatPmpDecodeError],
  ['decodeNatPmpResponse', decodeNatPmpResponse, NatPmpDecodeError],
  ['decodePcpRequest', decodePcpRequest, PcpDecodeError],
  ['decodePcpResponse', decodePcpResponse, PcpDecodeError],
] as const) {
  test(`${name}: any bytes give a message or ${type.name}`, () => {
    fc.assert(fc.property(garbage, onlyTyped(decode, type)), { numRuns: 2000 });
  });
}

test('route-table parsers: any text gives routes or a DecodeError', () => {
  const line = fc.array(fc.oneof(fc.string({ unit: fc.constantFrom(...'0123456789abcdefABCDEF'), maxLength: 34 }), fc.constantFrom('eth0', 'lo', '0003', '00000000', ' ', '\t')), { maxLength: 12 }).map((f) => f.join(' '));
  const text = fc.array(line, { maxLength: 5 }).map((ls) => ls.join('\n'));
  const header = 'Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\tMTU\tWindow\tIRTT\n';
  fc.assert(fc.property(text, (t) => {
    for (const parse of [() => parseProcNetRoute(header + t), () => parseProcNetRoute(t), () => parseProcNetIpv6Route(t)]) {
      try {
        parse();
      } catch (err) {
        assert.ok(err instanceof DecodeError, String(err));
      }
    }
  }), runs);
});
