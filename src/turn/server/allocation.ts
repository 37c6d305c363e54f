// One allocation's state, RFC 8656 §2.2: the 5-tuple that owns it, its relayed
// transport addresses (two for a dual allocation, §7.2), its expiry, its permissions
// (§9: per peer IP address, 300 s, refreshed only by CreatePermission and ChannelBind)
// and channel bindings (§11: 600 s, a number and a peer address bound one to one).
import { endpointKey, type Endpoint } from '../../net/index.ts';
import type { IpFamily } from '../../util/index.ts';
import { CHANNEL_LIFETIME_S, CHANNEL_QUARANTINE_S, PERMISSION_LIFETIME_S } from '../constants.ts';

/** The client's end, the server's end and the protocol between them (RFC 8656 §2). */
export interface FiveTuple {
  readonly client: Endpoint;
  readonly server: Endpoint;
  readonly transport: TurnTransport;
}

/** Transports between client and server (RFC 8656 §3.1); relaying towards peers is UDP. */
export type TurnTransport = 'udp' | 'tcp' | 'tls';

/** The one map key of a 5-tuple. */
export function fiveTupleKey(t: FiveTuple): string {
  return `${t.transport} ${endpointKey(t.client)} ${endpointKey(t.server)}`;
}

/** A channel binding; it lingers CHANNEL_QUARANTINE_S after expiry so neither side is rebound elsewhere. */
interface ChannelBinding {
  readonly channel: number;
  readonly peer: Endpoint;
  expiresAt: number;
}

/** Result of a ChannelBind on the allocation's tables. */
export type BindOutcome = 'ok' | 'conflict' | 'full';

/** Relayed traffic of one allocation: datagrams and application bytes each way. */
export interface RelayCounters {
  toPeerPackets: number;
  toPeerBytes: number;
  toClientPackets: number;
  toClientBytes: number;
}

export interface AllocationLimits {
  readonly maxPermissions: number;
  readonly maxChannels: number;
}

/** State of one allocation; times are milliseconds on the driver's clock. */
export class Allocation {
  readonly fiveTuple: FiveTuple;
  readonly key: string;
  readonly username: string;
  /** One relayed endpoint per family; a dual allocation has both (RFC 8656 §7.2). */
  readonly relays: Endpoint[];
  expiresAt: number;
  /** Transaction ID (hex) and bytes of the successful Allocate response, for retransmissions. */
  readonly allocateTransaction: string;
  readonly allocateResponse: Uint8Array;
  readonly counters: RelayCounters = { toPeerPackets: 0, toPeerBytes: 0, toClientPackets: 0, toClientBytes: 0 };
  private readonly limits: AllocationLimits;
  /** Peer IP address → expiry (RFC 8656 §9: the port is not part of a permission). */
  private readonly permissions = new Map<string, number>();
  private readonly byChannel = new Map<number, ChannelBinding>();
  /** endpointKey(peer) → binding. */
  private readonly byPeer = new Map<string, ChannelBinding>();

  constructor(init: {
    fiveTuple: FiveTuple;
    username: string;
    relays: Endpoint[];
    expiresAt: number;
    allocateTransaction: string;
    allocateResponse: Uint8Array;
    limits: AllocationLimits;
  }) {
    this.fiveTuple = init.fiveTuple;
    this.key = fiveTupleKey(init.fiveTuple);
    this.username = init.username;
    this.relays = init.relays;
    this.expiresAt = init.expiresAt;
    this.allocateTransaction = init.allocateTransaction;
    this.allocateResponse = init.allocateResponse;
    this.limits = init.limits;
  }

  /** The relayed endpoint of a family, if the allocation has one. */
  relayFor(family: IpFamily): Endpoint | undefined {
    return this.relays.find((r) => r.family === family);
  }

  hasPermission(address: string, now: number): boolean {
    const expires = this.permissions.get(address);
    return expires !== undefined && expires > now;
  }

  /** Live permissions at `now`. */
  permissionCount(now: number): number {
    let n = 0;
    for (const expires of this.permissions.values()) if (expires > now) n++;
    return n;
  }

  /** Live channel bindings at `now` (quarantined ones not counted). */
  channelCount(now: number): number {
    let n = 0;
    for (const b of this.byChannel.values()) if (b.expiresAt > now) n++;
    return n;
  }

  /** True when a permission for `address` exists or there is room for one (expired ones are dropped first). */
  canPermit(address: string, now: number): boolean {
    if (this.permissions.has(address) || this.permissions.size < this.limits.maxPermissions) return true;
    for (const [a, expires] of this.permissions) if (expires <= now) this.permissions.delete(a);
    return this.permissions.size < this.limits.maxPermissions;
  }

  /** Installs or refreshes a permission for 300 s (RFC 8656 §9); check canPermit first. */
  permit(address: string, now: number): void {
    this.permissions.set(address, now + PERMISSION_LIFETIME_S * 1000);
  }

  /** The peer a live channel is bound to. */
  peerOf(channel: number, now: number): Endpoint | undefined {
    const b = this.byChannel.get(channel);
    return b !== undefined && b.expiresAt > now ? b.peer : undefined;
  }

  /** The live channel bound to a peer transport address. */
  channelFor(peer: Endpoint, now: number): number | undefined {
    const b = this.byPeer.get(endpointKey(peer));
    return b !== undefined && b.expiresAt > now ? b.channel : undefined;
  }

  /**
   * Binds or refreshes `channel` ↔ `peer` for 600 s (RFC 8656 §11.2). A number bound to
   * another peer, or a peer bound to another number, is a conflict (400) while that
   * binding lives and for 5 minutes after it expires (§11: the quarantine that keeps
   * late packets of the old binding from reaching the new one).
   */
  bind(channel: number, peer: Endpoint, now: number): BindOutcome {
    const peerKey = endpointKey(peer);
    const old = this.byChannel.get(channel);
    const sameBinding = old !== undefined && endpointKey(old.peer) === peerKey;
    if (!sameBinding) {
      for (const other of [old, this.byPeer.get(peerKey)]) {
        if (other === undefined) continue;
        if (other.expiresAt + CHANNEL_QUARANTINE_S * 1000 > now) return 'conflict';
        this.unbind(other);
      }
      if (this.byChannel.size >= this.limits.maxChannels) {
        for (const b of [...this.byChannel.values()]) if (b.expiresAt + CHANNEL_QUARANTINE_S * 1000 <= now) this.unbind(b);
        if (this.byChannel.size >= this.limits.maxChannels) return 'full';
      }
    }
    const binding = sameBinding ? old : { channel, peer, expiresAt: 0 };
    binding.expiresAt = now + CHANNEL_LIFETIME_S * 1000;
    this.byChannel.set(channel, binding);
    this.byPeer.set(peerKey, binding);
    return 'ok';
  }

  private unbind(b: ChannelBinding): void {
    this.byChannel.delete(b.channel);
    this.byPeer.delete(endpointKey(b.peer));
  }
}
