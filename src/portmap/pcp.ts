// PCP message codec, both directions (RFC 6887): the common request header (§7.1) and
// response header (§7.2, Figures 2 and 3), the MAP opcode (§11.1, Figures 9 and 10),
// ANNOUNCE (§14.1, no opcode data), options (§7.3, pcp-options.ts), the size rules of §7
// and §8.3, and version negotiation (§9) including a NAT-PMP gateway's answer.
// Decoders throw PcpDecodeError only.
import { ByteReader, ByteWriter } from '../wire/index.ts';
import { NatkitError } from '../util/index.ts';
import {
  PCP_HEADER_LENGTH, PCP_MAX_LENGTH, PCP_NONCE_LENGTH, PCP_VERSION, PcpDecodeError, PcpOpcode, PcpResultCode,
  decodePcpAddress, encodePcpAddress, pcpDecoding,
} from './pcp-constants.ts';
import { checkRequestOptions, decodePcpOptions, encodePcpOptions, type PcpOption } from './pcp-options.ts';

/** Length of MAP opcode data (§11.1). */
export const PCP_MAP_LENGTH = 36;
/** IANA protocol numbers for MAP (§11.1; 0 means every protocol). */
export const PCP_PROTOCOL = { tcp: 6, udp: 17 } as const;
/** The bit a response sets in the opcode byte (§7.2). */
const RESPONSE_BIT = 0x80;

/** MAP opcode data (§11.1): the same layout in requests (suggested) and responses (assigned). */
export interface PcpMapData {
  /** 12 random bytes naming the mapping; refresh and delete repeat it (§11.1, §15). */
  readonly nonce: Uint8Array;
  /** IANA protocol number; 0 = all protocols. */
  readonly protocol: number;
  /** 0 = all ports (only with protocol 0). */
  readonly internalPort: number;
  /** Suggested (request) or assigned (response) external port; 0 = no preference. */
  readonly externalPort: number;
  /** Suggested or assigned external address; '0.0.0.0' or '::' = no preference (§11.1). */
  readonly externalAddress: string;
}

interface RequestBase {
  /** @default 2 */
  readonly version?: number;
  /** Requested lifetime in seconds; 0 deletes (§15). */
  readonly lifetimeS: number;
  /** The source address of the request's IP header (§7.1), IPv4 or IPv6. */
  readonly clientAddress: string;
  readonly options: readonly PcpOption[];
}

/** A PCP request. */
export type PcpRequest =
  | (RequestBase & { readonly opcode: typeof PcpOpcode.ANNOUNCE })
  | (RequestBase & { readonly opcode: typeof PcpOpcode.MAP; readonly map: PcpMapData });

/** A PCP response (or, when `version` is not 2, a server's UNSUPP_VERSION in its own version, §9). */
export interface PcpResponse {
  readonly version: number;
  readonly opcode: number;
  readonly resultCode: number;
  /** Granted lifetime on success; on error how long the error holds (§7.2). */
  readonly lifetimeS: number;
  /** The server's Epoch Time (§8.5). */
  readonly epochS: number;
  /** MAP opcode data, when present. */
  readonly map?: PcpMapData;
  readonly options: readonly PcpOption[];
}

function checkField(name: string, value: number, max: number): number {
  if (!Number.isInteger(value) || value < 0 || value > max) throw new NatkitError('ERR_INVALID_ARGUMENT', `PCP ${name}: expected 0–${max}, got ${value}`);
  return value;
}

function writeMap(w: ByteWriter, m: PcpMapData): void {
  if (m.nonce.length !== PCP_NONCE_LENGTH) throw new NatkitError('ERR_INVALID_ARGUMENT', `PCP nonce: expected ${PCP_NONCE_LENGTH} bytes, got ${m.nonce.length}`);
  // §11.1 Figure 9: nonce, protocol, 24 reserved bits, internal port, external port, external address.
  w.bytes(m.nonce).u8(checkField('protocol', m.protocol, 0xff)).zeros(3)
    .u16(checkField('internal port', m.internalPort, 0xffff)).u16(checkField('external port', m.externalPort, 0xffff))
    .bytes(encodePcpAddress(m.externalAddress));
}

function readMap(r: ByteReader): PcpMapData {
  const nonce = r.bytesView(PCP_NONCE_LENGTH, 'MAP nonce');
  const protocol = r.u8('MAP protocol');
  r.skip(3, 'MAP reserved');
  const internalPort = r.u16('MAP internal port');
  const externalPort = r.u16('MAP external port');
  return { nonce, protocol, internalPort, externalPort, externalAddress: decodePcpAddress(r.bytesView(16, 'MAP external address')) };
}

function finish(w: ByteWriter): Uint8Array {
  if (w.length > PCP_MAX_LENGTH) throw new NatkitError('ERR_INVALID_ARGUMENT', `PCP message: expected at most ${PCP_MAX_LENGTH} bytes, got ${w.length}`);
  return w.finish();
}

/** Encodes a request (§7.1 Figure 2). */
export function encodePcpRequest(req: PcpRequest): Uint8Array {
  const w = new ByteWriter(PCP_HEADER_LENGTH + PCP_MAP_LENGTH + 64);
  w.u8(checkField('version', req.version ?? PCP_VERSION, 0xff)).u8(req.opcode).u16(0)
    .u32(checkField('lifetime', req.lifetimeS, 0xffffffff)).bytes(encodePcpAddress(req.clientAddress));
  if (req.opcode === PcpOpcode.MAP) writeMap(w, req.map);
  encodePcpOptions(req.options, w);
  return finish(w);
}

/**
 * Decodes a request (the server's side, §8.2). A PcpDecodeError's `resultCode` says how
 * to answer: UNSUPP_VERSION, MALFORMED_REQUEST, UNSUPP_OPCODE, MALFORMED_OPTION or
 * UNSUPP_OPTION; absent for datagrams a server drops (responses, fewer than 4 bytes).
 */
export function decodePcpRequest(bytes: Uint8Array): PcpRequest {
  return pcpDecoding(() => readRequest(bytes), PcpResultCode.MALFORMED_REQUEST);
}

function readRequest(bytes: Uint8Array): PcpRequest {
  const r = new ByteReader(bytes);
  const fail = (m: string, code?: number): never => {
    throw new PcpDecodeError(m, r.offset, code);
  };
  if (bytes.length < 4) fail(`expected a request of at least ${PCP_HEADER_LENGTH} bytes, got ${bytes.length}`);
  const version = r.u8();
  const op = r.u8();
  if (op & RESPONSE_BIT) fail(`expected a request, got a response (opcode byte 0x${op.toString(16)})`);
  if (version !== PCP_VERSION) fail(`expected version ${PCP_VERSION}, got ${version}`, PcpResultCode.UNSUPP_VERSION);
  // §7: every message is a multiple of 4 bytes and at most 1100.
  if (bytes.length < PCP_HEADER_LENGTH || bytes.length > PCP_MAX_LENGTH || bytes.length % 4 !== 0) {
    fail(`expected ${PCP_HEADER_LENGTH}–${PCP_MAX_LENGTH} bytes in a multiple of 4, got ${bytes.length}`, PcpResultCode.MALFORMED_REQUEST);
  }
  if (op !== PcpOpcode.ANNOUNCE && op !== PcpOpcode.MAP) fail(`unsupported opcode ${op}`, PcpResultCode.UNSUPP_OPCODE);
  r.skip(2);
  const lifetimeS = r.u32();
  const clientAddress = decodePcpAddress(r.bytesView(16));
  let map: PcpMapData | undefined;
  if (op === PcpOpcode.MAP) {
    if (r.remaining < PCP_MAP_LENGTH) fail(`MAP: expected ${PCP_MAP_LENGTH} bytes of opcode data, got ${r.remaining}`, PcpResultCode.MALFORMED_REQUEST);
    map = readMap(r);
    // §11.1: protocol 0 (all protocols) takes internal port 0 only.
    if (map.protocol === 0 && map.internalPort !== 0) fail(`MAP: protocol 0 with internal port ${map.internalPort}`, PcpResultCode.MALFORMED_REQUEST);
  }
  const options = decodePcpOptions(r);
  const verdict = checkRequestOptions(op, options);
  if (verdict !== undefined) fail(`options not acceptable for opcode ${op}`, verdict);
  return map === undefined ? { version, opcode: PcpOpcode.ANNOUNCE, lifetimeS, clientAddress, options } : { version, opcode: PcpOpcode.MAP, lifetimeS, clientAddress, map, options };
}

/** Encodes a response (§7.2 Figure 3); `map` is written for MAP. */
export function encodePcpResponse(res: PcpResponse): Uint8Array {
  const w = new ByteWriter(PCP_HEADER_LENGTH + PCP_MAP_LENGTH + 64);
  w.u8(checkField('version', res.version, 0xff)).u8(RESPONSE_BIT | checkField('opcode', res.opcode, 0x7f)).u8(0)
    .u8(checkField('result code', res.resultCode, 0xff)).u32(checkField('lifetime', res.lifetimeS, 0xffffffff))
    .u32(checkField('epoch', res.epochS, 0xffffffff)).zeros(12);
  if (res.map !== undefined) writeMap(w, res.map);
  encodePcpOptions(res.options, w);
  return finish(w);
}

/**
 * Decodes a response (the client's side, §8.3). Besides PCP version 2 it accepts an
 * UNSUPP_VERSION answer in another version (§9), including a NAT-PMP gateway's 8-byte
 * "unsupported version" (RFC 6886 §3.5), whose version 0, opcode 128 + op and result 1 sit
 * where PCP keeps version, R|opcode and result code.
 */
export function decodePcpResponse(bytes: Uint8Array): PcpResponse {
  return pcpDecoding(() => readResponse(bytes));
}

function readResponse(bytes: Uint8Array): PcpResponse {
  const r = new ByteReader(bytes);
  const fail = (m: string): never => {
    throw new PcpDecodeError(m, r.offset);
  };
  if (bytes.length < 8) fail(`expected a response of at least ${PCP_HEADER_LENGTH} bytes, got ${bytes.length}`);
  const version = r.u8();
  const op = r.u8();
  if ((op & RESPONSE_BIT) === 0) fail(`expected a response (R bit set), got opcode byte 0x${op.toString(16)}`);
  const opcode = op & 0x7f;
  if (version !== PCP_VERSION) {
    const high = r.u8();
    const resultCode = r.u8();
    if (resultCode !== PcpResultCode.UNSUPP_VERSION || high !== 0) fail(`expected version ${PCP_VERSION} or an UNSUPP_VERSION answer, got version ${version} with result ${(high << 8) | resultCode}`);
    // NAT-PMP keeps its epoch right after the result code; PCP after the lifetime.
    const epochS = version === 0 ? r.u32('epoch') : bytes.length >= 12 ? (r.skip(4), r.u32('epoch')) : 0;
    return { version, opcode, resultCode, lifetimeS: 0, epochS, options: [] };
  }
  // §8.3: a response shorter than 24 bytes, longer than 1100 or not a multiple of 4 is discarded.
  if (bytes.length < PCP_HEADER_LENGTH || bytes.length > PCP_MAX_LENGTH || bytes.length % 4 !== 0) {
    fail(`expected ${PCP_HEADER_LENGTH}–${PCP_MAX_LENGTH} bytes in a multiple of 4, got ${bytes.length}`);
  }
  r.skip(1);
  const resultCode = r.u8();
  const lifetimeS = r.u32();
  const epochS = r.u32();
  r.skip(12);
  const base = { version, opcode, resultCode, lifetimeS, epochS };
  if (opcode === PcpOpcode.ANNOUNCE) return { ...base, options: decodePcpOptions(r) };
  if (opcode === PcpOpcode.MAP) {
    // An error response may come without the opcode data (a server that could not parse the request).
    if (r.remaining < PCP_MAP_LENGTH && resultCode !== PcpResultCode.SUCCESS) return { ...base, options: [] };
    const map = readMap(r);
    return { ...base, map, options: decodePcpOptions(r) };
  }
  // PEER and unknown opcodes: this client never asks, so their data is not decoded.
  return { ...base, options: [] };
}
