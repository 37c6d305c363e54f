// NodeNetwork: the Network of DESIGN.md §2 over real sockets (node:dgram, node:net, node:tls).
import type { BindOptions, ConnectOptions, Endpoint, ListenOptions, Logger, Network, PacketSocket, StreamListener, StreamSocket } from '../types.ts';
import { silentLogger } from './logger.ts';
import { connectStream, listenStream } from './stream.ts';
import { NodeUdpSocket } from './udp.ts';

/** Settings shared by every socket a NodeNetwork makes. */
export interface NodeNetworkOptions {
  /** UDP SO_RCVBUF and SO_SNDBUF in bytes (the kernel may clamp it); 0 keeps the OS default. @default 4194304 */
  readonly udpBufferBytes?: number;
  /** Receives socket errors that have no caller to reject. @default silentLogger */
  readonly logger?: Logger;
}

/** Real sockets. IPv4 and IPv6 are kept apart: a socket bound to '::' is IPv6-only. */
export class NodeNetwork implements Network {
  private readonly logger: Logger;
  private readonly udpBufferBytes: number;

  constructor(options: NodeNetworkOptions = {}) {
    this.logger = options.logger ?? silentLogger;
    this.udpBufferBytes = options.udpBufferBytes ?? 4 * 1024 * 1024;
  }

  bindUdp(options: BindOptions = {}): Promise<PacketSocket> {
    return NodeUdpSocket.bind({ ...options, bufferBytes: this.udpBufferBytes, logger: this.logger });
  }

  listenStream(options: ListenOptions, onConnection: (stream: StreamSocket) => void): Promise<StreamListener> {
    return listenStream(options, onConnection, this.logger);
  }

  connectStream(to: Endpoint, options?: ConnectOptions): Promise<StreamSocket> {
    return connectStream(to, options);
  }
}
