// StreamSocket and StreamListener over node:net (TCP) and node:tls (TLS over TCP), the
// stream transports of RFC 8489 §6.2.2–§6.2.3 and RFC 8656 §3.1. One family per listener
// (ipv6Only for IPv6 addresses), every address normalised through endpoint().
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { connect as tlsConnect, createServer as createTlsServer, type TLSSocket } from 'node:tls';
import { NatkitError, abortError, throwIfAborted } from '../../util/index.ts';
import { endpoint, formatEndpoint } from '../endpoint.ts';
import { StreamEnd } from '../stream-end.ts';
import type { ConnectOptions, Endpoint, ListenOptions, Logger, StreamListener, StreamSocket } from '../types.ts';

/** Default of ConnectOptions.timeoutMs. */
const CONNECT_TIMEOUT_MS = 10_000;
/** How long close() waits for queued bytes to drain before destroying the stream. */
const CLOSE_GRACE_MS = 2_000;

/**
 * A connected net.Socket or tls.TLSSocket behind the StreamSocket interface. Incoming
 * bytes wait (the socket is paused, the peer sees TCP flow control) while no onData
 * handler is set; the end of a stream is seen once its bytes have been read.
 */
export class NodeStreamSocket implements StreamSocket {
  readonly local: Endpoint;
  readonly remote: Endpoint;
  readonly secure: boolean;
  private readonly socket: Socket;
  private dataHandler: ((data: Uint8Array) => void) | undefined;
  /** Set once the socket has closed; `error` when it failed. */
  private readonly end = new StreamEnd();
  private lastError: Error | undefined;
  private closing: Promise<void> | undefined;

  /** Wraps a connected socket; throws ERR_SOCKET when it has no addresses (already gone). */
  constructor(socket: Socket, secure: boolean) {
    const { localAddress, localPort, remoteAddress, remotePort } = socket;
    if (localAddress === undefined || localPort === undefined || remoteAddress === undefined || remotePort === undefined) {
      socket.destroy();
      throw new NatkitError('ERR_SOCKET', 'stream closed before its addresses were known');
    }
    this.socket = socket;
    this.secure = secure;
    this.local = endpoint(localAddress, localPort);
    this.remote = endpoint(remoteAddress, remotePort);
    // Small STUN/TURN messages: send at once rather than wait for Nagle.
    socket.setNoDelay(true);
    // Paused until onData sets a receiver, so nothing is lost between accept and handler.
    socket.pause();
    socket.on('data', (chunk: Buffer) => this.dataHandler?.(chunk));
    socket.on('error', (err) => {
      this.lastError = err;
    });
    socket.on('close', (hadError) => {
      const cause = this.lastError;
      this.end.finish(hadError || cause !== undefined
        ? { error: new NatkitError('ERR_SOCKET', `stream to ${formatEndpoint(this.remote)} failed: ${cause?.message ?? 'error'}`, { cause }) }
        : {});
    });
  }

  get closed(): boolean {
    return this.closing !== undefined || this.end.ended !== undefined;
  }

  write(data: Uint8Array): boolean {
    if (this.closed || !this.socket.writable) return false;
    return this.socket.write(data);
  }

  onData(handler: ((data: Uint8Array) => void) | undefined): void {
    this.dataHandler = handler;
    if (handler === undefined) this.socket.pause();
    else this.socket.resume();
  }

  onClose(handler: ((error?: Error) => void) | undefined): void {
    this.end.onClose(handler);
  }

  close(): Promise<void> {
    this.closing ??= new Promise<void>((resolve) => {
      const socket = this.socket;
      if (this.end.ended !== undefined) {
        resolve();
        return;
      }
      // FIN (after TLS close_notify) once queued bytes are out; a peer that never reads
      // must not hold us open, so destroy after a grace period.
      const grace = setTimeout(() => socket.destroy(), CLOSE_GRACE_MS);
      socket.once('close', () => {
        clearTimeout(grace);
        resolve();
      });
      if (!socket.destroyed) socket.end(() => socket.destroy());
    });
    return this.closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/** A listening net.Server or tls.Server; close() also destroys every accepted stream. */
class NodeStreamListener implements StreamListener {
  readonly local: Endpoint;
  private readonly server: Server;
  private readonly sockets: Set<Socket>;
  private closing: Promise<void> | undefined;

  constructor(server: Server, sockets: Set<Socket>) {
    this.server = server;
    this.sockets = sockets;
    const bound = server.address();
    if (bound === null || typeof bound === 'string') throw new NatkitError('ERR_SOCKET', 'listener has no IP address');
    this.local = endpoint(bound.address, bound.port);
  }

  close(): Promise<void> {
    this.closing ??= new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      for (const s of this.sockets) s.destroy();
      this.sockets.clear();
    });
    return this.closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/** Listens for TCP or TLS connections; rejects with ERR_INVALID_ARGUMENT, ERR_SOCKET or ERR_ABORTED. */
export async function listenStream(
  options: ListenOptions,
  onConnection: (stream: StreamSocket) => void,
  logger?: Logger,
): Promise<StreamListener> {
  throwIfAborted(options.signal, 'listenStream');
  const want = endpoint(options.address ?? '0.0.0.0', options.port ?? 0);
  // Raw sockets, so close() also ends connections still in their TLS handshake.
  const sockets = new Set<Socket>();
  const accept = (socket: Socket, secure: boolean): void => {
    let stream: NodeStreamSocket;
    try {
      stream = new NodeStreamSocket(socket, secure);
    } catch (err) {
      logger?.debug('stream gone before accept', { error: err });
      return;
    }
    onConnection(stream);
  };
  const tls = options.tls;
  const server: Server = tls === undefined
    ? createServer((socket) => accept(socket, false))
    : createTlsServer({ cert: bytesOrText(tls.cert), key: bytesOrText(tls.key) }, (socket: TLSSocket) => accept(socket, true));
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  // Failed TLS handshakes are the client's problem; the socket is destroyed by node:tls.
  if (tls !== undefined) server.on('tlsClientError', (err) => logger?.debug('tls handshake failed', { error: err }));
  await new Promise<void>((resolve, reject) => {
    const signal = options.signal;
    const done = (err?: Error): void => {
      server.off('error', onError);
      server.off('listening', onListening);
      signal?.removeEventListener('abort', onAbort);
      if (err === undefined) {
        resolve();
        return;
      }
      // An abort can land while listen() is still resolving its address: close it when it binds.
      if (server.listening) server.close();
      else server.once('listening', () => server.close());
      reject(err);
    };
    const onError = (err: Error): void =>
      done(new NatkitError('ERR_SOCKET', `listen on ${formatEndpoint(want)} failed: ${err.message}`, { cause: err }));
    const onListening = (): void => done();
    const onAbort = (): void => done(abortError(signal, 'listenStream'));
    server.once('error', onError);
    server.once('listening', onListening);
    signal?.addEventListener('abort', onAbort, { once: true });
    server.listen({ host: want.address, port: want.port, ipv6Only: want.family === 6, exclusive: true });
  });
  server.on('error', (err) => logger?.warn('stream listener error', { error: err }));
  return new NodeStreamListener(server, sockets);
}

/** Connects over TCP or TLS; rejects with ERR_TIMEOUT, ERR_ABORTED or ERR_SOCKET (with cause). */
export async function connectStream(to: Endpoint, options: ConnectOptions = {}): Promise<StreamSocket> {
  throwIfAborted(options.signal, 'connectStream');
  const target = endpoint(to.address, to.port);
  const tls = options.tls;
  const base = {
    host: target.address,
    port: target.port,
    family: target.family,
    ...(options.localAddress === undefined ? {} : { localAddress: options.localAddress }),
  };
  const socket: Socket = tls === undefined
    ? createConnection(base)
    : tlsConnect({
        ...base,
        // No default SNI for IP literals: RFC 6066 §3 forbids addresses in server_name.
        ...(tls.servername === undefined ? {} : { servername: tls.servername }),
        ...(tls.ca === undefined ? {} : { ca: bytesOrText(tls.ca) }),
        rejectUnauthorized: tls.rejectUnauthorized ?? true,
      });
  const ready = tls === undefined ? 'connect' : 'secureConnect';
  const timeoutMs = options.timeoutMs ?? CONNECT_TIMEOUT_MS;
  return new Promise<StreamSocket>((resolve, reject) => {
    const signal = options.signal;
    const done = (err?: Error): void => {
      clearTimeout(timer);
      socket.off('error', onError);
      socket.off(ready, onReady);
      signal?.removeEventListener('abort', onAbort);
      if (err === undefined) {
        try {
          resolve(new NodeStreamSocket(socket, tls !== undefined));
        } catch (e) {
          reject(e instanceof Error ? e : new Error(String(e)));
        }
        return;
      }
      socket.destroy();
      reject(err);
    };
    const onError = (err: Error): void =>
      done(new NatkitError('ERR_SOCKET', `connect to ${formatEndpoint(target)} failed: ${err.message}`, { cause: err }));
    const onReady = (): void => done();
    const onAbort = (): void => done(abortError(signal, 'connectStream'));
    const timer = setTimeout(
      () => done(new NatkitError('ERR_TIMEOUT', `connect to ${formatEndpoint(target)}: no ${tls === undefined ? 'connection' : 'TLS handshake'} within ${timeoutMs} ms`)),
      timeoutMs,
    );
    socket.once('error', onError);
    socket.once(ready, onReady);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** PEM given as bytes or text, as node:tls takes it. */
function bytesOrText(pem: string | Uint8Array): string | Buffer {
  return typeof pem === 'string' ? pem : Buffer.from(pem.buffer, pem.byteOffset, pem.byteLength);
}
