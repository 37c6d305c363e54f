// PCP with fallback to NAT-PMP on one socket (RFC 6887 §9): ask in PCP; a gateway that
// answers UNSUPP_VERSION in NAT-PMP's version 0 (RFC 6886 §3.5) is spoken to in NAT-PMP
// from then on, and PCP is tried again after a while, as the gateway may be upgraded.
import { NatkitError } from '../util/index.ts';
import { GatewayChannel } from './channel.ts';
import { gatewayEndpoint, type CallOptions, type ResultInfo } from './client-base.ts';
import { NatPmpClient } from './natpmp-client.ts';
import type { MapProtocol, NatPmpResult } from './natpmp.ts';
import { PcpClient, type PcpClientOptions, type PcpMapResult } from './pcp-client.ts';
import type { PcpResult } from './pcp-constants.ts';
import type { RetransmitTimers } from './retransmit.ts';

/** The two protocols. */
export type PortControlProtocol = 'pcp' | 'natpmp';

/** Options of PortControlClient.create(). */
export interface PortControlClientOptions extends Omit<PcpClientOptions, 'channel' | 'timers'> {
  /** PCP timers. @default PCP_TIMERS */
  readonly pcpTimers?: RetransmitTimers;
  /** NAT-PMP timers. @default NATPMP_TIMERS */
  readonly natPmpTimers?: RetransmitTimers;
  /** After falling back to NAT-PMP, try PCP again after this long. @default 1800000 (30 minutes) */
  readonly retryPcpAfterMs?: number;
}

/** What to map. */
export interface PortControlMapOptions extends CallOptions {
  readonly protocol: MapProtocol;
  readonly internalPort: number;
  /** @default 0 (no preference) */
  readonly suggestedExternalPort?: number;
  /** @default 7200 */
  readonly lifetimeS?: number;
}

/** A mapping made through either protocol. */
export interface PortControlMapping {
  readonly via: PortControlProtocol;
  readonly protocol: MapProtocol;
  readonly internalPort: number;
  readonly externalPort: number;
  /** From the MAP answer (PCP) or an external address request (NAT-PMP). */
  readonly externalAddress: string;
  readonly lifetimeS: number;
  /** PCP's mapping nonce (§15: delete repeats it). */
  readonly nonce?: Uint8Array;
}

/** Outcome of map() and delete(). */
export type PortControlMapResult =
  | (ResultInfo & { readonly ok: true; readonly via: PortControlProtocol; readonly mapping: PortControlMapping })
  | (ResultInfo & { readonly ok: false; readonly via: PortControlProtocol; readonly result: PcpResult | NatPmpResult; readonly resultCode: number });

/** A PCP result in the shape both protocols share. */
function fromPcp(r: PcpMapResult, protocol: MapProtocol): PortControlMapResult {
  return r.ok ? { ...r, via: 'pcp', mapping: { ...r.mapping, via: 'pcp', protocol } } : { ...r, via: 'pcp' };
}

/** One gateway, spoken to in PCP or, when it only knows NAT-PMP, in NAT-PMP. */
export class PortControlClient {
  readonly pcp: PcpClient;
  readonly natpmp: NatPmpClient | undefined;
  private readonly channel: GatewayChannel;
  private readonly retryPcpAfterMs: number;
  private readonly now: () => number;
  /** Until when NAT-PMP is used without asking in PCP first. */
  private natPmpUntil = -Infinity;

  private constructor(channel: GatewayChannel, pcp: PcpClient, natpmp: NatPmpClient | undefined, retryPcpAfterMs: number, now: () => number) {
    this.channel = channel;
    this.pcp = pcp;
    this.natpmp = natpmp;
    this.retryPcpAfterMs = retryPcpAfterMs;
    this.now = now;
  }

  /** Binds one socket (unless given one) shared by the PCP and NAT-PMP clients. */
  static async create(options: PortControlClientOptions): Promise<PortControlClient> {
    const { pcpTimers, natPmpTimers, retryPcpAfterMs, ...rest } = options;
    const gateway = gatewayEndpoint(options.gateway);
    const channel = await GatewayChannel.create({
      env: options.env, gateway,
      ...(options.socket && { socket: options.socket }),
      ...(options.localAddress !== undefined && { localAddress: options.localAddress }),
      ...(options.localPort !== undefined && { localPort: options.localPort }),
      ...(options.signal && { signal: options.signal }),
    });
    try {
      const pcp = await PcpClient.create({ ...rest, gateway, channel, ...(pcpTimers && { timers: pcpTimers }) });
      // NAT-PMP is IPv4 only (RFC 6886 §1): an IPv6 gateway is PCP or nothing.
      const natpmp = gateway.family === 4 ? await NatPmpClient.create({ env: options.env, gateway, channel, ...(natPmpTimers && { timers: natPmpTimers }) }) : undefined;
      return new PortControlClient(channel, pcp, natpmp, retryPcpAfterMs ?? 1_800_000, () => options.env.clock.now());
    } catch (err) {
      await channel.close();
      throw err;
    }
  }

  /** The protocol the next call will use. */
  get speaking(): PortControlProtocol {
    return this.natpmp !== undefined && this.now() < this.natPmpUntil ? 'natpmp' : 'pcp';
  }

  /** Maps in PCP, or in NAT-PMP once the gateway said it only speaks that. */
  async map(options: PortControlMapOptions): Promise<PortControlMapResult> {
    if (this.speaking === 'pcp') {
      const r = await this.pcp.map(options);
      if (r.ok || !this.fallBack(r.result, r.version)) return fromPcp(r, options.protocol);
    }
    return this.mapWith('natpmp', options);
  }

  /** Maps in the protocol named, without fallback (PortMapper keeps its own order); PCP repeats `nonce` (§11.1). */
  async mapWith(via: PortControlProtocol, options: PortControlMapOptions & { readonly nonce?: Uint8Array }): Promise<PortControlMapResult> {
    if (via === 'pcp') return fromPcp(await this.pcp.map(options), options.protocol);
    const natpmp = this.natpmp;
    if (natpmp === undefined) throw new NatkitError('ERR_INVALID_ARGUMENT', 'NAT-PMP map: the gateway is IPv6, NAT-PMP is IPv4 only (RFC 6886 §1)');
    const r = await natpmp.map(options);
    if (!r.ok) return { ...r, via: 'natpmp' };
    // RFC 6886 §3.3: a MAP answer has no address; §3.2 asks for it.
    const address = await natpmp.externalAddress(options);
    if (!address.ok) return { ...address, via: 'natpmp', gatewayReset: r.gatewayReset || address.gatewayReset };
    return {
      ...r, gatewayReset: r.gatewayReset || address.gatewayReset, via: 'natpmp',
      mapping: { via: 'natpmp', protocol: r.protocol, internalPort: r.internalPort, externalPort: r.externalPort, externalAddress: address.externalAddress, lifetimeS: r.lifetimeS },
    };
  }

  /** Deletes a mapping in the protocol that made it (PCP with its nonce, §15; NAT-PMP lifetime 0, §3.4). */
  async delete(mapping: Pick<PortControlMapping, 'via' | 'protocol' | 'internalPort'> & { readonly nonce?: Uint8Array }, options: CallOptions = {}): Promise<PortControlMapResult> {
    if (mapping.via === 'pcp') {
      return fromPcp(await this.pcp.delete({ protocol: mapping.protocol, internalPort: mapping.internalPort, ...(mapping.nonce && { nonce: mapping.nonce }) }, options), mapping.protocol);
    }
    if (this.natpmp === undefined) throw new NatkitError('ERR_INVALID_ARGUMENT', 'NAT-PMP delete: the gateway is IPv6, NAT-PMP is IPv4 only');
    const r = await this.natpmp.delete({ ...options, protocol: mapping.protocol, internalPort: mapping.internalPort });
    if (!r.ok) return { ...r, via: 'natpmp' };
    return { ...r, via: 'natpmp', mapping: { via: 'natpmp', protocol: r.protocol, internalPort: r.internalPort, externalPort: r.externalPort, externalAddress: '0.0.0.0', lifetimeS: r.lifetimeS } };
  }

  /** §9: UNSUPP_VERSION in version 0 is a NAT-PMP gateway; speak NAT-PMP for a while. */
  private fallBack(result: PcpResult, version: number): boolean {
    if (result !== 'UNSUPP_VERSION' || version !== 0 || this.natpmp === undefined) return false;
    this.natPmpUntil = this.now() + this.retryPcpAfterMs;
    return true;
  }

  /** Closes both clients and the socket (unless it was given). Idempotent. */
  async close(): Promise<void> {
    await Promise.all([this.pcp.close(), this.natpmp?.close()]);
    await this.channel.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
