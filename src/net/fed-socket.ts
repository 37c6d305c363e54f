// A PacketSocket view of a socket whose receiver belongs to someone else (a PacketMux
// route's owner, a TURN client that passes other datagrams through): sends go straight
// out through the socket; datagrams arrive only when the owner hands them to deliver().
// This is how one UDP socket serves STUN, TURN, rendezvous and punching at once.
import type { Endpoint, PacketHandler, PacketSocket, SocketStats } from './types.ts';

/** A view of `socket` fed by its owner through `deliver`. */
export class FedSocket implements PacketSocket {
  private readonly socket: PacketSocket;
  private handler: PacketHandler | undefined;
  private isDetached = false;

  constructor(socket: PacketSocket) {
    this.socket = socket;
  }

  get local(): Endpoint {
    return this.socket.local;
  }

  get closed(): boolean {
    return this.isDetached || this.socket.closed;
  }

  /** The underlying socket's counters. */
  get stats(): SocketStats {
    return this.socket.stats;
  }

  send(data: Uint8Array, to: Endpoint): void {
    this.socket.send(data, to);
  }

  onPacket(handler: PacketHandler | undefined): void {
    this.handler = handler;
  }

  /** Hands a datagram to this view's receiver (a bound PacketHandler: pass it as one). Dropped once closed. */
  readonly deliver: PacketHandler = (data, from) => {
    if (!this.isDetached) this.handler?.(data, from);
  };

  /** Stops delivering; the underlying socket stays open (its owner closes it). Idempotent. */
  close(): Promise<void> {
    this.isDetached = true;
    this.handler = undefined;
    return Promise.resolve();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
