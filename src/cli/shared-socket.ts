// The UDP socket `natkit serve` shares between STUN, TURN and rendezvous, so a peer that
// registers from the socket it measured with is seen at the same mapping by all three.
// PacketMux splits by first byte (RFC 7983 §7): 0–3 STUN, 64–79 ChannelData (64–127 with
// legacy channels), 0xD0 rendezvous. STUN messages are split once more by method: Binding
// goes to the STUN server (which knows the RFC 5780 layout and answers CHANGE-REQUEST),
// every other method to TURN, so no Binding is answered twice.
import { FedSocket, MUX_STUN, PacketMux, type PacketSocket } from '../net/index.ts';
import { MUX_RENDEZVOUS } from '../rendezvous/index.ts';
import { BINDING, methodOf } from '../stun/index.ts';
import { channelDataRange } from '../turn/index.ts';

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

/** What shares the socket. */
export interface SharedComponents {
  readonly turn: boolean;
  readonly rendezvous: boolean;
  /** TURN accepts RFC 5766 §11's channel numbers, so ChannelData also starts with 0x50–0x7F. @default false */
  readonly legacyChannels?: boolean;
}

/** Shares `socket` (taking its packet handler) between the components asked for. */
export function shareSocket(socket: PacketSocket, components: SharedComponents): SharedSocket {
  const mux = new PacketMux(socket);
  const stun = new FedSocket(socket);
  const turn = components.turn ? new FedSocket(socket) : undefined;
  mux.route(MUX_STUN, {
    // RFC 8489 §5: the method is in the 14-bit type of the first two bytes.
    onPacket: (data, from) => (turn === undefined || methodOf(((data[0] ?? 0) << 8) | (data[1] ?? 0)) === BINDING ? stun : turn).deliver(data, from),
  });
  // RFC 7983 §7 leaves 80–127 unassigned: with legacy channels (RFC 5766 §11's 0x4000–0x7FFF)
  // TURN claims them besides 64–79, and nothing else may route them.
  if (turn !== undefined) mux.route(channelDataRange({ legacyChannels: components.legacyChannels ?? false }), { onPacket: turn.deliver });
  return { mux, stun, turn, rendezvous: components.rendezvous ? mux.route(MUX_RENDEZVOUS) : undefined };
}
