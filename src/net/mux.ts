// PacketMux: one UDP socket shared by several protocols, told apart by the first byte of
// each datagram, RFC 7983 §7 (updating RFC 5764 §5.1.2):
//
//   +----------------+
//   |        [0..3] -+--> STUN               (RFC 8489)
//   |      [16..19] -+--> ZRTP               (RFC 6189)
//   |      [20..63] -+--> DTLS               (RFC 9147)
//   |      [64..79] -+--> TURN ChannelData   (RFC 8656 §12)
//   |    [128..191] -+--> RTP/RTCP           (RFC 3550)
//   +----------------+
//
// Values outside these ranges are unassigned by RFC 7983 (4–15, 80–127, 192–255) and
// may be claimed by later modules (natkit's own frames) through route().
import { NatkitError } from '../util/index.ts';
import type { Endpoint, PacketHandler, PacketSocket, SocketStats } from './types.ts';

/** An inclusive range of first-byte values and the protocol it belongs to. */
export interface MuxRange {
  /** Lowest first byte, 0–255. */
  readonly first: number;
  /** Highest first byte, first–255. */
  readonly last: number;
  /** Protocol name, for errors and traces. */
  readonly name: string;
}

/** STUN, RFC 7983 §7: 0–3. */
export const MUX_STUN: MuxRange = Object.freeze({ first: 0, last: 3, name: 'stun' });
/** ZRTP, RFC 7983 §7: 16–19. */
export const MUX_ZRTP: MuxRange = Object.freeze({ first: 16, last: 19, name: 'zrtp' });
/** DTLS, RFC 7983 §7: 20–63. */
export const MUX_DTLS: MuxRange = Object.freeze({ first: 20, last: 63, name: 'dtls' });
/** TURN ChannelData, RFC 7983 §7: 64–79 (channel numbers 0x4000–0x4FFF). */
export const MUX_TURN_CHANNEL: MuxRange = Object.freeze({ first: 64, last: 79, name: 'turn-channel' });
/** RTP and RTCP, RFC 7983 §7: 128–191 (version 2). */
export const MUX_RTP: MuxRange = Object.freeze({ first: 128, last: 191, name: 'rtp' });

/** Counters of datagrams the mux could not hand to a route. */
export interface MuxStats {
  /** Non-empty datagrams whose first byte no route claims. */
  unrouted: number;
  /** Zero-length datagrams (no first byte to classify), dropped. */
  empty: number;
}

/** Settings of one route. */
export interface RouteOptions {
  /** Receiver to install at once (same as calling onPacket on the view). @default none: drop */
  readonly onPacket?: PacketHandler;
}

/** Shares one PacketSocket between protocols; takes over the socket's onPacket. */
export class PacketMux {
  /** The shared socket. */
  readonly socket: PacketSocket;
  readonly stats: MuxStats = { unrouted: 0, empty: 0 };
  /** First byte → route claiming it. */
  private readonly table = new Array<MuxRoute | undefined>(256).fill(undefined);
  private fallback: PacketHandler | undefined;

  constructor(socket: PacketSocket) {
    this.socket = socket;
    socket.onPacket((data, from) => this.dispatch(data, from));
  }

  /**
   * A PacketSocket view receiving the datagrams whose first byte is in `range`. Throws
   * ERR_INVALID_ARGUMENT when the range is malformed or overlaps a live route.
   */
  route(range: MuxRange, options: RouteOptions = {}): PacketSocket {
    const { first, last, name } = range;
    if (!Number.isInteger(first) || !Number.isInteger(last) || first < 0 || last > 255 || first > last) {
      throw new NatkitError('ERR_INVALID_ARGUMENT', `mux range ${name} [${first}..${last}] is not within 0–255`);
    }
    for (let b = first; b <= last; b++) {
      const taken = this.table[b];
      if (taken !== undefined) {
        throw new NatkitError('ERR_INVALID_ARGUMENT', `mux range ${name} [${first}..${last}] overlaps ${describe(taken.range)} at byte ${b}`);
      }
    }
    const view = new MuxRoute(this.socket, range, () => {
      if (this.table[first] === view) this.table.fill(undefined, first, last + 1);
    });
    if (options.onPacket !== undefined) view.onPacket(options.onPacket);
    this.table.fill(view, first, last + 1);
    return view;
  }

  /** Receives datagrams no route claims (after counting them). undefined: drop them. */
  onUnrouted(handler: PacketHandler | undefined): void {
    this.fallback = handler;
  }

  /** Closes every route and the shared socket. Idempotent. */
  async close(): Promise<void> {
    for (const view of new Set(this.table)) await view?.close();
    await this.socket.close();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  private dispatch(data: Uint8Array, from: Endpoint): void {
    const first = data[0];
    // RFC 7983 §7 classifies by the first byte; an empty datagram has none.
    if (first === undefined) {
      this.stats.empty++;
      return;
    }
    const view = this.table[first];
    if (view !== undefined) {
      view.deliver(data, from);
      return;
    }
    this.stats.unrouted++;
    this.fallback?.(data, from);
  }
}

/** One protocol's view of the shared socket. */
class MuxRoute implements PacketSocket {
  readonly range: MuxRange;
  readonly stats: SocketStats = { packetsIn: 0, packetsOut: 0, bytesIn: 0, bytesOut: 0, sendErrors: 0 };
  private readonly socket: PacketSocket;
  /** Frees this view's range in the mux table. */
  private readonly detach: () => void;
  private handler: PacketHandler | undefined;
  private isDetached = false;

  constructor(socket: PacketSocket, range: MuxRange, detach: () => void) {
    this.socket = socket;
    this.range = range;
    this.detach = detach;
  }

  get local(): Endpoint {
    return this.socket.local;
  }

  get closed(): boolean {
    return this.isDetached || this.socket.closed;
  }

  /**
   * Sends through the shared socket. Refusals the socket reports at once are counted
   * here too; failures found later (OS errors) show only in the shared socket's stats.
   */
  send(data: Uint8Array, to: Endpoint): void {
    if (this.closed) {
      this.stats.sendErrors++;
      return;
    }
    const socketStats = this.socket.stats;
    const errorsBefore = socketStats.sendErrors;
    this.socket.send(data, to);
    if (socketStats.sendErrors !== errorsBefore) {
      this.stats.sendErrors++;
    } else {
      this.stats.packetsOut++;
      this.stats.bytesOut += data.length;
    }
  }

  onPacket(handler: PacketHandler | undefined): void {
    this.handler = handler;
  }

  /** Detaches the view, freeing its range; the shared socket stays open. Idempotent. */
  close(): Promise<void> {
    if (!this.isDetached) {
      this.isDetached = true;
      this.handler = undefined;
      this.detach();
    }
    return Promise.resolve();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /** A datagram in this view's range. */
  deliver(data: Uint8Array, from: Endpoint): void {
    this.stats.packetsIn++;
    this.stats.bytesIn += data.length;
    this.handler?.(data, from);
  }
}

/** `stun [0..3]` for messages. */
function describe(range: MuxRange): string {
  return `${range.name} [${range.first}..${range.last}]`;
}
