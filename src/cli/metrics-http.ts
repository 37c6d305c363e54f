// A Prometheus scrape endpoint for server commands over node:http: GET or HEAD /metrics
// answers the rendered text, every other path 404, other methods 405. One exchange per
// connection (Connection: close), bounded in number and time, so a scraper or a scanner
// cannot hold the listener.
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { endpoint, type Endpoint } from '../net/index.ts';
import { NatkitError } from '../util/index.ts';

/** Options of serveMetrics(). */
export interface MetricsHttpOptions {
  readonly address: string;
  /** 0 lets the system choose. */
  readonly port: number;
  /** The exposition text, rendered at each scrape. */
  readonly render: () => string;
  /** Open connections at most; more are refused. @default 16 */
  readonly maxConnections?: number;
  /** Time for a whole request, headers included. @default 5000 */
  readonly requestTimeoutMs?: number;
}

/** A listening metrics endpoint. */
export interface MetricsHttp {
  readonly local: Endpoint;
  /** Stops listening and drops open connections. */
  close(): Promise<void>;
}

/** Content type of the Prometheus text format, version 0.0.4. */
const CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/** Listens on `address:port`; rejects with ERR_SOCKET when the port cannot be bound. */
export async function serveMetrics(options: MetricsHttpOptions): Promise<MetricsHttp> {
  const timeout = options.requestTimeoutMs ?? 5000;
  const server = createServer({ requestTimeout: timeout, headersTimeout: timeout, keepAlive: false }, (req, res) => {
    res.setHeader('connection', 'close');
    if (new URL(req.url ?? '/', 'http://metrics').pathname !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: try /metrics\n');
    } else if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' }).end('method not allowed\n');
    } else {
      const body = options.render();
      res.writeHead(200, { 'content-type': CONTENT_TYPE, 'content-length': Buffer.byteLength(body) }).end(req.method === 'GET' ? body : undefined);
    }
  });
  server.maxConnections = options.maxConnections ?? 16;
  server.listen(options.port, options.address);
  try {
    // events.once rejects when 'error' comes first (EADDRINUSE, EACCES).
    await once(server, 'listening');
  } catch (cause) {
    server.close();
    throw new NatkitError('ERR_SOCKET', `metrics listener on ${options.address}:${options.port}: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  }
  // A TCP server that is listening has an AddressInfo (a string only for pipes).
  const bound = server.address() as AddressInfo;
  return {
    local: endpoint(bound.address, bound.port),
    close: async () => {
      const closed = once(server, 'close');
      server.close();
      server.closeAllConnections();
      await closed;
    },
  };
}
