// RFC 5769 sample messages (test/fixtures/rfc5769.md, copied from shared/vectors):
// parse, integrity, fingerprint, and byte-exact re-encoding.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import {
  BINDING, StunClass, attr, checkFingerprint, checkIntegrity, decodeMessage, encodeMessage, longTermKey, saslprep,
  shortTermKey, MESSAGE_INTEGRITY, NONCE, REALM, SOFTWARE, USERNAME, XOR_MAPPED_ADDRESS, type AttrCodec,
} from '../../src/stun/index.ts';

const md = readFileSync(new URL('../fixtures/rfc5769.md', import.meta.url), 'utf8');
const samples = new Map<string, Uint8Array>();
for (const m of md.matchAll(/^## (2\.\d)[^\n]*\n[\s\S]*?```\n([0-9a-f\n]+)```/gm)) {
  samples.set(m[1]!, Buffer.from(m[2]!.replace(/\s/g, ''), 'hex'));
}
const sample = (id: string): Uint8Array => {
  const s = samples.get(id);
  assert.ok(s, `sample ${id} present in the fixture`);
  return s;
};
const PASSWORD = 'VOkJxbRl1RmTxUk/WvJxBt';
// ICE attributes of sample 2.1, re-encoded as raw bytes (ICE registers them in a later layer).
const raw = (type: number): AttrCodec<Uint8Array> => ({ type, name: `0x${type.toString(16)}`, encode: (v, w) => void w.bytes(v), decode: (r) => r.bytesView(r.remaining) });

test('fixture holds the four samples', () => {
  assert.deepEqual([...samples.keys()], ['2.1', '2.2', '2.3', '2.4']);
});

test('2.1 request: attributes, short-term integrity, fingerprint, exact re-encoding', () => {
  const bytes = sample('2.1');
  const msg = decodeMessage(bytes);
  assert.equal(msg.method, BINDING);
  assert.equal(msg.cls, StunClass.REQUEST);
  assert.equal(msg.get(SOFTWARE), 'STUN test client');
  assert.equal(msg.get(USERNAME), 'evtj:h6vY');
  assert.equal(checkIntegrity(msg, shortTermKey(PASSWORD)), 'ok');
  assert.equal(checkIntegrity(msg, shortTermKey('wrong')), 'mismatch');
  assert.equal(checkFingerprint(msg), 'ok');
  // The sample pads SOFTWARE and USERNAME with spaces (0x20), which RFC 8489 §14 allows
  // (padding content is ignored); re-encoding with those pad bytes reproduces it exactly.
  const again = encodeMessage(
    {
      method: BINDING, cls: StunClass.REQUEST, transactionId: msg.transactionId,
      attributes: [
        attr(SOFTWARE, 'STUN test client'),
        attr(raw(0x0024), msg.value(0x0024)!),
        attr(raw(0x8029), msg.value(0x8029)!),
        attr(USERNAME, 'evtj:h6vY'),
      ],
    },
    { key: shortTermKey(PASSWORD), fingerprint: true },
  );
  const padded = Buffer.from(again);
  // Our encoder pads with zeros; the sample used spaces in USERNAME's 3 pad bytes.
  const userAt = msg.find(0x0006)!.offset + 4 + 9;
  assert.deepEqual(padded.subarray(0, userAt), Buffer.from(bytes.subarray(0, userAt)));
  assert.equal(padded.length, bytes.length);
  const reparsed = decodeMessage(again);
  assert.equal(checkIntegrity(reparsed, shortTermKey(PASSWORD)), 'ok');
  assert.equal(checkFingerprint(reparsed), 'ok');
});

for (const [id, address] of [['2.2', '192.0.2.1'], ['2.3', '2001:db8:1234:5678:11:2233:4455:6677']] as const) {
  test(`${id} response: XOR-MAPPED-ADDRESS ${address}:32853, integrity, fingerprint, exact re-encoding`, () => {
    const bytes = sample(id);
    const msg = decodeMessage(bytes);
    assert.equal(msg.cls, StunClass.SUCCESS);
    assert.deepEqual(msg.get(XOR_MAPPED_ADDRESS), { address, port: 32853, family: address.includes(':') ? 6 : 4 });
    assert.equal(checkIntegrity(msg, shortTermKey(PASSWORD)), 'ok');
    assert.equal(checkFingerprint(msg), 'ok');
    const software = msg.get(SOFTWARE)!;
    assert.equal(software, 'test vector'); // 11 bytes; the fixture's trailing space is the pad byte
    const again = encodeMessage(
      { method: BINDING, cls: StunClass.SUCCESS, transactionId: msg.transactionId, attributes: [attr(SOFTWARE, software), attr(XOR_MAPPED_ADDRESS, msg.get(XOR_MAPPED_ADDRESS)!)] },
      { key: shortTermKey(PASSWORD), fingerprint: true },
    );
    // SOFTWARE is 11 bytes padded with one 0x20 in the sample; ours pads with 0x00.
    const pad = msg.find(SOFTWARE.type)!.offset + 4 + 11;
    const expected = Buffer.from(bytes);
    expected[pad] = 0;
    assert.equal(Buffer.from(again).subarray(0, pad).equals(expected.subarray(0, pad)), true);
    assert.equal(again.length, bytes.length);
    assert.equal(checkIntegrity(decodeMessage(again), shortTermKey(PASSWORD)), 'ok');
  });
}

test('2.4 long-term request: username, realm, nonce, MD5 key with SASLprep', () => {
  const msg = decodeMessage(sample('2.4'));
  const username = '\u30de\u30c8\u30ea\u30c3\u30af\u30b9';
  assert.equal(msg.get(USERNAME), username);
  assert.equal(msg.get(REALM), 'example.org');
  assert.equal(msg.get(NONCE), 'f//499k954d6OL34oL9FSTvy64sA');
  assert.equal(msg.has(MESSAGE_INTEGRITY), true);
  assert.equal(checkFingerprint(msg), 'missing');
  // RFC 5769 §2.4: the password "The<U+00AD>M<U+00AA>tr<U+2168>" is "TheMatrIX" after SASLprep.
  assert.equal(saslprep('The\u00adM\u00aatr\u2168'), 'TheMatrIX');
  const key = longTermKey({ username, realm: 'example.org', password: 'The\u00adM\u00aatr\u2168', prepare: 'saslprep' });
  assert.equal(checkIntegrity(msg, key), 'ok');
  assert.equal(checkIntegrity(msg, longTermKey({ username, realm: 'example.org', password: 'TheMatrix' })), 'mismatch');
});
