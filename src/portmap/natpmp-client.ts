// The NAT-PMP client (RFC 6886): external address (§3.2), mapping and deletion (§3.3,
// §3.4) on the §3.1 retransmission schedule, answers only from the gateway (§3.1), and the
// §3.6 epoch check on every answer. Result codes are values; timeouts, aborts and garbled
// answers are NatkitErrors (ERR_TIMEOUT, ERR_ABORTED, ERR_NATPMP_DECODE).
import { NatkitError } from '../util/index.ts';
import type { GatewayChannel } from './channel.ts';
import { PortControlClientBase, type CallOptions, type PortControlOptions, type ResultInfo } from './client-base.ts';
import { natPmpEpochRule } from './epoch.ts';
import {
  NATPMP_DEFAULT_LIFETIME_S, NATPMP_VERSION, NatPmpOpcode, decodeNatPmpResponse, encodeNatPmpRequest, natPmpResult,
  type MapProtocol, type NatPmpRequest, type NatPmpResponse, type NatPmpResult,
} from './natpmp.ts';
import type { ResolvedTimers } from './retransmit.ts';

/**
 * RFC 6886 §3.1: first retransmission after 250 ms, the interval doubling each time; after
 * the ninth transmission wait 64 s, then conclude the gateway does not speak NAT-PMP.
 */
export const NATPMP_TIMERS: ResolvedTimers = {
  initialMs: 250,
  maxIntervalMs: Infinity,
  maxTransmissions: 9,
  maxDurationMs: Infinity,
  jitter: 0,
};

/** Options of NatPmpClient.create(). */
export type NatPmpClientOptions = PortControlOptions;

/** What to map (RFC 6886 §3.3). */
export interface NatPmpMapOptions extends CallOptions {
  readonly protocol: MapProtocol;
  /** The local port to receive on. */
  readonly internalPort: number;
  /** The external port wanted; the gateway may give another. @default 0 (no preference) */
  readonly suggestedExternalPort?: number;
  /** Seconds the mapping should live. @default 7200 (RFC 6886 §3.3) */
  readonly lifetimeS?: number;
}

/** What to delete (RFC 6886 §3.4); internalPort 0 deletes every mapping of this host for the protocol. */
export interface NatPmpDeleteOptions extends CallOptions {
  readonly protocol: MapProtocol;
  readonly internalPort: number;
}

/** A result code other than SUCCESS, as a value. */
export interface NatPmpFailure extends ResultInfo {
  readonly ok: false;
  readonly result: NatPmpResult;
  readonly resultCode: number;
}

/** Outcome of externalAddress(). */
export type NatPmpExternalAddressResult = (ResultInfo & { readonly ok: true; readonly result: 'SUCCESS'; readonly externalAddress: string }) | NatPmpFailure;

/** Outcome of map() and delete(). */
export type NatPmpMapResult =
  | (ResultInfo & {
      readonly ok: true;
      readonly result: 'SUCCESS';
      readonly protocol: MapProtocol;
      readonly internalPort: number;
      /** The port the gateway forwards; 0 after a deletion. */
      readonly externalPort: number;
      /** Granted lifetime, possibly shorter than asked (§3.3); 0 after a deletion. */
      readonly lifetimeS: number;
    })
  | NatPmpFailure;

type MapAnswer = Extract<NatPmpResponse, { op: 'map' | 'error' }>;
type AddressAnswer = Extract<NatPmpResponse, { op: 'external-address' | 'error' }>;

/** A NAT-PMP client of one gateway. */
export class NatPmpClient extends PortControlClientBase {
  private constructor(options: NatPmpClientOptions, channel: GatewayChannel, owned: boolean) {
    super(options, channel, owned, natPmpEpochRule, NATPMP_TIMERS);
  }

  /** Binds a socket (unless given one) for talking to `gateway`; NAT-PMP is IPv4 only. */
  static async create(options: NatPmpClientOptions): Promise<NatPmpClient> {
    const [channel, owned] = await PortControlClientBase.openChannel(options);
    if (channel.gateway.family !== 4) {
      if (owned) await channel.close();
      throw new NatkitError('ERR_INVALID_ARGUMENT', `NAT-PMP is IPv4 only (RFC 6886 §1), got gateway ${channel.gateway.address}`);
    }
    return new NatPmpClient(options, channel, owned);
  }

  /** Asks for the gateway's external IPv4 address (§3.2). */
  async externalAddress(options: CallOptions = {}): Promise<NatPmpExternalAddressResult> {
    const answer = await this.exchange<AddressAnswer>({
      bytes: encodeNatPmpRequest({ op: 'external-address' }),
      what: 'NAT-PMP external address request',
      decodeCode: 'ERR_NATPMP_DECODE',
      match: (data) => {
        const res = decodeIfNatPmp(data);
        const mine = res?.op === 'external-address' || (res?.op === 'error' && res.opcode === NatPmpOpcode.EXTERNAL_ADDRESS);
        return mine ? res : undefined;
      },
    }, options);
    const res = answer.response;
    const info = this.resultInfo(res.epochS, answer);
    if (res.op === 'external-address' && res.resultCode === 0) return { ...info, ok: true, result: 'SUCCESS', externalAddress: res.externalAddress };
    return { ...info, ok: false, result: natPmpResult(res.resultCode), resultCode: res.resultCode };
  }

  /** Creates or renews a mapping (§3.3). */
  map(options: NatPmpMapOptions): Promise<NatPmpMapResult> {
    return this.request({
      op: 'map',
      protocol: options.protocol,
      internalPort: options.internalPort,
      suggestedExternalPort: options.suggestedExternalPort ?? 0,
      lifetimeS: options.lifetimeS ?? NATPMP_DEFAULT_LIFETIME_S,
    }, options);
  }

  /** Deletes a mapping: lifetime 0 and suggested external port 0 (§3.4). */
  delete(options: NatPmpDeleteOptions): Promise<NatPmpMapResult> {
    return this.request({ op: 'map', protocol: options.protocol, internalPort: options.internalPort, suggestedExternalPort: 0, lifetimeS: 0 }, options);
  }

  private async request(req: Extract<NatPmpRequest, { op: 'map' }>, options: CallOptions): Promise<NatPmpMapResult> {
    const opcode = req.protocol === 'udp' ? NatPmpOpcode.MAP_UDP : NatPmpOpcode.MAP_TCP;
    const answer = await this.exchange<MapAnswer>({
      bytes: encodeNatPmpRequest(req),
      what: `NAT-PMP ${req.lifetimeS === 0 ? 'delete' : 'map'} ${req.protocol} ${req.internalPort}`,
      decodeCode: 'ERR_NATPMP_DECODE',
      // §3.3: the answer names the opcode and internal port it is for; the §3.5 short form only the opcode.
      match: (data) => {
        const res = decodeIfNatPmp(data);
        if (res?.op === 'map' && res.protocol === req.protocol && res.internalPort === req.internalPort) return res;
        return res?.op === 'error' && res.opcode === opcode ? res : undefined;
      },
    }, options);
    const res = answer.response;
    const info = this.resultInfo(res.epochS, answer);
    if (res.op === 'map' && res.resultCode === 0) {
      return { ...info, ok: true, result: 'SUCCESS', protocol: res.protocol, internalPort: res.internalPort, externalPort: res.externalPort, lifetimeS: res.lifetimeS };
    }
    return { ...info, ok: false, result: natPmpResult(res.resultCode), resultCode: res.resultCode };
  }
}

/** Decodes a NAT-PMP datagram; undefined for another version (a PCP answer on a shared channel). */
function decodeIfNatPmp(data: Uint8Array): NatPmpResponse | undefined {
  return data.length > 0 && data[0] !== NATPMP_VERSION ? undefined : decodeNatPmpResponse(data);
}
