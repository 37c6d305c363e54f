// A small, strict HTTP/1.1 client for UPnP description and control (UDA 1.1 §2.1, §3.2):
// one request per connection (Connection: close, RFC 9112 §9.6) over env.network's
// connectStream, so it runs on real sockets and in the simulated world alike. The whole
// exchange — connect, send, every byte of the answer — runs under one deadline, and the
// answer under hard size caps: a gateway that trickles, floods or never finishes gets a
// typed error, never a hang.
import { endpoint, type Endpoint, type Env, type StreamSocket } from '../net/index.ts';
import { NatkitError, isNatkitError } from '../util/index.ts';
import { Deadline } from './upnp-deadline.ts';
import { HttpResponseParser, type HttpResponse } from './upnp-http-parse.ts';

/** One HTTP request. */
export interface HttpRequest {
  readonly method: 'GET' | 'POST';
  /** An http: URL whose host is an IP literal (checked). */
  readonly url: URL;
  /** Extra fields; Host, Connection and Content-Length are set here. */
  readonly fields?: Readonly<Record<string, string>>;
  readonly body?: Uint8Array;
}

/** Options of httpRequest(). */
export interface HttpRequestOptions {
  /** The whole exchange, connect included. @default 5000 */
  readonly timeoutMs?: number;
  /** Largest body accepted. @default 262144 */
  readonly maxBodyBytes?: number;
  /** Largest status line plus fields. @default 16384 */
  readonly maxHeadBytes?: number;
  readonly signal?: AbortSignal;
}

/** A response and the two ends of the connection that carried it. */
export interface HttpExchange {
  readonly response: HttpResponse;
  /** Our address toward the server: the LAN address a port mapping should point at. */
  readonly local: Endpoint;
  readonly remote: Endpoint;
}

/** The endpoint an http: URL names; throws ERR_INVALID_ARGUMENT for anything else. */
export function urlEndpoint(url: URL): Endpoint {
  if (url.protocol !== 'http:') throw new NatkitError('ERR_INVALID_ARGUMENT', `expected an http: URL, got ${url.protocol} in ${url.href}`);
  // WHATWG URL keeps IPv6 literals bracketed in hostname.
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  try {
    return endpoint(host, url.port === '' ? 80 : Number(url.port));
  } catch (err) {
    throw new NatkitError('ERR_INVALID_ARGUMENT', `expected an IP address as the host of ${url.href}, got ${JSON.stringify(url.hostname)}`, { cause: err });
  }
}

/** Serialises the request head and body. */
function encodeRequest(request: HttpRequest): Uint8Array {
  const target = `${request.url.pathname || '/'}${request.url.search}`;
  const body = request.body ?? new Uint8Array(0);
  const lines = [`${request.method} ${target} HTTP/1.1`, `Host: ${request.url.host}`];
  for (const [name, value] of Object.entries(request.fields ?? {})) {
    if (/[\r\n\0]/.test(name + value)) throw new NatkitError('ERR_INVALID_ARGUMENT', `HTTP field ${JSON.stringify(name)} holds CR, LF or NUL`);
    lines.push(`${name}: ${value}`);
  }
  if (request.method === 'POST' || body.length > 0) lines.push(`Content-Length: ${body.length}`);
  lines.push('Connection: close', '', '');
  const head = new TextEncoder().encode(lines.join('\r\n'));
  const out = new Uint8Array(head.length + body.length);
  out.set(head, 0);
  out.set(body, head.length);
  return out;
}

/**
 * Sends one request and reads one response. Rejects with ERR_TIMEOUT or ERR_ABORTED (the
 * deadline or the signal), ERR_SOCKET (connect or stream failure), ERR_HTTP_DECODE
 * (malformed, truncated or oversized response) or ERR_INVALID_ARGUMENT. Any status is a
 * value: the caller decides what a 500 means.
 */
export async function httpRequest(env: Env, request: HttpRequest, options: HttpRequestOptions = {}): Promise<HttpExchange> {
  const to = urlEndpoint(request.url);
  const bytes = encodeRequest(request);
  const timeoutMs = options.timeoutMs ?? 5000;
  using deadline = new Deadline(env.clock, timeoutMs, options.signal, `HTTP ${request.method} ${request.url.href}`);
  let stream: StreamSocket;
  try {
    stream = await env.network.connectStream(to, { timeoutMs: deadline.remainingMs, signal: deadline.signal });
  } catch (err) {
    throw deadline.explain(err);
  }
  try {
    deadline.check();
    const parser = new HttpResponseParser({
      ...(options.maxBodyBytes !== undefined && { maxBodyBytes: options.maxBodyBytes }),
      ...(options.maxHeadBytes !== undefined && { maxHeadBytes: options.maxHeadBytes }),
    });
    const response = await new Promise<HttpResponse>((resolve, reject) => {
      const settle = (fn: () => HttpResponse | undefined): void => {
        try {
          const done = fn();
          if (done !== undefined) resolve(done);
        } catch (err) {
          reject(err instanceof Error ? err : new NatkitError('ERR_HTTP_DECODE', String(err)));
        }
      };
      const onAbort = (): void => reject(deadline.error ?? new NatkitError('ERR_ABORTED', 'aborted'));
      deadline.signal.addEventListener('abort', onAbort, { once: true });
      stream.onData((chunk) => settle(() => parser.push(chunk)));
      stream.onClose((error) => {
        if (error !== undefined) reject(error);
        else settle(() => parser.end());
      });
      stream.write(bytes);
    }).finally(() => {
      stream.onData(undefined);
      stream.onClose(undefined);
    });
    return { response, local: stream.local, remote: stream.remote };
  } catch (err) {
    if (isNatkitError(err) || deadline.error !== undefined) throw deadline.explain(err);
    throw new NatkitError('ERR_SOCKET', `HTTP ${request.method} ${request.url.href} failed: ${String(err)}`, { cause: err });
  } finally {
    await stream.close();
  }
}
