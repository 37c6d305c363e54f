// fast-check properties of the chat frame codec and of what `natkit chat` reads from its
// user: frames round-trip; any bytes decode to a frame or throw ERR_CHAT_DECODE (never
// anything else); text made safe for a terminal carries no control or bidi-override
// character; any typed line or JSON line parses to an input, never throws.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { CHAT_VERSION, MAX_TEXT_BYTES, decodeChatFrame, displaySafe, encodeChatFrame, type ChatFrame } from '../../src/chat/index.ts';
import { jsonInput, parseChatInput } from '../../src/cli/chat-io.ts';

const id = fc.stringMatching(/^[0-9A-Za-z_-]{1,64}$/);
const frame: fc.Arbitrary<ChatFrame> = fc.oneof(
  fc.record({ t: fc.constant('text' as const), id, text: fc.string({ unit: 'grapheme', maxLength: 200 }), sentAt: fc.integer({ min: 0, max: 2 ** 48 }) }),
  fc.record({ t: fc.constant('text' as const), id, text: fc.string({ maxLength: 50 }), sentAt: fc.integer(), room: fc.string({ minLength: 1, maxLength: 20 }) }),
  fc.record({ t: fc.constant('receipt' as const), ids: fc.array(id, { minLength: 1, maxLength: 20 }) }),
);

test('frames round-trip through the codec', () => {
  fc.assert(fc.property(frame, (f) => assert.deepEqual(decodeChatFrame(encodeChatFrame(f)), { ...f })), { numRuns: 1000 });
});

test('any bytes decode to a frame or throw ERR_CHAT_DECODE', () => {
  const json = fc.jsonValue().map((v) => Uint8Array.from([CHAT_VERSION, ...new TextEncoder().encode(JSON.stringify(v))]));
  const near = frame.chain((f) => fc.record({ key: fc.constantFrom('t', 'id', 'text', 'sentAt', 'room', 'ids'), value: fc.jsonValue() }).map(({ key, value }) => {
    const o = { ...f, [key]: value } as Record<string, unknown>;
    return Uint8Array.from([CHAT_VERSION, ...new TextEncoder().encode(JSON.stringify(o))]);
  }));
  fc.assert(fc.property(fc.oneof(fc.uint8Array({ maxLength: 200 }), json, near), (data) => {
    try {
      const f = decodeChatFrame(data);
      assert.ok(['text', 'receipt', 'unknown'].includes(f.t));
    } catch (err) {
      assert.equal((err as { code?: string }).code, 'ERR_CHAT_DECODE', String(err));
      // eslint-disable-next-line no-control-regex
      assert.doesNotMatch((err as Error).message, /[\u0000-\u001f\u007f-\u009f]/, 'an error never carries the peer\'s control bytes');
    }
  }), { numRuns: 3000 });
  assert.throws(() => decodeChatFrame(Uint8Array.from([CHAT_VERSION, ...new TextEncoder().encode('\u001b[2J\u001b]0;pwned\u0007')])), (err: Error) => !err.message.includes('\u001b'));
});

test('bounds: an oversized text, a bad id or an empty receipt is refused on both sides', () => {
  const big = 'x'.repeat(MAX_TEXT_BYTES + 1);
  assert.throws(() => encodeChatFrame({ t: 'text', id: 'a', text: big, sentAt: 0 }), { code: 'ERR_CHAT_DECODE' });
  assert.throws(() => encodeChatFrame({ t: 'text', id: 'no spaces', text: '', sentAt: 0 }), { code: 'ERR_CHAT_DECODE' });
  assert.throws(() => encodeChatFrame({ t: 'receipt', ids: [] }), { code: 'ERR_CHAT_DECODE' });
  const raw = (o: unknown): Uint8Array => Uint8Array.from([CHAT_VERSION, ...new TextEncoder().encode(JSON.stringify(o))]);
  assert.throws(() => decodeChatFrame(raw({ t: 'text', id: 'a', text: big, sentAt: 0 })), { code: 'ERR_CHAT_DECODE' });
  assert.throws(() => decodeChatFrame(raw({ t: 'text', id: 'a', text: 'x', sentAt: 'soon' })), { code: 'ERR_CHAT_DECODE' });
  assert.deepEqual(decodeChatFrame(raw({ t: 'future-frame' })), { t: 'unknown' }, 'a newer peer\'s frame is skipped');
  assert.deepEqual(decodeChatFrame(Uint8Array.from([CHAT_VERSION + 1, 1, 2])), { t: 'unknown' }, 'a newer version is skipped');
});

test('displaySafe leaves no control character but newline and tab, and no bidi override', () => {
  fc.assert(fc.property(fc.string({ unit: 'binary', maxLength: 200 }), (s) => {
    const safe = displaySafe(s);
    // eslint-disable-next-line no-control-regex
    assert.doesNotMatch(safe, /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/);
  }), { numRuns: 2000 });
  assert.equal(displaySafe('a\r\nb\tc 👋 日本'), 'a\nb\tc 👋 日本', 'ordinary text is untouched');
});

test('any typed line parses to an input; commands and messages are told apart', () => {
  fc.assert(fc.property(fc.string({ maxLength: 80 }), (line) => {
    const input = parseChatInput(line);
    if (!line.startsWith('/') && line.trim() !== '') assert.deepEqual(input, { kind: 'say', text: line });
  }), { numRuns: 2000 });
  assert.deepEqual(parseChatInput('/msg bob hello there\nsecond'), { kind: 'msg', to: 'bob', text: 'hello there\nsecond' });
  assert.deepEqual(parseChatInput('/msg bob'), { kind: 'invalid', reason: 'usage: /msg NAME TEXT' });
  assert.deepEqual(parseChatInput('//who'), { kind: 'say', text: '/who' });
  assert.deepEqual(parseChatInput('/who'), { kind: 'who' });
  assert.deepEqual(parseChatInput('/path bob'), { kind: 'path', peer: 'bob' });
  assert.deepEqual(parseChatInput('/quit'), { kind: 'quit' });
  assert.equal(parseChatInput('/dance').kind, 'invalid');
  assert.equal(parseChatInput('/').kind, 'invalid');
});

test('any JSON command line parses to an input or says why not, never throws', () => {
  fc.assert(fc.property(fc.oneof(fc.string({ maxLength: 80 }), fc.jsonValue().map((v) => JSON.stringify(v)),
    fc.record({ type: fc.constantFrom('send', 'who', 'path', 'quit', 'x'), text: fc.jsonValue(), to: fc.jsonValue(), peer: fc.jsonValue() }, { requiredKeys: ['type'] }).map((v) => JSON.stringify(v))), (line) => {
    const input = jsonInput(line);
    if (input.kind === 'say' || input.kind === 'msg') assert.equal(typeof input.text, 'string');
  }), { numRuns: 2000 });
  assert.deepEqual(jsonInput('{"type":"send","to":"bob","text":"hi"}'), { kind: 'msg', to: 'bob', text: 'hi' });
  assert.deepEqual(jsonInput('{"type":"send","to":7,"text":"hi"}'), { kind: 'invalid', reason: 'send: "to" must be a string' });
});
