// ERROR-CODE reason phrases (RFC 8489 §14.8) as real servers send them: coturn counts the
// NULs that pad its reason to a 4-byte boundary in the attribute length.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ERROR_CODE, StunClass, attr, decodeMessage, encodeMessage } from '../../src/stun/index.ts';

// coturn 4.6.1 (Debian 4.6.1-1) answering a Binding request with CHANGE-REQUEST over TCP,
// captured from the wire: ERROR-CODE length 0x34 = 4 + 46 characters + 2 NULs, then SOFTWARE.
const COTURN_400 = Buffer.from(
  '011100502112a4428fcadf2597f39751ad7cc442000900340000040057726f6e6720726571756573743a206170706c696361626c65206f6e6c7920746f205544502070726f746f636f6c000080220014436f7475726e2d342e362e312027476f72737427',
  'hex',
);

test("coturn's NUL padding inside the ERROR-CODE length is not part of the reason", () => {
  const msg = decodeMessage(COTURN_400);
  assert.equal(msg.cls, StunClass.ERROR);
  assert.equal(msg.find(ERROR_CODE.type)?.length, 52, 'the padding is inside the length');
  assert.deepEqual(msg.get(ERROR_CODE), { code: 400, reason: 'Wrong request: applicable only to UDP protocol' });
});

const cases = [
  { name: 'no padding', reason: 'Bad Request' },
  { name: 'empty', reason: '' },
  { name: 'a NUL inside is kept', reason: 'a\0b' },
  { name: 'RFC 3489 space padding is kept', reason: 'Unknown Attribute   ' },
];
for (const c of cases) {
  test(`ERROR-CODE reason round trip: ${c.name}`, () => {
    const bytes = encodeMessage({ method: 1, cls: StunClass.ERROR, transactionId: new Uint8Array(12), attributes: [attr(ERROR_CODE, { code: 420, reason: c.reason })] });
    assert.deepEqual(decodeMessage(bytes).get(ERROR_CODE), { code: 420, reason: c.reason });
  });
}

test('trailing NULs in the length are dropped, whatever their count', () => {
  for (const nuls of [1, 2, 3, 5]) {
    const bytes = encodeMessage({ method: 1, cls: StunClass.ERROR, transactionId: new Uint8Array(12), attributes: [attr(ERROR_CODE, { code: 438, reason: `Stale Nonce${'\0'.repeat(nuls)}` })] });
    assert.equal(decodeMessage(bytes).get(ERROR_CODE)?.reason, 'Stale Nonce', `${nuls} NULs`);
  }
});
