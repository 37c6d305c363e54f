// The UDP socket `natkit serve` shares between STUN, TURN and rendezvous, so a peer that
// registers from the socket it measured with is seen at the same mapping by all three.
// PacketMux splits by first byte (RFC 7983 §7): 0–3 STUN, 64–79 ChannelData, 0xD0
// rendezvous. STUN messages are split once more by method: Binding goes to the STUN
// server (which knows the RFC 5780 layout and answers CHANGE-REQUEST), every other method
// to TURN, so no Binding is answered twice.
import { MUX_STUN, MUX_TURN_CHANNEL, PacketMux, type Endpoint, type PacketHandler, type PacketSocket, type SocketStats } from '../net/index.ts';
import { MUX_RENDEZVOUS } from '../rendezvous/index.ts';
import { BINDING, methodOf } from '../stun/index.ts';

/** The views of one shared socket, one per component. */
export interface SharedSocket {
  readonly mux: PacketMux;
  /** Binding requests (and everything STUN-shaped when TURN is off). */
  readonly stun: PacketSocket;
  /** Other STUN methods and ChannelData; undefined without TURN. */
  readonly turn: PacketSocket | undefined;
  /** Rendezvous frames; undefined without rendezvous. */
  readonly rendezvous: PacketSocket | undefined;
}

/** Shares `socket` (taking its packet handler) between the components asked for. */
export function shareSocket(socket: PacketSocket, components: { readonly turn: boolean; readonly rendezvous: boolean }): SharedSocket {
  const mux = new PacketMux(socket);
  const stun = new FedSocket(socket);
  const turn = components.turn ? new FedSocket(socket) : undefined;
  mux.route(MUX_STUN, {
    // RFC 8489 §5: the method is in the 14-bit type of the first two bytes.
    onPacket: (data, from) => (turn === undefined || methodOf(((data[0] ?? 0) << 8) | (data[1] ?? 0)) === BINDING ? stun : turn).deliver(data, from),
  });
  if (turn !== undefined) mux.route(MUX_TURN_CHANNEL, { onPacket: (data, from) => turn.deliver(data, from) });
  return { mux, stun, turn, rendezvous: components.rendezvous ? mux.route(MUX_RENDEZVOUS) : undefined };
}

/** A view of a shared socket whose datagrams are handed in by `deliver`; sends go straight out. */
class FedSocket implements PacketSocket {
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

  /** The shared socket's counters. */
  get stats(): SocketStats {
    return this.socket.stats;
  }

  send(data: Uint8Array, to: Endpoint): void {
    this.socket.send(data, to);
  }

  onPacket(handler: PacketHandler | undefined): void {
    this.handler = handler;
  }

  deliver(data: Uint8Array, from: Endpoint): void {
    if (!this.isDetached) this.handler?.(data, from);
  }

  /** Stops delivering; the shared socket stays open (its owner closes it). Idempotent. */
  close(): Promise<void> {
    this.isDetached = true;
    this.handler = undefined;
    return Promise.resolve();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
