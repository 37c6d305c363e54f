// Connectivity checks (RFC 8445 §7.2, short-term credentials of RFC 8489 §9.1) and
// natkit's frames: credentials both sides derive alike, a check answered only with the
// right USERNAME and key, responses checked with the remote password, frames unwrapped.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import type { Endpoint } from '../../src/net/index.ts';
import {
  FRAME_DATA, ICE_CONTROLLED, ICE_CONTROLLING, UPGRADE_FRAME, USE_CANDIDATE, dataFrame, encodeCheck, pairCredentials, readInbound, type PairCredentials,
} from '../../src/punch/index.ts';
import { BINDING, StunClass, USERNAME, XOR_MAPPED_ADDRESS, attr, decodeMessage, encodeMessage, transactionKey } from '../../src/stun/index.ts';

const utf8 = new TextEncoder();
const inputs = { pairId: Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8), a: utf8.encode('A'.repeat(32)), b: utf8.encode('B'.repeat(32)) };
const A = pairCredentials({ pairId: inputs.pairId, localKey: inputs.a, remoteKey: inputs.b });
const B = pairCredentials({ pairId: inputs.pairId, localKey: inputs.b, remoteKey: inputs.a });
const FROM_A: Endpoint = { address: '198.18.0.101', port: 40001, family: 4 };
const ID = Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12);

function check(creds: PairCredentials, useCandidate = false, controlling = true): Uint8Array {
  return encodeCheck({ transactionId: ID, controlling, tieBreaker: 42n, useCandidate }, creds);
}

test('both sides derive the same credentials, mirrored; another pair id gives others', () => {
  assert.deepEqual(A.local, B.remote);
  assert.deepEqual(A.remote, B.local);
  assert.ok(A.local.ufrag.length >= 4 && A.local.password.length >= 22, 'RFC 8445 §5.3 lengths');
  const other = pairCredentials({ pairId: Uint8Array.of(9, 9, 9, 9, 9, 9, 9, 9), localKey: inputs.a, remoteKey: inputs.b });
  assert.notEqual(other.local.password, A.local.password);
});

test('a check carries USERNAME "remote:local", the role and USE-CANDIDATE, and B answers it with its own key', () => {
  const bytes = check(A, true);
  const msg = decodeMessage(bytes);
  assert.equal(msg.get(USERNAME), `${B.local.ufrag}:${A.local.ufrag}`);
  assert.equal(msg.get(ICE_CONTROLLING), 42n);
  assert.equal(msg.get(USE_CANDIDATE), true);
  assert.equal(decodeMessage(check(A, false, false)).get(ICE_CONTROLLED), 42n);
  const got = readInbound(bytes, FROM_A, B);
  assert.equal(got.kind, 'request');
  assert.ok(got.kind === 'request' && got.useCandidate);
  const response = decodeMessage(got.response);
  assert.equal(response.cls, StunClass.SUCCESS);
  assert.deepEqual(response.get(XOR_MAPPED_ADDRESS), FROM_A);
  // A reads the answer with B's password (its remote one).
  assert.deepEqual(readInbound(got.response, FROM_A, A), { kind: 'response', transactionKey: transactionKey(ID) });
});

const refusals: { name: string; bytes: () => Uint8Array; creds: PairCredentials; reason: string }[] = [
  { name: 'a check for someone else (A reading its own check)', bytes: () => check(A), creds: A, reason: 'bad-username' },
  {
    name: 'the right USERNAME under a wrong key', creds: B, reason: 'bad-integrity',
    bytes: () => check({ local: A.local, remote: { ufrag: B.local.ufrag, password: 'not-the-password-at-all' } }),
  },
  {
    name: 'a response signed with another key', creds: A, reason: 'bad-integrity',
    bytes: () => encodeMessage({ method: BINDING, cls: StunClass.SUCCESS, transactionId: ID, attributes: [attr(XOR_MAPPED_ADDRESS, FROM_A)] }, { key: utf8.encode('x'.repeat(24)), fingerprint: true }),
  },
  { name: 'a check without FINGERPRINT', creds: B, reason: 'bad-fingerprint', bytes: () => check(A).subarray(0, check(A).length - 8).map((v, i) => (i === 3 ? v - 8 : v)) },
  { name: 'a STUN error response', creds: A, reason: 'not-a-check', bytes: () => encodeMessage({ method: BINDING, cls: StunClass.ERROR, transactionId: ID }, { fingerprint: true }) },
  { name: 'bytes that are no STUN', creds: A, reason: 'not-a-check', bytes: () => utf8.encode('hello there, not STUN at all') },
];
for (const c of refusals) {
  test(`dropped: ${c.name}`, () => assert.deepEqual(readInbound(c.bytes(), FROM_A, c.creds), { kind: 'drop', reason: c.reason }));
}

test('frames: data behind 0xD1 (RFC 7983 §7 unassigned), the upgrade signal 0xD2', () => {
  const frame = dataFrame(utf8.encode('hi'));
  assert.equal(frame[0], FRAME_DATA);
  assert.deepEqual(readInbound(frame, FROM_A, A), { kind: 'data', payload: utf8.encode('hi') });
  assert.deepEqual(readInbound(UPGRADE_FRAME, FROM_A, A), { kind: 'upgrade' });
  assert.deepEqual(readInbound(dataFrame(new Uint8Array()), FROM_A, A), { kind: 'data', payload: new Uint8Array() });
});

test('the ICE attributes carry their IANA registry numbers and names (RFC 8445 §16.1)', () => {
  const registry = readFileSync(new URL('../fixtures/iana/stun-attributes.csv', import.meta.url), 'utf8');
  for (const codec of [USE_CANDIDATE, ICE_CONTROLLED, ICE_CONTROLLING]) {
    assert.match(registry, new RegExp(`^0x${codec.type.toString(16).padStart(4, '0')},${codec.name},`, 'mi'));
  }
});
