// encodeMessage reuses one scratch writer and hands out copies cut from shared slabs
// (src/wire/slab.ts): every result owns its bytes, across slab boundaries and for large
// messages, and a codec that encodes a message of its own inside encode() still works.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BINDING, PADDING, SOFTWARE, StunClass, attr, decodeMessage, encodeMessage, type AttrCodec } from '../../src/stun/index.ts';
import { copyBytes } from '../../src/wire/index.ts';

const id = (n: number): Uint8Array => new Uint8Array(12).fill(n);
const message = (n: number, software = `client ${n}`): Uint8Array =>
  encodeMessage({ method: BINDING, cls: StunClass.REQUEST, transactionId: id(n), attributes: [attr(SOFTWARE, software)] });

test('every result owns its bytes: later encodes and writes to one leave the others alone', () => {
  const all = Array.from({ length: 1000 }, (_, i) => message(i & 0xff)); // many slabs' worth
  // Past the slab copy limit: a buffer of its own.
  const big = encodeMessage({ method: BINDING, cls: StunClass.REQUEST, transactionId: id(7), attributes: [attr(PADDING, 1500)] });
  all.forEach((bytes, i) => {
    const m = decodeMessage(bytes);
    assert.deepEqual(m.transactionId, id(i & 0xff));
    assert.equal(m.get(SOFTWARE), `client ${i & 0xff}`);
  });
  all[0]!.fill(0xee);
  assert.equal(decodeMessage(all[1]!).get(SOFTWARE), 'client 1');
  assert.equal(decodeMessage(big).get(PADDING), 1500);
});

test('a codec may encode a message inside encode()', () => {
  const inner = (): Uint8Array => message(2, 'inner');
  const NESTED: AttrCodec<number> = { type: 0x8f00, name: 'NESTED', encode: (n, w) => void w.bytes(message(n, 'inner')), decode: (r) => r.u8() };
  const outer = encodeMessage({ method: BINDING, cls: StunClass.REQUEST, transactionId: id(1), attributes: [attr(SOFTWARE, 'outer'), attr(NESTED, 2)] });
  const m = decodeMessage(outer);
  assert.deepEqual(m.transactionId, id(1));
  assert.equal(m.get(SOFTWARE), 'outer');
  assert.deepEqual(m.value(0x8f00), inner());
});

test('copyBytes: equal content, separate memory, any size', () => {
  for (const size of [0, 1, 40, 1024, 1025, 9000]) {
    const src = Uint8Array.from({ length: size }, (_, i) => i & 0xff);
    const a = copyBytes(src);
    const b = copyBytes(src);
    assert.deepEqual(a, src);
    if (size > 0) {
      a[0] = 0xaa;
      assert.equal(b[0], 0);
      assert.equal(src[0], 0);
    }
  }
});
