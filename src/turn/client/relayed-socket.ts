// The TURN client driver, RFC 8656: reaches the server over UDP, TCP or TLS (§3.1, §4),
// runs the core's requests as STUN transactions on a StunClient (retransmission, RTO,
// integrity checks of responses), arms one Clock timer at the core's nextTimerAt(), cuts
// streams into STUN and ChannelData frames (§12.5), sends the core's keepalives over UDP,
// and presents the relayed transport address as a PacketSocket: upper layers use it like
// any socket.
import {
  StreamFramer, endpoint, endpointKey, sameEndpoint,
  type Endpoint, type Env, type PacketHandler, type PacketSocket, type SocketStats, type StreamSocket, type Timer, type TlsClientOptions,
} from '../../net/index.ts';
import { DecodeError, NatkitError, abortError, throwIfAborted } from '../../util/index.ts';
import { StunClass, StunClient, classOf, looksLikeStun, type StunMessage, type TransactionTimers } from '../../stun/index.ts';
import { looksLikeChannelData } from '../channel-data.ts';
import { TurnClientCore, type TurnAllocation, type TurnClientAction, type TurnClientCoreOptions } from './core.ts';
import { TurnError } from './errors.ts';

/** How the client reaches its TURN server (RFC 8656 §3.1). */
export type TurnClientTransport = 'udp' | 'tcp' | 'tls';

/** A server named by an IP literal and an optional port (name resolution is the caller's, e.g. net/node resolveEndpoint). */
export interface TurnServerAddress {
  readonly host: string;
  /** @default 3478, or 5349 over TLS (RFC 8656 §4) */
  readonly port?: number;
}

/** Options of TurnClient.allocate(). */
export interface TurnAllocateOptions extends TransactionTimers, Omit<TurnClientCoreOptions, 'server' | 'random' | 'framing'> {
  /** Network, clock (refresh timers), randomness (transaction IDs) and logger. */
  readonly env: Env;
  readonly server: Endpoint | TurnServerAddress;
  /** @default 'udp' */
  readonly transport?: TurnClientTransport;
  /** TLS settings when `transport` is 'tls'. @default verify against the system CAs */
  readonly tls?: TlsClientOptions;
  /**
   * UDP: talk to the server from this socket (the application's own, or a PacketMux view)
   * instead of binding one. The client becomes its receiver until close(); it never closes it.
   */
  readonly socket?: PacketSocket;
  /**
   * Receives the datagrams on `socket` that are not this client's: from other sources, and
   * STUN messages from the server that no request of ours awaits. This is how a StunClient
   * (with `attachHandler: false`) or another protocol shares the socket. @default drop them
   */
  readonly passthrough?: PacketHandler;
  /** Local address to bind or connect from. @default any address of the server's family */
  readonly localAddress?: string;
  /** Give up connecting over TCP/TLS after this long. @default 10000 */
  readonly connectTimeoutMs?: number;
  /** SOFTWARE attribute in requests (RFC 8489 §14.14). @default none */
  readonly software?: string;
  /** Cancels allocate(); an allocation made meanwhile is left to expire. */
  readonly signal?: AbortSignal;
}

/** The server link: a datagram socket, or a stream with its framer. */
type Link =
  | { readonly kind: 'udp'; readonly socket: PacketSocket; readonly owned: boolean }
  | { readonly kind: 'stream'; readonly stream: StreamSocket; readonly framer: StreamFramer };

/**
 * Deleting the allocation on close() gives up sooner than other requests, whatever the RTO
 * learnt: 250 + 500 ms, then 1 s for the last answer over UDP; 3 s over a stream.
 */
const DELETE_TIMERS: TransactionTimers = { rtoMs: 250, maxTransmissions: 3, lastWaitMultiplier: 4, streamTimeoutMs: 3000 };

/** Makes TURN allocations. */
export const TurnClient = {
  /** Allocates a relayed transport address (RFC 8656 §7) and returns it as a socket. */
  allocate: (options: TurnAllocateOptions): Promise<RelayedSocket> => RelayedSocket.allocate(options),
};

/**
 * A relayed transport address as a PacketSocket (RFC 8656): send(data, peer) relays through
 * the server, creating the permission (and channel) first; onPacket receives what peers
 * sent to the relayed address; close() deletes the allocation and releases the transport.
 */
export class RelayedSocket implements PacketSocket {
  readonly transport: TurnClientTransport;
  /** Application datagrams relayed (out) and delivered (in). */
  readonly stats: SocketStats = { packetsIn: 0, packetsOut: 0, bytesIn: 0, bytesOut: 0, sendErrors: 0 };
  /** The sans-I/O core, for its counters and state. */
  readonly core: TurnClientCore;
  private readonly options: TurnAllocateOptions;
  private readonly env: Env;
  private link: Link | undefined;
  private stun: StunClient | undefined;
  private handler: PacketHandler | undefined;
  private closeHandler: ((error?: Error) => void) | undefined;
  private timer: Timer | undefined;
  private timerAt: number | undefined;
  /** Settles allocate() while it runs. */
  private waiter: { readonly resolve: () => void; readonly reject: (err: Error) => void } | undefined;
  /** Resolves when the core reports 'closed' while close() deletes the allocation. */
  private onDeleted: (() => void) | undefined;
  private closing: Promise<void> | undefined;
  /** A move to an alternate server in progress (it never rejects). */
  private moving: Promise<void> | undefined;
  /** Set once the socket can no longer relay: closed, or the allocation or link lost. */
  private ended: { readonly error?: Error } | undefined;

  /** See TurnClient.allocate(). */
  static async allocate(options: TurnAllocateOptions): Promise<RelayedSocket> {
    throwIfAborted(options.signal, 'TURN allocation');
    const transport = options.transport ?? 'udp';
    if (transport === 'udp' && options.tls !== undefined) throw new NatkitError('ERR_INVALID_ARGUMENT', "TLS options given with transport 'udp'; use 'tls'");
    if (transport !== 'udp' && options.socket !== undefined) throw new NatkitError('ERR_INVALID_ARGUMENT', `transport '${transport}': expected no datagram socket`);
    if (options.socket?.closed === true) throw new NatkitError('ERR_CLOSED', 'the socket given to the TURN client is closed');
    const server = 'host' in options.server ? endpoint(options.server.host, options.server.port ?? (transport === 'tls' ? 5349 : 3478)) : options.server;
    const relay = new RelayedSocket(options, transport, server);
    const { signal } = options;
    const onAbort = (): void => relay.waiter?.reject(abortError(signal, `TURN allocation at ${endpointKey(server)}`));
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      await relay.connect(server);
      throwIfAborted(signal, `TURN allocation at ${endpointKey(server)}`);
      await new Promise<void>((resolve, reject) => {
        relay.waiter = { resolve, reject };
        relay.core.start();
        relay.pump();
      });
      return relay;
    } catch (err) {
      relay.waiter = undefined;
      await relay.close();
      throw err;
    } finally {
      relay.waiter = undefined;
      signal?.removeEventListener('abort', onAbort);
    }
  }

  private constructor(options: TurnAllocateOptions, transport: TurnClientTransport, server: Endpoint) {
    this.options = options;
    this.env = options.env;
    this.transport = transport;
    this.core = new TurnClientCore({ ...options, server, random: options.env.random, framing: transport === 'udp' ? 'udp' : 'stream' });
  }

  /** What the server granted. */
  get allocation(): TurnAllocation {
    const a = this.core.allocation;
    if (a === undefined) throw new NatkitError('ERR_CLOSED', 'no TURN allocation');
    return a;
  }

  /** The relayed transport address (the first of a dual allocation). */
  get local(): Endpoint {
    return this.allocation.relayed[0]!;
  }

  /** The server holding the allocation. */
  get server(): Endpoint {
    return this.core.server;
  }

  get closed(): boolean {
    return this.ended !== undefined;
  }

  /** Relays a datagram to `peer`; never throws (drops count in `stats.sendErrors`). */
  send(data: Uint8Array, peer: Endpoint): void {
    if (this.ended !== undefined || !this.core.send(data, peer, this.env.clock.now())) {
      this.stats.sendErrors++;
      return;
    }
    this.stats.packetsOut++;
    this.stats.bytesOut += data.length;
    // Sending only postpones the keepalive, which the timer finds not due yet: the actions
    // alone (transmissions, maybe a request), no re-arming per datagram.
    this.flush();
  }

  onPacket(handler: PacketHandler | undefined): void {
    this.handler = handler;
  }

  /** Called once when the socket ends: after close(), or with the error when the allocation or the link is lost. */
  onClose(handler: ((error?: Error) => void) | undefined): void {
    this.closeHandler = handler;
  }

  /**
   * Offers one datagram that reached the client's socket by another way (a PacketMux route
   * for ChannelData); true when it was TURN traffic from the server for this client: a
   * response it awaits, a Data indication or ChannelData.
   */
  receive(data: Uint8Array, from: Endpoint): boolean {
    if (this.stun === undefined || !sameEndpoint(from, this.core.server)) return false;
    const indication = looksLikeStun(data) && classOf((data[0]! << 8) | data[1]!) === StunClass.INDICATION;
    if (!indication && !looksLikeChannelData(data)) return this.stun.receive(data, from);
    const delivery = this.core.receive(data);
    if (delivery !== undefined && this.ended === undefined) {
      this.stats.packetsIn++;
      this.stats.bytesIn += delivery.data.length;
      this.handler?.(delivery.data, delivery.peer);
    }
    return true;
  }

  /** Deletes the allocation (Refresh with LIFETIME 0, RFC 8656 §7.5) and releases the transport. Idempotent. */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  private async shutdown(): Promise<void> {
    this.end();
    await this.moving;
    if (this.core.state === 'allocated' && this.stun?.closed === false) {
      // Bounded by DELETE_TIMERS, or by the link closing.
      await new Promise<void>((resolve) => {
        this.onDeleted = resolve;
        this.core.close();
        this.pump();
      });
    } else {
      this.core.close();
      this.core.takeActions();
    }
    this.cancelTimer();
    await this.detach();
  }

  /** Opens the link to `server` and a StunClient on it that leaves the receiving to us. */
  private async connect(server: Endpoint): Promise<void> {
    const o = this.options;
    const { env, signal } = o;
    const timers = {
      ...(o.rtoMs !== undefined && { rtoMs: o.rtoMs }),
      ...(o.maxTransmissions !== undefined && { maxTransmissions: o.maxTransmissions }),
      ...(o.lastWaitMultiplier !== undefined && { lastWaitMultiplier: o.lastWaitMultiplier }),
      ...(o.streamTimeoutMs !== undefined && { streamTimeoutMs: o.streamTimeoutMs }),
      ...(o.software !== undefined && { software: o.software }),
    };
    if (this.transport === 'udp') {
      const socket = o.socket ?? await env.network.bindUdp({
        address: o.localAddress ?? (server.family === 6 ? '::' : '0.0.0.0'),
        ...(signal && { signal }),
      });
      this.link = { kind: 'udp', socket, owned: o.socket === undefined };
      socket.onPacket((data, from) => {
        if (!this.receive(data, from)) o.passthrough?.(data, from);
      });
      this.stun = await StunClient.create({ env, server, socket, attachHandler: false, ...timers });
      return;
    }
    const stream = await env.network.connectStream(server, {
      ...(this.transport === 'tls' && { tls: o.tls ?? {} }),
      ...(o.localAddress !== undefined && { localAddress: o.localAddress }),
      ...(o.connectTimeoutMs !== undefined && { timeoutMs: o.connectTimeoutMs }),
      ...(signal && { signal }),
    });
    const framer = new StreamFramer();
    this.link = { kind: 'stream', stream, framer };
    stream.onData((chunk) => {
      try {
        framer.push(chunk, (frame) => void this.receive(frame, stream.remote));
      } catch (err) {
        // RFC 8656 §12.5: a stream that lost its framing cannot be resynchronised.
        if (!(err instanceof DecodeError)) throw err;
        this.linkLost(err);
      }
    });
    stream.onClose((error) => this.linkLost(error));
    this.stun = await StunClient.create({ env, server, transport: this.transport, stream, attachHandler: false, ...timers });
  }

  /** Closes the StunClient and what the link owns; removes our receivers. */
  private async detach(): Promise<void> {
    const { link, stun } = this;
    this.link = undefined;
    this.stun = undefined;
    await stun?.close();
    if (link?.kind === 'udp') {
      link.socket.onPacket(undefined);
      if (link.owned) await link.socket.close();
    } else if (link !== undefined) {
      link.stream.onData(undefined);
      link.stream.onClose(undefined);
      await link.stream.close();
    }
  }

  /** Carries out what the core asks for, then re-arms the timer. */
  private pump(): void {
    this.flush();
    this.arm();
  }

  private flush(): void {
    for (const action of this.core.takeActions()) this.apply(action);
  }

  private apply(a: TurnClientAction): void {
    switch (a.kind) {
      case 'request': {
        const stun = this.stun;
        if (stun === undefined) return;
        const key = a.sign && { key: a.sign.key, integrity: a.sign.integrity };
        stun.request({ method: a.method, attributes: a.attributes }, { ...key, ...(a.purpose === 'delete' && { timers: DELETE_TIMERS }) }).then(
          (r) => this.answer(a.id, r.message),
          (err: unknown) => this.answer(a.id, err instanceof NatkitError ? err : new NatkitError('ERR_PROTOCOL', String(err), { cause: err })),
        );
        return;
      }
      case 'transmit': {
        const link = this.link;
        if (link?.kind === 'udp') link.socket.send(a.data, this.core.server);
        else link?.stream.write(a.data);
        return;
      }
      case 'redirect':
        this.moving = this.move(a.server);
        return;
      case 'allocated':
        this.waiter?.resolve();
        return;
      case 'failed':
        this.lost(a.error);
        return;
      case 'closed':
        this.onDeleted?.();
    }
  }

  private answer(id: number, outcome: StunMessage | NatkitError): void {
    this.core.handleResponse(id, outcome, this.env.clock.now());
    this.pump();
  }

  /** RFC 8489 §10: the Allocate starts again at the alternate server, over a new link. */
  private async move(server: Endpoint): Promise<void> {
    try {
      await this.detach();
      await this.connect(server);
      // close() may have come meanwhile (an aborted allocate()): it waits for us to finish.
      if (this.ended !== undefined) return;
      this.core.start();
      this.pump();
    } catch (err) {
      this.lost(err instanceof Error ? err : new NatkitError('ERR_PROTOCOL', String(err)));
    }
  }

  private arm(): void {
    const at = this.ended === undefined ? this.core.nextTimerAt() : undefined;
    if (at === this.timerAt) return;
    this.cancelTimer();
    if (at === undefined) return;
    this.timerAt = at;
    this.timer = this.env.clock.setTimer(Math.max(0, at - this.env.clock.now()), () => {
      this.timer = undefined;
      this.timerAt = undefined;
      this.core.handleTimer(this.env.clock.now());
      this.pump();
    });
  }

  private cancelTimer(): void {
    this.timer?.cancel();
    this.timer = undefined;
    this.timerAt = undefined;
  }

  /** The stream ended or lost its framing: pending requests fail, and so does the allocation. */
  private linkLost(error?: Error): void {
    const remote = this.link?.kind === 'stream' ? endpointKey(this.link.stream.remote) : endpointKey(this.core.server);
    this.lost(new TurnError('ERR_CLOSED', `TURN ${this.transport} connection to ${remote} closed`, error ? { cause: error } : {}));
    void this.stun?.close();
  }

  /** The allocation cannot be used any more: allocate() rejects, or onClose hears the error. */
  private lost(error: Error): void {
    if (this.waiter !== undefined) {
      this.waiter.reject(error);
      return;
    }
    this.end(error);
    this.onDeleted?.();
  }

  /** Marks the socket ended and tells onClose once. */
  private end(error?: Error): void {
    if (this.ended !== undefined) return;
    this.ended = error === undefined ? {} : { error };
    this.cancelTimer();
    const handler = this.closeHandler;
    if (handler === undefined) return;
    if (error === undefined) handler();
    else handler(error);
  }
}
