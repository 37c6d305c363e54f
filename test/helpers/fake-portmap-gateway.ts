// A fake NAT-PMP (RFC 6886) and PCP (RFC 6887) gateway for tests: a core that answers a
// datagram per the RFCs with a mapping table (nothing is really forwarded), and a real
// UDP socket running it. Knobs: which protocols it speaks, dropped requests, reboots (a
// new epoch and an empty table), ports already taken, a different external address.
import type { Endpoint, PacketSocket } from '../../src/net/index.ts';
import { nodeEnv } from '../../src/net/node/index.ts';
import {
  NatPmpDecodeError, NatPmpResultCode, PCP_VERSION, PcpDecodeError, PcpOpcode, PcpResultCode,
  decodeNatPmpRequest, decodePcpRequest, encodeNatPmpResponse, encodePcpResponse,
  type NatPmpRequest, type NatPmpResponse, type PcpMapData, type PcpRequest,
} from '../../src/portmap/index.ts';

/** Options of the fake gateway. */
export interface FakeGatewayOptions {
  /** @default true */
  readonly natpmp?: boolean;
  /** @default true */
  readonly pcp?: boolean;
  /** @default '203.0.113.7' */
  readonly externalAddress?: string;
  /** Longest lifetime granted, seconds. @default 86400 */
  readonly maxLifetimeS?: number;
  /** PCP: accept THIRD_PARTY. @default false (NOT_AUTHORIZED) */
  readonly allowThirdParty?: boolean;
}

/** A mapping the gateway holds. */
export interface FakeMapping {
  readonly protocol: number;
  readonly internalAddress: string;
  readonly internalPort: number;
  readonly externalPort: number;
  readonly lifetimeS: number;
  readonly nonce: Uint8Array | undefined;
}

const TCP = 6;
const UDP = 17;
const equal = (a: Uint8Array | undefined, b: Uint8Array | undefined): boolean => a !== undefined && b !== undefined && a.length === b.length && a.every((v, i) => v === b[i]);

/** The answering logic, fed datagrams and the time. */
export class FakePortmapGateway {
  readonly options: Required<FakeGatewayOptions>;
  /** By `${internalAddress}/${protocol}/${internalPort}`. */
  readonly mappings = new Map<string, FakeMapping>();
  /** External ports already in use by something else. */
  readonly takenPorts = new Set<number>();
  /** Every datagram received, in order. */
  readonly received: { readonly data: Uint8Array; readonly from: Endpoint }[] = [];
  /** Requests still to ignore (lost on the way). */
  dropNext = 0;
  /** Seconds added to the epoch (a gateway whose clock runs ahead). */
  epochOffsetS = 0;
  /** Answer every well-formed request with this result code instead of serving it. */
  forceResultCode: number | undefined;
  private epochStartMs: number;

  constructor(options: FakeGatewayOptions = {}, nowMs = 0) {
    this.options = { natpmp: true, pcp: true, externalAddress: '203.0.113.7', maxLifetimeS: 86_400, allowThirdParty: false, ...options };
    this.epochStartMs = nowMs;
  }

  /** The epoch the gateway reports at `nowMs`. */
  epochS(nowMs: number): number {
    return Math.floor((nowMs - this.epochStartMs) / 1000) + this.epochOffsetS;
  }

  /** A reboot: the epoch starts over and every mapping is gone (RFC 6886 §3.6, RFC 6887 §8.5). */
  reboot(nowMs: number): void {
    this.epochStartMs = nowMs;
    this.epochOffsetS = 0;
    this.mappings.clear();
  }

  /** The answer to one datagram, or undefined to stay silent. */
  handle(data: Uint8Array, from: Endpoint, nowMs: number): Uint8Array | undefined {
    this.received.push({ data: Uint8Array.from(data), from });
    if (this.dropNext > 0) {
      this.dropNext -= 1;
      return undefined;
    }
    if (data.length < 2) return undefined;
    if (data[0] === 0) return this.options.natpmp ? this.natpmp(data, from, nowMs) : undefined;
    if (this.options.pcp) return this.pcp(data, from, nowMs);
    // RFC 6886 §3.5: a NAT-PMP-only gateway answers any other version with its 8-byte error.
    if (this.options.natpmp && (data[1]! & 0x80) === 0) {
      return encodeNatPmpResponse({ op: 'error', opcode: data[1]!, resultCode: NatPmpResultCode.UNSUPPORTED_VERSION, epochS: this.epochS(nowMs) });
    }
    return undefined;
  }

  private natpmp(data: Uint8Array, from: Endpoint, nowMs: number): Uint8Array | undefined {
    const epochS = this.epochS(nowMs);
    let req: NatPmpRequest;
    try {
      req = decodeNatPmpRequest(data);
    } catch (err) {
      if (!(err instanceof NatPmpDecodeError) || err.resultCode === undefined) return undefined;
      return encodeNatPmpResponse({ op: 'error', opcode: data[1]! & 0x7f, resultCode: err.resultCode, epochS });
    }
    if (this.forceResultCode !== undefined) {
      const opcode = req.op === 'external-address' ? 0 : req.protocol === 'udp' ? 1 : 2;
      return encodeNatPmpResponse({ op: 'error', opcode, resultCode: this.forceResultCode, epochS });
    }
    if (req.op === 'external-address') return encodeNatPmpResponse({ op: 'external-address', resultCode: 0, epochS, externalAddress: this.options.externalAddress });
    const protocol = req.protocol === 'udp' ? UDP : TCP;
    let res: NatPmpResponse;
    if (req.lifetimeS === 0) {
      // RFC 6886 §3.4: delete one mapping, or all of this client's for the protocol (internal port 0).
      for (const [k, m] of this.mappings) {
        if (m.internalAddress === from.address && m.protocol === protocol && (req.internalPort === 0 || m.internalPort === req.internalPort)) this.mappings.delete(k);
      }
      res = { op: 'map', protocol: req.protocol, resultCode: 0, epochS, internalPort: req.internalPort, externalPort: 0, lifetimeS: 0 };
    } else {
      const m = this.upsert(from.address, protocol, req.internalPort, req.suggestedExternalPort, req.lifetimeS, undefined);
      res = { op: 'map', protocol: req.protocol, resultCode: 0, epochS, internalPort: m.internalPort, externalPort: m.externalPort, lifetimeS: m.lifetimeS };
    }
    return encodeNatPmpResponse(res);
  }

  private pcp(data: Uint8Array, from: Endpoint, nowMs: number): Uint8Array | undefined {
    let req: PcpRequest;
    try {
      req = decodePcpRequest(data);
    } catch (err) {
      if (!(err instanceof PcpDecodeError) || err.resultCode === undefined) return undefined;
      return this.pcpError(data, err.resultCode, nowMs);
    }
    const base = { version: PCP_VERSION, opcode: req.opcode, epochS: this.epochS(nowMs), options: req.options };
    // RFC 6887 §8.2: the header must name the address the request came from.
    if (req.clientAddress !== from.address) return this.pcpError(data, PcpResultCode.ADDRESS_MISMATCH, nowMs);
    if (this.forceResultCode !== undefined) return this.pcpError(data, this.forceResultCode, nowMs);
    if (req.opcode === PcpOpcode.ANNOUNCE) return encodePcpResponse({ ...base, resultCode: 0, lifetimeS: 0 });
    const third = req.options.find((o) => o.kind === 'third-party');
    if (third !== undefined && !this.options.allowThirdParty) return this.pcpError(data, PcpResultCode.NOT_AUTHORIZED, nowMs);
    const internalAddress = third?.address ?? from.address;
    const { map } = req;
    if (map.protocol !== UDP && map.protocol !== TCP) return this.pcpError(data, PcpResultCode.UNSUPP_PROTOCOL, nowMs);
    const key = `${internalAddress}/${map.protocol}/${map.internalPort}`;
    const existing = this.mappings.get(key);
    // RFC 6887 §11.3: only the nonce a mapping was made with may refresh or delete it.
    if (existing !== undefined && !equal(existing.nonce, map.nonce)) return this.pcpError(data, PcpResultCode.NOT_AUTHORIZED, nowMs);
    if (req.lifetimeS === 0) {
      this.mappings.delete(key);
      return encodePcpResponse({ ...base, resultCode: 0, lifetimeS: 0, map: { ...map, externalAddress: this.options.externalAddress } });
    }
    const preferFailure = req.options.some((o) => o.kind === 'prefer-failure');
    const wantsAddress = map.externalAddress !== '0.0.0.0' && map.externalAddress !== '::' && map.externalAddress !== this.options.externalAddress;
    const portTaken = map.externalPort !== 0 && this.portTaken(map.externalPort, map.protocol, key);
    // RFC 6887 §13.2: with PREFER_FAILURE, exactly the suggested port and address or nothing.
    if (preferFailure && existing === undefined && (portTaken || wantsAddress)) return this.pcpError(data, PcpResultCode.CANNOT_PROVIDE_EXTERNAL, nowMs);
    const m = this.upsert(internalAddress, map.protocol, map.internalPort, map.externalPort, req.lifetimeS, map.nonce);
    const assigned: PcpMapData = { ...map, externalPort: m.externalPort, externalAddress: this.options.externalAddress };
    return encodePcpResponse({ ...base, resultCode: 0, lifetimeS: m.lifetimeS, map: assigned, options: req.options.filter((o) => o.kind !== 'prefer-failure') });
  }

  /** RFC 6887 §8.2: an error copies the request, sets R, the result, a lifetime and the epoch. */
  private pcpError(request: Uint8Array, resultCode: number, nowMs: number): Uint8Array {
    const length = Math.min(1100, Math.max(24, request.length + ((4 - (request.length % 4)) % 4)));
    const out = new Uint8Array(length);
    out.set(request.subarray(0, length));
    const view = new DataView(out.buffer);
    out[0] = PCP_VERSION;
    out[1] = 0x80 | (out[1]! & 0x7f);
    out[2] = 0;
    out[3] = resultCode;
    view.setUint32(4, 1800);
    view.setUint32(8, this.epochS(nowMs));
    out.fill(0, 12, 24);
    return out;
  }

  private portTaken(port: number, protocol: number, key: string): boolean {
    if (this.takenPorts.has(port)) return true;
    for (const [k, m] of this.mappings) if (k !== key && m.protocol === protocol && m.externalPort === port) return true;
    return false;
  }

  private upsert(internalAddress: string, protocol: number, internalPort: number, suggested: number, lifetimeS: number, nonce: Uint8Array | undefined): FakeMapping {
    const key = `${internalAddress}/${protocol}/${internalPort}`;
    const existing = this.mappings.get(key);
    let externalPort = existing?.externalPort ?? (suggested !== 0 && !this.portTaken(suggested, protocol, key) ? suggested : 0);
    for (let p = 40_000; externalPort === 0; p++) if (!this.portTaken(p, protocol, key)) externalPort = p;
    const m: FakeMapping = { protocol, internalAddress, internalPort, externalPort, lifetimeS: Math.min(lifetimeS, this.options.maxLifetimeS), nonce: nonce && Uint8Array.from(nonce) };
    this.mappings.set(key, m);
    return m;
  }
}

/** The fake gateway on a real UDP socket. */
export interface RunningFakeGateway extends AsyncDisposable {
  readonly core: FakePortmapGateway;
  readonly endpoint: Endpoint;
  readonly socket: PacketSocket;
  close(): Promise<void>;
}

/** Starts the fake gateway on `address` (a system-chosen port). */
export async function startFakeGateway(options: FakeGatewayOptions & { readonly address?: string } = {}): Promise<RunningFakeGateway> {
  const env = nodeEnv();
  const socket = await env.network.bindUdp({ address: options.address ?? '127.0.0.1', port: 0 });
  const core = new FakePortmapGateway(options, env.clock.now());
  socket.onPacket((data, from) => {
    const reply = core.handle(data, from, env.clock.now());
    if (reply !== undefined) socket.send(reply, from);
  });
  const close = (): Promise<void> => socket.close();
  return { core, endpoint: socket.local, socket, close, [Symbol.asyncDispose]: close };
}
