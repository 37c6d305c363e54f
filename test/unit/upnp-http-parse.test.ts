// The HTTP/1.1 response parser behind description and SOAP fetches (RFC 9112): body
// lengths, chunked coding, interim responses, LF-only lines, caps; and the same answer
// whichever way the bytes are split.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { HttpResponseParser, type HttpParserOptions, type HttpResponse } from '../../src/portmap/upnp-index.ts';
import { isNatkitError } from '../../src/util/index.ts';

/** Feeds `text` in pieces of `step` bytes; `end` tells the parser the peer closed afterwards. */
function parse(text: string, options: HttpParserOptions & { step?: number; end?: boolean } = {}): HttpResponse | undefined {
  const p = new HttpResponseParser(options);
  const bytes = Buffer.from(text, 'latin1');
  const step = options.step ?? bytes.length;
  let done: HttpResponse | undefined;
  for (let i = 0; i < bytes.length && done === undefined; i += Math.max(1, step)) done = p.push(bytes.subarray(i, i + Math.max(1, step)));
  return done ?? (options.end === true ? p.end() : undefined);
}

const body = (r: HttpResponse | undefined): string => Buffer.from(r!.body).toString('latin1');

const ok: readonly { name: string; text: string; body: string; end?: boolean; status?: number }[] = [
  { name: 'Content-Length', text: 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloEXTRA', body: 'hello' },
  { name: 'Content-Length list of equal values (RFC 9110 §8.6)', text: 'HTTP/1.1 200 OK\r\nContent-Length: 3, 3\r\n\r\nabc', body: 'abc' },
  { name: 'chunked with extensions and trailers', text: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\nB\r\n 0123456789\r\n0\r\nX-Trailer: t\r\n\r\n', body: 'hello 0123456789' },
  { name: 'Transfer-Encoding wins over Content-Length', text: 'HTTP/1.1 200 OK\r\nContent-Length: 99\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n', body: 'hi' },
  { name: 'no length: the body runs to the close (RFC 9112 §6.3 item 8)', text: 'HTTP/1.0 200 OK\r\nContent-Type: text/xml\r\n\r\n<root/>', body: '<root/>', end: true },
  { name: '100 Continue before the answer', text: 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 500 Internal Server Error\r\nContent-Length: 2\r\n\r\nno', body: 'no', status: 500 },
  { name: 'LF-only line endings (RFC 9112 §2.2)', text: 'HTTP/1.1 200 OK\nContent-Length: 2\n\nok', body: 'ok' },
  { name: 'empty lines before the status line', text: '\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx', body: 'x' },
  { name: '204 has no body', text: 'HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n', body: '', status: 204 },
];

for (const c of ok) {
  test(`response: ${c.name}, whole and byte by byte`, () => {
    for (const step of [undefined, 1, 3]) {
      const r = parse(c.text, { ...(step !== undefined && { step }), ...(c.end !== undefined && { end: c.end }) });
      assert.equal(body(r), c.body, `step ${step ?? 'all'}`);
      assert.equal(r!.head.status, c.status ?? 200);
    }
  });
}

const bad: readonly { name: string; text: string; end?: boolean; options?: HttpParserOptions; error: RegExp }[] = [
  { name: 'truncated body', text: 'HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort', end: true, error: /truncated/ },
  { name: 'truncated head', text: 'HTTP/1.1 200 OK\r\nContent-Le', end: true, error: /truncated/ },
  { name: 'differing Content-Length values', text: 'HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd', error: /invalid Content-Length/ },
  { name: 'negative Content-Length', text: 'HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n', error: /invalid Content-Length/ },
  { name: 'Content-Length over the cap', text: 'HTTP/1.1 200 OK\r\nContent-Length: 1000001\r\n\r\n', error: /exceeds/ },
  { name: 'close-delimited body over the cap', text: `HTTP/1.1 200 OK\r\n\r\n${'x'.repeat(300)}`, options: { maxBodyBytes: 256 }, error: /larger than 256/ },
  { name: 'chunks summing over the cap', text: `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n${'80\r\n'.concat('y'.repeat(128), '\r\n').repeat(3)}0\r\n\r\n`, options: { maxBodyBytes: 256 }, error: /larger than 256/ },
  { name: 'bad chunk size', text: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n', error: /chunk size/ },
  { name: 'oversized chunk size', text: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nFFFFFFFFF\r\n', error: /chunk size/ },
  { name: 'missing CRLF after chunk data', text: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhiXX\r\n', error: /CRLF after chunk/ },
  { name: 'gzip transfer coding', text: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n', error: /unsupported transfer coding/ },
  { name: 'endless header block', text: `HTTP/1.1 200 OK\r\nX: ${'a'.repeat(20000)}`, error: /longer than 16384/ },
  { name: 'a request instead of a response', text: 'GET / HTTP/1.1\r\nHost: x\r\n\r\n', error: /got a GET request/ },
  { name: '101 Switching Protocols', text: 'HTTP/1.1 101 Switching Protocols\r\n\r\n', error: /101/ },
  { name: 'garbage', text: 'SSH-2.0-OpenSSH_9.2\r\n\r\n', error: /status or request line/ },
];

for (const c of bad) {
  test(`response: ${c.name} → ERR_HTTP_DECODE`, () => {
    assert.throws(() => parse(c.text, { ...c.options, ...(c.end !== undefined && { end: c.end }) }), (e) => isNatkitError(e, 'ERR_HTTP_DECODE') && c.error.test(e.message));
  });
}

test('byte-at-a-time input of a 200 KiB body stays linear', () => {
  const p = new HttpResponseParser();
  const big = `HTTP/1.1 200 OK\r\nContent-Length: ${200 * 1024}\r\n\r\n${'z'.repeat(200 * 1024)}`;
  const bytes = Buffer.from(big);
  const started = performance.now();
  let r: HttpResponse | undefined;
  for (let i = 0; i < bytes.length; i++) r = p.push(bytes.subarray(i, i + 1));
  assert.equal(r?.body.length, 200 * 1024);
  assert.ok(performance.now() - started < 5000, 'well under quadratic time');
});
