// fast-check properties of the hand-written IPv4 parser (src/util/ip.ts ipv4ToNumber): it
// accepts exactly what node:net isIP calls IPv4 (no leading zeros, no octal or hex forms)
// and agrees with the plain split-and-shift reading of a dotted quad.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isIP } from 'node:net';
import fc from 'fast-check';
import { ipv4ToNumber, parseIPv4 } from '../../src/util/index.ts';

const runs = { numRuns: 5000 };

const reference = (address: string): number => address.split('.').reduce((v, part) => v * 256 + Number(part), 0);

/** Strings that look like dotted quads but may not be: odd parts, counts and characters. */
const nearQuad = fc
  .array(fc.oneof(fc.nat({ max: 300 }).map(String), fc.stringMatching(/^[0-9]{0,4}$/), fc.constantFrom('0x1', ' 1', '1 ', '-1', '+1', '٣')), { minLength: 1, maxLength: 6 })
  .map((parts) => parts.join('.'));

test('every dotted quad parses to its number and its bytes', () => {
  fc.assert(
    fc.property(fc.ipV4(), (address) => {
      assert.equal(ipv4ToNumber(address), reference(address));
      assert.deepEqual([...parseIPv4(address)], address.split('.').map(Number));
    }),
    runs,
  );
});

test('accepted exactly when isIP says IPv4', () => {
  fc.assert(
    fc.property(fc.oneof(nearQuad, fc.ipV4Extended(), fc.string({ maxLength: 20 })), (text) => {
      const v = ipv4ToNumber(text);
      assert.equal(v !== undefined, isIP(text) === 4, JSON.stringify(text));
      if (v !== undefined) assert.equal(v, reference(text));
      else assert.throws(() => parseIPv4(text), { code: 'ERR_INVALID_ARGUMENT' });
    }),
    runs,
  );
});
