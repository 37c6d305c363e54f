// The packet trace: a ring buffer of what happened to recent packets at each hop (sent,
// forwarded, translated, delivered, dropped and why), printed when a simulated test
// fails so the failure can be read packet by packet.
import { formatEndpoint } from '../endpoint.ts';
import type { Clock, Endpoint } from '../types.ts';
import type { SimPacket, SimProto } from './packet.ts';

/** What happened to a packet at one place. */
export type TraceEvent = 'send' | 'forward' | 'translate' | 'hairpin' | 'deliver' | 'drop' | 'duplicate' | 'delay';

/** Why a packet was dropped. */
export type DropReason =
  /** A link lost it (LinkOptions.lossRate). */
  | 'loss'
  /** RFC 4787 §5 filtering refused an inbound packet. */
  | 'filtered'
  /** Inbound to a router's address with no mapping for the port. */
  | 'no-mapping'
  /** The mapping existed but had timed out (RFC 4787 §4.3). */
  | 'mapping-expired'
  /** To the router's own external address from inside, hairpinning off (RFC 4787 §6). */
  | 'hairpin-off'
  /** The router drops UDP. */
  | 'udp-blocked'
  /** The router does not carry this address family. */
  | 'family-off'
  /** No external port left (RFC 4787 §4.2). */
  | 'ports-exhausted'
  /** No host or router owns the address. */
  | 'no-route'
  /** Nothing bound to the port (no ICMP is modelled). */
  | 'port-unreachable'
  /** The hop limit ran out. */
  | 'ttl';

/** One line of the trace. */
export interface TraceEntry {
  /** Virtual time, ms. */
  readonly timeMs: number;
  /** The packet's id (shared by its hops and copies). */
  readonly packet: number;
  readonly proto: SimProto;
  /** Where: a host, router or link name. */
  readonly at: string;
  readonly event: TraceEvent;
  /** Addresses as the packet carries them here (after translation for 'translate'). */
  readonly src: Endpoint;
  readonly dst: Endpoint;
  readonly bytes: number;
  /** TCP segment kind. */
  readonly flag?: string;
  readonly reason?: DropReason;
  /** Free text: the translation made, the filtering rule, the delay. */
  readonly detail?: string;
}

/** Options of PacketTrace.format(). */
export interface TraceFormatOptions {
  /** Only the last N entries. @default all kept */
  readonly last?: number;
}

/** Default ring size. */
export const TRACE_CAPACITY = 2000;

/** A bounded record of recent packet events. */
export class PacketTrace {
  /** Entries ever recorded (the ring keeps the last `capacity`). */
  total = 0;
  readonly capacity: number;
  private readonly ring: TraceEntry[] = [];
  private readonly clock: Clock;

  constructor(clock: Clock, capacity = TRACE_CAPACITY) {
    this.clock = clock;
    this.capacity = Math.max(1, capacity);
  }

  /** Records what happened to `packet` at `at`. */
  record(packet: SimPacket, at: string, event: TraceEvent, extra: { reason?: DropReason; detail?: string } = {}): void {
    const entry: TraceEntry = {
      timeMs: this.clock.now(),
      packet: packet.id,
      proto: packet.proto,
      at,
      event,
      src: packet.src,
      dst: packet.dst,
      bytes: packet.data.length,
      ...(packet.tcp !== undefined && { flag: packet.tcp.flag }),
      ...(extra.reason !== undefined && { reason: extra.reason }),
      ...(extra.detail !== undefined && { detail: extra.detail }),
    };
    if (this.ring.length < this.capacity) this.ring.push(entry);
    else this.ring[this.total % this.capacity] = entry;
    this.total++;
  }

  /** Kept entries, oldest first. */
  entries(): TraceEntry[] {
    if (this.ring.length < this.capacity) return [...this.ring];
    const start = this.total % this.capacity;
    return [...this.ring.slice(start), ...this.ring.slice(0, start)];
  }

  /** Forgets every entry. */
  clear(): void {
    this.ring.length = 0;
    this.total = 0;
  }

  /** One line per entry: `time  #id  where  event  proto src → dst  size  [flag] [reason: detail]`. */
  format(options: TraceFormatOptions = {}): string {
    let list = this.entries();
    if (options.last !== undefined) list = list.slice(Math.max(0, list.length - options.last));
    const width = Math.max(4, ...list.map((e) => e.at.length));
    const header = `packet trace: ${list.length} of ${this.total} events (virtual ms)`;
    return [header, ...list.map((e) => formatEntry(e, width))].join('\n');
  }
}

function formatEntry(e: TraceEntry, width: number): string {
  const why = [e.flag, e.reason === undefined ? undefined : `${e.reason}${e.detail === undefined ? '' : ':'}`, e.detail].filter((s) => s !== undefined);
  return [
    e.timeMs.toFixed(3).padStart(11),
    `#${e.packet}`.padEnd(6),
    e.at.padEnd(width),
    e.event.padEnd(9),
    e.proto,
    `${formatEndpoint(e.src)} → ${formatEndpoint(e.dst)}`,
    `${e.bytes}B`,
    ...why,
  ].join(' ');
}
