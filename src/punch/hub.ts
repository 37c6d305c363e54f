// Several punches on one socket: a room gives one peer a connection to each member, all
// from the socket its candidates name (a new socket would be a new NAT mapping). Each
// punch gets a FedSocket view; a check request goes to the punch whose ufrag it names
// (RFC 8489 §9.1: USERNAME "receiver-ufrag:sender-ufrag"); responses and frames go to
// every punch, each of which keeps only its own (its transactions, its validated pairs).
import { FedSocket, type Endpoint, type PacketSocket } from '../net/index.ts';
import { BINDING, StunClass, StunDecodeError, USERNAME, decodeMessage, looksLikeStun } from '../stun/index.ts';

/** Demultiplexes one socket's check traffic among the punches running on it. */
export class CheckHub {
  private readonly socket: PacketSocket;
  /** Local ufrag → the view of the punch that owns it. */
  private readonly views = new Map<string, FedSocket>();

  constructor(socket: PacketSocket) {
    this.socket = socket;
  }

  /** A view for the punch whose local ufrag is `ufrag`; closing it removes it. */
  view(ufrag: string): PacketSocket {
    const view = new FedSocket(this.socket);
    this.views.set(ufrag, view);
    return view;
  }

  /** Hands a datagram to the punch or punches it may belong to. */
  readonly deliver = (data: Uint8Array, from: Endpoint): void => {
    for (const [ufrag, view] of this.views) if (view.closed) this.views.delete(ufrag);
    const target = requestUfrag(data);
    if (target !== undefined) {
      this.views.get(target)?.deliver(data, from);
      return;
    }
    for (const view of [...this.views.values()]) view.deliver(data, from);
  };
}

/** The receiver's ufrag of a check request, or undefined for anything else. */
function requestUfrag(data: Uint8Array): string | undefined {
  if (!looksLikeStun(data)) return undefined;
  try {
    const msg = decodeMessage(data, { allowLegacy: false });
    if (msg.method !== BINDING || msg.cls !== StunClass.REQUEST) return undefined;
    const username = msg.get(USERNAME);
    if (username === undefined) return undefined;
    const colon = username.indexOf(':');
    return colon < 0 ? username : username.slice(0, colon);
  } catch (err) {
    // Undecodable: every punch sees it and counts it as dropped.
    if (err instanceof StunDecodeError) return undefined;
    throw err;
  }
}
