// The sans-I/O TURN client, RFC 8656: Allocate (§7.1–§7.3), Refresh and deletion (§7.4,
// §7.5), CreatePermission (§9.1), Send and Data indications (§10.1, §10.4), ChannelBind
// (§11.1) and ChannelData (§12), with long-term credentials (RFC 8489 §9.2, auth.ts) and
// ALTERNATE-SERVER (RFC 8489 §10). The driver runs each request it asks for as a STUN
// transaction (retransmissions are the transaction's) and feeds the outcome back with the
// time; it transmits indications and ChannelData, and calls handleTimer() at nextTimerAt().
//
// Permissions and channels (peers.ts) are made on demand: the first datagram to a peer's
// IP address creates its permission, datagrams wait for it, go as Send indications, and
// once `channelAfterPackets` have gone to one peer endpoint a channel is bound and
// ChannelData takes over. Everything made is refreshed until close().
//
// Over UDP a STUN Binding indication goes to the server whenever nothing else went to it
// for `keepaliveMs` (RFC 8489 §3: Binding indications serve as keepalives; RFC 8445 §11
// keeps candidates alive every 15 s), so the client's NAT keeps its mapping toward the
// server while the allocation is idle: permission refreshes (every 4 min) come too late for
// NATs that forget an idle UDP mapping after 30 s (RFC 4787 REQ-5 asks for at least 2 min).
import { endpointKey, type Endpoint, type Random } from '../../net/index.ts';
import { DecodeError, NatkitError } from '../../util/index.ts';
import {
  ALTERNATE_SERVER, BINDING, ERROR_CODE, StunClass, StunDecodeError, TRANSACTION_ID_LENGTH, XOR_MAPPED_ADDRESS, attr, decodeMessage, encodeMessage, looksLikeStun,
  type AttrEntry, type StunErrorValue, type StunMessage,
} from '../../stun/index.ts';
import {
  ADDITIONAL_ADDRESS_FAMILY, ADDRESS_ERROR_CODE, DATA_ATTRIBUTE, LIFETIME, REQUESTED_ADDRESS_FAMILY, REQUESTED_TRANSPORT,
  XOR_PEER_ADDRESS, XOR_RELAYED_ADDRESS, allOf, type AddressErrorValue,
} from '../attributes.ts';
import { decodeChannelData, looksLikeChannelData } from '../channel-data.ts';
import { ALLOCATE, AddressFamily, CHANNEL_BIND, CREATE_PERMISSION, DATA, DEFAULT_LIFETIME_S, REFRESH, TRANSPORT_UDP } from '../constants.ts';
import { LongTermAuth, type Signing, type TurnCredentials } from './auth.ts';
import { TurnError } from './errors.ts';
import { PeerTable, type PeerRequest } from './peers.ts';

/** Which relayed addresses to ask for (RFC 8656 §7.1): one family, or both (dual allocation, §7.2). */
export type TurnAddressFamily = 'ipv4' | 'ipv6' | 'dual';

/** Options of the client core. */
export interface TurnClientCoreOptions extends TurnCredentials {
  /** The server first asked; the redirect loop guard starts from it (RFC 8489 §10). */
  readonly server: Endpoint;
  /** Transaction IDs of Send indications. */
  readonly random: Random;
  /** 'stream' over TCP/TLS: ChannelData padded to 4 bytes (RFC 8656 §12.5). @default 'udp' */
  readonly framing?: 'udp' | 'stream';
  /** LIFETIME asked for in Allocate and Refresh, seconds. @default none: the server's default (600, RFC 8656 §7.2) */
  readonly lifetimeS?: number;
  /** @default none: the server relays IPv4 (RFC 8656 §7.2) */
  readonly addressFamily?: TurnAddressFamily;
  /**
   * Datagrams to one peer endpoint that go as Send indications before a channel is bound
   * for it (ChannelData saves 32 bytes a datagram); Infinity: never bind. @default 1
   */
  readonly channelAfterPackets?: number;
  /** Datagrams held per peer address while its permission is being created. @default 64 */
  readonly maxQueuedPerPeer?: number;
  /**
   * UDP: send a Binding indication to the server after this long without sending it
   * anything, to keep the NAT mapping toward it; 0 turns it off. Never sent over TCP/TLS
   * (the connection is the mapping). @default 15000
   */
  readonly keepaliveMs?: number;
}

/** What the server granted (RFC 8656 §7.3). */
export interface TurnAllocation {
  /** The server that holds it (after an ALTERNATE-SERVER redirect, the alternate). */
  readonly server: Endpoint;
  /** XOR-RELAYED-ADDRESS: one, or two for a dual allocation (IPv4 first as the server sent them). */
  readonly relayed: readonly Endpoint[];
  /** XOR-MAPPED-ADDRESS: the client's server-reflexive address. */
  readonly mapped: Endpoint | undefined;
  /** LIFETIME granted, seconds. */
  readonly lifetimeS: number;
  /** ADDRESS-ERROR-CODE: why one family of a dual allocation was not granted (§7.2). */
  readonly addressErrors: readonly AddressErrorValue[];
}

/** Lifecycle of the allocation. */
export type TurnClientState = 'idle' | 'allocating' | 'redirecting' | 'allocated' | 'closing' | 'closed' | 'failed';

/** Why a request is made; the driver may time a deletion more tightly. */
export type TurnRequestKind = 'allocate' | 'refresh' | 'delete' | PeerRequest['kind'];

/** What the driver does next, in order. */
export type TurnClientAction =
  /** Send this request as a STUN transaction (signed with `sign` when present) and report its outcome with `id`. */
  | { readonly kind: 'request'; readonly id: number; readonly purpose: TurnRequestKind; readonly method: number; readonly attributes: readonly AttrEntry[]; readonly sign?: Signing }
  /** Send these bytes (a Send indication or ChannelData) to the server. */
  | { readonly kind: 'transmit'; readonly data: Uint8Array }
  /** Move to this server (connect anew over TCP/TLS), then call start() again. */
  | { readonly kind: 'redirect'; readonly server: Endpoint }
  | { readonly kind: 'allocated'; readonly allocation: TurnAllocation }
  /** The allocation could not be made or is lost; the core does nothing more. */
  | { readonly kind: 'failed'; readonly error: TurnError }
  /** close() is done: the allocation is deleted (or could not be reached). */
  | { readonly kind: 'closed' };

/** A datagram from a peer, from a Data indication or ChannelData. */
export interface TurnDelivery {
  /** A view into the received bytes. */
  readonly data: Uint8Array;
  readonly peer: Endpoint;
}

/** Counters; nothing resets them. */
export interface TurnClientCoreStats {
  /** Requests issued, credential retries included. */
  requests: number;
  indicationsSent: number;
  channelDataSent: number;
  dataIndications: number;
  channelDataReceived: number;
  /** ChannelBind successes, refreshes included. */
  channelsBound: number;
  /** Datagrams not sent: no allocation, refused or full peer, wrong family, too large. */
  dropped: number;
  /** Received and discarded: malformed, unknown channel, peer without permission (RFC 8656 §10.4). */
  discarded: number;
  /** Binding indications sent to keep the NAT mapping toward the server. */
  keepalives: number;
}

/** A request with its retry state: one 401 and one 438 retry each (RFC 8489 §9.2.5). */
interface Outstanding {
  readonly purpose: { readonly kind: 'allocate' | 'refresh' | 'delete' } | PeerRequest;
  readonly method: number;
  readonly attributes: readonly AttrEntry[];
  challenged: boolean;
  stale: boolean;
}

/** Refresh an allocation this long before it ends, or at 3/4 of a short lifetime. */
const REFRESH_MARGIN_S = 60;
/** After a Refresh that got no answer, try again this much later while the allocation lasts. */
const REFRESH_RETRY_MS = 5_000;
/** RFC 8445 §11: Tr, the keepalive interval, 15 s by default. */
const DEFAULT_KEEPALIVE_MS = 15_000;

const METHOD_NAMES: Readonly<Record<number, string>> = {
  [ALLOCATE]: 'Allocate', [REFRESH]: 'Refresh', [CREATE_PERMISSION]: 'CreatePermission', [CHANNEL_BIND]: 'ChannelBind',
};

/** The sans-I/O TURN client; see the file header. */
export class TurnClientCore {
  readonly stats: TurnClientCoreStats = {
    requests: 0, indicationsSent: 0, channelDataSent: 0, dataIndications: 0, channelDataReceived: 0, channelsBound: 0, dropped: 0, discarded: 0, keepalives: 0,
  };
  private readonly options: TurnClientCoreOptions;
  private readonly auth: LongTermAuth;
  private readonly peers: PeerTable;
  private readonly framing: 'udp' | 'stream';
  private readonly tried = new Set<string>();
  private readonly pending = new Map<number, Outstanding>();
  private actions: TurnClientAction[] = [];
  private current: Endpoint;
  private phase: TurnClientState = 'idle';
  private granted: TurnAllocation | undefined;
  private nextId = 1;
  private expiresAt = 0;
  /** Undefined while a Refresh is in flight. */
  private refreshAt: number | undefined;
  /** 0: no keepalives (off, or over a stream). */
  private readonly keepaliveMs: number;
  /** The time of the call being handled: what the server was last sent is stamped with it. */
  private now = 0;
  /** When the server was last sent something. */
  private sentAt = 0;

  constructor(options: TurnClientCoreOptions) {
    const { lifetimeS, keepaliveMs = DEFAULT_KEEPALIVE_MS } = options;
    if (lifetimeS !== undefined && (!Number.isInteger(lifetimeS) || lifetimeS < 1 || lifetimeS > 0xffffffff)) {
      throw new NatkitError('ERR_INVALID_ARGUMENT', `lifetimeS: expected a whole number of seconds ≥ 1, got ${lifetimeS}`);
    }
    if (!Number.isInteger(keepaliveMs) || keepaliveMs < 0) throw new NatkitError('ERR_INVALID_ARGUMENT', `keepaliveMs: expected a whole number ≥ 0, got ${keepaliveMs}`);
    this.options = options;
    this.current = options.server;
    this.tried.add(endpointKey(options.server));
    this.auth = new LongTermAuth(options);
    this.framing = options.framing ?? 'udp';
    this.keepaliveMs = this.framing === 'udp' ? keepaliveMs : 0;
    this.peers = new PeerTable({
      random: options.random,
      framing: this.framing,
      channelAfterPackets: options.channelAfterPackets ?? 1,
      maxQueuedPerPeer: options.maxQueuedPerPeer ?? 64,
      stats: this.stats,
      request: (purpose, attributes) => this.issue({ purpose, method: purpose.kind === 'permission' ? CREATE_PERMISSION : CHANNEL_BIND, attributes, challenged: false, stale: false }),
      transmit: (data) => this.transmit(data),
    });
  }

  get state(): TurnClientState {
    return this.phase;
  }

  /** The server requests go to now. */
  get server(): Endpoint {
    return this.current;
  }

  /** What was granted, once allocated. */
  get allocation(): TurnAllocation | undefined {
    return this.granted;
  }

  /** Removes and returns what the driver should do, in order. */
  takeActions(): TurnClientAction[] {
    const out = this.actions;
    this.actions = [];
    return out;
  }

  /** Sends the Allocate request (RFC 8656 §7.1); again after a 'redirect' once the driver has moved. */
  start(): void {
    if (this.phase !== 'idle' && this.phase !== 'redirecting') throw new NatkitError('ERR_INVALID_ARGUMENT', `start() while ${this.phase}`);
    this.phase = 'allocating';
    const { lifetimeS, addressFamily } = this.options;
    const attributes = [attr(REQUESTED_TRANSPORT, TRANSPORT_UDP)];
    if (lifetimeS !== undefined) attributes.push(attr(LIFETIME, lifetimeS));
    if (addressFamily === 'dual') attributes.push(attr(ADDITIONAL_ADDRESS_FAMILY, AddressFamily.IPV6));
    else if (addressFamily !== undefined) attributes.push(attr(REQUESTED_ADDRESS_FAMILY, addressFamily === 'ipv6' ? AddressFamily.IPV6 : AddressFamily.IPV4));
    this.issue({ purpose: { kind: 'allocate' }, method: ALLOCATE, attributes, challenged: false, stale: false });
  }

  /** The outcome of request `id`: the response, or why the transaction failed. */
  handleResponse(id: number, response: StunMessage | NatkitError, now: number): void {
    this.now = now;
    const o = this.pending.get(id);
    if (o === undefined) return;
    this.pending.delete(id);
    // Once closing only the deletion matters; once done nothing does.
    if (this.phase === 'closed' || this.phase === 'failed' || (this.phase === 'closing' && o.purpose.kind !== 'delete')) return;
    if (response instanceof NatkitError) {
      this.refused(o, new TurnError(response.code, `${this.what(o)}: ${response.message}`, { cause: response }), now);
      return;
    }
    try {
      if (response.cls === StunClass.SUCCESS) this.succeeded(o, response, now);
      else this.errorResponse(o, response, response.get(ERROR_CODE), now);
    } catch (err) {
      if (!(err instanceof StunDecodeError)) throw err;
      this.refused(o, new TurnError('ERR_STUN_DECODE', `${this.what(o)}: malformed response: ${err.message}`, { cause: err }), now);
    }
  }

  /** When handleTimer() next has work; undefined when nothing is scheduled. */
  nextTimerAt(): number | undefined {
    if (this.phase !== 'allocated') return undefined;
    const own = Math.min(this.refreshAt ?? this.expiresAt, this.keepaliveMs > 0 ? this.sentAt + this.keepaliveMs : Infinity);
    const peers = this.peers.nextTimerAt();
    return peers === undefined ? own : Math.min(own, peers);
  }

  /** Runs what is due at `now`: the allocation's Refresh, permission and channel refreshes, keepalive, expiry. */
  handleTimer(now: number): void {
    this.now = now;
    if (this.phase !== 'allocated') return;
    if (now >= this.expiresAt) {
      this.lose(new TurnError('ERR_TIMEOUT', `TURN allocation at ${endpointKey(this.current)} expired: no Refresh succeeded`));
      return;
    }
    if (this.refreshAt !== undefined && now >= this.refreshAt) {
      this.refreshAt = undefined;
      const { lifetimeS } = this.options;
      this.issue({ purpose: { kind: 'refresh' }, method: REFRESH, attributes: lifetimeS === undefined ? [] : [attr(LIFETIME, lifetimeS)], challenged: false, stale: false });
    }
    this.peers.handleTimer(now);
    if (this.keepaliveMs > 0 && now >= this.sentAt + this.keepaliveMs) {
      this.stats.keepalives++;
      this.transmit(encodeMessage({ method: BINDING, cls: StunClass.INDICATION, transactionId: this.options.random.bytes(TRANSACTION_ID_LENGTH), attributes: [] }));
    }
  }

  /**
   * Relays `data` to `peer`: now, or once its permission exists. False when dropped (see
   * TurnClientCoreStats.dropped). `data` is copied when it has to wait.
   */
  send(data: Uint8Array, peer: Endpoint, now: number): boolean {
    this.now = now;
    if (this.phase !== 'allocated' || !this.granted?.relayed.some((r) => r.family === peer.family)) {
      this.stats.dropped++;
      return false;
    }
    return this.peers.send(data, peer, now);
  }

  /**
   * A Data indication or ChannelData from the server (RFC 8656 §10.4, §12.6): the datagram
   * and its peer, or undefined when the bytes are neither or are discarded. Never throws.
   */
  receive(bytes: Uint8Array): TurnDelivery | undefined {
    if (this.phase !== 'allocated' && this.phase !== 'closing') return undefined;
    const isChannelData = looksLikeChannelData(bytes);
    if (!isChannelData && !looksLikeStun(bytes)) return undefined;
    let delivery: TurnDelivery | 'not-mine' | undefined;
    try {
      delivery = isChannelData ? this.fromChannel(bytes) : this.fromIndication(bytes);
    } catch (err) {
      if (!(err instanceof DecodeError)) throw err;
    }
    if (delivery === 'not-mine') return undefined;
    if (delivery === undefined) this.stats.discarded++;
    return delivery;
  }

  /** Deletes the allocation (Refresh with LIFETIME 0, RFC 8656 §7.5); 'closed' follows. Idempotent. */
  close(): void {
    if (this.phase === 'allocated') {
      this.phase = 'closing';
      this.peers.clear();
      this.issue({ purpose: { kind: 'delete' }, method: REFRESH, attributes: [attr(LIFETIME, 0)], challenged: false, stale: false });
    } else if (this.phase !== 'closing' && this.phase !== 'closed') {
      this.finish('closed');
    }
  }

  /** ChannelData on a channel we bound (RFC 8656 §12.6); throws TurnDecodeError. */
  private fromChannel(bytes: Uint8Array): TurnDelivery | undefined {
    const { channel, data } = decodeChannelData(bytes);
    const peer = this.peers.channelPeer(channel);
    if (peer === undefined) return undefined;
    this.stats.channelDataReceived++;
    return { data, peer };
  }

  /** A Data indication (RFC 8656 §10.4); 'not-mine' for other STUN messages; throws StunDecodeError. */
  private fromIndication(bytes: Uint8Array): TurnDelivery | 'not-mine' | undefined {
    const msg = decodeMessage(bytes, { allowLegacy: false });
    if (msg.cls !== StunClass.INDICATION || msg.method !== DATA) return 'not-mine';
    const peer = msg.get(XOR_PEER_ADDRESS);
    const data = msg.get(DATA_ATTRIBUTE);
    // §10.4: discard a Data indication from a peer we hold no permission for.
    if (peer === undefined || data === undefined || !this.peers.isPermitted(peer)) return undefined;
    this.stats.dataIndications++;
    return { data, peer };
  }

  private transmit(data: Uint8Array): void {
    this.sentAt = this.now;
    this.actions.push({ kind: 'transmit', data });
  }

  private issue(o: Outstanding): void {
    this.sentAt = this.now;
    const id = this.nextId++;
    this.pending.set(id, o);
    this.stats.requests++;
    const sign = this.auth.sign;
    this.actions.push({
      kind: 'request', id, purpose: o.purpose.kind, method: o.method, attributes: [...o.attributes, ...this.auth.attributes()], ...(sign && { sign }),
    });
  }

  private errorResponse(o: Outstanding, response: StunMessage, error: StunErrorValue | undefined, now: number): void {
    const code = error?.code;
    // RFC 8489 §9.2.5: answer a 401 with credentials, a 438 with the new nonce; once each.
    const retry = code === 401 ? 'challenged' : code === 438 ? 'stale' : undefined;
    if (retry !== undefined && !o[retry] && this.auth.challenge(response)) {
      o[retry] = true;
      this.issue(o);
      return;
    }
    if (code === 300 && o.purpose.kind === 'allocate' && this.redirect(response)) return;
    const text = error === undefined ? 'an error response without ERROR-CODE' : `${error.code} ${error.reason}`;
    this.refused(o, new TurnError('ERR_PROTOCOL', `${this.what(o)}: ${text}`, code === undefined ? {} : { status: code }), now);
  }

  /**
   * RFC 8489 §10: follow ALTERNATE-SERVER once, to an address of the same family that was
   * not tried yet (the loop guard); RFC 8656 §7.3 starts the Allocate afresh there.
   */
  private redirect(response: StunMessage): boolean {
    const to = response.get(ALTERNATE_SERVER);
    if (to === undefined || to.family !== this.current.family || this.tried.size > 1 || this.tried.has(endpointKey(to))) return false;
    this.tried.add(endpointKey(to));
    this.current = to;
    this.auth.reset();
    this.phase = 'redirecting';
    this.actions.push({ kind: 'redirect', server: to });
    return true;
  }

  private succeeded(o: Outstanding, msg: StunMessage, now: number): void {
    const { purpose } = o;
    switch (purpose.kind) {
      case 'allocate': {
        const relayed = allOf(msg, XOR_RELAYED_ADDRESS);
        if (relayed.length === 0) throw new StunDecodeError('Allocate success response without XOR-RELAYED-ADDRESS', 0);
        const lifetimeS = msg.get(LIFETIME) ?? DEFAULT_LIFETIME_S;
        this.granted = { server: this.current, relayed, mapped: msg.get(XOR_MAPPED_ADDRESS), lifetimeS, addressErrors: allOf(msg, ADDRESS_ERROR_CODE) };
        this.phase = 'allocated';
        this.sentAt = now;
        this.extend(lifetimeS, now);
        this.actions.push({ kind: 'allocated', allocation: this.granted });
        return;
      }
      case 'refresh':
        this.extend(msg.get(LIFETIME) ?? DEFAULT_LIFETIME_S, now);
        return;
      case 'delete':
        this.finish('closed');
        return;
      default:
        this.peers.granted(purpose, now);
    }
  }

  /** A request that failed: an error response, a transaction failure, or a malformed answer. */
  private refused(o: Outstanding, error: TurnError, now: number): void {
    const { purpose } = o;
    // RFC 8656 §7.5, §9.1, §11.1: 437 means the server holds no allocation for us.
    if (error.status === 437 && purpose.kind !== 'delete') {
      this.lose(error);
      return;
    }
    switch (purpose.kind) {
      case 'allocate':
        this.lose(error);
        return;
      case 'refresh':
        // A refusal ends the allocation; a lost answer is retried while it lasts.
        if (error.status === undefined && now + REFRESH_RETRY_MS < this.expiresAt) this.refreshAt = now + REFRESH_RETRY_MS;
        else this.lose(error);
        return;
      case 'delete':
        this.finish('closed');
        return;
      default:
        this.peers.refused(purpose, now);
    }
  }

  /** A lifetime granted at `now`: the next Refresh goes at lifetime − 60 s, or 3/4 of a short one. */
  private extend(lifetimeS: number, now: number): void {
    this.expiresAt = now + lifetimeS * 1000;
    this.refreshAt = now + Math.max(lifetimeS - REFRESH_MARGIN_S, (lifetimeS * 3) / 4) * 1000;
  }

  private lose(error: TurnError): void {
    this.peers.clear();
    this.pending.clear();
    this.finish('failed', error);
  }

  private finish(phase: 'closed' | 'failed', error?: TurnError): void {
    this.phase = phase;
    this.refreshAt = undefined;
    this.actions.push(error === undefined ? { kind: 'closed' } : { kind: 'failed', error });
  }

  /** "TURN Allocate at 1.2.3.4:3478" for messages. */
  private what(o: Outstanding): string {
    const detail = o.purpose.kind === 'permission' || o.purpose.kind === 'channel' ? ` for ${endpointKey(o.purpose.peer)}` : '';
    const name = o.purpose.kind === 'delete' ? 'Refresh (delete)' : METHOD_NAMES[o.method] ?? `method 0x${o.method.toString(16)}`;
    return `TURN ${name}${detail} at ${endpointKey(this.current)}`;
  }
}
