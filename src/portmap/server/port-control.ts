// The answering side of NAT-PMP (RFC 6886) and PCP (RFC 6887), sans-I/O: a datagram, its
// sender and the time in, the answer out (or nothing), mappings kept in the shared table.
// PCP: MAP (§11) and ANNOUNCE (§14.1), options checked by the decoder (§7.3), nonces (§11.3), PREFER_FAILURE
// (§13.2), THIRD_PARTY (§13.1) when allowed, version negotiation with NAT-PMP (§9).
import type { Endpoint } from '../../net/index.ts';
import {
  NatPmpDecodeError, NatPmpResultCode, decodeNatPmpRequest, encodeNatPmpResponse, type MapProtocol, type NatPmpRequest,
} from '../natpmp.ts';
import { PCP_MAX_LENGTH, PCP_VERSION, PcpDecodeError, PcpOpcode, PcpResultCode } from '../pcp-constants.ts';
import { PCP_PROTOCOL, decodePcpRequest, encodePcpResponse, type PcpMapData, type PcpRequest } from '../pcp.ts';
import type { GatewayMapping, MappingTable } from './table.ts';

/** Options of the NAT-PMP/PCP responder. */
export interface PortControlResponderOptions {
  /** Answer NAT-PMP (version 0). @default true */
  readonly natpmp?: boolean;
  /** Answer PCP (version 2). @default true */
  readonly pcp?: boolean;
  /** The external address reported. */
  readonly externalAddress: string;
  /** PCP: accept THIRD_PARTY (§13.1 leaves it to the operator). @default false (NOT_AUTHORIZED) */
  readonly allowThirdParty?: boolean;
  /** Whether `client` may map at all; false answers NOT_AUTHORIZED. @default everyone may */
  readonly authorize?: (client: Endpoint) => boolean;
}

/** How long a PCP error holds, seconds (§7.2 leaves it to the server; 30 minutes as for NOT_AUTHORIZED in §8.3). */
const PCP_ERROR_LIFETIME_S = 1800;
const PROTOCOL_OF: Readonly<Record<number, MapProtocol>> = { [PCP_PROTOCOL.udp]: 'udp', [PCP_PROTOCOL.tcp]: 'tcp' };
const sameNonce = (a: Uint8Array | undefined, b: Uint8Array): boolean => a !== undefined && a.length === b.length && a.every((v, i) => v === b[i]);

/** Answers NAT-PMP and PCP datagrams from the table. */
export class PortControlResponder {
  private readonly table: MappingTable;
  private readonly natpmp: boolean;
  private readonly pcp: boolean;
  private readonly externalAddress: string;
  private readonly allowThirdParty: boolean;
  private readonly authorize: (client: Endpoint) => boolean;

  constructor(table: MappingTable, options: PortControlResponderOptions) {
    this.table = table;
    this.natpmp = options.natpmp ?? true;
    this.pcp = options.pcp ?? true;
    this.externalAddress = options.externalAddress;
    this.allowThirdParty = options.allowThirdParty ?? false;
    this.authorize = options.authorize ?? (() => true);
  }

  /** The answer to one datagram, or undefined to stay silent. */
  handle(data: Uint8Array, from: Endpoint, nowMs: number): Uint8Array | undefined {
    if (data.length < 2 || data.length > PCP_MAX_LENGTH) return undefined;
    if (data[0] === 0) return this.natpmp ? this.answerNatPmp(data, from, nowMs) : undefined;
    if (this.pcp) return this.answerPcp(data, from, nowMs);
    // RFC 6887 §9 and RFC 6886 §3.5: a NAT-PMP-only gateway answers other versions with its
    // 8-byte UNSUPPORTED_VERSION in version 0, and the PCP client falls back.
    if (this.natpmp && (data[1]! & 0x80) === 0) {
      return encodeNatPmpResponse({ op: 'error', opcode: data[1]!, resultCode: NatPmpResultCode.UNSUPPORTED_VERSION, epochS: this.table.epochS(nowMs) });
    }
    return undefined;
  }

  private answerNatPmp(data: Uint8Array, from: Endpoint, nowMs: number): Uint8Array | undefined {
    const epochS = this.table.epochS(nowMs);
    let req: NatPmpRequest;
    try {
      req = decodeNatPmpRequest(data);
    } catch (err) {
      if (!(err instanceof NatPmpDecodeError) || err.resultCode === undefined) return undefined;
      return encodeNatPmpResponse({ op: 'error', opcode: data[1]! & 0x7f, resultCode: err.resultCode, epochS });
    }
    if (!this.authorize(from)) {
      const opcode = req.op === 'external-address' ? 0 : req.protocol === 'udp' ? 1 : 2;
      return encodeNatPmpResponse({ op: 'error', opcode, resultCode: NatPmpResultCode.NOT_AUTHORIZED, epochS });
    }
    if (req.op === 'external-address') return encodeNatPmpResponse({ op: 'external-address', resultCode: 0, epochS, externalAddress: this.externalAddress });
    const base = { op: 'map', protocol: req.protocol, epochS, internalPort: req.internalPort } as const;
    if (req.lifetimeS === 0) {
      // §3.4: delete one mapping, or every one of this client for the protocol (internal port 0).
      for (const m of this.table.list()) {
        if (m.origin !== 'upnp' && m.internal.address === from.address && m.protocol === req.protocol && (req.internalPort === 0 || m.internal.port === req.internalPort)) this.table.remove(m);
      }
      return encodeNatPmpResponse({ ...base, resultCode: 0, externalPort: 0, lifetimeS: 0 });
    }
    const internal = { ...from, port: req.internalPort };
    const m = this.upsert('natpmp', req.protocol, internal, req.suggestedExternalPort, req.lifetimeS, undefined, nowMs);
    if (m === undefined) return encodeNatPmpResponse({ ...base, resultCode: NatPmpResultCode.OUT_OF_RESOURCES, externalPort: 0, lifetimeS: 0 });
    return encodeNatPmpResponse({ ...base, resultCode: 0, externalPort: m.externalPort, lifetimeS: m.lifetimeS });
  }

  private answerPcp(data: Uint8Array, from: Endpoint, nowMs: number): Uint8Array | undefined {
    let req: PcpRequest;
    try {
      req = decodePcpRequest(data);
    } catch (err) {
      if (!(err instanceof PcpDecodeError) || err.resultCode === undefined) return undefined;
      return this.pcpError(data, err.resultCode, nowMs);
    }
    const fail = (code: number): Uint8Array => this.pcpError(data, code, nowMs);
    // §8.2: the header must name the address the request came from.
    if (req.clientAddress !== from.address) return fail(PcpResultCode.ADDRESS_MISMATCH);
    if (!this.authorize(from)) return fail(PcpResultCode.NOT_AUTHORIZED);
    const base = { version: PCP_VERSION, opcode: req.opcode, epochS: this.table.epochS(nowMs), options: req.options };
    if (req.opcode === PcpOpcode.ANNOUNCE) return encodePcpResponse({ ...base, resultCode: 0, lifetimeS: 0 });
    const third = req.options.find((o) => o.kind === 'third-party');
    if (third !== undefined && !this.allowThirdParty) return fail(PcpResultCode.NOT_AUTHORIZED);
    const { map } = req;
    const protocol = PROTOCOL_OF[map.protocol];
    if (protocol === undefined) return fail(PcpResultCode.UNSUPP_PROTOCOL);
    const internal = { address: third?.address ?? from.address, port: map.internalPort, family: from.family };
    const existing = this.table.ofInternal(protocol, internal, nowMs);
    // §11.3: only the nonce a mapping was made with may refresh or delete it.
    if (existing !== undefined && !sameNonce(existing.nonce, map.nonce)) return fail(PcpResultCode.NOT_AUTHORIZED);
    const answer = (resultCode: number, lifetimeS: number, assigned: PcpMapData): Uint8Array =>
      encodePcpResponse({ ...base, resultCode, lifetimeS, map: assigned, options: req.options.filter((o) => o.kind !== 'prefer-failure') });
    if (req.lifetimeS === 0) {
      // §15: lifetime 0 deletes; deleting nothing succeeds too.
      if (existing !== undefined) this.table.remove(existing);
      return answer(0, 0, { ...map, externalAddress: this.externalAddress });
    }
    const wantsAddress = map.externalAddress !== '0.0.0.0' && map.externalAddress !== '::' && map.externalAddress !== this.externalAddress;
    const portTaken = map.externalPort !== 0 && !this.table.isAvailable(protocol, map.externalPort, nowMs, existing);
    // §13.2: with PREFER_FAILURE, exactly the suggested port and address or nothing.
    if (req.options.some((o) => o.kind === 'prefer-failure') && existing === undefined && (portTaken || wantsAddress)) {
      return fail(PcpResultCode.CANNOT_PROVIDE_EXTERNAL);
    }
    const m = this.upsert('pcp', protocol, internal, map.externalPort, req.lifetimeS, map.nonce, nowMs);
    if (m === undefined) return fail(PcpResultCode.NO_RESOURCES);
    return answer(0, m.lifetimeS, { ...map, externalPort: m.externalPort, externalAddress: this.externalAddress });
  }

  /** A new mapping or the refresh of the client's own (§11.3: its external port is kept). */
  private upsert(origin: 'natpmp' | 'pcp', protocol: MapProtocol, internal: Endpoint, suggested: number, lifetimeS: number, nonce: Uint8Array | undefined, nowMs: number): GatewayMapping | undefined {
    const existing = this.table.ofInternal(protocol, internal, nowMs);
    const externalPort = existing?.externalPort ?? this.table.pickPort(protocol, suggested, nowMs);
    if (externalPort === undefined) return undefined;
    return this.table.put({ origin, protocol, internal, externalPort, lifetimeS: this.table.grantS(lifetimeS), nonce, description: '' }, nowMs, existing);
  }

  /** §8.2: an error copies the request, sets R, the result, a lifetime and the epoch, and zeroes the rest of the header. */
  private pcpError(request: Uint8Array, resultCode: number, nowMs: number): Uint8Array {
    const length = Math.min(PCP_MAX_LENGTH, Math.max(24, request.length + ((4 - (request.length % 4)) % 4)));
    const out = new Uint8Array(length);
    out.set(request.subarray(0, length));
    const view = new DataView(out.buffer);
    out[0] = PCP_VERSION;
    out[1] = 0x80 | (out[1]! & 0x7f);
    out[2] = 0;
    out[3] = resultCode;
    view.setUint32(4, PCP_ERROR_LIFETIME_S);
    view.setUint32(8, this.table.epochS(nowMs));
    out.fill(0, 12, 24);
    return out;
  }
}
