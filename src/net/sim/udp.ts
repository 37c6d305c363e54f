// PacketSocket in the simulated world. It behaves like net/node's NodeUdpSocket as the
// compliance suite (test/compliance/network.ts) holds both to: sends never throw and
// count failures, counters move even without a receiver, close is idempotent.
import type { Endpoint, PacketHandler, PacketSocket, SocketStats } from '../types.ts';
import type { SimProto } from './packet.ts';

/** Largest UDP payload per family (65535 minus IP and UDP headers); larger sends fail like EMSGSIZE. */
const MAX_PAYLOAD = { 4: 65_507, 6: 65_527 } as const;

/** What a socket needs from its host. */
export interface UdpHost {
  /** Source address for a socket bound to `local` sending to `to`; undefined when there is no route. */
  sourceAddress(local: Endpoint, to: Endpoint): string | undefined;
  /** Puts a packet on the way (copying nothing: `data` is the packet's own). */
  emit(proto: SimProto, src: Endpoint, dst: Endpoint, data: Uint8Array): void;
  /** Releases the port. */
  release(socket: SimUdpSocket): void;
}

/** A bound datagram socket of a simulated host. */
export class SimUdpSocket implements PacketSocket {
  readonly local: Endpoint;
  readonly stats: SocketStats = { packetsIn: 0, packetsOut: 0, bytesIn: 0, bytesOut: 0, sendErrors: 0 };
  private readonly host: UdpHost;
  private handler: PacketHandler | undefined;
  private closing: Promise<void> | undefined;

  constructor(host: UdpHost, local: Endpoint) {
    this.host = host;
    this.local = local;
  }

  get closed(): boolean {
    return this.closing !== undefined;
  }

  send(data: Uint8Array, to: Endpoint): void {
    const source = this.closing === undefined && to.family === this.local.family && to.port > 0 && data.length <= MAX_PAYLOAD[to.family]
      ? this.host.sourceAddress(this.local, to)
      : undefined;
    if (source === undefined) {
      this.stats.sendErrors++;
      return;
    }
    this.stats.packetsOut++;
    this.stats.bytesOut += data.length;
    this.host.emit('udp', { address: source, port: this.local.port, family: this.local.family }, to, Uint8Array.from(data));
  }

  onPacket(handler: PacketHandler | undefined): void {
    this.handler = handler;
  }

  /** A datagram arrives (called by the host). */
  deliver(data: Uint8Array, from: Endpoint): void {
    if (this.closing !== undefined) return;
    this.stats.packetsIn++;
    this.stats.bytesIn += data.length;
    this.handler?.(data, from);
  }

  close(): Promise<void> {
    if (this.closing === undefined) {
      this.closing = Promise.resolve();
      this.handler = undefined;
      this.host.release(this);
    }
    return this.closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
