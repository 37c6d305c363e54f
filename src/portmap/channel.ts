// The UDP driver shared by the NAT-PMP and PCP clients: one socket, requests to the
// gateway's port 5351 retransmitted by a Retransmission core, and answers accepted only
// from the gateway's address and port (RFC 6886 §3.1, RFC 6887 §8.3). It knows nothing
// of either codec: each request brings a `match` that decodes a datagram and says whether
// it answers that request.
import { endpointKey, type Endpoint, type Env, type PacketSocket, type Timer } from '../net/index.ts';
import { DecodeError, NatkitError, abortError, throwIfAborted, type NatkitErrorCode } from '../util/index.ts';
import { Retransmission, type ResolvedTimers, type RetransmitStep } from './retransmit.ts';

/** The port NAT-PMP and PCP servers listen on (RFC 6886 §3.1, RFC 6887 §19.1). */
export const PORT_CONTROL_PORT = 5351;

/** Options of GatewayChannel.create(). */
export interface GatewayChannelOptions {
  /** Network (unless `socket`), clock, randomness (jitter) and logger. */
  readonly env: Env;
  /** The NAT-PMP/PCP server: usually the default gateway, port 5351. */
  readonly gateway: Endpoint;
  /** Run on this socket instead of binding one; the channel never closes it. */
  readonly socket?: PacketSocket;
  /**
   * Local address to bind. Clients may send from any port (RFC 6887 §8; RFC 6886 §3.1
   * answers go back to the request's source port). @default any address of the gateway's family
   */
  readonly localAddress?: string;
  /** Local port to bind. @default 0 (the system chooses) */
  readonly localPort?: number;
  /** Cancels create() while it binds. */
  readonly signal?: AbortSignal;
}

/** One request for the channel to run. */
export interface ChannelRequest<R> {
  readonly bytes: Uint8Array;
  readonly timers: ResolvedTimers;
  /** Decodes a datagram from the gateway: the answer, undefined when it answers something else; throws DecodeError when garbled. */
  readonly match: (data: Uint8Array) => R | undefined;
  /** Names the request in errors: 'NAT-PMP MAP request'. */
  readonly what: string;
  /** The code a request fails with when only garbled answers came. */
  readonly decodeCode: NatkitErrorCode;
  readonly signal?: AbortSignal | undefined;
}

/** An answer and how it came. */
export interface ChannelAnswer<R> {
  readonly response: R;
  /** Clock time when it arrived (epoch checks, lifetimes). */
  readonly receivedAt: number;
  /** From the first transmission; an RTT sample only when `transmissions` is 1. */
  readonly rttMs: number;
  readonly transmissions: number;
}

/** Counters of what the channel did and ignored; nothing resets them. */
export interface ChannelStats {
  requests: number;
  transmissions: number;
  answers: number;
  /** Datagrams from anywhere but the gateway's address and port: dropped. */
  notFromGateway: number;
  /** Datagrams from the gateway that answer no pending request. */
  unmatched: number;
  /** Datagrams from the gateway that did not decode. */
  malformed: number;
}

interface Pending {
  readonly rtx: Retransmission;
  readonly request: ChannelRequest<unknown>;
  readonly resolve: (answer: ChannelAnswer<unknown>) => void;
  readonly reject: (err: Error) => void;
  readonly onAbort: () => void;
  timer: Timer | undefined;
  /** The last garbled answer: reported instead of a bare timeout. */
  garbled: DecodeError | undefined;
}

/** A UDP socket talking to one gateway. */
export class GatewayChannel {
  readonly gateway: Endpoint;
  readonly stats: ChannelStats = { requests: 0, transmissions: 0, answers: 0, notFromGateway: 0, unmatched: 0, malformed: 0 };
  private readonly env: Env;
  private readonly socket: PacketSocket;
  private readonly owned: boolean;
  private readonly pending = new Set<Pending>();
  /** Receives gateway datagrams that answer no pending request (unsolicited announcements). */
  private unsolicited: ((data: Uint8Array, at: number) => void) | undefined;
  private closing: Promise<void> | undefined;

  private constructor(env: Env, gateway: Endpoint, socket: PacketSocket, owned: boolean) {
    this.env = env;
    this.gateway = gateway;
    this.socket = socket;
    this.owned = owned;
    socket.onPacket((data, from) => this.receive(data, from));
  }

  /** Binds (or adopts) the socket; rejects with ERR_INVALID_ARGUMENT, ERR_SOCKET or ERR_ABORTED. */
  static async create(options: GatewayChannelOptions): Promise<GatewayChannel> {
    const { env, gateway, signal } = options;
    throwIfAborted(signal, 'port-control channel');
    if (options.socket !== undefined) {
      if (options.socket.local.family !== gateway.family) {
        throw new NatkitError('ERR_INVALID_ARGUMENT', `an IPv${options.socket.local.family} socket cannot reach gateway ${endpointKey(gateway)}`);
      }
      return new GatewayChannel(env, gateway, options.socket, false);
    }
    const socket = await env.network.bindUdp({
      address: options.localAddress ?? (gateway.family === 6 ? '::' : '0.0.0.0'),
      port: options.localPort ?? 0,
      ...(signal && { signal }),
    });
    return new GatewayChannel(env, gateway, socket, true);
  }

  /** The socket's local endpoint. */
  get local(): Endpoint {
    return this.socket.local;
  }

  get closed(): boolean {
    return this.closing !== undefined;
  }

  /** Sets the receiver of gateway datagrams that answer no pending request. */
  onUnsolicited(handler: ((data: Uint8Array, at: number) => void) | undefined): void {
    this.unsolicited = handler;
  }

  /** Sends a request until answered; rejects with ERR_TIMEOUT, ERR_ABORTED, ERR_CLOSED or `decodeCode`. */
  async exchange<R>(request: ChannelRequest<R>): Promise<ChannelAnswer<R>> {
    const { signal } = request;
    throwIfAborted(signal, request.what);
    if (this.closing !== undefined) throw new NatkitError('ERR_CLOSED', `${request.what}: the port-control client is closed`);
    const random = (): number => {
      const b = this.env.random.bytes(4);
      return (((b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!) >>> 0) / 2 ** 32;
    };
    const rtx = new Retransmission(request.bytes, request.timers, random);
    return new Promise<ChannelAnswer<R>>((resolve, reject) => {
      const entry: Pending = {
        rtx, request, reject, timer: undefined, garbled: undefined,
        resolve: resolve as (answer: ChannelAnswer<unknown>) => void,
        onAbort: () => this.settle(entry, abortError(signal, `${request.what} to ${endpointKey(this.gateway)}`)),
      };
      this.pending.add(entry);
      signal?.addEventListener('abort', entry.onAbort, { once: true });
      this.stats.requests += 1;
      this.apply(entry, rtx.start(this.env.clock.now()));
    });
  }

  /** Rejects pending requests with ERR_CLOSED and releases the socket if the channel bound it. Idempotent. */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  private async shutdown(): Promise<void> {
    for (const entry of [...this.pending]) this.settle(entry, new NatkitError('ERR_CLOSED', `${entry.request.what}: the port-control client was closed`));
    this.socket.onPacket(undefined);
    if (this.owned) await this.socket.close();
  }

  private receive(data: Uint8Array, from: Endpoint): void {
    // RFC 6886 §3.1, RFC 6887 §8.3: only the gateway's address (and its port 5351) answers.
    if (from.address !== this.gateway.address || from.port !== this.gateway.port) {
      this.stats.notFromGateway += 1;
      return;
    }
    const now = this.env.clock.now();
    for (const entry of this.pending) {
      let response: unknown;
      try {
        response = entry.request.match(data);
      } catch (err) {
        if (!(err instanceof DecodeError)) throw err;
        // Garbled or spoofed over UDP: keep retransmitting, remember why (like RFC 8489 §9.1.4).
        this.stats.malformed += 1;
        for (const e of this.pending) e.garbled = err;
        this.env.logger.debug('port-control: malformed datagram from the gateway', { error: err.message });
        return;
      }
      if (response === undefined) continue;
      this.stats.answers += 1;
      const outcome = entry.rtx.answered(now);
      if (outcome.kind === 'answered') this.settle(entry, { response, receivedAt: now, rttMs: outcome.rttMs, transmissions: outcome.transmissions });
      return;
    }
    this.stats.unmatched += 1;
    this.unsolicited?.(data, now);
  }

  private apply(entry: Pending, step: RetransmitStep): void {
    if (step.send !== undefined) {
      if (this.socket.closed) {
        this.settle(entry, new NatkitError('ERR_CLOSED', `${entry.request.what}: the socket is closed`));
        return;
      }
      this.stats.transmissions += 1;
      this.socket.send(step.send, this.gateway);
      if (!this.pending.has(entry)) return; // answered (or closed) from within send()
    }
    if (step.outcome !== undefined) {
      const { what, decodeCode } = entry.request;
      const to = endpointKey(this.gateway);
      const g = entry.garbled;
      const tail = `after ${step.outcome.transmissions} transmission${step.outcome.transmissions === 1 ? '' : 's'}`;
      this.settle(entry, g === undefined
        ? new NatkitError('ERR_TIMEOUT', `${what} to ${to}: no response ${tail}`)
        : new NatkitError(decodeCode, `${what} to ${to}: expected a well-formed response, got a malformed one (${g.message}) ${tail}`, { cause: g }));
      return;
    }
    if (step.deadline !== undefined) {
      entry.timer?.cancel();
      entry.timer = this.env.clock.setTimer(Math.max(0, step.deadline - this.env.clock.now()), () => {
        entry.timer = undefined;
        if (this.pending.has(entry)) this.apply(entry, entry.rtx.poll(this.env.clock.now()));
      });
    }
  }

  private settle(entry: Pending, result: ChannelAnswer<unknown> | Error): void {
    if (!this.pending.delete(entry)) return;
    entry.timer?.cancel();
    entry.timer = undefined;
    entry.request.signal?.removeEventListener('abort', entry.onAbort);
    if (result instanceof Error) entry.reject(result);
    else entry.resolve(result);
  }
}
