// PacketSocket over node:dgram. One socket per family: udp4 for IPv4 bind addresses,
// udp6 with ipv6Only for IPv6 ones, so an Endpoint's family always matches its socket
// and no IPv4-mapped addresses appear (RFC 4291 §2.5.5.2; RFC 3493 §5.3 IPV6_V6ONLY).
import { createSocket, type Socket } from 'node:dgram';
import { NatkitError, abortError, throwIfAborted } from '../../util/index.ts';
import { endpoint, formatEndpoint } from '../endpoint.ts';
import type { BindOptions, Endpoint, Logger, PacketHandler, PacketSocket, SocketStats } from '../types.ts';

/** Settings of NodeUdpSocket beyond BindOptions. */
export interface UdpSocketOptions {
  /** SO_RCVBUF and SO_SNDBUF in bytes; the kernel may clamp it (net.core.rmem_max). 0 keeps the OS default. @default 4194304 */
  readonly bufferBytes?: number;
  /** Receives socket errors that have no caller to reject. @default silentLogger */
  readonly logger?: Logger;
}

/** Most distinct sender addresses whose normalised form is cached per socket. */
const ADDRESS_CACHE_SIZE = 1024;

/** A bound node:dgram socket behind the PacketSocket interface. */
export class NodeUdpSocket implements PacketSocket {
  readonly local: Endpoint;
  readonly stats: SocketStats = { packetsIn: 0, packetsOut: 0, bytesIn: 0, bytesOut: 0, sendErrors: 0 };
  private readonly socket: Socket;
  private handler: PacketHandler | undefined;
  private closing: Promise<void> | undefined;
  /** rinfo.address → normalised address and family: endpoint() per packet would parse IPv6 text each time. */
  private readonly addresses = new Map<string, Pick<Endpoint, 'address' | 'family'>>();
  /**
   * Completion of every send, one function rather than a closure per datagram. node:dgram
   * reports a send's failure (EACCES, EMSGSIZE, ENOBUFS…) only to its callback, never as
   * an 'error' event, so the counters need one on every send.
   */
  private readonly sent = (err: Error | null, bytes: number): void => {
    if (err) {
      this.stats.sendErrors++;
    } else {
      this.stats.packetsOut++;
      this.stats.bytesOut += bytes;
    }
  };

  /** Binds a socket; rejects with ERR_INVALID_ARGUMENT, ERR_SOCKET or ERR_ABORTED. */
  static async bind(options: BindOptions & UdpSocketOptions = {}): Promise<NodeUdpSocket> {
    throwIfAborted(options.signal, 'bindUdp');
    const want = endpoint(options.address ?? '0.0.0.0', options.port ?? 0);
    const socket = createSocket({ type: want.family === 6 ? 'udp6' : 'udp4', ipv6Only: want.family === 6 });
    await new Promise<void>((resolve, reject) => {
      const signal = options.signal;
      const done = (err?: Error): void => {
        socket.off('error', onError);
        socket.off('listening', onListening);
        signal?.removeEventListener('abort', onAbort);
        if (err === undefined) {
          resolve();
          return;
        }
        socket.close();
        reject(err);
      };
      const onError = (err: Error): void =>
        done(new NatkitError('ERR_SOCKET', `bind udp ${formatEndpoint(want)} failed: ${err.message}`, { cause: err }));
      const onListening = (): void => done();
      const onAbort = (): void => done(abortError(signal, 'bindUdp'));
      socket.once('error', onError);
      socket.once('listening', onListening);
      signal?.addEventListener('abort', onAbort, { once: true });
      socket.bind({ address: want.address, port: want.port, exclusive: true });
    });
    const bufferBytes = options.bufferBytes ?? 4 * 1024 * 1024;
    const logger = options.logger;
    if (bufferBytes > 0) {
      // Bursty STUN/TURN traffic overflows the default ~200 KiB buffers; a refusal
      // (unprivileged container, odd OS) only costs throughput, so bind anyway.
      for (const set of [(n: number) => socket.setRecvBufferSize(n), (n: number) => socket.setSendBufferSize(n)]) {
        try {
          set(bufferBytes);
        } catch (err) {
          logger?.debug('udp buffer size refused', { bufferBytes, error: err });
        }
      }
    }
    return new NodeUdpSocket(socket, logger);
  }

  private constructor(socket: Socket, logger: Logger | undefined) {
    this.socket = socket;
    const bound = socket.address();
    this.local = endpoint(bound.address, bound.port);
    socket.on('message', (data, rinfo) => {
      this.stats.packetsIn++;
      this.stats.bytesIn += data.length;
      const handler = this.handler;
      if (handler === undefined) return;
      const from = this.normalise(rinfo.address);
      handler(data, { address: from.address, port: rinfo.port, family: from.family });
    });
    // Send errors reach the send callback; what is left (receive errors) has nobody to reject.
    socket.on('error', (err) => logger?.warn('udp socket error', { local: this.local, error: err }));
  }

  get closed(): boolean {
    return this.closing !== undefined;
  }

  send(data: Uint8Array, to: Endpoint): void {
    // A udp4 socket cannot reach an IPv6 endpoint (and the reverse): a path failure, counted.
    if (this.closing !== undefined || to.family !== this.local.family) {
      this.stats.sendErrors++;
      return;
    }
    try {
      this.socket.send(data, to.port, to.address, this.sent);
    } catch {
      // Synchronous refusals (bad port, socket closed underneath): counted, never thrown.
      this.stats.sendErrors++;
    }
  }

  onPacket(handler: PacketHandler | undefined): void {
    this.handler = handler;
  }

  close(): Promise<void> {
    this.closing ??= new Promise<void>((resolve) => {
      this.handler = undefined;
      this.socket.close(() => resolve());
    });
    return this.closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /** Normalised form of a sender address, cached. */
  private normalise(address: string): Pick<Endpoint, 'address' | 'family'> {
    let normal = this.addresses.get(address);
    if (normal === undefined) {
      const e = endpoint(address, 0);
      normal = { address: e.address, family: e.family };
      if (this.addresses.size >= ADDRESS_CACHE_SIZE) this.addresses.clear();
      this.addresses.set(address, normal);
    }
    return normal;
  }
}
