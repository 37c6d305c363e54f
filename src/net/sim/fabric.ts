// What hosts, routers and network segments need from the world that holds them: the
// shared clock, randomness and trace, packet numbering, name and address bookkeeping, and
// transmit() — one hop across a segment, through the links at both ends.
import type { Logger } from '../types.ts';
import type { SimClock } from './clock.ts';
import type { Link } from './link.ts';
import type { SimPacket } from './packet.ts';
import type { SimRandom } from './random.ts';
import type { PacketTrace } from './trace.ts';

/** A node's connection to a segment. */
export interface Attachment {
  /** Host or router name, for the trace. */
  readonly name: string;
  /** The link a packet crosses to or from this node; undefined: a perfect one. */
  readonly link: Link | undefined;
  /** The node itself, to tell attachments of one node apart from others. */
  readonly node: object;
  /** A packet reaches the node. */
  arrive(packet: SimPacket): void;
}

/** A segment (the internet, or a router's LAN) as routing sees it. */
export interface Wire {
  readonly name: string;
  /** Where each address on or behind the segment is handed. */
  readonly routes: ReadonlyMap<string, Attachment>;
  /** Where packets for any other address go: the owning router (none on the internet). */
  readonly gateway: Attachment | undefined;
}

/** The world's services. */
export interface Fabric {
  readonly clock: SimClock;
  readonly random: SimRandom;
  readonly trace: PacketTrace;
  readonly logger: Logger;
  readonly tcpMssBytes: number;
  readonly tcpHighWaterBytes: number;
  /** A fresh packet number. */
  nextPacketId(): number;
  /** Carries `packet` from `from` across `wire` to whatever owns its destination. */
  transmit(packet: SimPacket, wire: Wire, from: Attachment): void;
  /** A unique node name: `wanted`, or `prefix` + a number. Throws when `wanted` is taken. */
  claimName(prefix: string, wanted: string | undefined): string;
  /** Marks an explicitly given address as used. Throws when it is no IP address or taken. */
  claimAddress(address: string): string;
  /** Addresses in use anywhere (pools skip them). */
  readonly takenAddresses: Set<string>;
  /** The next router number (its LAN plan). */
  nextRouterIndex(): number;
  /** Remembers a node so the world can find and close it. */
  adopt(node: { readonly name: string; destroy(): void }): void;
}
