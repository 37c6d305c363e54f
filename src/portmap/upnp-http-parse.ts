// The HTTP/1.1 message syntax UPnP speaks (RFC 9112), sans-I/O: the header block of
// SSDP datagrams (UDA 1.1 §1.1.3 "HTTPU": HTTP messages over UDP) and of TCP messages,
// and message parsers fed bytes as they arrive — responses for the client, requests for
// the gateway server — with Content-Length, chunked and (responses only) close-delimited
// bodies (RFC 9112 §6.3, §7.1) under hard size caps. Every malformed input throws
// DecodeError with the caller's code; nothing else escapes.
import { DecodeError, type NatkitErrorCode } from '../util/index.ts';

/** Field names (lower-case) → values in arrival order. */
export type HttpFields = ReadonlyMap<string, readonly string[]>;

/** A parsed start line plus fields: a response status line or a request line. */
export interface HttpHead {
  /** 'HTTP/1.1'. */
  readonly version: string;
  /** Response status (200); 0 for a request. */
  readonly status: number;
  /** Response reason phrase, or the request method. */
  readonly reason: string;
  /** Request target ('*'); '' for a response. */
  readonly target: string;
  readonly fields: HttpFields;
}

/** A complete message: a response, or a request (head.status 0). */
export interface HttpMessage {
  readonly head: HttpHead;
  readonly body: Uint8Array;
}

/** A complete response. */
export type HttpResponse = HttpMessage;

/** Limits of HttpResponseParser and HttpRequestParser. */
export interface HttpParserOptions {
  /** Largest status line plus fields, also the largest chunk-size line and trailer block. @default 16384 */
  readonly maxHeadBytes?: number;
  /** Largest body after de-chunking. @default 262144 */
  readonly maxBodyBytes?: number;
  /** Error code of every decode failure. @default 'ERR_HTTP_DECODE' */
  readonly code?: NatkitErrorCode;
}

const MAX_FIELDS = 100;
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const STATUS_LINE = /^(HTTP\/\d\.\d) (\d{3})(?: (.*))?$/;
const REQUEST_LINE = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+) (\S+) (HTTP\/\d\.\d)$/;
const LATIN1 = new TextDecoder('latin1');

/** The first value of a field, trimmed; undefined when absent. */
export function field(fields: HttpFields, name: string): string | undefined {
  return fields.get(name.toLowerCase())?.[0];
}

/**
 * Parses a header block given as lines (no line terminators, no final empty line).
 * Bytes are read as Latin-1, so any input maps to text; RFC 9112 §5.2 obs-fold lines
 * are joined with a space, as a user agent must.
 */
export function parseHeadLines(lines: readonly string[], code: NatkitErrorCode, offset = 0): HttpHead {
  const start = lines[0] ?? '';
  const fail = (what: string): never => {
    throw new DecodeError(what, offset, { code });
  };
  let version: string;
  let status = 0;
  let reason: string;
  let target = '';
  const response = STATUS_LINE.exec(start);
  if (response !== null) {
    version = response[1]!;
    status = Number(response[2]);
    reason = response[3] ?? '';
  } else {
    const request = REQUEST_LINE.exec(start);
    if (request === null) return fail(`expected an HTTP status or request line, got ${JSON.stringify(start.slice(0, 60))}`);
    reason = request[1]!;
    target = request[2]!;
    version = request[3]!;
  }
  const fields = new Map<string, string[]>();
  let last: string[] | undefined;
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    if (/[\0\r]/.test(line)) fail(`field line ${i} holds NUL or a bare CR`);
    if (line.startsWith(' ') || line.startsWith('\t')) {
      if (last === undefined || last.length === 0) return fail('continuation line before any field');
      last[last.length - 1] = `${last[last.length - 1]!} ${line.trim()}`.trim();
      continue;
    }
    const colon = line.indexOf(':');
    const name = colon < 0 ? '' : line.slice(0, colon).trim();
    if (!TOKEN.test(name)) return fail(`expected "name: value" in field line ${i}, got ${JSON.stringify(line.slice(0, 60))}`);
    if (fields.size >= MAX_FIELDS && !fields.has(name.toLowerCase())) fail(`more than ${MAX_FIELDS} fields`);
    const key = name.toLowerCase();
    last = fields.get(key) ?? [];
    last.push(line.slice(colon + 1).trim());
    fields.set(key, last);
  }
  return { version, status, reason, target, fields };
}

/** Parses a whole header block (SSDP datagram): lines up to the first empty one; the rest is ignored. */
export function parseHead(data: Uint8Array, code: NatkitErrorCode, maxBytes = 16384): HttpHead {
  const text = LATIN1.decode(data.length > maxBytes ? data.subarray(0, maxBytes) : data);
  const lines: string[] = [];
  let at = 0;
  for (;;) {
    const lf = text.indexOf('\n', at);
    if (lf < 0) {
      // UDA 1.1 §1.1.3: the block ends with an empty line; tolerate a missing one at the datagram's end.
      if (data.length > maxBytes) throw new DecodeError(`header block longer than ${maxBytes} bytes`, maxBytes, { code });
      const rest = text.slice(at);
      if (rest.length > 0) lines.push(rest.endsWith('\r') ? rest.slice(0, -1) : rest);
      break;
    }
    const line = text.slice(at, text[lf - 1] === '\r' ? lf - 1 : lf);
    at = lf + 1;
    if (line === '') break;
    lines.push(line);
  }
  if (lines.length === 0) throw new DecodeError('empty message', 0, { code });
  return parseHeadLines(lines, code);
}

/** A byte queue that grows by doubling, so byte-at-a-time input stays linear. */
class ByteQueue {
  private buf = new Uint8Array(1024);
  private start = 0;
  private end = 0;
  /** Bytes from start already searched for LF, so byte-at-a-time input is not rescanned. */
  private scanned = 0;

  get length(): number {
    return this.end - this.start;
  }

  push(data: Uint8Array): void {
    if (this.end + data.length > this.buf.length) {
      const live = this.length;
      const next = live + data.length > this.buf.length ? new Uint8Array(Math.max(this.buf.length * 2, live + data.length)) : this.buf;
      next.set(this.buf.subarray(this.start, this.end), 0);
      this.buf = next;
      this.start = 0;
      this.end = live;
    }
    this.buf.set(data, this.end);
    this.end += data.length;
  }

  /** Index (relative) of the first LF, or -1. */
  indexOfLf(): number {
    const i = this.buf.subarray(this.start + this.scanned, this.end).indexOf(0x0a);
    if (i < 0) {
      this.scanned = this.length;
      return -1;
    }
    return this.scanned + i;
  }

  /** Removes and returns `n` bytes (a copy). */
  take(n: number): Uint8Array {
    const out = this.buf.slice(this.start, this.start + n);
    this.start += n;
    this.scanned = 0;
    return out;
  }
}

type State = 'head' | 'length' | 'chunk-size' | 'chunk-data' | 'chunk-end' | 'trailers' | 'close' | 'done';

/**
 * Parses one HTTP/1.1 message from bytes pushed as they arrive (RFC 9112 §6.3 body
 * length rules, §7.1 chunked coding). push() returns the message once complete;
 * end() is called when the peer closed and completes a close-delimited body.
 */
abstract class HttpMessageParser {
  private readonly isRequest: boolean;
  private readonly maxHeadBytes: number;
  private readonly maxBodyBytes: number;
  private readonly code: NatkitErrorCode;
  private readonly queue = new ByteQueue();
  private state: State = 'head';
  private lines: string[] = [];
  private lineBytes = 0;
  private head: HttpHead | undefined;
  private readonly body: Uint8Array[] = [];
  private bodyBytes = 0;
  private remaining = 0;
  private consumed = 0;
  private result: HttpMessage | undefined;

  protected constructor(kind: 'request' | 'response', options: HttpParserOptions) {
    this.isRequest = kind === 'request';
    this.maxHeadBytes = options.maxHeadBytes ?? 16384;
    this.maxBodyBytes = options.maxBodyBytes ?? 262_144;
    this.code = options.code ?? 'ERR_HTTP_DECODE';
  }

  /** Feeds bytes; returns the message when complete (bytes after it are ignored). */
  push(data: Uint8Array): HttpMessage | undefined {
    if (this.state === 'done') return this.result;
    this.queue.push(data);
    this.run();
    return this.result;
  }

  /** The peer closed the stream: completes a close-delimited body, else throws (truncated). */
  end(): HttpMessage {
    if (this.state === 'close') this.finish();
    if (this.result === undefined) this.fail(`stream ended in the ${this.state === 'head' ? 'header block' : 'body'} (truncated ${this.isRequest ? 'request' : 'response'})`);
    return this.result;
  }

  private fail(what: string): never {
    throw new DecodeError(what, this.consumed, { code: this.code });
  }

  private run(): void {
    for (;;) {
      switch (this.state) {
        case 'head':
        case 'chunk-size':
        case 'chunk-end':
        case 'trailers': {
          const line = this.line();
          if (line === undefined) return;
          this.onLine(line);
          break;
        }
        case 'length':
        case 'chunk-data':
        case 'close': {
          const n = this.state === 'close' ? this.queue.length : Math.min(this.remaining, this.queue.length);
          if (n > 0) this.addBody(this.queue.take(n));
          this.consumed += n;
          this.remaining -= n;
          if (this.state === 'close' || this.remaining > 0) return;
          if (this.state === 'length') this.finish();
          else this.state = 'chunk-end';
          break;
        }
        case 'done':
          return;
      }
    }
  }

  /** The next line without its terminator (LF or CRLF, RFC 9112 §2.2), or undefined when incomplete. */
  private line(): string | undefined {
    const lf = this.queue.indexOfLf();
    if (lf < 0) {
      if (this.lineBytes + this.queue.length > this.maxHeadBytes) this.fail(`header block or chunk line longer than ${this.maxHeadBytes} bytes`);
      return undefined;
    }
    this.lineBytes += lf + 1;
    if (this.lineBytes > this.maxHeadBytes) this.fail(`header block or chunk line longer than ${this.maxHeadBytes} bytes`);
    const bytes = this.queue.take(lf + 1);
    this.consumed += lf + 1;
    return LATIN1.decode(bytes.subarray(0, lf > 0 && bytes[lf - 1] === 0x0d ? lf - 1 : lf));
  }

  private onLine(line: string): void {
    switch (this.state) {
      case 'head':
        if (line !== '') {
          this.lines.push(line);
          return;
        }
        if (this.lines.length === 0) return; // RFC 9112 §2.2: empty lines before the start line are ignored
        this.startBody(parseHeadLines(this.lines, this.code, this.consumed));
        return;
      case 'chunk-size': {
        const size = line.split(';', 1)[0]!.trim();
        if (!/^[0-9A-Fa-f]{1,8}$/.test(size)) this.fail(`expected a chunk size in hex, got ${JSON.stringify(line.slice(0, 40))}`);
        this.remaining = parseInt(size, 16);
        this.lineBytes = 0;
        if (this.bodyBytes + this.remaining > this.maxBodyBytes) this.fail(`body larger than ${this.maxBodyBytes} bytes`);
        this.state = this.remaining === 0 ? 'trailers' : 'chunk-data';
        return;
      }
      case 'chunk-end':
        if (line !== '') this.fail('expected CRLF after chunk data');
        this.lineBytes = 0;
        this.state = 'chunk-size';
        return;
      case 'trailers':
        if (line === '') this.finish();
        return;
      default:
        return;
    }
  }

  private startBody(head: HttpHead): void {
    this.lines = [];
    this.lineBytes = 0;
    if (this.isRequest && head.status !== 0) this.fail(`expected a request, got a ${head.status} response`);
    if (!this.isRequest && head.status === 0) this.fail(`expected a response, got a ${head.reason} request`);
    // RFC 9110 §15.2: interim 1xx responses precede the final one; skip them.
    if (head.status >= 100 && head.status < 200) {
      if (head.status === 101) this.fail('unexpected 101 Switching Protocols');
      return;
    }
    this.head = head;
    const te = head.fields.get('transfer-encoding');
    const cl = head.fields.get('content-length');
    if (head.status === 204 || head.status === 304) {
      this.finish();
    } else if (te !== undefined) {
      const codings = te.join(',').split(',').map((c) => c.trim().toLowerCase()).filter((c) => c !== '');
      if (codings.some((c) => c !== 'chunked')) this.fail(`unsupported transfer coding ${JSON.stringify(te.join(', '))}`);
      // RFC 9112 §6.3 item 3: Transfer-Encoding overrides Content-Length.
      this.state = codings.at(-1) === 'chunked' ? 'chunk-size' : 'close';
    } else if (cl !== undefined) {
      const values = new Set(cl.join(',').split(',').map((v) => v.trim()));
      const [value] = values;
      // RFC 9110 §8.6: a list of identical values is one value; anything else is invalid.
      if (values.size !== 1 || value === undefined || !/^\d{1,15}$/.test(value)) this.fail(`invalid Content-Length ${JSON.stringify(cl.join(', '))}`);
      this.remaining = Number(value);
      if (this.remaining > this.maxBodyBytes) this.fail(`Content-Length ${this.remaining} exceeds the ${this.maxBodyBytes}-byte limit`);
      this.state = 'length';
      if (this.remaining === 0) this.finish();
    } else if (this.isRequest) {
      // RFC 9112 §6.3 item 7: a request without either field has no body.
      this.finish();
    } else {
      // RFC 9112 §6.3 item 8: no length given, the body runs to the end of the connection.
      this.state = 'close';
    }
  }

  private addBody(bytes: Uint8Array): void {
    this.bodyBytes += bytes.length;
    if (this.bodyBytes > this.maxBodyBytes) this.fail(`body larger than ${this.maxBodyBytes} bytes`);
    this.body.push(bytes);
  }

  private finish(): void {
    const head = this.head;
    if (head === undefined) this.fail('no response head');
    const body = new Uint8Array(this.bodyBytes);
    let at = 0;
    for (const part of this.body) {
      body.set(part, at);
      at += part.length;
    }
    this.result = { head, body };
    this.state = 'done';
  }
}

/** Parses one HTTP/1.1 response (the UPnP client's side). */
export class HttpResponseParser extends HttpMessageParser {
  constructor(options: HttpParserOptions = {}) {
    super('response', options);
  }
}

/** Parses one HTTP/1.1 request (the gateway server's side); a request without a length has no body. */
export class HttpRequestParser extends HttpMessageParser {
  constructor(options: HttpParserOptions = {}) {
    super('request', options);
  }
}
