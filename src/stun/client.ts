// The STUN client driver: RFC 8489 §5 (random transaction IDs), §6.2.1–§6.2.3 (sending
// requests over UDP, TCP and TLS), §6.3 (receiving responses), §11 and RFC 3489 §9
// (classic cookie-less requests). It runs StunTransactions on a socket: its own, or one the
// application owns (a PacketSocket or a PacketMux view), so that what it measures is
// the mapping of the very socket the application uses (docs/architecture.md §net).
import {
  endpointKey, sameEndpoint, StreamFramer,
  type Endpoint, type Env, type PacketSocket, type StreamSocket, type Timer, type TlsClientOptions,
} from '../net/index.ts';
import { DecodeError, KeyedSlots, NatkitError, abortError, throwIfAborted } from '../util/index.ts';
import { StunDecodeError } from './attribute.ts';
import { BINDING, HEADER_LENGTH, LEGACY_TRANSACTION_ID_LENGTH, MAGIC_COOKIE, StunClass, TRANSACTION_ID_LENGTH } from './constants.ts';
import {
  attr, decodeMessage, encodeMessage, looksLikeStun,
  type AttrEntry, type IntegrityAlgorithm, type StunMessage,
} from './message.ts';
import { SOFTWARE } from './attributes/text.ts';
import { ERROR_CODE, type StunErrorValue } from './attributes/error.ts';
import {
  bindingAttributes, bindingResult, validateBindingResponse,
  type BindingRequestOptions, type BindingResult, type ResponseInfo,
} from './binding.ts';
import {
  StunTransaction, TransactionTable, requestTransactionId, resolveTimers,
  type ReceiveVerdict, type TransactionStep, type TransactionTimers,
} from './transaction.ts';
import { RtoCache } from './rto.ts';

/** How the client reaches its server (RFC 8489 §6.2). */
export type StunTransport = 'udp' | 'tcp' | 'tls';

/** Options of StunClient.create(). */
export interface StunClientOptions extends TransactionTimers {
  /** Network, clock (timers), randomness (transaction IDs) and logger. */
  readonly env: Env;
  /** Where requests go unless a call names another destination (`to`, UDP only). */
  readonly server: Endpoint;
  /** @default 'udp' */
  readonly transport?: StunTransport;
  /**
   * UDP: run on this socket (the application's own, or a PacketMux view) instead of
   * binding one. The client never closes it.
   */
  readonly socket?: PacketSocket;
  /**
   * TCP/TLS: run on this connected stream instead of connecting. The client never
   * closes it.
   */
  readonly stream?: StreamSocket;
  /**
   * Install the client as the receiver of `socket` or `stream` (and remove it on close).
   * false: whoever owns the receiver passes STUN datagrams or frames to `receive()`.
   * @default true
   */
  readonly attachHandler?: boolean;
  /** Local address to bind or connect from. @default any address of the server's family */
  readonly localAddress?: string;
  /** Local port of the client's own UDP socket. @default 0 (the system chooses) */
  readonly localPort?: number;
  /** TLS settings when `transport` is 'tls'. @default verify against the system CAs */
  readonly tls?: TlsClientOptions;
  /** Give up connecting over TCP/TLS after this long. @default 10000 */
  readonly connectTimeoutMs?: number;
  /** SOFTWARE attribute added to every request (RFC 8489 §14.14). @default none */
  readonly software?: string;
  /** Add FINGERPRINT to every request (RFC 8489 §7, §14.7). @default false */
  readonly fingerprint?: boolean;
  /**
   * UDP: per-server RTO estimates (RFC 8489 §6.2.1); share one between clients to share
   * what they learn, or false to start every transaction with `rtoMs`.
   * @default a cache of this client's own, starting at `rtoMs`
   */
  readonly rtoCache?: RtoCache | false;
  /** Transactions outstanding to one server IP address at once; more wait their turn (RFC 8489 §6.2). @default 10 */
  readonly maxOutstanding?: number;
  /** Cancels create() while it binds or connects. */
  readonly signal?: AbortSignal;
}

/** Per-request options. */
export interface RequestOptions {
  /** Aborting rejects the call with ERR_ABORTED and stops retransmitting. */
  readonly signal?: AbortSignal;
  /** Destination; over TCP/TLS only the connected server is allowed. @default the client's server */
  readonly to?: Endpoint;
  /** Protect the request with MESSAGE-INTEGRITY using this key; responses must then carry valid integrity. */
  readonly key?: Uint8Array;
  /** Which MESSAGE-INTEGRITY attributes to add with `key`. @default 'sha1' */
  readonly integrity?: IntegrityAlgorithm;
  /** Add FINGERPRINT. @default the client's `fingerprint` option */
  readonly fingerprint?: boolean;
  /** Send a cookie-less RFC 3489 request with a 16-byte transaction ID. @default false */
  readonly legacy?: boolean;
  /** Extra check of a response; throw StunDecodeError to have it treated as garbled. */
  readonly validate?: (response: StunMessage) => void;
  /**
   * Timers of this request instead of the client's (a probe that may rightly go
   * unanswered wants a short schedule); an `rtoMs` here also overrides the RTO cache.
   */
  readonly timers?: TransactionTimers;
}

/** Options of binding(): a request's options plus what to ask (RFC 5780). */
export interface BindingOptions extends Omit<RequestOptions, 'validate'>, BindingRequestOptions {}

/** A request to send: the client adds the transaction ID, SOFTWARE, integrity and FINGERPRINT. */
export interface StunRequest {
  readonly method: number;
  readonly attributes?: readonly AttrEntry[];
}

/** Outcome of request(): a success or an error response, both as values. */
export type StunResponse = (ResponseInfo & { readonly ok: true }) | (ResponseInfo & { readonly ok: false; readonly error: StunErrorValue });

/** Counters of what the client did and what it ignored; nothing resets them. */
export interface StunClientStats {
  /** Transactions started. */
  requests: number;
  /** Datagrams or frames sent, retransmissions included. */
  transmissions: number;
  /** Responses that completed a transaction. */
  responses: number;
  /** Received bytes that are not STUN (RFC 7983 first-byte test). */
  notStun: number;
  /** Received STUN-looking bytes that did not decode. */
  undecodable: number;
  /** Requests and indications received: not for a client. */
  notResponses: number;
  /** Responses for no pending transaction: late, duplicate, or spoofed. */
  unknownTransaction: number;
  /** Responses discarded for a wrong FINGERPRINT. */
  badFingerprint: number;
  /** Responses discarded for missing or wrong MESSAGE-INTEGRITY. */
  badIntegrity: number;
  /** Responses discarded because an attribute did not decode. */
  malformed: number;
  /** Requests that waited for one of the server's outstanding slots. */
  queued: number;
}

interface Pending {
  readonly tx: StunTransaction;
  readonly to: Endpoint;
  /** The request started from the cached RTO, so its timeout says something about the path. */
  readonly cachedRto: boolean;
  readonly signal: AbortSignal | undefined;
  readonly onAbort: () => void;
  readonly resolve: (info: ResponseInfo) => void;
  readonly reject: (err: Error) => void;
  timer: Timer | undefined;
}

/** What create() prepares before binding, so bad options fail first. */
interface Parts {
  readonly slots: KeyedSlots;
  readonly rtoCache: RtoCache | undefined;
}

/** The receiving side: an owned or borrowed datagram socket, or a stream with its framer. */
type Channel =
  | { readonly kind: 'udp'; readonly socket: PacketSocket; readonly owned: boolean; readonly attached: boolean }
  | { readonly kind: 'stream'; readonly stream: StreamSocket; readonly owned: boolean; readonly attached: boolean };

const VERDICT_COUNTER = {
  'bad-fingerprint': 'badFingerprint',
  'bad-integrity': 'badIntegrity',
  malformed: 'malformed',
} as const satisfies Partial<Record<ReceiveVerdict, keyof StunClientStats>>;

/** A STUN client on one socket or connection; see StunClientOptions. */
export class StunClient implements AsyncDisposable {
  /** The default destination. */
  readonly server: Endpoint;
  readonly transport: StunTransport;
  readonly stats: StunClientStats = {
    requests: 0, transmissions: 0, responses: 0, notStun: 0, undecodable: 0, notResponses: 0,
    unknownTransaction: 0, badFingerprint: 0, badIntegrity: 0, malformed: 0, queued: 0,
  };
  private readonly env: Env;
  private readonly channel: Channel;
  private readonly timers: TransactionTimers;
  private readonly software: string | undefined;
  private readonly fingerprint: boolean;
  private readonly table = new TransactionTable<Pending>();
  private readonly rtoCache: RtoCache | undefined;
  private readonly slots: KeyedSlots;
  private readonly framer: StreamFramer | undefined;
  private closing: Promise<void> | undefined;
  /** Why the client can no longer send (closed, or its stream ended). */
  private ended: NatkitError | undefined;

  /** Binds a socket or connects (or adopts the given socket or stream). */
  static async create(options: StunClientOptions): Promise<StunClient> {
    const { env, server, signal } = options;
    const transport = options.transport ?? 'udp';
    throwIfAborted(signal, 'STUN client creation');
    // Bad values fail before anything is bound or connected.
    const initialMs = resolveTimers(options).rtoMs;
    const parts: Parts = {
      slots: new KeyedSlots(options.maxOutstanding ?? 10),
      rtoCache: transport === 'udp' && options.rtoCache !== false
        ? (options.rtoCache ?? new RtoCache({ initialMs, minMs: Math.min(initialMs, 100), maxMs: Math.max(initialMs, 60_000) }))
        : undefined,
    };
    const attached = options.attachHandler ?? true;
    if (transport === 'udp') {
      if (options.stream !== undefined || options.tls !== undefined) {
        throw new NatkitError('ERR_INVALID_ARGUMENT', `transport 'udp': expected a socket, got ${options.stream ? 'a stream' : 'TLS options'}`);
      }
      if (options.socket !== undefined) {
        if (options.socket.closed) throw new NatkitError('ERR_CLOSED', 'the socket given to the STUN client is closed');
        return new StunClient(options, parts, { kind: 'udp', socket: options.socket, owned: false, attached });
      }
      const socket = await env.network.bindUdp({
        address: options.localAddress ?? (server.family === 6 ? '::' : '0.0.0.0'),
        port: options.localPort ?? 0,
        ...(signal && { signal }),
      });
      return new StunClient(options, parts, { kind: 'udp', socket, owned: true, attached: true });
    }
    if (options.socket !== undefined) throw new NatkitError('ERR_INVALID_ARGUMENT', `transport '${transport}': expected a stream, got a datagram socket`);
    if (transport === 'tcp' && options.tls !== undefined) throw new NatkitError('ERR_INVALID_ARGUMENT', "TLS options given with transport 'tcp'; use 'tls'");
    if (options.stream !== undefined) {
      if (options.stream.closed) throw new NatkitError('ERR_CLOSED', 'the stream given to the STUN client is closed');
      return new StunClient(options, parts, { kind: 'stream', stream: options.stream, owned: false, attached });
    }
    const stream = await env.network.connectStream(server, {
      ...(transport === 'tls' && { tls: options.tls ?? {} }),
      ...(options.localAddress !== undefined && { localAddress: options.localAddress }),
      ...(options.connectTimeoutMs !== undefined && { timeoutMs: options.connectTimeoutMs }),
      ...(signal && { signal }),
    });
    return new StunClient(options, parts, { kind: 'stream', stream, owned: true, attached: true });
  }

  private constructor(options: StunClientOptions, parts: Parts, channel: Channel) {
    this.env = options.env;
    this.server = options.server;
    this.transport = options.transport ?? 'udp';
    this.channel = channel;
    this.timers = {
      ...(options.rtoMs !== undefined && { rtoMs: options.rtoMs }),
      ...(options.maxTransmissions !== undefined && { maxTransmissions: options.maxTransmissions }),
      ...(options.lastWaitMultiplier !== undefined && { lastWaitMultiplier: options.lastWaitMultiplier }),
      ...(options.streamTimeoutMs !== undefined && { streamTimeoutMs: options.streamTimeoutMs }),
    };
    this.software = options.software;
    this.fingerprint = options.fingerprint ?? false;
    this.rtoCache = parts.rtoCache;
    this.slots = parts.slots;
    if (channel.kind === 'udp') {
      if (channel.attached) channel.socket.onPacket((data, from) => void this.receive(data, from));
      this.framer = undefined;
    } else {
      const framer = new StreamFramer();
      this.framer = framer;
      if (channel.attached) {
        channel.stream.onData((chunk) => this.onStreamData(chunk));
        channel.stream.onClose((error) => this.onStreamClosed(error));
      }
    }
  }

  /** Local endpoint of the socket or connection. */
  get local(): Endpoint {
    return this.channel.kind === 'udp' ? this.channel.socket.local : this.channel.stream.local;
  }

  /** True once close() was called or the stream ended. */
  get closed(): boolean {
    return this.ended !== undefined;
  }

  /** Transactions waiting for a response. */
  get pending(): number {
    return this.table.size;
  }

  /** Sends a Binding request (RFC 8489 §7.2; RFC 5780 §4 with its options; RFC 3489 with `legacy`). */
  async binding(options: BindingOptions = {}): Promise<BindingResult> {
    const info = await this.transact({ method: BINDING, attributes: bindingAttributes(options) }, { ...options, validate: validateBindingResponse });
    return bindingResult(info);
  }

  /**
   * Sends any request and waits for its response (TURN uses this). Error responses
   * resolve with `ok: false`; timeout, abort, close and integrity failures reject.
   */
  async request(request: StunRequest, options: RequestOptions = {}): Promise<StunResponse> {
    const info = await this.transact(request, options);
    if (info.message.cls === StunClass.SUCCESS) return { ok: true, ...info };
    // The transaction only accepts error responses with a decodable ERROR-CODE.
    return { ok: false, error: info.message.get(ERROR_CODE)!, ...info };
  }

  /**
   * Offers one datagram (UDP) or one frame (TCP/TLS) received by whoever owns the
   * socket's receiver (see `attachHandler`). True when it answered a pending request.
   */
  receive(data: Uint8Array, from: Endpoint): boolean {
    if (this.ended !== undefined) return false;
    if (!looksLikeStun(data)) {
      this.stats.notStun += 1;
      return false;
    }
    let msg: StunMessage;
    try {
      // A copy: datagrams are only valid during the call, and results keep the message.
      msg = decodeMessage(new Uint8Array(data));
    } catch (err) {
      if (!(err instanceof StunDecodeError)) throw err;
      this.stats.undecodable += 1;
      if (this.channel.kind === 'stream') this.failGarbledFrame(data, err);
      return false;
    }
    if (msg.cls === StunClass.REQUEST || msg.cls === StunClass.INDICATION) {
      this.stats.notResponses += 1;
      return false;
    }
    const entry = this.table.route(msg);
    if (entry === undefined) {
      this.stats.unknownTransaction += 1;
      return false;
    }
    const verdict = entry.tx.receive(msg, this.env.clock.now());
    if (verdict === 'not-mine') {
      // Our transaction ID on a response to another method: not an answer to us.
      this.stats.unknownTransaction += 1;
      return false;
    }
    if (verdict !== 'accepted') {
      this.stats[VERDICT_COUNTER[verdict]] += 1;
      this.env.logger.debug('stun client: response discarded', { reason: verdict, from: endpointKey(from) });
    }
    if (entry.tx.outcome !== undefined) this.finish(entry, from);
    return true;
  }

  /** Rejects pending calls with ERR_CLOSED and releases what the client owns. Idempotent. */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  private async shutdown(): Promise<void> {
    this.ended ??= new NatkitError('ERR_CLOSED', 'STUN client closed');
    this.failAll(this.ended);
    const c = this.channel;
    if (c.kind === 'udp') {
      if (c.attached) c.socket.onPacket(undefined);
      if (c.owned) await c.socket.close();
    } else {
      if (c.attached) {
        c.stream.onData(undefined);
        c.stream.onClose(undefined);
      }
      if (c.owned) await c.stream.close();
    }
  }

  private async transact(request: StunRequest, options: RequestOptions): Promise<ResponseInfo> {
    const { signal } = options;
    throwIfAborted(signal, 'STUN request');
    this.throwIfEnded();
    const to = options.to ?? this.server;
    const c = this.channel;
    if (c.kind === 'stream' && !sameEndpoint(to, c.stream.remote)) {
      throw new NatkitError('ERR_INVALID_ARGUMENT', `over ${this.transport} requests go to ${endpointKey(c.stream.remote)}, not ${endpointKey(to)}`);
    }
    if (c.kind === 'udp' && to.family !== c.socket.local.family) {
      throw new NatkitError('ERR_INVALID_ARGUMENT', `an IPv${c.socket.local.family} socket cannot send to ${endpointKey(to)}`);
    }
    // RFC 8489 §6.2: at most ten (maxOutstanding) transactions to one server at a time.
    if (!this.slots.tryAcquire(to.address)) {
      this.stats.queued += 1;
      await this.slots.acquire(to.address, signal);
    }
    let tx: StunTransaction;
    try {
      // Things may have changed while we waited for the slot.
      throwIfAborted(signal, 'STUN request');
      this.throwIfEnded();
      tx = this.newTransaction(request, options, to);
    } catch (err) {
      this.slots.release(to.address);
      throw err;
    }
    return new Promise<ResponseInfo>((resolve, reject) => {
      const entry: Pending = {
        tx, to, signal, resolve, reject, timer: undefined, cachedRto: options.timers?.rtoMs === undefined,
        onAbort: () => this.settle(entry, abortError(signal, `STUN request to ${endpointKey(to)}`)),
      };
      this.table.add(tx.transactionId, entry);
      signal?.addEventListener('abort', entry.onAbort, { once: true });
      this.stats.requests += 1;
      this.apply(entry, tx.start(this.env.clock.now()));
    });
  }

  private throwIfEnded(): void {
    if (this.ended !== undefined) throw new NatkitError('ERR_CLOSED', this.ended.message, { cause: this.ended.cause });
  }

  /** Encodes the request and makes its transaction, starting from the server's cached RTO. */
  private newTransaction(request: StunRequest, options: RequestOptions, to: Endpoint): StunTransaction {
    const attributes = [...(request.attributes ?? [])];
    if (this.software !== undefined) attributes.push(attr(SOFTWARE, this.software));
    const bytes = encodeMessage(
      { method: request.method, cls: StunClass.REQUEST, transactionId: this.newTransactionId(options.legacy === true), attributes },
      {
        ...(options.key && { key: options.key }),
        ...(options.integrity && { integrity: options.integrity }),
        fingerprint: options.fingerprint ?? this.fingerprint,
      },
    );
    return new StunTransaction(bytes, {
      transport: this.channel.kind,
      ...this.timers,
      ...(this.rtoCache !== undefined && { rtoMs: this.rtoCache.rto(to.address, this.env.clock.now()) }),
      ...options.timers,
      ...(options.key && { key: options.key }),
      ...(options.validate && { validate: options.validate }),
    });
  }

  /** A fresh ID (RFC 8489 §5: uniformly and cryptographically random, from env.random) not already pending. */
  private newTransactionId(legacy: boolean): Uint8Array {
    // A good source repeats itself with odds of 2^-96 per try; a broken one is reported.
    for (let attempt = 0; attempt < 8; attempt++) {
      const id = this.env.random.bytes(legacy ? LEGACY_TRANSACTION_ID_LENGTH : TRANSACTION_ID_LENGTH);
      // An RFC 3489 ID that starts with the magic cookie would read as an RFC 5389 header.
      const cookieLike = legacy && ((id[0]! << 24) | (id[1]! << 16) | (id[2]! << 8) | id[3]!) >>> 0 === MAGIC_COOKIE;
      if (!cookieLike && !this.table.has(id)) return id;
    }
    throw new NatkitError('ERR_PROTOCOL', 'env.random gave 8 transaction IDs in a row that are pending or cookie-like: is it random?');
  }

  /** Carries out a step of a transaction: send, then finish or set the timer. */
  private apply(entry: Pending, step: TransactionStep): void {
    if (step.send !== undefined) {
      const c = this.channel;
      if (c.kind === 'udp' ? c.socket.closed : c.stream.closed) {
        this.settle(entry, new NatkitError('ERR_CLOSED', `the ${c.kind === 'udp' ? 'socket' : 'stream'} of the STUN client is closed`));
        return;
      }
      this.stats.transmissions += 1;
      if (c.kind === 'udp') c.socket.send(step.send, entry.to);
      else c.stream.write(step.send);
    }
    if (entry.tx.outcome !== undefined) {
      this.finish(entry, undefined);
      return;
    }
    if (step.deadline !== undefined) {
      entry.timer?.cancel();
      const delay = Math.max(0, step.deadline - this.env.clock.now());
      entry.timer = this.env.clock.setTimer(delay, () => {
        entry.timer = undefined;
        if (this.table.get(entry.tx.transactionId) === entry) this.apply(entry, entry.tx.poll(this.env.clock.now()));
      });
    }
  }

  /** Settles a transaction from its outcome. */
  private finish(entry: Pending, from: Endpoint | undefined): void {
    const outcome = entry.tx.outcome;
    if (outcome === undefined) return;
    if (outcome.kind === 'response') {
      this.stats.responses += 1;
      // Karn (RFC 6298 §3): only an answer to a single transmission is an RTT sample.
      if (outcome.transmissions === 1) this.rtoCache?.sample(entry.to.address, outcome.rttMs, this.env.clock.now());
      const origin = from ?? (this.channel.kind === 'stream' ? this.channel.stream.remote : entry.to);
      this.settle(entry, { message: outcome.response, from: origin, rttMs: outcome.rttMs, transmissions: outcome.transmissions });
      return;
    }
    if (outcome.code === 'ERR_TIMEOUT' && entry.cachedRto) this.rtoCache?.timedOut(entry.to.address, this.env.clock.now());
    const what = `STUN request to ${endpointKey(entry.to)}`;
    this.settle(entry, new NatkitError(outcome.code, `${what}: ${outcome.detail}`, outcome.cause === undefined ? {} : { cause: outcome.cause }));
  }

  /** Removes a transaction and resolves or rejects its call; later responses count as unknown. */
  private settle(entry: Pending, result: ResponseInfo | Error): void {
    if (!this.table.delete(entry.tx.transactionId)) return;
    this.slots.release(entry.to.address);
    entry.timer?.cancel();
    entry.timer = undefined;
    entry.signal?.removeEventListener('abort', entry.onAbort);
    if (result instanceof Error) entry.reject(result);
    else entry.resolve(result);
  }

  private failAll(err: NatkitError): void {
    for (const entry of [...this.table.values()]) this.settle(entry, new NatkitError(err.code, err.message, { cause: err.cause }));
    this.slots.failWaiters(new NatkitError(err.code, err.message, { cause: err.cause }));
  }

  private onStreamData(chunk: Uint8Array): void {
    if (this.channel.kind !== 'stream' || this.framer === undefined) return;
    const remote = this.channel.stream.remote;
    try {
      // The callback form delivers the whole messages before a framing error.
      this.framer.push(chunk, (frame) => void this.receive(frame, remote));
    } catch (err) {
      if (!(err instanceof DecodeError)) throw err;
      // RFC 8656 §12.5: a stream that lost its framing cannot be resynchronised; the
      // client ends, and close() releases the connection.
      this.onStreamClosed(err);
    }
  }

  private onStreamClosed(error?: Error): void {
    if (this.ended !== undefined) return;
    const remote = this.channel.kind === 'stream' ? endpointKey(this.channel.stream.remote) : '';
    this.ended = new NatkitError('ERR_CLOSED', `STUN ${this.transport} connection to ${remote} closed`, error ? { cause: error } : {});
    this.failAll(this.ended);
  }

  /**
   * A frame on our stream that did not decode: if its header names a pending
   * transaction, that transaction fails (a stream cannot be spoofed off-path, so a
   * retransmission would not help).
   */
  private failGarbledFrame(frame: Uint8Array, err: StunDecodeError): void {
    if (frame.length < HEADER_LENGTH) return;
    const entry = this.table.get(requestTransactionId(frame));
    if (entry !== undefined) this.settle(entry, new NatkitError('ERR_STUN_DECODE', `STUN request to ${endpointKey(entry.to)}: malformed response: ${err.message}`, { cause: err }));
  }
}
