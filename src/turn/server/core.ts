// The TURN server's sans-I/O core, RFC 8656: Allocate (§7.2), Refresh (§7.5),
// CreatePermission (§9.2), Send and Data indications (§10), ChannelBind (§11.2),
// ChannelData (§12.5; RFC 5766 §11's channel numbers on request), with long-term
// credentials (RFC 8489 §9.2, auth.ts), a peer policy (peer-policy.ts) and quotas. Bytes
// and the 5-tuple they came on (or the peer and relayed address a datagram reached), plus
// the time, go in; at most one reply to the client or one datagram to a peer comes out.
// Relayed addresses come from an injected RelayAllocator; sockets, timers and the clock
// are the driver's.
import { endpointKey, type Endpoint, type Random } from '../../net/index.ts';
import { RateLimiter, type IpFamily, type RateLimiterOptions } from '../../util/index.ts';
import { ByteWriter } from '../../wire/index.ts';
import {
  BINDING, MESSAGE_INTEGRITY, MESSAGE_INTEGRITY_SHA256, SOFTWARE, StunClass, StunDecodeError, UNKNOWN_ATTRIBUTES, XOR_MAPPED_ADDRESS, attr,
  checkFingerprint, decodeMessage, encodeMessage, looksLikeStun, rateKey, transactionKey, type AttrEntry, type StunMessage,
} from '../../stun/index.ts';
import {
  ADDITIONAL_ADDRESS_FAMILY, ADDRESS_ERROR_CODE, CHANNEL_NUMBER, DATA_ATTRIBUTE, DONT_FRAGMENT, EVEN_PORT, LIFETIME, REQUESTED_ADDRESS_FAMILY,
  REQUESTED_TRANSPORT, RESERVATION_TOKEN, XOR_PEER_ADDRESS, XOR_RELAYED_ADDRESS, allOf,
} from '../attributes.ts';
import {
  TurnDecodeError, channelOutOfRange, decodeChannelData, encodeChannelData, isValidChannel, looksLikeChannelData, type ChannelRangeOptions,
} from '../channel-data.ts';
import {
  ALLOCATE, AddressFamily, CHANNEL_BIND, CREATE_PERMISSION, DATA, DEFAULT_LIFETIME_S, REFRESH, RESERVATION_LIFETIME_S, SEND,
  TRANSPORT_UDP,
} from '../constants.ts';
import { Allocation, fiveTupleKey, type FiveTuple, type RelayCounters } from './allocation.ts';
import { TurnAuthenticator, type TurnAuthOptions, type TurnUserSecret } from './auth.ts';
import { DeadlineQueue } from './deadlines.ts';
import { PeerPolicy, type PeerPolicyOptions } from './peer-policy.ts';
import type { RelayAllocator } from './relay-allocator.ts';
import { Replies, reasonOf, type Authed, type TurnClientInput, type TurnPeerInput, type TurnResult } from './replies.ts';
import { createTurnStats, type TurnServerCoreStats } from './stats.ts';

/** Comprehension-required attributes a TURN request may carry (RFC 8489 §18.3, RFC 8656 §18); DONT-FRAGMENT only when supported. */
const KNOWN: readonly number[] = [
  0x0006, // USERNAME
  0x0008, // MESSAGE-INTEGRITY
  0x000c, // CHANNEL-NUMBER
  0x000d, // LIFETIME
  0x0012, // XOR-PEER-ADDRESS
  0x0013, // DATA
  0x0014, // REALM
  0x0015, // NONCE
  0x0017, // REQUESTED-ADDRESS-FAMILY
  0x0018, // EVEN-PORT
  0x0019, // REQUESTED-TRANSPORT
  0x001c, // MESSAGE-INTEGRITY-SHA256
  0x001d, // PASSWORD-ALGORITHM
  0x001e, // USERHASH
  0x0022, // RESERVATION-TOKEN
];

/** Largest DATA a Data indication carries: the 16-bit message length less XOR-PEER-ADDRESS (IPv6) and DATA's header. */
const MAX_INDICATION_DATA = 0xffff - 24 - 4 - 3;

/** Options of the TURN core. */
export interface TurnServerCoreOptions {
  readonly auth: TurnAuthOptions;
  /** Hands out relayed transport addresses; the driver binds them. */
  readonly allocator: RelayAllocator;
  /** Nonce secret, reservation tokens, indication transaction IDs. */
  readonly random: Random;
  /** Which peers relays may reach; the allocator's addresses are always denied unless allowed. @default special-purpose ranges denied */
  readonly peerPolicy?: PeerPolicyOptions;
  /** SOFTWARE text in responses; false for none. @default 'natkit' */
  readonly software?: string | false;
  /** Longest allocation lifetime granted, seconds (RFC 8656 §7.2: 3600 recommended). @default 3600 */
  readonly maxLifetimeS?: number;
  /** Live allocations at most; beyond: 508 Insufficient Capacity. @default 10000 */
  readonly maxAllocations?: number;
  /** Live allocations per username at most; beyond: 486 Allocation Quota Reached. @default 10 */
  readonly maxAllocationsPerUser?: number;
  /** Permissions per allocation at most; beyond: 508. @default 256 */
  readonly maxPermissionsPerAllocation?: number;
  /** Channel bindings per allocation at most (quarantined ones count); beyond: 508. @default 1024 */
  readonly maxChannelsPerAllocation?: number;
  /**
   * The driver can set DF on relayed datagrams (RFC 8656 §7.2 step 4, §10.2). When false,
   * DONT-FRAGMENT is treated as unknown: 420 in requests, drop in Send. @default false
   */
  readonly dontFragment?: boolean;
  /**
   * Per-source token bucket (IPv4 address or IPv6 /64) for requests answered without proven
   * credentials: Binding, 401/438 challenges, 400 (RFC 8656 §21.1.3: such requests cost the
   * server work and reflect bytes). @default off (TurnServer turns it on)
   */
  readonly rateLimit?: RateLimiterOptions;
  /** Relayed application bytes per second per allocation, both directions together; beyond: dropped. @default unlimited */
  readonly bandwidth?: TurnBandwidthOptions;
  /**
   * Accept RFC 5766 §11's channel numbers 0x4000–0x7FFF in ChannelBind and ChannelData, for
   * RFC 5766 clients (coturn's turnutils_uclient). @default false: RFC 8656 §12's 0x4000–0x4FFF
   */
  readonly legacyChannels?: boolean;
}

/** A per-allocation token bucket on relayed bytes (RFC 8656 §21.1.4: a client must not exhaust the server's bandwidth). */
export interface TurnBandwidthOptions {
  /** Sustained rate, bytes per second. */
  readonly bytesPerS: number;
  /** Bucket size in bytes: the most relayed at once after a quiet period. @default max(bytesPerS, 65535) */
  readonly burstBytes?: number;
}

/** One allocation as seen from outside, at a moment. */
export interface TurnAllocationInfo {
  readonly fiveTuple: FiveTuple;
  readonly username: string;
  readonly relays: readonly Endpoint[];
  /** Milliseconds on the driver's clock. */
  readonly expiresAt: number;
  readonly permissions: number;
  readonly channels: number;
  readonly counters: Readonly<RelayCounters>;
}

/** A port held by EVEN-PORT's R bit until an Allocate with its token claims it (RFC 8656 §7.2). */
interface Reservation {
  readonly relayed: Endpoint;
  readonly expiresAt: number;
}

type DeadlineKey = { readonly kind: 'allocation' | 'reservation'; readonly key: string };

/** The sans-I/O TURN server: handleClient()/handlePeer() per input, expire() when nextTimerAt() comes. */
export class TurnServerCore {
  readonly stats: TurnServerCoreStats = createTurnStats();
  private readonly auth: TurnAuthenticator;
  private readonly allocator: RelayAllocator;
  private readonly random: Random;
  private readonly policy: PeerPolicy;
  private readonly software: string | undefined;
  private readonly maxLifetimeS: number;
  private readonly maxAllocations: number;
  private readonly maxPerUser: number;
  private readonly limits: { readonly maxPermissions: number; readonly maxChannels: number };
  private readonly dontFragment: boolean;
  private readonly channelRange: ChannelRangeOptions;
  private readonly known: ReadonlySet<number>;
  private readonly allocationMap = new Map<string, Allocation>();
  /** endpointKey(relayed) → allocation. */
  private readonly byRelay = new Map<string, Allocation>();
  private readonly perUser = new Map<string, number>();
  /** Hex token → reservation. */
  private readonly reservations = new Map<string, Reservation>();
  private readonly deadlines = new DeadlineQueue<DeadlineKey>();
  /** Data indications get IDs from a random prefix and a counter: unique without a draw per packet. */
  private readonly indicationId: Uint8Array;
  private readonly replies: Replies;
  private readonly limiter: RateLimiter | undefined;
  /** Keyed by allocation key; bytes are tokens. */
  private readonly bandwidth: RateLimiter | undefined;
  private indicationCount = 0;

  constructor(options: TurnServerCoreOptions) {
    this.random = options.random;
    this.auth = new TurnAuthenticator(options.auth, options.random);
    this.allocator = options.allocator;
    const policy = options.peerPolicy ?? {};
    this.policy = new PeerPolicy({ ...policy, serverAddresses: [...(policy.serverAddresses ?? []), ...options.allocator.addresses] });
    this.software = options.software === false ? undefined : (options.software ?? 'natkit');
    if (this.software !== undefined) SOFTWARE.encode(this.software, new ByteWriter(), { transactionId: new Uint8Array(12) });
    this.maxLifetimeS = Math.max(DEFAULT_LIFETIME_S, options.maxLifetimeS ?? 3600);
    this.maxAllocations = options.maxAllocations ?? 10000;
    this.maxPerUser = options.maxAllocationsPerUser ?? 10;
    this.limits = { maxPermissions: options.maxPermissionsPerAllocation ?? 256, maxChannels: options.maxChannelsPerAllocation ?? 1024 };
    this.dontFragment = options.dontFragment ?? false;
    this.channelRange = { legacyChannels: options.legacyChannels ?? false };
    this.known = new Set(this.dontFragment ? [...KNOWN, DONT_FRAGMENT.type] : KNOWN);
    this.indicationId = this.random.bytes(12);
    this.replies = new Replies(this.software, this.stats, this.auth);
    this.limiter = options.rateLimit === undefined ? undefined : new RateLimiter(options.rateLimit);
    const bw = options.bandwidth;
    this.bandwidth = bw === undefined ? undefined : new RateLimiter({
      ratePerS: bw.bytesPerS, burst: bw.burstBytes ?? Math.max(bw.bytesPerS, 0xffff), maxKeys: this.maxAllocations,
    });
  }

  /** Replaces the static users (a reloaded users file). */
  setUsers(users: Readonly<Record<string, TurnUserSecret>>): void {
    this.auth.setUsers(users);
  }

  /** Live allocations with their permissions, channels and counters at `now`. */
  allocations(now: number): TurnAllocationInfo[] {
    return [...this.allocationMap.values()].filter((a) => a.expiresAt > now).map((a) => ({
      fiveTuple: a.fiveTuple, username: a.username, relays: [...a.relays], expiresAt: a.expiresAt,
      permissions: a.permissionCount(now), channels: a.channelCount(now), counters: { ...a.counters },
    }));
  }

  /** True when a live allocation is bound to the 5-tuple. */
  hasAllocation(tuple: FiveTuple, now: number): boolean {
    return this.live(fiveTupleKey(tuple), now) !== undefined;
  }

  /**
   * The client's TCP or TLS connection closed: its allocation can never be used again, as a
   * 5-tuple names it (RFC 8656 §2.2), so it is deleted now rather than at expiry.
   */
  disconnect(tuple: FiveTuple): void {
    const a = this.allocationMap.get(fiveTupleKey(tuple));
    if (a !== undefined) this.deleteAllocation(a, 'disconnected');
  }

  /** Live allocations (some may be past expiry until expire() or their next use). */
  get allocationCount(): number {
    return this.allocationMap.size;
  }

  /** When expire() next has work: the earliest allocation or reservation deadline. */
  nextTimerAt(): number | undefined {
    return this.deadlines.peek()?.at;
  }

  /** Deletes what has expired by `now` (RFC 8656 §7: an allocation lives until its lifetime runs out). */
  expire(now: number): void {
    // Each live allocation and reservation has one queue entry; refreshed ones go back in.
    for (let n = this.deadlines.size; n > 0; n--) {
      const due = this.deadlines.popDue(now);
      if (due === undefined) return;
      const { kind, key } = due.key;
      if (kind === 'allocation') {
        const a = this.allocationMap.get(key);
        if (a === undefined) continue;
        if (a.expiresAt <= now) this.deleteAllocation(a, 'expired');
        else this.deadlines.push(a.expiresAt, due.key);
      } else {
        const r = this.reservations.get(key);
        if (r === undefined) continue;
        this.reservations.delete(key);
        this.allocator.release(r.relayed);
      }
    }
  }

  /** One message from a client. Never throws on any bytes. */
  handleClient(input: TurnClientInput): TurnResult {
    this.stats.received++;
    return this.count(this.client(input));
  }

  /** One datagram from a peer to a relayed address (RFC 8656 §10.3, §12.5). Never throws on any bytes. */
  handlePeer(input: TurnPeerInput): TurnResult {
    this.stats.received++;
    return this.count(this.peer(input));
  }

  private count(r: TurnResult): TurnResult {
    if (r.drop !== undefined) this.stats.dropped[r.drop]++;
    else if (r.keepalive === true) this.stats.keepalives++;
    return r;
  }

  private client(input: TurnClientInput): TurnResult {
    const { data } = input;
    if (looksLikeChannelData(data)) return this.channelData(input);
    if (!looksLikeStun(data)) return { drop: 'malformed' };
    let msg: StunMessage;
    try {
      msg = decodeMessage(data, { allowLegacy: false });
    } catch (err) {
      if (err instanceof StunDecodeError) return { drop: 'malformed' };
      throw err;
    }
    if (checkFingerprint(msg) === 'mismatch') return { drop: 'malformed' };
    if (msg.cls === StunClass.INDICATION && msg.method === SEND) return this.send(input, msg);
    // RFC 8489 §6.3.2: a Binding indication gets no response. Clients send them to keep their
    // NAT mapping alive (our TURN client every 15 s over UDP, RFC 8445 §11): its arrival did the work.
    if (msg.cls === StunClass.INDICATION && msg.method === BINDING) return { keepalive: true };
    if (msg.cls !== StunClass.REQUEST) return { drop: 'unexpected-class' };
    if (msg.method === BINDING) return this.limited(input) ?? this.binding(input, msg);
    if (msg.method !== ALLOCATE && msg.method !== REFRESH && msg.method !== CREATE_PERMISSION && msg.method !== CHANNEL_BIND) {
      return { drop: 'unknown-method' };
    }
    let authed: Authed;
    try {
      const a = this.auth.check(msg, input.client.address, input.now);
      if (a.kind !== 'ok') {
        const limited = this.limited(input);
        if (limited !== undefined) return limited;
        if (a.kind === 'bad') return this.replies.error(input, msg, 400, a.reason);
        if (a.code === 401 && (msg.has(MESSAGE_INTEGRITY) || msg.has(MESSAGE_INTEGRITY_SHA256))) this.stats.authFailures++;
        return this.replies.challenge(input, msg, a.code, a.reason, a.signed);
      }
      authed = { input, msg, username: a.username, key: a.key, sha256: a.sha256 };
    } catch (err) {
      if (err instanceof StunDecodeError) return this.limited(input) ?? this.replies.error(input, msg, 400, `Bad Request: ${err.message}`);
      throw err;
    }
    // RFC 5389 §7.3.1 (kept by RFC 8489 §6.3.1): unknown attributes are checked once authentication is done.
    const unknown = msg.unknownRequired(this.known);
    if (unknown.length > 0) return this.replies.error(input, msg, 420, undefined, authed, [attr(UNKNOWN_ATTRIBUTES, unknown.slice(0, 32))]);
    try {
      switch (msg.method) {
        case ALLOCATE:
          return this.allocate(authed);
        case REFRESH:
          return this.refresh(authed);
        case CREATE_PERMISSION:
          return this.createPermission(authed);
        default:
          return this.channelBind(authed);
      }
    } catch (err) {
      if (err instanceof StunDecodeError) return this.replies.error(input, msg, 400, `Bad Request: ${err.message}`, authed);
      throw err;
    }
  }

  /** A drop when the source is over its budget of unauthenticated answers. */
  private limited(input: TurnClientInput): TurnResult | undefined {
    if (this.limiter === undefined || this.limiter.take(rateKey(input.client), input.now)) return undefined;
    return { drop: 'rate-limited' };
  }

  /** False when relaying `bytes` for `a` exceeds its bandwidth budget. */
  private withinBandwidth(a: Allocation, bytes: number, now: number): boolean {
    return this.bandwidth === undefined || this.bandwidth.take(a.key, now, bytes);
  }

  /** A TURN server is a STUN server: Binding needs no credentials (RFC 8656 §3, RFC 8489 §13). */
  private binding(input: TurnClientInput, msg: StunMessage): TurnResult {
    const unknown = msg.unknownRequired(this.known);
    if (unknown.length > 0) return this.replies.error(input, msg, 420, undefined, undefined, [attr(UNKNOWN_ATTRIBUTES, unknown.slice(0, 32))]);
    return this.replies.respond(input, msg, StunClass.SUCCESS, [attr(XOR_MAPPED_ADDRESS, input.client)]);
  }

  /** RFC 8656 §7.2, steps in its order. */
  private allocate(c: Authed): TurnResult {
    const { input, msg } = c;
    const { now } = input;
    const existing = this.live(fiveTupleKey(input), now);
    if (existing !== undefined) {
      // A retransmitted Allocate gets the same success again; any other is a mismatch (§7.2 step 2).
      if (existing.allocateTransaction === transactionKey(msg.transactionId)) return this.replies.bytes(input, existing.allocateResponse);
      return this.replies.error(input, msg, 437, undefined, c);
    }
    const transport = msg.get(REQUESTED_TRANSPORT);
    if (transport === undefined) return this.replies.error(input, msg, 400, 'Bad Request: REQUESTED-TRANSPORT missing', c);
    if (transport !== TRANSPORT_UDP) return this.replies.error(input, msg, 442, undefined, c);
    const token = msg.get(RESERVATION_TOKEN);
    const even = msg.get(EVEN_PORT);
    const requested = msg.get(REQUESTED_ADDRESS_FAMILY);
    const additional = msg.get(ADDITIONAL_ADDRESS_FAMILY);
    if (token !== undefined && (even !== undefined || requested !== undefined || additional !== undefined)) {
      return this.replies.error(input, msg, 400, 'Bad Request: RESERVATION-TOKEN with EVEN-PORT or an address family', c);
    }
    if (requested !== undefined && additional !== undefined) {
      return this.replies.error(input, msg, 400, 'Bad Request: REQUESTED- and ADDITIONAL-ADDRESS-FAMILY', c);
    }
    if (additional !== undefined && additional !== AddressFamily.IPV6) {
      return this.replies.error(input, msg, 400, 'Bad Request: ADDITIONAL-ADDRESS-FAMILY must be IPv6', c);
    }
    const family = requested === undefined ? 4 : toFamily(requested);
    if (family === undefined || !this.allocator.supports(family)) return this.replies.error(input, msg, 440, undefined, c);
    if ((this.perUser.get(c.username) ?? 0) >= this.maxPerUser) return this.replies.error(input, msg, 486, undefined, c);
    if (this.allocationMap.size >= this.maxAllocations) return this.replies.error(input, msg, 508, undefined, c);

    const relays: Endpoint[] = [];
    const attributes: AttrEntry[] = [];
    if (token !== undefined) {
      const hex = transactionKey(token);
      const reservation = this.reservations.get(hex);
      // §7.2: a token the server does not hold (unknown, used, expired) gets 508.
      if (reservation === undefined || reservation.expiresAt <= now) return this.replies.error(input, msg, 508, undefined, c);
      this.reservations.delete(hex);
      relays.push(reservation.relayed);
    } else {
      const reserveNext = even?.reserveNext ?? false;
      const grant = this.allocator.allocate({ family, evenPort: even !== undefined, reserveNext });
      if (grant === undefined || (reserveNext && grant.reserved === undefined)) {
        if (grant !== undefined) this.allocator.release(grant.relayed);
        return this.replies.error(input, msg, 508, undefined, c);
      }
      relays.push(grant.relayed);
      if (grant.reserved !== undefined) {
        const tokenBytes = this.random.bytes(8);
        const hex = transactionKey(tokenBytes);
        this.reservations.set(hex, { relayed: grant.reserved, expiresAt: now + RESERVATION_LIFETIME_S * 1000 });
        this.deadlines.push(now + RESERVATION_LIFETIME_S * 1000, { kind: 'reservation', key: hex });
        attributes.push(attr(RESERVATION_TOKEN, tokenBytes));
      }
    }
    if (additional !== undefined) {
      // §7.2 dual allocation: the IPv6 half may fail alone; the response then says why in ADDRESS-ERROR-CODE.
      const v6 = this.allocator.supports(6) ? this.allocator.allocate({ family: 6, evenPort: false, reserveNext: false }) : undefined;
      if (v6 !== undefined) relays.push(v6.relayed);
      else {
        const code = this.allocator.supports(6) ? 508 : 440;
        attributes.push(attr(ADDRESS_ERROR_CODE, { family: AddressFamily.IPV6, code, reason: reasonOf(code) }));
      }
    }
    const lifetimeS = this.lifetime(msg.get(LIFETIME));
    const response = this.replies.encode(msg, StunClass.SUCCESS, [
      ...relays.map((r) => attr(XOR_RELAYED_ADDRESS, r)),
      ...attributes,
      attr(LIFETIME, lifetimeS),
      attr(XOR_MAPPED_ADDRESS, input.client),
    ], c);
    const allocation = new Allocation({
      fiveTuple: { client: input.client, server: input.server, transport: input.transport },
      username: c.username,
      relays,
      expiresAt: now + lifetimeS * 1000,
      allocateTransaction: transactionKey(msg.transactionId),
      allocateResponse: response,
      limits: this.limits,
    });
    this.allocationMap.set(allocation.key, allocation);
    for (const r of relays) this.byRelay.set(endpointKey(r), allocation);
    this.perUser.set(c.username, (this.perUser.get(c.username) ?? 0) + 1);
    this.deadlines.push(allocation.expiresAt, { kind: 'allocation', key: allocation.key });
    this.stats.allocationsCreated++;
    return this.replies.bytes(input, response);
  }

  /** RFC 8656 §7.5; REQUESTED-ADDRESS-FAMILY picks one half of a dual allocation. */
  private refresh(c: Authed): TurnResult {
    const { input, msg } = c;
    const found = this.owned(c);
    if (!(found instanceof Allocation)) return found;
    const requested = msg.get(REQUESTED_ADDRESS_FAMILY);
    let only: Endpoint | undefined;
    if (requested !== undefined) {
      const family = toFamily(requested);
      if (family === undefined) return this.replies.error(input, msg, 440, undefined, c);
      only = found.relayFor(family);
      if (only === undefined) return this.replies.error(input, msg, 443, undefined, c);
    }
    const asked = msg.get(LIFETIME);
    if (asked === 0) {
      if (only === undefined || found.relays.length === 1) this.deleteAllocation(found, 'deleted');
      else this.dropRelay(found, only);
      return this.replies.respond(input, msg, StunClass.SUCCESS, [attr(LIFETIME, 0)], c);
    }
    const lifetimeS = this.lifetime(asked);
    found.expiresAt = input.now + lifetimeS * 1000;
    return this.replies.respond(input, msg, StunClass.SUCCESS, [attr(LIFETIME, lifetimeS)], c);
  }

  /** RFC 8656 §9.2: every XOR-PEER-ADDRESS checked first, then all installed (none on error). */
  private createPermission(c: Authed): TurnResult {
    const { input, msg } = c;
    const found = this.owned(c);
    if (!(found instanceof Allocation)) return found;
    const peers = allOf(msg, XOR_PEER_ADDRESS);
    if (peers.length === 0) return this.replies.error(input, msg, 400, 'Bad Request: XOR-PEER-ADDRESS missing', c);
    for (const peer of peers) {
      const refused = this.refusePeer(c, found, peer);
      if (refused !== undefined) return refused;
    }
    for (const peer of peers) if (!found.canPermit(peer.address, input.now)) return this.replies.error(input, msg, 508, undefined, c);
    for (const peer of peers) found.permit(peer.address, input.now);
    return this.replies.respond(input, msg, StunClass.SUCCESS, [], c);
  }

  /** RFC 8656 §11.2: binds or refreshes a channel and installs or refreshes the peer's permission. */
  private channelBind(c: Authed): TurnResult {
    const { input, msg } = c;
    const found = this.owned(c);
    if (!(found instanceof Allocation)) return found;
    const channel = msg.get(CHANNEL_NUMBER);
    const peer = msg.get(XOR_PEER_ADDRESS);
    if (channel === undefined || peer === undefined) return this.replies.error(input, msg, 400, 'Bad Request: CHANNEL-NUMBER or XOR-PEER-ADDRESS missing', c);
    // RFC 8656 §12 narrowed RFC 5766 §11's 0x4000–0x7FFF to 0x4000–0x4FFF (0x5000 and up went
    // to RFC 7983 demultiplexing); the old range only when the operator opts in.
    if (!isValidChannel(channel, this.channelRange)) return this.replies.error(input, msg, 400, `Bad Request: ${channelOutOfRange(channel, this.channelRange)}`, c);
    const refused = this.refusePeer(c, found, peer);
    if (refused !== undefined) return refused;
    if (!found.canPermit(peer.address, input.now)) return this.replies.error(input, msg, 508, undefined, c);
    const bound = found.bind(channel, peer, input.now);
    if (bound === 'conflict') return this.replies.error(input, msg, 400, 'Bad Request: channel or peer bound to another', c);
    if (bound === 'full') return this.replies.error(input, msg, 508, undefined, c);
    found.permit(peer.address, input.now);
    return this.replies.respond(input, msg, StunClass.SUCCESS, [], c);
  }

  /** RFC 8656 §10.2: relays DATA to XOR-PEER-ADDRESS when a permission exists; otherwise discards silently. */
  private send(input: TurnClientInput, msg: StunMessage): TurnResult {
    const a = this.live(fiveTupleKey(input), input.now);
    if (a === undefined) return { drop: 'no-allocation' };
    if (msg.unknownRequired(this.known).length > 0) return { drop: 'bad-indication' };
    let peer: Endpoint | undefined;
    let data: Uint8Array | undefined;
    try {
      peer = msg.get(XOR_PEER_ADDRESS);
      data = msg.get(DATA_ATTRIBUTE);
    } catch (err) {
      if (err instanceof StunDecodeError) return { drop: 'bad-indication' };
      throw err;
    }
    if (peer === undefined || data === undefined) return { drop: 'bad-indication' };
    return this.toPeer(a, peer, data, msg.has(DONT_FRAGMENT), input.now);
  }

  /** RFC 8656 §12.5: ChannelData on a bound channel goes to its peer; anything else is discarded. */
  private channelData(input: TurnClientInput): TurnResult {
    let channel: number;
    let data: Uint8Array;
    try {
      ({ channel, data } = decodeChannelData(input.data, { ...this.channelRange, framing: input.transport === 'udp' ? 'udp' : 'stream' }));
    } catch (err) {
      if (err instanceof TurnDecodeError) return { drop: 'malformed' };
      throw err;
    }
    const a = this.live(fiveTupleKey(input), input.now);
    if (a === undefined) return { drop: 'no-allocation' };
    const peer = a.peerOf(channel, input.now);
    if (peer === undefined) return { drop: 'unbound-channel' };
    return this.toPeer(a, peer, data, false, input.now);
  }

  private toPeer(a: Allocation, peer: Endpoint, data: Uint8Array, dontFragment: boolean, now: number): TurnResult {
    const from = a.relayFor(peer.family);
    if (from === undefined) return { drop: 'family-mismatch' };
    // A permission is installed only for peers the policy admits, so it also guards policy.
    if (!a.hasPermission(peer.address, now)) return { drop: 'no-permission' };
    if (!this.withinBandwidth(a, data.length, now)) return { drop: 'bandwidth' };
    this.stats.toPeerPackets++;
    this.stats.toPeerBytes += data.length;
    a.counters.toPeerPackets++;
    a.counters.toPeerBytes += data.length;
    return { output: { kind: 'peer', from, to: peer, data, dontFragment } };
  }

  /** RFC 8656 §10.3 (Data indication) and §12.5 (ChannelData when a channel is bound to the peer). */
  private peer(input: TurnPeerInput): TurnResult {
    const a = this.byRelay.get(endpointKey(input.relayed));
    if (a === undefined || this.live(a.key, input.now) === undefined) return { drop: 'unknown-relay' };
    if (!a.hasPermission(input.peer.address, input.now)) return { drop: 'no-permission' };
    const { data } = input;
    const to = a.fiveTuple;
    const channel = a.channelFor(input.peer, input.now);
    let bytes: Uint8Array;
    if (channel !== undefined) {
      bytes = encodeChannelData({ channel, data }, to.transport === 'udp' ? 'udp' : 'stream', this.channelRange);
    } else {
      if (data.length > MAX_INDICATION_DATA) return { drop: 'too-large' };
      const id = this.indicationId;
      new DataView(id.buffer, id.byteOffset, 12).setUint32(8, this.indicationCount++ >>> 0);
      bytes = encodeMessage({
        method: DATA, cls: StunClass.INDICATION, transactionId: id,
        attributes: [attr(XOR_PEER_ADDRESS, input.peer), attr(DATA_ATTRIBUTE, data)],
      });
    }
    if (!this.withinBandwidth(a, data.length, input.now)) return { drop: 'bandwidth' };
    this.stats.toClientPackets++;
    this.stats.toClientBytes += data.length;
    a.counters.toClientPackets++;
    a.counters.toClientBytes += data.length;
    return { output: { kind: 'client', to, data: bytes } };
  }

  /** 403 for peers the policy refuses, 443 for a family the allocation has no relayed address of. */
  private refusePeer(c: Authed, a: Allocation, peer: Endpoint): TurnResult | undefined {
    if (a.relayFor(peer.family) === undefined) return this.replies.error(c.input, c.msg, 443, undefined, c);
    if (!this.policy.permits(peer.address)) return this.replies.error(c.input, c.msg, 403, undefined, c);
    return undefined;
  }

  /** The allocation on the request's 5-tuple, or the 437/441 response (RFC 8656 §5: the same credentials throughout). */
  private owned(c: Authed): Allocation | TurnResult {
    const a = this.live(fiveTupleKey(c.input), c.input.now);
    if (a === undefined) return this.replies.error(c.input, c.msg, 437, undefined, c);
    if (a.username !== c.username) return this.replies.error(c.input, c.msg, 441, undefined, c);
    return a;
  }

  /** The allocation under `key` unless it has expired (then it is deleted now). */
  private live(key: string, now: number): Allocation | undefined {
    const a = this.allocationMap.get(key);
    if (a === undefined || a.expiresAt > now) return a;
    this.deleteAllocation(a, 'expired');
    return undefined;
  }

  /** RFC 8656 §7.2/§7.5: min(requested, max), but never below the default; absent means the default. */
  private lifetime(requested: number | undefined): number {
    return Math.min(Math.max(requested ?? DEFAULT_LIFETIME_S, DEFAULT_LIFETIME_S), this.maxLifetimeS);
  }

  private deleteAllocation(a: Allocation, why: 'deleted' | 'expired' | 'disconnected'): void {
    this.allocationMap.delete(a.key);
    for (const r of [...a.relays]) this.dropRelay(a, r);
    const n = (this.perUser.get(a.username) ?? 1) - 1;
    if (n > 0) this.perUser.set(a.username, n);
    else this.perUser.delete(a.username);
    if (why === 'deleted') this.stats.allocationsDeleted++;
    else if (why === 'expired') this.stats.allocationsExpired++;
    else this.stats.allocationsDisconnected++;
  }

  private dropRelay(a: Allocation, relayed: Endpoint): void {
    a.relays.splice(a.relays.indexOf(relayed), 1);
    this.byRelay.delete(endpointKey(relayed));
    this.allocator.release(relayed);
  }

}

/** REQUESTED-ADDRESS-FAMILY value → family; undefined for values RFC 8656 §18.10 does not define. */
function toFamily(value: number): IpFamily | undefined {
  return value === AddressFamily.IPV4 ? 4 : value === AddressFamily.IPV6 ? 6 : undefined;
}
