// StreamSocket in the simulated world: a small reliable, in-order TCP. SYN, SYN-ACK, DATA,
// FIN and RST travel as packets through the same routers as UDP (so NATs map and filter
// them), DATA is cut into MSS-sized segments with sequence numbers and put back in order
// at the receiver; loss is not modelled for segments (link.ts), so nothing retransmits.
// TLS is a modelled handshake (hello, server hello with the certificate, finished): the
// client trusts the server when its `ca` is the server's certificate text, or when
// rejectUnauthorized is false. Behaviour follows net/node's NodeStreamSocket as the
// compliance suite holds both to: bytes wait while no onData is set, the end is seen once
// they are read, close() with unread bytes resets the peer.
import { NatkitError, abortError } from '../../util/index.ts';
import { formatEndpoint } from '../endpoint.ts';
import { StreamEnd, type Ended } from '../stream-end.ts';
import type { Clock, Endpoint, StreamSocket, Timer, TlsClientOptions } from '../types.ts';
import type { FlowEnd, SimPacket, TcpFlag, TcpSegment } from './packet.ts';
import { socketError } from './ports.ts';

/** What a stream needs from its host. */
export interface StreamHost {
  readonly clock: Clock;
  /** Largest DATA segment, bytes. */
  readonly mssBytes: number;
  /** write() returns false once this many written bytes are unread by the peer. */
  readonly highWaterBytes: number;
  /** Puts a segment on the way. */
  emitTcp(src: Endpoint, dst: Endpoint, tcp: TcpSegment, data?: Uint8Array): void;
  /** The stream has ended: forget its 4-tuple and port. */
  forget(stream: SimStream): void;
}

/** Server side: what the listener wants to know. */
export interface StreamAcceptor {
  /** The certificate a TLS listener presents; undefined for plain TCP. */
  readonly cert: string | undefined;
  /** The stream is ready for the application (after the TLS handshake for TLS). */
  ready(stream: SimStream): void;
  /** The stream has ended. */
  gone(stream: SimStream): void;
}

type State = 'syn-sent' | 'tls-client' | 'tls-server' | 'open' | 'ended';

interface Connecting {
  readonly resolve: (stream: StreamSocket) => void;
  readonly reject: (err: Error) => void;
  readonly tls: TlsClientOptions | undefined;
  readonly cleanup: () => void;
}

/** Options of SimStream.connect(). */
export interface StreamConnectOptions {
  readonly tls?: TlsClientOptions;
  readonly timeoutMs: number;
  readonly signal?: AbortSignal;
}

const text = (pem: string | Uint8Array): string => (typeof pem === 'string' ? pem : new TextDecoder().decode(pem));

/** One end of a simulated stream. */
export class SimStream implements StreamSocket, FlowEnd {
  readonly local: Endpoint;
  readonly remote: Endpoint;
  /** Bytes this end's application has read (the peer's flow control looks here). */
  consumedBytes = 0;
  private isSecure = false;
  private readonly host: StreamHost;
  private readonly acceptor: StreamAcceptor | undefined;
  private state: State;
  private peer: FlowEnd | undefined;
  private writtenBytes = 0;
  private sendSeq = 0;
  private recvSeq = 0;
  private readonly early = new Map<number, SimPacket>();
  private readonly inbox: Uint8Array[] = [];
  private finReceived = false;
  private dataHandler: ((data: Uint8Array) => void) | undefined;
  private readonly end = new StreamEnd();
  private closing: Promise<void> | undefined;
  private connecting: Connecting | undefined;

  /** A client end (then connect()) or, with `acceptor` and the SYN's sender, a server end. */
  constructor(host: StreamHost, local: Endpoint, remote: Endpoint, server?: { acceptor: StreamAcceptor; peer: FlowEnd | undefined }) {
    this.host = host;
    this.local = local;
    this.remote = remote;
    this.acceptor = server?.acceptor;
    this.peer = server?.peer;
    this.state = server === undefined ? 'syn-sent' : server.acceptor.cert === undefined ? 'open' : 'tls-server';
  }

  get secure(): boolean {
    return this.isSecure;
  }

  get closed(): boolean {
    return this.closing !== undefined || this.end.ended !== undefined;
  }

  /** Client: sends SYN and settles when the connection (and TLS handshake) is up. */
  connect(options: StreamConnectOptions): Promise<StreamSocket> {
    return new Promise<StreamSocket>((resolve, reject) => {
      const { signal, tls, timeoutMs } = options;
      const target = formatEndpoint(this.remote);
      const onAbort = (): void => this.failConnect(abortError(signal, 'connectStream'));
      const timer: Timer = this.host.clock.setTimer(timeoutMs, () =>
        this.failConnect(new NatkitError('ERR_TIMEOUT', `connect to ${target}: no ${tls === undefined ? 'connection' : 'TLS handshake'} within ${timeoutMs} ms`)));
      const cleanup = (): void => {
        timer.cancel();
        signal?.removeEventListener('abort', onAbort);
      };
      this.connecting = { resolve, reject, tls, cleanup };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.host.emitTcp(this.local, this.remote, { flag: 'SYN', seq: -1, end: this });
    });
  }

  /** Server: answers the SYN. */
  acceptSyn(): void {
    this.host.emitTcp(this.local, this.remote, { flag: 'SYN-ACK', seq: -1, end: this });
  }

  write(data: Uint8Array): boolean {
    if (this.closed || this.state !== 'open') return false;
    for (let at = 0; at < data.length; at += this.host.mssBytes) {
      this.send('DATA', Uint8Array.from(data.subarray(at, at + this.host.mssBytes)));
    }
    this.writtenBytes += data.length;
    return this.writtenBytes - (this.peer?.consumedBytes ?? 0) < this.host.highWaterBytes;
  }

  onData(handler: ((data: Uint8Array) => void) | undefined): void {
    this.dataHandler = handler;
    // Like resuming a paused socket: what waited is delivered soon, not inside this call.
    if (handler !== undefined && (this.inbox.length > 0 || this.finReceived)) queueMicrotask(() => this.flush());
  }

  onClose(handler: ((error?: Error) => void) | undefined): void {
    this.end.onClose(handler);
  }

  close(): Promise<void> {
    if (this.closing === undefined) {
      this.closing = Promise.resolve();
      if (this.end.ended === undefined) {
        // Unread bytes make a real TCP answer close() with RST instead of FIN.
        if (this.inbox.length > 0) this.host.emitTcp(this.local, this.remote, { flag: 'RST', seq: -1 });
        else this.send('FIN');
        this.finish({}, true);
      }
    }
    return this.closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /** Ends at once without telling the peer (the world is closing). */
  destroy(): void {
    this.closing ??= Promise.resolve();
    this.failConnect(new NatkitError('ERR_CLOSED', 'the simulated world closed'), false);
    this.finish({}, true);
  }

  /** A segment for this connection arrives. */
  receive(packet: SimPacket): void {
    const seg = packet.tcp;
    if (seg === undefined || this.end.ended !== undefined) return;
    if (seg.flag === 'RST') {
      this.reset();
      return;
    }
    if (seg.flag === 'SYN-ACK') {
      this.established(seg);
      return;
    }
    if (seg.seq < this.recvSeq) return; // a duplicate, or a repeated SYN
    if (seg.seq > this.recvSeq) {
      this.early.set(seg.seq, packet); // overtook an earlier segment: wait for it
      return;
    }
    for (let next: SimPacket | undefined = packet; next !== undefined && this.end.ended === undefined; next = this.early.get(this.recvSeq)) {
      this.early.delete(this.recvSeq);
      this.recvSeq++;
      this.inOrder(next);
    }
  }

  private send(flag: TcpFlag, data?: Uint8Array, cert?: string): void {
    this.host.emitTcp(this.local, this.remote, { flag, seq: this.sendSeq++, ...(cert !== undefined && { cert }) }, data);
  }

  private established(seg: TcpSegment): void {
    if (this.state !== 'syn-sent') return;
    this.peer = seg.end;
    if (this.connecting?.tls !== undefined) {
      this.state = 'tls-client';
      this.send('TLS-HELLO');
    } else {
      this.open();
    }
  }

  private open(): void {
    this.state = 'open';
    const connecting = this.connecting;
    this.connecting = undefined;
    connecting?.cleanup();
    connecting?.resolve(this);
  }

  private inOrder(packet: SimPacket): void {
    const flag = packet.tcp?.flag;
    switch (flag) {
      case 'DATA':
        if (this.state === 'tls-server') {
          // Plain bytes to a TLS server: it answers with an alert and closes.
          this.host.emitTcp(this.local, this.remote, { flag: 'RST', seq: -1 });
          this.finish({ error: socketError(`stream from ${formatEndpoint(this.remote)} failed: not a TLS handshake`, 'EPROTO') }, false);
          return;
        }
        this.inbox.push(packet.data);
        this.flush();
        return;
      case 'FIN':
        this.finReceived = true;
        this.flush();
        return;
      case 'TLS-HELLO':
        // A plain server would read a ClientHello as bytes; not modelled, it stays silent.
        if (this.state === 'tls-server') this.send('TLS-SERVER-HELLO', undefined, this.acceptor?.cert);
        return;
      case 'TLS-SERVER-HELLO':
        this.verifyServer(packet.tcp?.cert ?? '');
        return;
      case 'TLS-FINISHED':
        if (this.state !== 'tls-server') return;
        this.isSecure = true;
        this.state = 'open';
        this.acceptor?.ready(this);
        return;
      case 'TLS-ALERT':
        this.failConnect(socketError(`connect to ${formatEndpoint(this.remote)} failed: TLS alert`, 'EPROTO'));
        this.finish({ error: socketError(`stream from ${formatEndpoint(this.remote)} failed: TLS alert`, 'EPROTO') }, false);
        return;
      default:
        return;
    }
  }

  /** Client: trusts the certificate when the caller's CA is it, or when told not to check. */
  private verifyServer(cert: string): void {
    const tls = this.connecting?.tls;
    if (this.state !== 'tls-client' || tls === undefined) return;
    if (tls.rejectUnauthorized === false || (tls.ca !== undefined && text(tls.ca) === cert)) {
      this.send('TLS-FINISHED');
      this.isSecure = true;
      this.open();
      return;
    }
    this.send('TLS-ALERT');
    this.failConnect(socketError(`connect to ${formatEndpoint(this.remote)} failed: certificate not trusted`, 'CERT_UNTRUSTED'), false);
  }

  /** RST: refused while connecting, reset afterwards. */
  private reset(): void {
    if (this.connecting !== undefined) {
      const refused = this.state === 'syn-sent';
      this.failConnect(socketError(`connect to ${formatEndpoint(this.remote)} failed: ${refused ? 'connection refused' : 'reset during the TLS handshake'}`, refused ? 'ECONNREFUSED' : 'ECONNRESET'), false);
      return;
    }
    this.finish({ error: socketError(`stream to ${formatEndpoint(this.remote)} failed: connection reset by peer`, 'ECONNRESET') }, false);
  }

  /** Rejects a pending connect and ends the stream quietly (nobody holds it yet). */
  private failConnect(err: Error, sendReset = true): void {
    const connecting = this.connecting;
    if (connecting === undefined) return;
    this.connecting = undefined;
    connecting.cleanup();
    if (sendReset) this.host.emitTcp(this.local, this.remote, { flag: 'RST', seq: -1 });
    this.finish({ error: err }, false);
    connecting.reject(err);
  }

  /** Hands waiting bytes to the reader; the end counts once they are all read. */
  private flush(): void {
    while (this.dataHandler !== undefined && this.end.ended === undefined) {
      const chunk = this.inbox.shift();
      if (chunk === undefined) break;
      this.consumedBytes += chunk.length;
      this.dataHandler(chunk);
    }
    if (this.finReceived && this.inbox.length === 0 && this.dataHandler !== undefined) this.finish({}, false);
  }

  /** The stream has ended: forget it and tell the close handler (later when the application itself closed). */
  private finish(ended: Ended, notifyLater: boolean): void {
    if (this.end.ended !== undefined) return;
    this.state = 'ended';
    this.inbox.length = 0;
    this.early.clear();
    this.host.forget(this);
    this.acceptor?.gone(this);
    this.end.finish(ended, { later: notifyLater });
  }
}
