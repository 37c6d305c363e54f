// Endpoint helpers and address text: parseEndpoint, endpointKey, normalisation of
// IPv4-mapped addresses (RFC 4291 §2.5.5.2), RFC 5952 canonical IPv6 output.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { endpoint, endpointKey, formatEndpoint, parseEndpoint, sameEndpoint, type Endpoint } from '../../src/net/index.ts';
import { formatIPv6, isNatkitError, normalizeAddress, parseIPv6 } from '../../src/util/index.ts';

const v4 = (address: string, port: number): Endpoint => ({ address, port, family: 4 });
const v6 = (address: string, port: number): Endpoint => ({ address, port, family: 6 });

const parseCases: { name: string; text: string; defaultPort?: number; want: Endpoint | 'ERR_INVALID_ARGUMENT' }[] = [
  { name: 'IPv4 with port', text: '192.0.2.1:3478', want: v4('192.0.2.1', 3478) },
  { name: 'IPv4, default port', text: '192.0.2.1', defaultPort: 3478, want: v4('192.0.2.1', 3478) },
  { name: 'IPv4 without port or default', text: '192.0.2.1', want: 'ERR_INVALID_ARGUMENT' },
  { name: 'bracketed IPv6 with port', text: '[2001:db8::1]:5349', want: v6('2001:db8::1', 5349) },
  { name: 'bracketed IPv6, default port', text: '[2001:db8::1]', defaultPort: 3478, want: v6('2001:db8::1', 3478) },
  { name: 'bare IPv6 takes the default port', text: '2001:db8::1', defaultPort: 3478, want: v6('2001:db8::1', 3478) },
  { name: 'bare IPv6 is never split at its last colon', text: '2001:db8::1:80', defaultPort: 1, want: v6('2001:db8::1:80', 1) },
  { name: 'IPv6 made canonical', text: '[2001:DB8:0:0:0:0:0:1]:1', want: v6('2001:db8::1', 1) },
  { name: 'IPv4-mapped becomes IPv4', text: '[::ffff:198.51.100.7]:9', want: v4('198.51.100.7', 9) },
  { name: 'port 0', text: '127.0.0.1:0', want: v4('127.0.0.1', 0) },
  { name: 'port 65535', text: '127.0.0.1:65535', want: v4('127.0.0.1', 65535) },
  { name: 'port 65536', text: '127.0.0.1:65536', want: 'ERR_INVALID_ARGUMENT' },
  { name: 'empty port', text: '127.0.0.1:', want: 'ERR_INVALID_ARGUMENT' },
  { name: 'non-numeric port', text: '127.0.0.1:http', want: 'ERR_INVALID_ARGUMENT' },
  { name: 'negative port', text: '127.0.0.1:-1', want: 'ERR_INVALID_ARGUMENT' },
  { name: 'bracket without port after colon', text: '[::1]:', want: 'ERR_INVALID_ARGUMENT' },
  { name: 'host name (no resolution here)', text: 'localhost:3478', want: 'ERR_INVALID_ARGUMENT' },
  { name: 'IPv4 out of range', text: '256.0.0.1:1', want: 'ERR_INVALID_ARGUMENT' },
  { name: 'empty text', text: '', defaultPort: 1, want: 'ERR_INVALID_ARGUMENT' },
];

for (const c of parseCases) {
  test(`parseEndpoint: ${c.name}`, () => {
    const run = (): Endpoint => parseEndpoint(c.text, c.defaultPort);
    if (typeof c.want === 'string') {
      const code = c.want;
      assert.throws(run, (err: unknown) => isNatkitError(err, code));
    } else {
      assert.deepEqual(run(), c.want);
    }
  });
}

const normalCases: [input: string, want: string][] = [
  ['::ffff:1.2.3.4', '1.2.3.4'],
  ['::FFFF:1.2.3.4', '1.2.3.4'],
  ['0:0:0:0:0:ffff:1.2.3.4', '1.2.3.4'],
  ['::ffff:0102:0304', '1.2.3.4'],
  ['::ffff:1:2', '0.1.0.2'],
  ['1.2.3.4', '1.2.3.4'],
  // Not IPv4-mapped: IPv4-compatible (deprecated) and NAT64 stay IPv6.
  ['::1.2.3.4', '::102:304'],
  ['64:ff9b::1.2.3.4', '64:ff9b::102:304'],
  ['::1', '::1'],
  ['2001:DB8::A', '2001:db8::a'],
];

for (const [input, want] of normalCases) {
  test(`normalizeAddress: ${input} → ${want}`, () => {
    assert.equal(normalizeAddress(input), want);
    assert.equal(endpoint(input, 1).address, want);
    assert.equal(endpoint(input, 1).family, want.includes(':') ? 6 : 4);
  });
}

// RFC 5952 §4 recommendations, with the section each case comes from.
const rfc5952: [section: string, input: string, want: string][] = [
  ['§4.1 leading zeros suppressed', '2001:0db8:0000:0000:0000:0000:0002:0001', '2001:db8::2:1'],
  ['§4.2.1 shorten as much as possible', '2001:db8:0:0:0:0:2:1', '2001:db8::2:1'],
  ['§4.2.2 a single 16-bit 0 field is not shortened', '2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'],
  ['§4.2.3 the longest run is shortened', '2001:0:0:1:0:0:0:1', '2001:0:0:1::1'],
  ['§4.2.3 equal runs: the first is shortened', '2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
  ['§4.3 lowercase', '2001:DB8::ABCD', '2001:db8::abcd'],
  ['all zeros', '0:0:0:0:0:0:0:0', '::'],
  ['loopback', '0:0:0:0:0:0:0:1', '::1'],
  ['trailing run', '2001:db8:1:0:0:0:0:0', '2001:db8:1::'],
  ['no zeros', '1:2:3:4:5:6:7:8', '1:2:3:4:5:6:7:8'],
  ['leading run', '0:0:1:2:3:4:5:6', '::1:2:3:4:5:6'],
];

for (const [section, input, want] of rfc5952) {
  test(`formatIPv6 RFC 5952 ${section}: ${input} → ${want}`, () => {
    assert.equal(formatIPv6(parseIPv6(input)), want);
  });
}

test('endpoint: rejects non-addresses and out-of-range ports with ERR_INVALID_ARGUMENT', () => {
  for (const [address, port] of [['example.com', 1], ['1.2.3.4', -1], ['1.2.3.4', 65536], ['1.2.3.4', 1.5]] as const) {
    assert.throws(() => endpoint(address, port), (err: unknown) => isNatkitError(err, 'ERR_INVALID_ARGUMENT'), `${address} ${port}`);
  }
});

test('endpointKey: one key per normalised endpoint, brackets for IPv6', () => {
  assert.equal(endpointKey(endpoint('192.0.2.1', 80)), '192.0.2.1:80');
  assert.equal(endpointKey(endpoint('2001:db8::1', 80)), '[2001:db8::1]:80');
  assert.equal(endpointKey(endpoint('::ffff:192.0.2.1', 80)), endpointKey(endpoint('192.0.2.1', 80)));
  assert.equal(endpointKey(endpoint('2001:DB8:0::1', 80)), endpointKey(endpoint('2001:db8::1', 80)));
  assert.notEqual(endpointKey(endpoint('192.0.2.1', 80)), endpointKey(endpoint('192.0.2.1', 81)));
  assert.equal(formatEndpoint(endpoint('::1', 5)), '[::1]:5');
});

test('endpointKey and parseEndpoint round-trip', () => {
  for (const e of [endpoint('10.0.0.1', 0), endpoint('::', 65535), endpoint('fe80::1', 443)]) {
    assert.deepEqual(parseEndpoint(endpointKey(e)), e);
  }
});

test('sameEndpoint compares address and port', () => {
  assert.ok(sameEndpoint(endpoint('::ffff:10.0.0.1', 5), endpoint('10.0.0.1', 5)));
  assert.ok(!sameEndpoint(endpoint('10.0.0.1', 5), endpoint('10.0.0.1', 6)));
  assert.ok(!sameEndpoint(endpoint('10.0.0.1', 5), endpoint('10.0.0.2', 5)));
});
