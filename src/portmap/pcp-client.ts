// The PCP client (RFC 6887): MAP (§11) with a random nonce kept per mapping so that
// refresh and delete repeat it (§11.1, §15), THIRD_PARTY, PREFER_FAILURE and FILTER
// (§13), ANNOUNCE (§14.1), answers checked per §8.3 and §11.4, the epoch check of §8.5
// on every answer, and the retransmissions of §8.1.1. Result codes are values, including
// UNSUPP_VERSION from a NAT-PMP-only gateway (§9, see PortControlClient for the
// fallback); timeouts, aborts and garbled answers are NatkitErrors.
import { NatkitError, ipFamily } from '../util/index.ts';
import type { ChannelAnswer, GatewayChannel } from './channel.ts';
import { PortControlClientBase, type CallOptions, type PortControlOptions, type ResultInfo } from './client-base.ts';
import { pcpEpochRule } from './epoch.ts';
import type { MapProtocol } from './natpmp.ts';
import { PCP_NONCE_LENGTH, PCP_VERSION, PcpOpcode, PcpResultCode, pcpResult, type PcpResult } from './pcp-constants.ts';
import type { PcpFilter, PcpOption } from './pcp-options.ts';
import { PCP_PROTOCOL, decodePcpResponse, encodePcpRequest, type PcpRequest, type PcpResponse } from './pcp.ts';
import type { ResolvedTimers } from './retransmit.ts';

/**
 * RFC 6887 §8.1.1: IRT 3 s, MRT 1024 s, ±10 % jitter. The RFC's MRC 0 and MRD 0 mean
 * "retransmit forever"; a call here stops after 60 s unless told otherwise.
 */
export const PCP_TIMERS: ResolvedTimers = {
  initialMs: 3000,
  maxIntervalMs: 1_024_000,
  maxTransmissions: Infinity,
  maxDurationMs: 60_000,
  jitter: 0.1,
};

/** Lifetime asked for when a call names none: two hours, as NAT-PMP recommends. */
export const PCP_DEFAULT_LIFETIME_S = 7200;

/** Options of PcpClient.create(). */
export interface PcpClientOptions extends PortControlOptions {
  /**
   * Our address as the gateway sees the request's source: the header carries it (§7.1)
   * and a server answers ADDRESS_MISMATCH when a NAT sits in between.
   * @default the socket's local address when bound to a specific one (required otherwise; see natkit/net/node localAddressToward)
   */
  readonly clientAddress?: string;
  /** Receives unsolicited responses (§14.1.1 ANNOUNCE, §14.2 MAP updates) after their epoch check. */
  readonly onUnsolicited?: (response: PcpResponse, info: { readonly gatewayReset: boolean; readonly receivedAt: number }) => void;
}

/** What to map (§11.1). */
export interface PcpMapOptions extends CallOptions {
  /** 'udp', 'tcp' or an IANA protocol number (0: all protocols). */
  readonly protocol: MapProtocol | number;
  /** The local port; 0 with protocol 0 means all ports. */
  readonly internalPort: number;
  /** @default 0 (no preference) */
  readonly suggestedExternalPort?: number;
  /** @default no preference ('0.0.0.0' or '::') */
  readonly suggestedExternalAddress?: string;
  /** Seconds the mapping should live. @default 7200 */
  readonly lifetimeS?: number;
  /** PREFER_FAILURE (§13.2): no mapping rather than one other than suggested. @default false */
  readonly preferFailure?: boolean;
  /** THIRD_PARTY (§13.1): map for this internal address instead of our own. */
  readonly thirdParty?: string;
  /** FILTER options (§13.3): only these remote peers may use the mapping. */
  readonly filters?: readonly PcpFilter[];
  /** The mapping's nonce. @default the nonce of this mapping if the client made it, else 12 fresh random bytes */
  readonly nonce?: Uint8Array;
}

/** A mapping the gateway granted. */
export interface PcpMapping {
  readonly protocol: number;
  readonly internalPort: number;
  readonly externalPort: number;
  readonly externalAddress: string;
  /** Refresh and delete must repeat it (§15). */
  readonly nonce: Uint8Array;
  /** Granted lifetime (§11.5: may differ from the one asked); 0 after a delete. */
  readonly lifetimeS: number;
  readonly thirdParty?: string;
}

/** What delete() needs: a mapping, or its protocol and internal port (the nonce the client remembers). */
export interface PcpDeleteTarget {
  readonly protocol: MapProtocol | number;
  readonly internalPort: number;
  /** @default the nonce the client remembers for this mapping */
  readonly nonce?: Uint8Array;
  readonly thirdParty?: string;
}

/** A result code other than SUCCESS, as a value. */
export interface PcpFailure extends ResultInfo {
  readonly ok: false;
  readonly result: PcpResult;
  readonly resultCode: number;
  /** How long the error holds, in seconds (§7.2, §8.3). */
  readonly lifetimeS: number;
  /** The server's version: below 2 with UNSUPP_VERSION (0: a NAT-PMP gateway, §9). */
  readonly version: number;
}

/** Outcome of map() and delete(). */
export type PcpMapResult = (ResultInfo & { readonly ok: true; readonly result: 'SUCCESS'; readonly mapping: PcpMapping }) | PcpFailure;

/** Outcome of announce(). */
export type PcpAnnounceResult = (ResultInfo & { readonly ok: true; readonly result: 'SUCCESS' }) | PcpFailure;

const protocolNumber = (p: MapProtocol | number): number => (typeof p === 'number' ? p : PCP_PROTOCOL[p]);
const nonceKey = (protocol: number, internalPort: number, thirdParty: string | undefined): string => `${protocol}/${internalPort}/${thirdParty ?? ''}`;
const sameBytes = (a: Uint8Array, b: Uint8Array): boolean => a.length === b.length && a.every((v, i) => v === b[i]);

/** A PCP client of one server. */
export class PcpClient extends PortControlClientBase {
  /** The address written into every request header (§7.1). */
  readonly clientAddress: string;
  /** Nonces of the mappings this client holds, by protocol, internal port and third party. */
  private readonly nonces = new Map<string, Uint8Array>();

  private constructor(options: PcpClientOptions, channel: GatewayChannel, owned: boolean, clientAddress: string) {
    super(options, channel, owned, pcpEpochRule, PCP_TIMERS);
    this.clientAddress = clientAddress;
    const listener = options.onUnsolicited;
    if (listener !== undefined) {
      channel.onUnsolicited((data, at) => {
        let res: PcpResponse | undefined;
        try {
          res = decodeIfPcp(data, () => true);
        } catch {
          return; // counted by the channel as unmatched; garbage is no announcement
        }
        if (res?.version === PCP_VERSION) listener(res, { gatewayReset: this.observeEpoch(res.epochS, at), receivedAt: at });
      });
    }
  }

  /** Binds a socket (unless given one or a channel) for talking to the PCP server `gateway`. */
  static async create(options: PcpClientOptions): Promise<PcpClient> {
    const [channel, owned] = await PortControlClientBase.openChannel(options);
    const local = channel.local.address;
    const clientAddress = options.clientAddress ?? (local === '0.0.0.0' || local === '::' ? undefined : local);
    if (clientAddress === undefined || ipFamily(clientAddress) !== channel.gateway.family) {
      if (owned) await channel.close();
      throw new NatkitError('ERR_INVALID_ARGUMENT', clientAddress === undefined
        ? 'PCP needs our own address for the request header (RFC 6887 §7.1): pass clientAddress or bind a specific localAddress'
        : `PCP clientAddress ${clientAddress} is not of the gateway's family (IPv${channel.gateway.family})`);
    }
    return new PcpClient(options, channel, owned, clientAddress);
  }

  /** The nonce the client holds for a mapping, if it made one. */
  nonceOf(protocol: MapProtocol | number, internalPort: number, thirdParty?: string): Uint8Array | undefined {
    return this.nonces.get(nonceKey(protocolNumber(protocol), internalPort, thirdParty));
  }

  /** Creates or refreshes a mapping (§11). */
  async map(options: PcpMapOptions): Promise<PcpMapResult> {
    const protocol = protocolNumber(options.protocol);
    const key = nonceKey(protocol, options.internalPort, options.thirdParty);
    // A copy: the caller's bytes (or a Buffer from the random source) stay theirs.
    const nonce = Uint8Array.from(options.nonce ?? this.nonces.get(key) ?? this.env.random.bytes(PCP_NONCE_LENGTH));
    const lifetimeS = options.lifetimeS ?? PCP_DEFAULT_LIFETIME_S;
    const pcpOptions: PcpOption[] = [
      ...(options.thirdParty === undefined ? [] : [{ kind: 'third-party', address: options.thirdParty } as const]),
      ...(options.preferFailure === true ? [{ kind: 'prefer-failure' } as const] : []),
      ...(options.filters ?? []).map((f) => ({ kind: 'filter', ...f }) as const),
    ];
    const request: PcpRequest = {
      opcode: PcpOpcode.MAP, lifetimeS, clientAddress: this.clientAddress, options: pcpOptions,
      map: {
        nonce, protocol, internalPort: options.internalPort, externalPort: options.suggestedExternalPort ?? 0,
        externalAddress: options.suggestedExternalAddress ?? (this.gateway.family === 6 ? '::' : '0.0.0.0'),
      },
    };
    const answer = await this.exchange<PcpResponse>({
      bytes: encodePcpRequest(request),
      what: `PCP ${lifetimeS === 0 ? 'delete' : 'MAP'} ${protocol}/${options.internalPort}`,
      decodeCode: 'ERR_PCP_DECODE',
      // §11.4: an answer must repeat the nonce, protocol and internal port; an error
      // without opcode data (or in another version) cannot be told apart, and is taken.
      match: (data) => decodeIfPcp(data, (res) => res.opcode === PcpOpcode.MAP && (res.map === undefined ||
        (sameBytes(res.map.nonce, nonce) && res.map.protocol === protocol && res.map.internalPort === options.internalPort))),
    }, options);
    const res = answer.response;
    const failure = this.failure(res, answer);
    if (failure !== undefined) return failure;
    const m = res.map!;
    if (lifetimeS === 0 || res.lifetimeS === 0) this.nonces.delete(key);
    else this.nonces.set(key, nonce);
    const mapping: PcpMapping = {
      protocol, internalPort: m.internalPort, externalPort: m.externalPort, externalAddress: m.externalAddress, nonce, lifetimeS: res.lifetimeS,
      ...(options.thirdParty !== undefined && { thirdParty: options.thirdParty }),
    };
    return { ...this.resultInfo(res.epochS, answer), ok: true, result: 'SUCCESS', mapping };
  }

  /** Deletes a mapping: MAP with lifetime 0 and the mapping's own nonce (§15). */
  delete(target: PcpDeleteTarget, options: CallOptions = {}): Promise<PcpMapResult> {
    const nonce = target.nonce ?? this.nonceOf(target.protocol, target.internalPort, target.thirdParty);
    if (nonce === undefined) {
      return Promise.reject(new NatkitError('ERR_INVALID_ARGUMENT', `PCP delete ${target.protocol}/${target.internalPort}: no nonce known for this mapping (RFC 6887 §15 needs the one it was made with)`));
    }
    return this.map({
      ...options, protocol: target.protocol, internalPort: target.internalPort, lifetimeS: 0, nonce,
      ...(target.thirdParty !== undefined && { thirdParty: target.thirdParty }),
    });
  }

  /** Sends ANNOUNCE (§14.1): is a PCP server there, and what is its epoch? */
  async announce(options: CallOptions = {}): Promise<PcpAnnounceResult> {
    const answer = await this.exchange<PcpResponse>({
      bytes: encodePcpRequest({ opcode: PcpOpcode.ANNOUNCE, lifetimeS: 0, clientAddress: this.clientAddress, options: [] }),
      what: 'PCP ANNOUNCE',
      decodeCode: 'ERR_PCP_DECODE',
      match: (data) => decodeIfPcp(data, (res) => res.opcode === PcpOpcode.ANNOUNCE),
    }, options);
    const res = answer.response;
    return this.failure(res, answer) ?? { ...this.resultInfo(res.epochS, answer), ok: true, result: 'SUCCESS' };
  }

  /** The failure value of a non-SUCCESS answer (the epoch of another version's answer is not PCP's). */
  private failure(res: PcpResponse, answer: ChannelAnswer<unknown>): PcpFailure | undefined {
    if (res.resultCode === PcpResultCode.SUCCESS && res.version === PCP_VERSION) return undefined;
    const info = res.version === PCP_VERSION
      ? this.resultInfo(res.epochS, answer)
      : { epochS: res.epochS, gatewayReset: false, rttMs: answer.rttMs, transmissions: answer.transmissions, receivedAt: answer.receivedAt };
    return { ...info, ok: false, result: pcpResult(res.resultCode), resultCode: res.resultCode, lifetimeS: res.lifetimeS, version: res.version };
  }
}

/**
 * Decodes a datagram that is PCP (or a §9 UNSUPP_VERSION in another version) and returns
 * it when `mine` accepts it; NAT-PMP traffic on a shared channel is not ours.
 */
function decodeIfPcp(data: Uint8Array, mine: (res: PcpResponse) => boolean): PcpResponse | undefined {
  const unsupportedVersion = data.length >= 4 && (data[1]! & 0x80) !== 0 && data[2] === 0 && data[3] === PcpResultCode.UNSUPP_VERSION;
  if (data.length > 0 && data[0] !== PCP_VERSION && !unsupportedVersion) return undefined;
  const res = decodePcpResponse(data);
  return mine(res) ? res : undefined;
}
