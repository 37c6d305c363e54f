// The rendezvous client: registers a name and key over the peer's own UDP socket (a
// PacketMux route of the socket it will punch from, so the server sees the mapping the
// peer's punching packets get), falls back to TCP when UDP gets no answer, keeps the
// lease alive, asks for introductions (CONNECT, JOIN/LEAVE) and hands out the PUNCH
// orders the server sends, with the start time converted to this host's clock.
import { StreamFramer, sameEndpoint, type Endpoint, type Env, type PacketSocket, type StreamSocket, type Timer } from '../net/index.ts';
import { FailureCounter } from '../net/index.ts';
import { NatkitError, abortError, isNatkitError, throwIfAborted } from '../util/index.ts';
import {
  CHALLENGE_BYTES, HEADER_BYTES, MAX_FRAME_BYTES, TRANSACTION_ID_BYTES, decodeFrame, encodeFrame, errorCodeName, fromStreamMessage, toStreamMessage,
  type MessageOf, type RendezvousErrorCode, type RendezvousMessage, type RendezvousMessageType,
} from './codec.ts';
import { registerSignedData, type RendezvousIdentity } from './identity.ts';
import { RendezvousDecodeError, checkName, type Candidate, type NatSummary } from './tlv.ts';

/** The server refused a request; `reason` is its ERROR code. */
export class RendezvousError extends NatkitError {
  readonly reason: RendezvousErrorCode;

  constructor(reason: RendezvousErrorCode, message: string) {
    super('ERR_RENDEZVOUS_REFUSED', message);
    this.name = 'RendezvousError';
    this.reason = reason;
  }
}

/** Options of RendezvousClient.register. */
export interface RendezvousClientOptions {
  readonly env: Env;
  /** The server's UDP address. */
  readonly server: Endpoint;
  /**
   * The socket the peer will punch from, usually `mux.route(MUX_RENDEZVOUS)`. Its packet
   * handler is taken (datagrams not from `server` are ignored) and cleared on close; it is not closed.
   */
  readonly socket: PacketSocket;
  readonly name: string;
  readonly identity: RendezvousIdentity;
  /** Our own candidates (host, port-mapped, relayed…); the server adds the address it sees. @default [] */
  readonly candidates?: readonly Candidate[];
  /** Our NAT's behaviour (natSummary(report)). @default none */
  readonly nat?: NatSummary;
  /** The server's TCP address for the fallback; false for none. @default `server` */
  readonly tcpServer?: Endpoint | false;
  /** First UDP retransmission timeout, ms; doubles each time. @default 500 */
  readonly rtoMs?: number;
  /** UDP transmissions of a request before it times out (HELLO: before the TCP fallback). @default 4 */
  readonly maxTransmissions?: number;
  /** Wait for an answer over TCP, ms. @default 5000 */
  readonly streamTimeoutMs?: number;
  /**
   * Longest close() waits for the server to answer UNREGISTER (OK or ERROR), ms; UDP
   * retransmits within it every `rtoMs`, doubling. A server that stays silent holds the
   * name until its lease ends. @default 1000
   */
  readonly closeTimeoutMs?: number;
  /** Receives keepalive and re-registration failures (counted in stats.failures either way). @default env.logger.warn */
  readonly onError?: (error: Error) => void;
  /** Aborts the registration (not the client once registered: close it). */
  readonly signal?: AbortSignal;
}

/** A peer as a PUNCH order describes it. */
export interface PunchPeer {
  readonly name: string;
  /** Its Ed25519 public key: authenticate the peer's handshake with it. */
  readonly publicKey: Uint8Array;
  /** The address the server saw it at first, then the candidates it reported. */
  readonly candidates: readonly Candidate[];
  readonly nat?: NatSummary;
}

/** An order to punch towards a peer, from the server. */
export interface PunchOrder {
  /** Hex; the same pair id again is an update of the same introduction (a retransmitted CONNECT). */
  readonly pairId: string;
  readonly peer: PunchPeer;
  /** This side nominates the path (the CONNECT's sender; in a room, the newcomer). */
  readonly controlling: boolean;
  /** When to start punching, on env.clock (ms): both sides start at the same server moment. */
  readonly startAtMs: number;
  /** The room that introduced the pair; absent for CONNECT. */
  readonly room?: string;
}

/** Counters of a client. */
export interface RendezvousClientStats {
  registrations: number;
  keepalives: number;
  retransmissions: number;
  punchOrders: number;
  /** Punch orders dropped from a full punches() queue. */
  queueDropped: number;
  /** Datagrams or frames ignored: not from the server, undecodable, unexpected. */
  ignored: number;
  /** Keepalive and re-registration failures. */
  failures: number;
}

interface Pending {
  answer(message: RendezvousMessage): void;
  fail(error: Error): void;
}

/** Most punch orders a punches() iterator holds before dropping the oldest. */
const MAX_QUEUED = 64;

const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');

/** A registration on a rendezvous server. Create with `RendezvousClient.register()`; stop with `close()`. */
export class RendezvousClient implements AsyncDisposable {
  readonly name: string;
  readonly stats: RendezvousClientStats = { registrations: 0, keepalives: 0, retransmissions: 0, punchOrders: 0, queueDropped: 0, ignored: 0, failures: 0 };
  private readonly o: RendezvousClientOptions;
  private readonly env: Env;
  private readonly pending = new Map<string, Pending>();
  private readonly handlers = new Set<(order: PunchOrder) => void>();
  /** Ends each open punches() iterator. */
  private readonly closers = new Set<() => void>();
  private readonly failures: FailureCounter;
  private stream: StreamSocket | undefined;
  private session: Uint8Array | undefined;
  private lastReflexive: Endpoint | undefined;
  private timers = { leaseS: 0, keepaliveS: 0 };
  private rttMs: number | undefined;
  private timer: Timer | undefined;
  private isClosed = false;
  private closing: Promise<void> | undefined;

  private constructor(options: RendezvousClientOptions) {
    this.o = options;
    this.env = options.env;
    this.name = options.name;
    this.failures = new FailureCounter('rendezvous client', options.env.logger, options.onError);
  }

  /** Registers (UDP, else TCP) and starts keeping the lease alive. Rejects with RendezvousError when refused, ERR_TIMEOUT, ERR_ABORTED. */
  static async register(options: RendezvousClientOptions): Promise<RendezvousClient> {
    checkName(options.name);
    const client = new RendezvousClient(options);
    options.socket.onPacket((data, from) => client.onDatagram(data, from));
    try {
      await client.registerOnce(options.signal);
    } catch (err) {
      await client.close();
      throw err;
    }
    client.schedule(client.timers.keepaliveS * 1000);
    return client;
  }

  /** Our address as the server sees it (on TCP: the TCP connection's). */
  get reflexive(): Endpoint {
    return this.lastReflexive!;
  }

  /** How we are registered now. */
  get transport(): 'udp' | 'tcp' {
    return this.stream === undefined ? 'udp' : 'tcp';
  }

  /** The lease and the keepalive interval the server gave, seconds. */
  get lease(): { readonly leaseS: number; readonly keepaliveS: number } {
    return this.timers;
  }

  /** Asks the server to introduce us to `name`; resolves with our PUNCH order (also given to onPunch). RendezvousError 'not-found' when unknown. */
  async connect(name: string, options: { readonly signal?: AbortSignal } = {}): Promise<PunchOrder> {
    checkName(name);
    const reply = await this.request((transactionId) => ({ type: 'connect', transactionId, session: this.sessionToken(), name }), options.signal);
    return this.expect(reply, 'punch', (m) => this.toOrder(m));
  }

  /** Joins `room`: the server introduces us to every member (PUNCH orders follow, through onPunch). */
  async join(room: string, options: { readonly signal?: AbortSignal } = {}): Promise<void> {
    checkName(room, 'room');
    const reply = await this.request((transactionId) => ({ type: 'join', transactionId, session: this.sessionToken(), room }), options.signal);
    this.expect(reply, 'ok', () => undefined);
  }

  /** Leaves `room`. */
  async leave(room: string, options: { readonly signal?: AbortSignal } = {}): Promise<void> {
    checkName(room, 'room');
    const reply = await this.request((transactionId) => ({ type: 'leave', transactionId, session: this.sessionToken(), room }), options.signal);
    this.expect(reply, 'ok', () => undefined);
  }

  /** Calls `handler` with every PUNCH order; returns the function that unsubscribes it. */
  onPunch(handler: (order: PunchOrder) => void): () => void {
    this.handlers.add(handler);
    return () => this.handlers.delete(handler);
  }

  /** PUNCH orders as an async iterator (at most 64 queued; the oldest go first). Ends on close, abort or return(). */
  punches(options: { readonly signal?: AbortSignal } = {}): AsyncIterableIterator<PunchOrder> {
    const queue: PunchOrder[] = [];
    let wake: (() => void) | undefined;
    let done = this.isClosed || options.signal?.aborted === true;
    const stop = (): void => {
      done = true;
      off();
      this.closers.delete(stop);
      options.signal?.removeEventListener('abort', stop);
      wake?.();
    };
    const off = this.onPunch((order) => {
      if (queue.length >= MAX_QUEUED) {
        queue.shift();
        this.stats.queueDropped++;
      }
      queue.push(order);
      wake?.();
    });
    this.closers.add(stop);
    options.signal?.addEventListener('abort', stop, { once: true });
    const iterator: AsyncIterableIterator<PunchOrder> = {
      next: async () => {
        // Each wake-up brings an order or the end.
        while (queue.length === 0 && !done) await new Promise<void>((resolve) => (wake = resolve));
        wake = undefined;
        const value = queue.shift();
        return value === undefined ? { done: true, value: undefined } : { done: false, value };
      },
      return: () => {
        stop();
        return Promise.resolve({ done: true, value: undefined });
      },
      [Symbol.asyncIterator]: () => iterator,
    };
    return iterator;
  }

  /**
   * Stops keepalives, fails pending requests and ends punches() iterators at once, then
   * gives the name up: sends UNREGISTER and waits (at most `closeTimeoutMs`) for the
   * server's answer, so the name is free for any key once this resolves; then closes any
   * TCP stream. The socket stays open, and must until this resolves: a datagram still
   * queued when its socket closes is lost (node:dgram sends after an asynchronous lookup).
   * Idempotent: every call gets the first call's promise.
   */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  private async shutdown(): Promise<void> {
    this.isClosed = true;
    this.timer?.cancel();
    this.timer = undefined;
    for (const p of [...this.pending.values()]) p.fail(new NatkitError('ERR_CLOSED', 'rendezvous client closed'));
    for (const stop of [...this.closers]) stop();
    this.handlers.clear();
    await this.unregister();
    this.o.socket.onPacket(undefined);
    await this.closeStream();
  }

  /**
   * UNREGISTER, answered (docs/rendezvous.md, "Registration and keys"): the answer proves
   * the frame left the socket and reached the server, which then has freed the name. OK
   * and any ERROR end the wait alike: `not-registered` (the lease already ended, or our
   * mapping moved), or `bad-request` from a server older than UNREGISTER. Silence until
   * `closeTimeoutMs` leaves the name to its lease. Never rejects.
   */
  private async unregister(): Promise<void> {
    const session = this.session;
    this.session = undefined;
    // Nothing can leave a closed socket: no wait for an answer that cannot come.
    if (session === undefined || (this.stream === undefined && this.o.socket.closed)) return;
    try {
      await this.exchange((transactionId) => ({ type: 'unregister', transactionId, session }), undefined, this.o.closeTimeoutMs ?? 1000);
    } catch (err) {
      if (!(err instanceof RendezvousError) && !isNatkitError(err, 'ERR_TIMEOUT') && !isNatkitError(err, 'ERR_CLOSED')) this.failures.fail(err);
    }
  }

  /** HELLO → CHALLENGE → REGISTER → REGISTERED, over UDP or, when UDP gets no answer, TCP. */
  private async registerOnce(signal: AbortSignal | undefined): Promise<void> {
    const hello = (transactionId: Uint8Array): RendezvousMessage => ({ type: 'hello', transactionId, padding: CHALLENGE_BYTES - HEADER_BYTES - 3 });
    let answer: RendezvousMessage;
    try {
      answer = await this.request(hello, signal);
    } catch (err) {
      const tcp = this.o.tcpServer ?? this.o.server;
      if (!isNatkitError(err, 'ERR_TIMEOUT') || tcp === false || this.stream !== undefined) throw err;
      this.stream = await this.openStream(tcp, signal);
      answer = await this.request(hello, signal);
    }
    const nonce = this.expect(answer, 'challenge', (m) => m.nonce);
    const { identity, name } = this.o;
    const signature = identity.sign(registerSignedData(nonce, new TextEncoder().encode(name), identity.publicKey));
    const started = this.env.clock.now();
    const reply = await this.request((transactionId) => ({
      type: 'register', transactionId, name, publicKey: identity.publicKey, nonce, signature, candidates: this.o.candidates ?? [],
      ...(this.o.nat !== undefined && { nat: this.o.nat }),
    }), signal);
    this.expect(reply, 'registered', (m) => this.registered(m, started));
    this.stats.registrations++;
  }

  /** Takes a REGISTERED answer to a request first sent at `sentAt` (its round trip, retransmissions included, is the RTT sample). */
  private registered(m: MessageOf<'registered'>, sentAt: number): void {
    this.session = m.session;
    this.lastReflexive = m.reflexive;
    this.timers = m.timers;
    this.rttMs = this.env.clock.now() - sentAt;
  }

  /** Keepalive tick: refresh the lease, or register again when the server lost us or stopped answering. */
  private tick(): void {
    this.timer = undefined;
    if (this.isClosed) return;
    const started = this.env.clock.now();
    const keepalive = this.session === undefined
      ? Promise.reject(new RendezvousError('not-registered', 'no session'))
      : this.request((transactionId) => ({ type: 'keepalive', transactionId, session: this.sessionToken(), ...(this.rttMs !== undefined && { rttMs: Math.round(this.rttMs) }) }));
    keepalive
      .then((reply) => {
        this.expect(reply, 'registered', (m) => this.registered(m, started));
        this.stats.keepalives++;
      })
      .catch((err: unknown) => {
        if (this.isClosed) return;
        if (!(err instanceof RendezvousError && err.reason === 'not-registered') && !isNatkitError(err, 'ERR_TIMEOUT')) throw err;
        this.session = undefined;
        return this.registerOnce(undefined);
      })
      .catch((err: unknown) => {
        if (this.isClosed) return;
        this.stats.failures++;
        this.failures.fail(err);
      })
      .finally(() => this.schedule(this.timers.keepaliveS * 1000));
  }

  private schedule(delayMs: number): void {
    if (this.isClosed || this.timer !== undefined) return;
    this.timer = this.env.clock.setTimer(delayMs, () => this.failures.guard(() => this.tick()));
  }

  /** Sends a request and waits for the frame with its transaction id (UDP: retransmitted; TCP: once). */
  private request(make: (transactionId: Uint8Array) => RendezvousMessage, signal?: AbortSignal): Promise<RendezvousMessage> {
    throwIfAborted(signal, 'rendezvous request');
    if (this.isClosed) return Promise.reject(new NatkitError('ERR_CLOSED', 'rendezvous client closed'));
    return this.exchange(make, signal, undefined);
  }

  /** request() without the closed check (close() uses it for UNREGISTER), its whole wait capped at `limitMs` when given. */
  private exchange(make: (transactionId: Uint8Array) => RendezvousMessage, signal: AbortSignal | undefined, limitMs: number | undefined): Promise<RendezvousMessage> {
    const transactionId = this.env.random.bytes(TRANSACTION_ID_BYTES);
    const key = hex(transactionId);
    const frame = encodeFrame(make(transactionId));
    const { clock } = this.env;
    const rtoMs = this.o.rtoMs ?? 500;
    const maxTransmissions = this.o.maxTransmissions ?? 4;
    return new Promise<RendezvousMessage>((resolve, reject) => {
      let timer: Timer | undefined;
      let limit: Timer | undefined;
      let transmissions = 0;
      const finish = (): void => {
        timer?.cancel();
        limit?.cancel();
        this.pending.delete(key);
        signal?.removeEventListener('abort', onAbort);
      };
      const onAbort = (): void => {
        finish();
        reject(abortError(signal, 'rendezvous request'));
      };
      const transmit = (): void => {
        const stream = this.stream;
        transmissions++;
        if (transmissions > 1) this.stats.retransmissions++;
        this.transmit(frame);
        const last = stream !== undefined || transmissions >= maxTransmissions;
        const waitMs = stream !== undefined ? (this.o.streamTimeoutMs ?? 5000) : rtoMs * 2 ** (transmissions - 1);
        timer = clock.setTimer(waitMs, () => {
          if (!last) return transmit();
          finish();
          reject(new NatkitError('ERR_TIMEOUT', `rendezvous server ${stream === undefined ? 'UDP' : 'TCP'}: no answer after ${transmissions} transmission(s)`));
        });
      };
      this.pending.set(key, {
        answer: (message) => {
          finish();
          if (message.type === 'error') reject(refusal(message));
          else resolve(message);
        },
        fail: (error) => {
          finish();
          reject(error);
        },
      });
      signal?.addEventListener('abort', onAbort, { once: true });
      if (limitMs !== undefined) {
        limit = clock.setTimer(limitMs, () => {
          finish();
          reject(new NatkitError('ERR_TIMEOUT', `rendezvous server: no answer within ${limitMs} ms (${transmissions} transmission(s))`));
        });
      }
      transmit();
    });
  }

  /** One frame to the server over the transport we are registered on. */
  private transmit(frame: Uint8Array): void {
    if (this.stream !== undefined) this.stream.write(toStreamMessage(frame));
    else this.o.socket.send(frame, this.o.server);
  }

  private onDatagram(data: Uint8Array, from: Endpoint): void {
    if (!sameEndpoint(from, this.o.server) || this.stream !== undefined) {
      this.stats.ignored++;
      return;
    }
    this.receive(data);
  }

  /** One frame from the server: a PUNCH order and/or the answer to a pending request. */
  private receive(data: Uint8Array): void {
    let message: RendezvousMessage;
    try {
      message = decodeFrame(data);
    } catch (err) {
      if (!(err instanceof RendezvousDecodeError)) throw err;
      this.stats.ignored++;
      return;
    }
    const pending = this.pending.get(hex(message.transactionId));
    if (message.type === 'punch') {
      const order = this.toOrder(message);
      this.stats.punchOrders++;
      for (const h of [...this.handlers]) h(order);
    }
    if (pending !== undefined) pending.answer(message);
    else if (message.type !== 'punch') this.stats.ignored++;
  }

  private toOrder(m: MessageOf<'punch'>): PunchOrder {
    // The server's start moment, moved to our clock: it sent at serverTimeMs, about offsetMs ago.
    const startAtMs = this.env.clock.now() + Math.max(0, m.startAtMs - m.serverTimeMs - m.offsetMs);
    const peer: PunchPeer = { name: m.name, publicKey: m.publicKey, candidates: m.candidates, ...(m.nat !== undefined && { nat: m.nat }) };
    return { pairId: hex(m.pairId), peer, controlling: m.controlling, startAtMs, ...(m.room !== undefined && { room: m.room }) };
  }

  private async openStream(to: Endpoint, signal: AbortSignal | undefined): Promise<StreamSocket> {
    const stream = await this.env.network.connectStream(to, { timeoutMs: this.o.streamTimeoutMs ?? 5000, ...(signal && { signal }) });
    const framer = new StreamFramer({ maxMessageBytes: 4 + MAX_FRAME_BYTES + 3 });
    stream.onData((chunk) => {
      try {
        framer.push(chunk, (message) => {
          const frame = fromStreamMessage(message);
          if (frame === undefined) this.stats.ignored++;
          else this.receive(frame);
        });
      } catch (err) {
        // Bytes that cannot be framed: the stream is unusable (RFC 8656 §12.5).
        this.failures.fail(err);
        void this.closeStream();
      }
    });
    stream.onClose(() => {
      if (this.stream !== stream) return;
      this.stream = undefined;
      this.session = undefined;
      for (const p of [...this.pending.values()]) p.fail(new NatkitError('ERR_CLOSED', 'rendezvous TCP connection closed'));
      // Register again at once (UDP first).
      this.timer?.cancel();
      this.timer = undefined;
      this.schedule(0);
    });
    return stream;
  }

  private async closeStream(): Promise<void> {
    const stream = this.stream;
    this.stream = undefined;
    await stream?.close();
  }

  private sessionToken(): Uint8Array {
    if (this.session === undefined) throw new NatkitError('ERR_CLOSED', 'not registered with the rendezvous server (re-registering)');
    return this.session;
  }

  /** The answer as the expected type, else the refusal or a protocol error. */
  private expect<K extends RendezvousMessageType, T>(message: RendezvousMessage, type: K, take: (m: MessageOf<K>) => T): T {
    if (message.type !== type) throw new NatkitError('ERR_PROTOCOL', `rendezvous: expected ${type}, got ${message.type}`);
    return take(message as MessageOf<K>);
  }
}

function refusal(m: MessageOf<'error'>): RendezvousError {
  const reason = errorCodeName(m.code);
  return new RendezvousError(reason, `rendezvous server refused: ${reason}${m.reason === undefined ? '' : ` (${m.reason})`}`);
}
