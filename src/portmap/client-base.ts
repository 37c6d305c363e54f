// What the NAT-PMP and PCP clients share: options, the channel to the gateway (their
// own, or one shared between them), the epoch tracker, and close()/asyncDispose.
import { parseEndpoint, type Endpoint, type Env, type PacketSocket } from '../net/index.ts';
import { NatkitError, isNatkitError } from '../util/index.ts';
import { GatewayChannel, PORT_CONTROL_PORT, type ChannelAnswer, type ChannelRequest, type ChannelStats } from './channel.ts';
import { EpochTracker, type EpochRule } from './epoch.ts';
import { resolveRetransmitTimers, type ResolvedTimers, type RetransmitTimers } from './retransmit.ts';

/** Options every port-control client takes. */
export interface PortControlOptions {
  /** Network (unless `socket` or `channel`), clock, randomness and logger. */
  readonly env: Env;
  /** The gateway: an Endpoint, or an address (port 5351) or `address:port` text. */
  readonly gateway: Endpoint | string;
  /** Run on this socket instead of binding one; never closed by the client. */
  readonly socket?: PacketSocket;
  /** Run on this channel (shared with another client to the same gateway); never closed by the client. */
  readonly channel?: GatewayChannel;
  /** Local address to bind. @default any address of the gateway's family */
  readonly localAddress?: string;
  /** Local port to bind. @default 0 (the system chooses) */
  readonly localPort?: number;
  /** Retransmission timers of every call (each call may override them). @default the protocol's RFC schedule */
  readonly timers?: RetransmitTimers;
  /** Cancels create() while it binds. */
  readonly signal?: AbortSignal;
}

/** Options of one call. */
export interface CallOptions {
  /** Aborting rejects the call with ERR_ABORTED and stops retransmitting. */
  readonly signal?: AbortSignal;
  /** Retransmission timers of this call. @default the client's */
  readonly timers?: RetransmitTimers;
}

/** What every result carries besides its payload. */
export interface ResultInfo {
  /** The gateway's epoch in seconds (RFC 6886 §3.6, RFC 6887 §8.5). */
  readonly epochS: number;
  /** The epoch check says the gateway rebooted or lost state: map everything again. */
  readonly gatewayReset: boolean;
  /** From the first transmission to the answer. */
  readonly rttMs: number;
  readonly transmissions: number;
  /** Clock time the answer arrived (lifetimes count from here). */
  readonly receivedAt: number;
}

/** The gateway endpoint of an option: text gets port 5351 unless it names one. */
export function gatewayEndpoint(gateway: Endpoint | string): Endpoint {
  return typeof gateway === 'string' ? parseEndpoint(gateway, PORT_CONTROL_PORT) : gateway;
}

/** The channel, socket and epoch bookkeeping of one client. */
export abstract class PortControlClientBase {
  readonly gateway: Endpoint;
  protected readonly env: Env;
  protected readonly channel: GatewayChannel;
  protected readonly epoch: EpochTracker;
  private readonly ownsChannel: boolean;
  private closing: Promise<void> | undefined;

  private readonly timers: ResolvedTimers;
  /** Aborts this client's calls on close() when the channel is shared. */
  private readonly closer = new AbortController();

  protected constructor(options: PortControlOptions, channel: GatewayChannel, ownsChannel: boolean, rule: EpochRule, defaults: ResolvedTimers) {
    this.env = options.env;
    this.gateway = channel.gateway;
    this.channel = channel;
    this.ownsChannel = ownsChannel;
    this.epoch = new EpochTracker(rule);
    this.timers = resolveRetransmitTimers(options.timers ?? {}, defaults);
  }

  /** The options' channel, or a new one; second: whether the client owns it. */
  protected static async openChannel(options: PortControlOptions): Promise<[GatewayChannel, boolean]> {
    const gateway = gatewayEndpoint(options.gateway);
    if (options.channel !== undefined) {
      if (options.channel.gateway.address !== gateway.address || options.channel.gateway.port !== gateway.port) {
        throw new NatkitError('ERR_INVALID_ARGUMENT', `the channel talks to ${options.channel.gateway.address}, not to gateway ${gateway.address}`);
      }
      return [options.channel, false];
    }
    const channel = await GatewayChannel.create({
      env: options.env,
      gateway,
      ...(options.socket && { socket: options.socket }),
      ...(options.localAddress !== undefined && { localAddress: options.localAddress }),
      ...(options.localPort !== undefined && { localPort: options.localPort }),
      ...(options.signal && { signal: options.signal }),
    });
    return [channel, true];
  }

  /** The local endpoint requests leave from. */
  get local(): Endpoint {
    return this.channel.local;
  }

  /** The channel's counters (shared with any client on the same channel). */
  get stats(): Readonly<ChannelStats> {
    return this.channel.stats;
  }

  /** Checks the epoch of an answer and describes it (RFC 6886 §3.6, RFC 6887 §8.5). */
  protected resultInfo(epochS: number, answer: ChannelAnswer<unknown>): ResultInfo {
    const { receivedAt, rttMs, transmissions } = answer;
    return { epochS, gatewayReset: this.observeEpoch(epochS, receivedAt), rttMs, transmissions, receivedAt };
  }

  /** Records an epoch seen at `atMs`; true when the gateway lost state since the last one. */
  protected observeEpoch(epochS: number, atMs: number): boolean {
    return this.epoch.observe(epochS, atMs) === 'reset';
  }

  /** Runs one request on the channel with the call's signal and timers over the client's. */
  protected async exchange<R>(request: Omit<ChannelRequest<R>, 'signal' | 'timers'>, options: CallOptions): Promise<ChannelAnswer<R>> {
    this.throwIfClosed(request.what);
    const signal = options.signal === undefined ? this.closer.signal : AbortSignal.any([options.signal, this.closer.signal]);
    try {
      return await this.channel.exchange({ ...request, signal, timers: resolveRetransmitTimers(options.timers ?? {}, this.timers) });
    } catch (err) {
      if (this.closer.signal.aborted && isNatkitError(err, 'ERR_ABORTED')) throw new NatkitError('ERR_CLOSED', `${request.what}: the client was closed`);
      throw err;
    }
  }

  /** Rejects pending calls with ERR_CLOSED; closes the channel if the client opened it. Idempotent. */
  close(): Promise<void> {
    this.closer.abort();
    this.closing ??= this.ownsChannel ? this.channel.close() : Promise.resolve();
    return this.closing;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  protected throwIfClosed(what: string): void {
    if (this.closing !== undefined || this.channel.closed) throw new NatkitError('ERR_CLOSED', `${what}: the client is closed`);
  }
}
