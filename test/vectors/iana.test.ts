// Cross-checks our constants against the committed copy of the IANA STUN registry
// (test/fixtures/iana, see its README for provenance): a wrong number fails here.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { BINDING, REASON_PHRASES, registeredAttributes } from '../../src/stun/index.ts';

function table(file: string): Map<number, string> {
  const rows = readFileSync(new URL(`../fixtures/iana/${file}`, import.meta.url), 'utf8').trim().split('\n').slice(1);
  const out = new Map<number, string>();
  for (const row of rows) {
    const [value = '', name = ''] = row.split(',');
    if (!value.includes('-')) out.set(Number(value), name);
  }
  return out;
}

const attributes = table('stun-attributes.csv');
const methods = table('stun-methods.csv');
const errors = table('stun-error-codes.csv');

test('the registry copy is complete enough to check against', () => {
  assert.ok(attributes.size > 50 && methods.size > 5 && errors.size > 10);
});

for (const codec of registeredAttributes()) {
  test(`attribute ${codec.name} is 0x${codec.type.toString(16).padStart(4, '0')} in the IANA registry`, () => {
    const name = attributes.get(codec.type);
    assert.ok(name !== undefined, `0x${codec.type.toString(16)} not in the registry`);
    // RFC 3489 attributes survive as "Reserved; was NAME prior to [RFC5389]".
    assert.ok(name === codec.name || name.includes(`was ${codec.name} `), `registry says "${name}", we say "${codec.name}"`);
  });
}

test('method Binding is 0x001', () => {
  assert.equal(methods.get(BINDING), 'Binding');
});

// RFC 8489 §14.8 renamed 401 "Unauthenticated"; the registry still lists the RFC 5389 name.
const renamed: Readonly<Record<number, string>> = { 401: 'Unauthorized' };

for (const [code, reason] of Object.entries(REASON_PHRASES)) {
  test(`error ${code} (${reason}) is in the IANA registry`, () => {
    assert.equal(errors.get(Number(code)), renamed[Number(code)] ?? reason);
  });
}
