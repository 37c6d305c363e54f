// StreamFramer: STUN (RFC 8489 §5) and padded ChannelData (RFC 8656 §12.5) on a byte
// stream, across every kind of chunk boundary; garbage yields only our DecodeError. The
// ChannelData first bytes are a parameter: 0x40–0x4F by default, 0x40–0x7F for a TURN
// server accepting RFC 5766 §11's channel numbers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { MUX_RTP, StreamFramer } from '../../src/net/index.ts';
import { channelDataRange } from '../../src/turn/index.ts';
import { DecodeError, isNatkitError } from '../../src/util/index.ts';

/** A message as it travels on the stream, and what the framer must hand out for it. */
interface Framed {
  readonly wire: Uint8Array;
  readonly message: Uint8Array;
}

/** A STUN message: 20-byte header with a body length that is a multiple of 4. */
function stun(first: number, body: Uint8Array): Framed {
  const m = new Uint8Array(20 + body.length);
  m[0] = first;
  m[1] = 0x01;
  m[2] = body.length >> 8;
  m[3] = body.length & 0xff;
  m.set([0x21, 0x12, 0xa4, 0x42], 4);
  m.set(body, 20);
  return { wire: m, message: m };
}

/** A ChannelData message padded to a multiple of 4 with `pad` (any value: receivers ignore it). */
function channelData(first: number, data: Uint8Array, pad = 0): Framed {
  const padded = (data.length + 3) & ~3;
  const wire = new Uint8Array(4 + padded).fill(pad);
  wire[0] = first;
  wire[1] = 0x00;
  wire[2] = data.length >> 8;
  wire[3] = data.length & 0xff;
  wire.set(data, 4);
  return { wire, message: wire.subarray(0, 4 + data.length) };
}

const concat = (parts: readonly Uint8Array[]): Uint8Array => Uint8Array.from(Buffer.concat(parts));
const copy = (m: Uint8Array): Uint8Array => Uint8Array.from(m);

/** Pushes `stream` cut at `cuts` (sorted offsets), returning copies of every message. */
function frame(stream: Uint8Array, cuts: readonly number[], framer = new StreamFramer()): Uint8Array[] {
  const out: Uint8Array[] = [];
  let from = 0;
  for (const to of [...cuts, stream.length]) {
    framer.push(stream.subarray(from, to), (m) => out.push(copy(m)));
    from = to;
  }
  return out;
}

const fcFramed: fc.Arbitrary<Framed> = fc.oneof(
  fc.tuple(fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 64 }), fc.uint8Array({ maxLength: 4 }))
    .map(([first, words, fill]) => stun(first, new Uint8Array(words * 4).fill(fill[0] ?? 0))),
  fc.tuple(fc.integer({ min: 0x40, max: 0x4f }), fc.uint8Array({ maxLength: 300 }), fc.integer({ min: 0, max: 255 }))
    .map(([first, data, pad]) => channelData(first, data, pad)),
);

const sample = [stun(0x00, new Uint8Array(8).fill(1)), channelData(0x40, Uint8Array.of(1, 2, 3, 4, 5)), stun(0x01, new Uint8Array(0)), channelData(0x4f, new Uint8Array(0))];
const sampleStream = concat(sample.map((f) => f.wire));
const sampleMessages = sample.map((f) => copy(f.message));

const boundaryCases: { name: string; cuts: (n: number) => number[] }[] = [
  { name: 'one chunk holding every message', cuts: () => [] },
  { name: 'one byte per chunk', cuts: (n) => Array.from({ length: n - 1 }, (_, i) => i + 1) },
  { name: 'cut inside the 4-byte prefix', cuts: () => [2] },
  { name: 'cut right after the prefix', cuts: () => [4] },
  { name: 'cut inside the STUN body', cuts: () => [23] },
  { name: 'cut at a message boundary', cuts: () => [28] },
  { name: 'cut inside ChannelData padding', cuts: () => [28 + 4 + 5 + 1] },
  { name: 'empty chunks in between', cuts: () => [0, 0, 10, 10, 28, 28] },
];

for (const c of boundaryCases) {
  test(`chunk boundaries: ${c.name}`, () => {
    const framer = new StreamFramer();
    assert.deepEqual(frame(sampleStream, c.cuts(sampleStream.length), framer), sampleMessages);
    assert.equal(framer.buffered, 0);
  });
}

test('ChannelData is delivered without its stream padding (RFC 8656 §12.5)', () => {
  const out = new StreamFramer().push(channelData(0x41, Uint8Array.of(9), 0xaa).wire);
  assert.deepEqual(out.map(copy), [Uint8Array.of(0x41, 0, 0, 1, 9)]);
});

test('a message whole in one chunk is a view of it, not a copy', () => {
  const stream = copy(sampleStream);
  const out = new StreamFramer().push(stream);
  assert.equal(out.length, 4);
  for (const m of out) assert.equal(m.buffer, stream.buffer);
});

test('a message split across chunks is delivered whole and stays valid after later pushes', () => {
  const framer = new StreamFramer();
  const first = framer.push(sampleStream.subarray(0, 10));
  assert.deepEqual(first, []);
  assert.equal(framer.buffered, 10);
  const [m] = framer.push(sampleStream.subarray(10, 28));
  assert.ok(m);
  const kept = copy(m);
  framer.push(sampleStream.subarray(28, 30));
  framer.push(sampleStream.subarray(30));
  assert.deepEqual(copy(m), kept);
  assert.deepEqual(kept, sampleMessages[0]);
});

const errorCases: { name: string; stream: Uint8Array; offset: number; before: number }[] = [
  { name: 'RTP first byte', stream: Uint8Array.of(0x80, 0, 0, 0), offset: 0, before: 0 },
  { name: 'DTLS first byte after a good message', stream: concat([sample[0]!.wire, Uint8Array.of(22, 254, 253, 0)]), offset: 28, before: 1 },
  { name: 'first byte 0x04 (unassigned)', stream: Uint8Array.of(4), offset: 0, before: 0 },
  { name: 'first byte 0x50 (just past ChannelData)', stream: Uint8Array.of(0x50, 0, 0, 0), offset: 0, before: 0 },
  { name: 'STUN length not a multiple of 4', stream: Uint8Array.of(0, 1, 0, 5), offset: 2, before: 0 },
];

for (const c of errorCases) {
  test(`framing error: ${c.name}`, () => {
    const framer = new StreamFramer();
    const got: Uint8Array[] = [];
    assert.throws(() => framer.push(c.stream, (m) => got.push(m)), (err: unknown) => {
      assert.ok(err instanceof DecodeError, String(err));
      assert.equal(err.code, 'ERR_DECODE');
      assert.equal(err.offset, c.offset);
      return true;
    });
    assert.equal(got.length, c.before, 'messages before the bad byte are delivered');
    assert.throws(() => framer.push(sampleStream), DecodeError, 'a failed framer stays failed');
  });
}

test('legacy channels: first bytes 0x50–0x7f frame as ChannelData, across chunks; 0x80 still fails', () => {
  const legacy = [channelData(0x50, Uint8Array.of(1, 2, 3)), stun(0x00, new Uint8Array(4)), channelData(0x7f, Uint8Array.of(9), 0xee)];
  const stream = concat(legacy.map((f) => f.wire));
  for (const cuts of [[], [1], [3, 9], Array.from({ length: stream.length - 1 }, (_, i) => i + 1)]) {
    const framer = new StreamFramer({ channelData: channelDataRange({ legacyChannels: true }) });
    assert.deepEqual(frame(stream, cuts, framer), legacy.map((f) => copy(f.message)), `cuts ${cuts.join(',')}`);
  }
  const framer = new StreamFramer({ channelData: channelDataRange({ legacyChannels: true }) });
  assert.throws(() => framer.push(Uint8Array.of(0x80, 0, 0, 0)), (err: unknown) => err instanceof DecodeError && /0x40–0x7f/.test(err.message));
  assert.equal(new StreamFramer({ channelData: channelDataRange() }).push(channelData(0x4f, Uint8Array.of(1)).wire).length, 1);
});

test('channelData outside 0x40–0x7f is refused at construction (ChannelData starts with bits 01)', () => {
  for (const range of [MUX_RTP, { first: 0x3f, last: 0x4f, name: 'low' }, { first: 0x50, last: 0x4f, name: 'reversed' }]) {
    assert.throws(() => new StreamFramer({ channelData: range }), (err: unknown) => isNatkitError(err, 'ERR_INVALID_ARGUMENT'), range.name);
  }
});

test('the error offset counts bytes of earlier chunks', () => {
  const framer = new StreamFramer();
  framer.push(sampleStream);
  framer.push(Uint8Array.of(0x00, 0x01));
  assert.throws(() => framer.push(Uint8Array.of(0x00, 0x03)), (err: unknown) => err instanceof DecodeError && err.offset === sampleStream.length + 2);
});

test('maxMessageBytes: a longer message is refused from its header, before it is buffered', () => {
  const framer = new StreamFramer({ maxMessageBytes: 100 });
  assert.deepEqual(framer.push(stun(0, new Uint8Array(80)).wire).length, 1);
  assert.throws(() => framer.push(Uint8Array.of(0, 1, 0, 84)), DecodeError);
  const cd = new StreamFramer({ maxMessageBytes: 100 });
  // 4 + 93 bytes of data, padded to 4 + 96 = 100: fits; 97 bytes pads to 104: refused.
  assert.equal(cd.push(channelData(0x40, new Uint8Array(93)).wire).length, 1);
  assert.throws(() => cd.push(Uint8Array.of(0x40, 0, 0, 97)), DecodeError);
});

test('the default limit admits the largest ChannelData and STUN messages', () => {
  assert.equal(new StreamFramer().push(channelData(0x40, new Uint8Array(65535)).wire).length, 1);
  assert.equal(new StreamFramer().push(stun(0, new Uint8Array(65532)).wire).length, 1);
});

test('property: any split of valid messages yields the same messages', () => {
  fc.assert(
    fc.property(fc.array(fcFramed, { maxLength: 12 }), fc.array(fc.nat(), { maxLength: 20 }), (framed, rawCuts) => {
      const stream = concat(framed.map((f) => f.wire));
      const cuts = rawCuts.map((c) => (stream.length === 0 ? 0 : c % (stream.length + 1))).sort((a, b) => a - b);
      const framer = new StreamFramer();
      assert.deepEqual(frame(stream, cuts, framer), framed.map((f) => copy(f.message)));
      assert.equal(framer.buffered, 0);
    }),
    { numRuns: 500 },
  );
});

test('property: garbage yields messages or DecodeError only, and buffering stays under the limit', () => {
  // Chunks mix random bytes, valid messages and plausible headers, so the framer gets past the first byte.
  const chunk = fc.oneof(
    fc.uint8Array({ maxLength: 64 }),
    fcFramed.map((f) => f.wire),
    fc.tuple(fc.constantFrom(0, 1, 2, 3, 0x40, 0x4f), fc.uint8Array({ minLength: 3, maxLength: 40 })).map(([b, rest]) => Uint8Array.of(b, ...rest)),
  );
  fc.assert(
    fc.property(fc.array(chunk, { maxLength: 30 }), fc.integer({ min: 4, max: 400 }), (chunks, max) => {
      const framer = new StreamFramer({ maxMessageBytes: max });
      for (const chunk of chunks) {
        try {
          framer.push(chunk, (m) => assert.ok(m.length <= max));
        } catch (err) {
          assert.ok(err instanceof DecodeError, `unexpected ${String(err)}`);
          return;
        }
        assert.ok(framer.buffered <= max, `buffered ${framer.buffered} > ${max}`);
      }
    }),
    { numRuns: 1000 },
  );
});
