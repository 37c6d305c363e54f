// The rendezvous server's sans-I/O core (docs/rendezvous.md): bytes, the sender, the link
// they came in on and the time go in; frames to send (bytes, destination, link) come out.
// Registrations are keyed by name and bound to the Ed25519 key that registered them until
// their lease ends or their holder sends UNREGISTER; CONNECT (the seed's ASK_PUNCHING) and rooms (the seed's "pool") make
// the core order both sides of a pair to punch (ORDER_PUNCHING). Every destination is an
// address the server saw a packet from — the current sender, or a registration's source
// proven by the challenge — never one written in a payload (no reflection).
import { createHmac, timingSafeEqual } from 'node:crypto';
import { endpointKey, sameEndpoint, type Endpoint, type Random } from '../net/index.ts';
import { rateKey } from '../stun/index.ts';
import { NatkitError, RateLimiter, type RateLimiterOptions } from '../util/index.ts';
import { ERROR_CODES, RENDEZVOUS_VERSION, decodeFrame, encodeFrame, type MessageOf, type RendezvousErrorCode, type RendezvousMessage } from './codec.ts';
import { registerSignedData, verifySignature } from './identity.ts';
import { MAX_CANDIDATES, NONCE_BYTES, PAIR_ID_BYTES, RendezvousDecodeError, SESSION_BYTES, type Candidate, type NatSummary } from './tlv.ts';
import { createRendezvousStats, type RendezvousDrop, type RendezvousStats } from './stats.ts';

/** Limits and timers of the core; every field has a default. */
export interface RendezvousCoreOptions {
  /** Nonces, session tokens, pair ids and transaction ids. */
  readonly random: Random;
  /** Registration lifetime without keepalive, seconds. @default 30 */
  readonly leaseS?: number;
  /** Keepalive interval recommended in REGISTERED, seconds (under leaseS). @default 10 */
  readonly keepaliveS?: number;
  /** How long a CHALLENGE nonce stays good, ms. @default 30000 */
  readonly nonceLifetimeMs?: number;
  /** Time added to the slower side's one-way delay before both start punching, ms. @default 100 */
  readonly punchLeadMs?: number;
  /** Most registrations at once. @default 10000 */
  readonly maxRegistrations?: number;
  /** Most rooms at once. @default 1000 */
  readonly maxRooms?: number;
  /** Most members of one room. @default 16 */
  readonly maxRoomMembers?: number;
  /** Most rooms one registration is in. @default 8 */
  readonly maxRoomsPerPeer?: number;
  /** Per-source token bucket (IPv4 address or IPv6 /64), over every frame; false turns it off. @default { ratePerS: 20, burst: 40 } */
  readonly rateLimit?: RateLimiterOptions | false;
  /** PUNCH orders CONNECT may cause towards one name. @default { ratePerS: 2, burst: 10 } */
  readonly introductionLimit?: RateLimiterOptions;
}

/** One input: a datagram, or one frame of a stream. */
export interface CoreInput<L> {
  readonly data: Uint8Array;
  /** The sender: source of the datagram, remote end of the stream. */
  readonly from: Endpoint;
  /** The driver's handle of where it arrived (a socket index, a stream), given back with every send. */
  readonly link: L;
  readonly transport: 'udp' | 'tcp';
  /** Monotonic milliseconds (Clock.now()). */
  readonly now: number;
}

/** A frame to send on `link` to `to` (on a stream `to` is informative). */
export interface CoreSend<L> {
  readonly data: Uint8Array;
  readonly to: Endpoint;
  readonly link: L;
}

/** What one input caused. */
export interface CoreResult<L> {
  readonly sends: readonly CoreSend<L>[];
  /** Why the input got no answer, when it got none. */
  readonly drop?: RendezvousDrop;
}

interface Registration<L> {
  readonly name: string;
  readonly publicKey: Uint8Array;
  endpoint: Endpoint;
  link: L;
  transport: 'udp' | 'tcp';
  session: string;
  candidates: readonly Candidate[];
  nat: NatSummary | undefined;
  rttMs: number;
  expiresAt: number;
  readonly rooms: Set<string>;
}

/** Longest round trip taken into account for start times, ms. */
const MAX_RTT_MS = 5000;
const NO_SENDS: readonly never[] = [];

/** The sans-I/O rendezvous server: `handle()` each input, `expire()` when `nextExpiry` comes. */
export class RendezvousCore<L> {
  readonly stats: RendezvousStats = createRendezvousStats();
  readonly leaseS: number;
  readonly keepaliveS: number;
  private readonly o: Required<Omit<RendezvousCoreOptions, 'rateLimit' | 'introductionLimit' | 'leaseS' | 'keepaliveS'>>;
  private readonly secret: Uint8Array;
  private readonly limiter: RateLimiter | undefined;
  private readonly introductions: RateLimiter;
  /** By name, in expiry order (a refresh re-inserts: every lease is leaseS long). */
  private readonly registrations = new Map<string, Registration<L>>();
  /** Session token (hex) → name. */
  private readonly sessions = new Map<string, string>();
  /** Stream link → the name registered over it. */
  private readonly streams = new Map<L, string>();
  /** Room → member names. */
  private readonly rooms = new Map<string, Set<string>>();

  constructor(options: RendezvousCoreOptions) {
    this.leaseS = options.leaseS ?? 30;
    this.keepaliveS = options.keepaliveS ?? 10;
    if (!Number.isInteger(this.leaseS) || !Number.isInteger(this.keepaliveS) || this.keepaliveS < 1 || this.keepaliveS >= this.leaseS || this.leaseS > 0xffff) {
      throw new NatkitError('ERR_CONFIG', `rendezvous timers: expected whole seconds with 1 ≤ keepaliveS < leaseS ≤ 65535, got ${this.keepaliveS} and ${this.leaseS}`);
    }
    this.o = {
      random: options.random,
      nonceLifetimeMs: options.nonceLifetimeMs ?? 30_000,
      punchLeadMs: options.punchLeadMs ?? 100,
      maxRegistrations: options.maxRegistrations ?? 10_000,
      maxRooms: options.maxRooms ?? 1000,
      maxRoomMembers: options.maxRoomMembers ?? 16,
      maxRoomsPerPeer: options.maxRoomsPerPeer ?? 8,
    };
    this.secret = options.random.bytes(32);
    this.limiter = options.rateLimit === false ? undefined : new RateLimiter(options.rateLimit ?? {});
    this.introductions = new RateLimiter(options.introductionLimit ?? { ratePerS: 2, burst: 10 });
  }

  /** Live registrations (some may have expired since the last expire()). */
  get registrationCount(): number {
    return this.registrations.size;
  }

  /** Rooms with at least one member. */
  get roomCount(): number {
    return this.rooms.size;
  }

  /** When the next registration expires (ms on the input clock); undefined when none is held. */
  get nextExpiry(): number | undefined {
    return this.registrations.values().next().value?.expiresAt;
  }

  /** Drops every registration whose lease has ended by `now`. */
  expire(now: number): void {
    // Map order is expiry order, so this stops at the first live one; at most size steps.
    for (const reg of this.registrations.values()) {
      if (reg.expiresAt > now) return;
      this.remove(reg);
      this.stats.expired++;
    }
  }

  /** A stream ended: the registration made over it can no longer be reached. */
  linkClosed(link: L): void {
    const name = this.streams.get(link);
    const reg = name === undefined ? undefined : this.registrations.get(name);
    if (reg !== undefined && reg.link === link) this.remove(reg);
    this.streams.delete(link);
  }

  /** Decides what to do with one input. Never throws on any bytes. */
  handle(input: CoreInput<L>): CoreResult<L> {
    this.stats.received++;
    if (this.limiter !== undefined && !this.limiter.take(rateKey(input.from), input.now)) return this.drop('rate-limited');
    let msg: RendezvousMessage;
    try {
      msg = decodeFrame(input.data);
    } catch (err) {
      if (!(err instanceof RendezvousDecodeError)) throw err;
      return this.decodeFailed(input, err);
    }
    switch (msg.type) {
      case 'hello': return this.hello(input, msg);
      case 'register': return this.register(input, msg);
      case 'keepalive': return this.keepalive(input, msg);
      case 'connect': return this.connect(input, msg);
      case 'join': return this.join(input, msg);
      case 'leave': return this.leave(input, msg);
      case 'unregister': return this.unregister(input, msg);
      default: return this.drop('unexpected');
    }
  }

  private hello(input: CoreInput<L>, msg: MessageOf<'hello'>): CoreResult<L> {
    const issued = new Uint8Array(8);
    new DataView(issued.buffer).setBigUint64(0, BigInt(Math.max(0, Math.floor(input.now))));
    const nonce = new Uint8Array(NONCE_BYTES);
    nonce.set(issued);
    nonce.set(this.nonceMac(issued, input), 8);
    const reply = encodeFrame({ type: 'challenge', transactionId: msg.transactionId, nonce, serverTimeMs: Math.max(0, Math.floor(input.now)) });
    // An unproven source never gets more bytes than it sent: HELLO pads itself (no amplification).
    if (reply.length > input.data.length) return this.drop('hello-too-small');
    this.stats.challenges++;
    return this.reply(input, reply);
  }

  private register(input: CoreInput<L>, msg: MessageOf<'register'>): CoreResult<L> {
    const { now } = input;
    const issuedAt = Number(new DataView(msg.nonce.buffer, msg.nonce.byteOffset).getBigUint64(0));
    const age = now - issuedAt;
    if (!timingSafeEqual(msg.nonce.subarray(8), this.nonceMac(msg.nonce.subarray(0, 8), input)) || age < 0 || age > this.o.nonceLifetimeMs) {
      return this.error(input, msg, 'stale-nonce');
    }
    const nameBytes = new TextEncoder().encode(msg.name);
    if (!verifySignature(msg.publicKey, registerSignedData(msg.nonce, nameBytes, msg.publicKey), msg.signature)) return this.error(input, msg, 'bad-signature');
    let reg = this.live(msg.name, now);
    if (reg !== undefined && !timingSafeEqual(reg.publicKey, msg.publicKey)) return this.error(input, msg, 'name-taken');
    const session = hex(this.o.random.bytes(SESSION_BYTES));
    const candidates = msg.candidates.slice(0, MAX_CANDIDATES - 1);
    const rttMs = Math.min(MAX_RTT_MS, age);
    if (reg === undefined) {
      if (this.registrations.size >= this.o.maxRegistrations) this.expire(now);
      if (this.registrations.size >= this.o.maxRegistrations) return this.error(input, msg, 'capacity');
      reg = {
        name: msg.name, publicKey: msg.publicKey, endpoint: input.from, link: input.link, transport: input.transport, session, candidates,
        nat: msg.nat, rttMs, expiresAt: 0, rooms: new Set(),
      };
      this.stats.registered++;
    } else {
      // The same key again: a restart or a move to a new address (NAT rebinding, new network).
      this.unlink(reg);
      Object.assign(reg, { endpoint: input.from, link: input.link, transport: input.transport, session, candidates, nat: msg.nat, rttMs });
      this.stats.reregistered++;
    }
    this.sessions.set(session, reg.name);
    if (input.transport === 'tcp') this.streams.set(input.link, reg.name);
    this.refresh(reg, now);
    return this.reply(input, this.registered(reg, msg.transactionId, now));
  }

  private keepalive(input: CoreInput<L>, msg: MessageOf<'keepalive'>): CoreResult<L> {
    const reg = this.session(input, msg.session);
    if (reg === undefined) return this.error(input, msg, 'not-registered');
    if (msg.rttMs !== undefined) reg.rttMs = Math.min(MAX_RTT_MS, msg.rttMs);
    this.refresh(reg, input.now);
    this.stats.keepalives++;
    return this.reply(input, this.registered(reg, msg.transactionId, input.now));
  }

  private connect(input: CoreInput<L>, msg: MessageOf<'connect'>): CoreResult<L> {
    const reg = this.session(input, msg.session);
    if (reg === undefined) return this.error(input, msg, 'not-registered');
    const target = this.live(msg.name, input.now);
    if (target === undefined) return this.error(input, msg, 'not-found');
    if (target === reg) return this.error(input, msg, 'bad-request');
    if (!this.introductions.take(target.name, input.now)) return this.error(input, msg, 'rate-limited');
    this.stats.connects++;
    return { sends: this.introduce(reg, target, input.now, msg.transactionId, undefined) };
  }

  private join(input: CoreInput<L>, msg: MessageOf<'join'>): CoreResult<L> {
    const reg = this.session(input, msg.session);
    if (reg === undefined) return this.error(input, msg, 'not-registered');
    let members = this.rooms.get(msg.room);
    if (members === undefined) {
      if (this.rooms.size >= this.o.maxRooms) return this.error(input, msg, 'capacity');
      members = new Set();
    }
    if (!members.has(reg.name) && (members.size >= this.o.maxRoomMembers || reg.rooms.size >= this.o.maxRoomsPerPeer)) return this.error(input, msg, 'room-full');
    this.rooms.set(msg.room, members);
    members.add(reg.name);
    reg.rooms.add(msg.room);
    this.stats.joins++;
    const sends: CoreSend<L>[] = [this.ok(input, msg)];
    // The newcomer meets every member once per JOIN (at most maxRoomMembers − 1 pairs).
    for (const name of [...members]) {
      if (name === reg.name) continue;
      const other = this.live(name, input.now);
      if (other !== undefined) sends.push(...this.introduce(reg, other, input.now, this.o.random.bytes(8), msg.room));
    }
    return { sends };
  }

  private leave(input: CoreInput<L>, msg: MessageOf<'leave'>): CoreResult<L> {
    const reg = this.session(input, msg.session);
    if (reg === undefined) return this.error(input, msg, 'not-registered');
    this.leaveRoom(reg, msg.room);
    return { sends: [this.ok(input, msg)] };
  }

  /**
   * The holder gives its name up before its lease ends (a peer restarting with the same
   * key then finds no old registration). Only its own session, from the registered address
   * and link, does it: nobody else can free a name.
   */
  private unregister(input: CoreInput<L>, msg: MessageOf<'unregister'>): CoreResult<L> {
    const reg = this.session(input, msg.session);
    if (reg === undefined) return this.error(input, msg, 'not-registered');
    this.remove(reg);
    this.stats.unregistered++;
    return { sends: [this.ok(input, msg)] };
  }

  /**
   * PUNCH to both sides, each about the other. `a` is controlling; `txid` addresses a's
   * copy (the answer to its CONNECT). The pair id is a MAC of the request, so a
   * retransmitted CONNECT yields the same pair with a fresh start time.
   */
  private introduce(a: Registration<L>, b: Registration<L>, now: number, txid: Uint8Array, room: string | undefined): CoreSend<L>[] {
    const pairId = this.mac(['pair', a.name, b.name, room ?? '', txid]).subarray(0, PAIR_ID_BYTES);
    const startAtMs = Math.floor(now + Math.max(a.rttMs, b.rttMs) / 2 + this.o.punchLeadMs);
    const order = (to: Registration<L>, peer: Registration<L>, controlling: boolean, transactionId: Uint8Array): CoreSend<L> => ({
      to: to.endpoint, link: to.link,
      data: encodeFrame({
        type: 'punch', transactionId, pairId, name: peer.name, publicKey: peer.publicKey, candidates: this.candidatesOf(peer),
        serverTimeMs: Math.floor(now), startAtMs, offsetMs: Math.floor(to.rttMs / 2), controlling,
        ...(peer.nat !== undefined && { nat: peer.nat }), ...(room !== undefined && { room }),
      }),
    });
    this.stats.punchOrders += 2;
    return [order(a, b, true, txid), order(b, a, false, this.o.random.bytes(8))];
  }

  /** The server-observed address first, then what the peer reported (without a copy of it). */
  private candidatesOf(reg: Registration<L>): Candidate[] {
    const observed: Candidate = { kind: 'server-reflexive', transport: reg.transport, endpoint: reg.endpoint };
    return [observed, ...reg.candidates.filter((c) => c.transport !== reg.transport || !sameEndpoint(c.endpoint, reg.endpoint))];
  }

  private registered(reg: Registration<L>, transactionId: Uint8Array, now: number): Uint8Array {
    return encodeFrame({
      type: 'registered', transactionId, reflexive: reg.endpoint, timers: { leaseS: this.leaseS, keepaliveS: this.keepaliveS },
      serverTimeMs: Math.max(0, Math.floor(now)), session: unhex(reg.session),
    });
  }

  /** The registration a session token names, when it is live and the frame comes from its address and link. */
  private session(input: CoreInput<L>, token: Uint8Array): Registration<L> | undefined {
    const name = this.sessions.get(hex(token));
    const reg = name === undefined ? undefined : this.live(name, input.now);
    if (reg === undefined || reg.link !== input.link || !sameEndpoint(reg.endpoint, input.from)) return undefined;
    return reg;
  }

  /** A registration whose lease has not ended (an ended one is removed on sight). */
  private live(name: string, now: number): Registration<L> | undefined {
    const reg = this.registrations.get(name);
    if (reg === undefined || reg.expiresAt > now) return reg;
    this.remove(reg);
    this.stats.expired++;
    return undefined;
  }

  private refresh(reg: Registration<L>, now: number): void {
    reg.expiresAt = now + this.leaseS * 1000;
    this.registrations.delete(reg.name);
    this.registrations.set(reg.name, reg);
  }

  private remove(reg: Registration<L>): void {
    for (const room of [...reg.rooms]) this.leaveRoom(reg, room);
    this.unlink(reg);
    this.registrations.delete(reg.name);
  }

  /** Forgets the registration's session token and stream. */
  private unlink(reg: Registration<L>): void {
    this.sessions.delete(reg.session);
    if (reg.transport === 'tcp' && this.streams.get(reg.link) === reg.name) this.streams.delete(reg.link);
  }

  private leaveRoom(reg: Registration<L>, room: string): void {
    reg.rooms.delete(room);
    const members = this.rooms.get(room);
    members?.delete(reg.name);
    if (members?.size === 0) this.rooms.delete(room);
  }

  private decodeFailed(input: CoreInput<L>, err: RendezvousDecodeError): CoreResult<L> {
    const txid = err.transactionId;
    if (txid === undefined) return this.drop('malformed');
    const code = err.reason === 'version' ? 'version-unsupported' : err.reason === 'too-large' ? 'too-large' : 'bad-request';
    return this.error(input, { transactionId: txid }, code, err.message);
  }

  /**
   * An ERROR answer. The reason text and VERSIONS go only while the answer stays within
   * the request's size; one that would still be larger is not sent (an unproven source
   * gains no amplification).
   */
  private error(input: CoreInput<L>, msg: { readonly transactionId: Uint8Array }, code: Exclude<RendezvousErrorCode, 'unknown'>, reason?: string): CoreResult<L> {
    const base = { type: 'error', transactionId: msg.transactionId, code: ERROR_CODES[code] } as const;
    const versions = code === 'version-unsupported' ? { versions: { min: RENDEZVOUS_VERSION, max: RENDEZVOUS_VERSION } } : {};
    let data = encodeFrame({ ...base, ...versions, ...(reason !== undefined && { reason }) });
    if (data.length > input.data.length) data = encodeFrame({ ...base, ...versions });
    if (data.length > input.data.length) return this.drop('amplification');
    this.stats.errors[code]++;
    return this.reply(input, data);
  }

  private ok(input: CoreInput<L>, msg: { readonly transactionId: Uint8Array }): CoreSend<L> {
    return { data: encodeFrame({ type: 'ok', transactionId: msg.transactionId }), to: input.from, link: input.link };
  }

  private reply(input: CoreInput<L>, data: Uint8Array): CoreResult<L> {
    return { sends: [{ data, to: input.from, link: input.link }] };
  }

  private drop(reason: RendezvousDrop): CoreResult<L> {
    this.stats.dropped[reason]++;
    return { sends: NO_SENDS, drop: reason };
  }

  /** Binds a nonce's issue time to the sender's transport and address (stateless return-routability check). */
  private nonceMac(issued: Uint8Array, input: CoreInput<L>): Uint8Array {
    return this.mac([issued, input.transport, endpointKey(input.from)]).subarray(0, NONCE_BYTES - 8);
  }

  private mac(parts: readonly (string | Uint8Array)[]): Uint8Array {
    const h = createHmac('sha256', this.secret);
    // Length-prefixed, so no two part lists hash alike.
    for (const p of parts) h.update(String(p.length)).update(':').update(p);
    return new Uint8Array(h.digest());
  }
}

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

function unhex(text: string): Uint8Array {
  return new Uint8Array(Buffer.from(text, 'hex'));
}
