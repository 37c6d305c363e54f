// An in-memory PacketSocket for unit tests: records what is sent, and `deliver()` plays
// a datagram in as if it came from the network.
import type { Endpoint, PacketHandler, PacketSocket, SocketStats } from '../../src/net/index.ts';

/** One datagram the code under test sent. */
export interface SentPacket {
  readonly data: Uint8Array;
  readonly to: Endpoint;
}

/** A PacketSocket with no network behind it. */
export class FakePacketSocket implements PacketSocket {
  readonly local: Endpoint;
  readonly stats: SocketStats = { packetsIn: 0, packetsOut: 0, bytesIn: 0, bytesOut: 0, sendErrors: 0 };
  readonly sent: SentPacket[] = [];
  closed = false;
  private handler: PacketHandler | undefined;

  constructor(local: Endpoint = { address: '192.0.2.1', port: 3478, family: 4 }) {
    this.local = local;
  }

  /** Records the datagram; closed sockets and the other family count as sendErrors. */
  send(data: Uint8Array, to: Endpoint): void {
    if (this.closed || to.family !== this.local.family) {
      this.stats.sendErrors++;
      return;
    }
    this.stats.packetsOut++;
    this.stats.bytesOut += data.length;
    this.sent.push({ data: Uint8Array.from(data), to });
  }

  onPacket(handler: PacketHandler | undefined): void {
    this.handler = handler;
  }

  /** Plays in a datagram; returns whether a handler took it. */
  deliver(data: Uint8Array, from: Endpoint): boolean {
    if (this.closed) return false;
    this.stats.packetsIn++;
    this.stats.bytesIn += data.length;
    this.handler?.(data, from);
    return this.handler !== undefined;
  }

  close(): Promise<void> {
    this.closed = true;
    this.handler = undefined;
    return Promise.resolve();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
