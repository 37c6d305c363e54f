// NAT-PMP codec, both directions (RFC 6886): §3.2 external address request and response,
// §3.3 MAP UDP/TCP request and response, §3.4 deletion (lifetime 0), §3.5 result codes and
// the short error form, §3.2.1 announcements (an external address response sent to
// 224.0.0.1:5350, decoded like any response). Decoders throw NatPmpDecodeError only.
import { ByteReader, ByteWriter } from '../wire/index.ts';
import { DecodeError, NatkitError, formatIPv4, parseIPv4 } from '../util/index.ts';

/** The only NAT-PMP version (RFC 6886 §3). */
export const NATPMP_VERSION = 0;
/** Where gateways multicast address-change announcements (RFC 6886 §3.2.1). */
export const NATPMP_ANNOUNCE_GROUP = '224.0.0.1';
/** The port clients listen on for announcements (RFC 6886 §3.2.1). */
export const NATPMP_CLIENT_PORT = 5350;
/** Lifetime RFC 6886 §3.3 recommends for a mapping: two hours. */
export const NATPMP_DEFAULT_LIFETIME_S = 7200;

/** Request opcodes (RFC 6886 §3.2, §3.3); a response carries 128 + the request's. */
export const NatPmpOpcode = {
  EXTERNAL_ADDRESS: 0,
  MAP_UDP: 1,
  MAP_TCP: 2,
} as const;
/** The bit a response sets in the opcode (RFC 6886 §3.2). */
export const NATPMP_RESPONSE_BIT = 0x80;

/** Result codes (RFC 6886 §3.5). */
export const NatPmpResultCode = {
  SUCCESS: 0,
  UNSUPPORTED_VERSION: 1,
  /** Not Authorized/Refused: the box supports mapping but the user turned it off. */
  NOT_AUTHORIZED: 2,
  /** Network Failure: e.g. the NAT has not obtained a DHCP lease yet. */
  NETWORK_FAILURE: 3,
  /** Out of resources: the NAT cannot create more mappings now. */
  OUT_OF_RESOURCES: 4,
  UNSUPPORTED_OPCODE: 5,
} as const;
/** The name of a NAT-PMP result code; codes RFC 6886 does not define are 'UNKNOWN'. */
export type NatPmpResult = keyof typeof NatPmpResultCode | 'UNKNOWN';

const RESULT_NAMES = new Map<number, NatPmpResult>(Object.entries(NatPmpResultCode).map(([k, v]) => [v, k as NatPmpResult]));

/** The name of a result code. */
export function natPmpResult(code: number): NatPmpResult {
  return RESULT_NAMES.get(code) ?? 'UNKNOWN';
}

/** Transport protocol of a mapping. */
export type MapProtocol = 'udp' | 'tcp';

/** A NAT-PMP request. */
export type NatPmpRequest =
  | { readonly op: 'external-address' }
  | {
      readonly op: 'map';
      readonly protocol: MapProtocol;
      /** 0 with lifetime 0: delete every mapping of this client for the protocol (§3.4). */
      readonly internalPort: number;
      /** 0: no preference; MUST be 0 in a deletion (§3.4). */
      readonly suggestedExternalPort: number;
      /** 0 deletes the mapping (§3.4). */
      readonly lifetimeS: number;
    };

/** A NAT-PMP response. `epochS` is the gateway's Seconds Since Start of Epoch (§3.6). */
export type NatPmpResponse =
  | {
      readonly op: 'external-address';
      readonly resultCode: number;
      readonly epochS: number;
      /** Meaningful only on SUCCESS; zero otherwise (§3.2). */
      readonly externalAddress: string;
    }
  | {
      readonly op: 'map';
      readonly protocol: MapProtocol;
      readonly resultCode: number;
      readonly epochS: number;
      readonly internalPort: number;
      /** 0 after a deletion (§3.4). */
      readonly externalPort: number;
      readonly lifetimeS: number;
    }
  | {
      /** The 8-byte form of RFC 6886 §3.5 (unsupported version or opcode): header and epoch only. */
      readonly op: 'error';
      /** The request's opcode (0–127). */
      readonly opcode: number;
      readonly resultCode: number;
      readonly epochS: number;
    };

/** A NAT-PMP datagram that does not decode; `resultCode` is what a server answers to such a request. */
export class NatPmpDecodeError extends DecodeError {
  /** For requests: UNSUPPORTED_VERSION or UNSUPPORTED_OPCODE when a server should answer; absent: drop it. */
  readonly resultCode: number | undefined;

  constructor(message: string, offset: number, resultCode?: number) {
    super(`NAT-PMP: ${message}`, offset, { code: 'ERR_NATPMP_DECODE' });
    this.name = 'NatPmpDecodeError';
    this.resultCode = resultCode;
  }
}

/** Runs a decoder, turning ByteReader's bare DecodeError (truncation) into a NatPmpDecodeError. */
function natPmpDecoding<T>(decode: () => T): T {
  try {
    return decode();
  } catch (err) {
    if (err instanceof NatPmpDecodeError || !(err instanceof DecodeError)) throw err;
    throw new NatPmpDecodeError(err.message, err.offset);
  }
}

const opcodeOf = (protocol: MapProtocol): number => (protocol === 'udp' ? NatPmpOpcode.MAP_UDP : NatPmpOpcode.MAP_TCP);

function checkField(name: string, value: number, max: number): number {
  if (!Number.isInteger(value) || value < 0 || value > max) throw new NatkitError('ERR_INVALID_ARGUMENT', `NAT-PMP ${name}: expected 0–${max}, got ${value}`);
  return value;
}

/** Encodes a request: 2 bytes (§3.2) or 12 bytes (§3.3). */
export function encodeNatPmpRequest(req: NatPmpRequest): Uint8Array {
  const w = new ByteWriter(12);
  if (req.op === 'external-address') return w.u8(NATPMP_VERSION).u8(NatPmpOpcode.EXTERNAL_ADDRESS).finish();
  // §3.3: version, opcode, 16 reserved bits (zero), internal port, suggested external port, lifetime.
  return w.u8(NATPMP_VERSION).u8(opcodeOf(req.protocol)).u16(0)
    .u16(checkField('internal port', req.internalPort, 0xffff))
    .u16(checkField('suggested external port', req.suggestedExternalPort, 0xffff))
    .u32(checkField('lifetime', req.lifetimeS, 0xffffffff))
    .finish();
}

/** Decodes a request (the gateway's side). */
export function decodeNatPmpRequest(bytes: Uint8Array): NatPmpRequest {
  return natPmpDecoding(() => readRequest(bytes));
}

function readRequest(bytes: Uint8Array): NatPmpRequest {
  const r = new ByteReader(bytes);
  const fail = (m: string, code?: number): never => {
    throw new NatPmpDecodeError(m, r.offset, code);
  };
  if (bytes.length < 2) fail(`expected at least 2 bytes, got ${bytes.length}`);
  const version = r.u8();
  const opcode = r.u8();
  // §3.5: a response (opcode ≥ 128) is silently ignored; a wrong version or opcode is answered.
  if (opcode & NATPMP_RESPONSE_BIT) fail(`expected a request, got response opcode ${opcode}`);
  if (version !== NATPMP_VERSION) fail(`expected version 0, got ${version}`, NatPmpResultCode.UNSUPPORTED_VERSION);
  if (opcode === NatPmpOpcode.EXTERNAL_ADDRESS) return { op: 'external-address' };
  if (opcode !== NatPmpOpcode.MAP_UDP && opcode !== NatPmpOpcode.MAP_TCP) fail(`unsupported opcode ${opcode}`, NatPmpResultCode.UNSUPPORTED_OPCODE);
  const where = 'MAP request';
  r.skip(2, `${where} reserved`);
  const internalPort = r.u16(`${where} internal port`);
  const suggestedExternalPort = r.u16(`${where} suggested external port`);
  const lifetimeS = r.u32(`${where} lifetime`);
  return { op: 'map', protocol: opcode === NatPmpOpcode.MAP_UDP ? 'udp' : 'tcp', internalPort, suggestedExternalPort, lifetimeS };
}

/** Encodes a response: 12 bytes (§3.2), 16 bytes (§3.3) or the 8-byte error form (§3.5). */
export function encodeNatPmpResponse(res: NatPmpResponse): Uint8Array {
  const w = new ByteWriter(16);
  const opcode = res.op === 'external-address' ? NatPmpOpcode.EXTERNAL_ADDRESS : res.op === 'map' ? opcodeOf(res.protocol) : res.opcode;
  w.u8(NATPMP_VERSION).u8(NATPMP_RESPONSE_BIT | checkField('opcode', opcode, 0x7f)).u16(checkField('result code', res.resultCode, 0xffff)).u32(checkField('epoch', res.epochS, 0xffffffff));
  if (res.op === 'external-address') w.bytes(parseIPv4(res.externalAddress));
  else if (res.op === 'map') w.u16(checkField('internal port', res.internalPort, 0xffff)).u16(checkField('external port', res.externalPort, 0xffff)).u32(checkField('lifetime', res.lifetimeS, 0xffffffff));
  return w.finish();
}

/**
 * Decodes a response or an announcement (§3.2.1). Bytes past the fields of the opcode
 * are ignored; a non-SUCCESS response of 8 bytes is the §3.5 error form.
 */
export function decodeNatPmpResponse(bytes: Uint8Array): NatPmpResponse {
  return natPmpDecoding(() => readResponse(bytes));
}

function readResponse(bytes: Uint8Array): NatPmpResponse {
  const r = new ByteReader(bytes);
  const fail = (m: string): never => {
    throw new NatPmpDecodeError(m, r.offset);
  };
  if (bytes.length < 8) fail(`expected a response of at least 8 bytes, got ${bytes.length}`);
  const version = r.u8();
  if (version !== NATPMP_VERSION) fail(`expected version 0, got ${version}`);
  const op = r.u8();
  if ((op & NATPMP_RESPONSE_BIT) === 0) fail(`expected a response opcode (≥ 128), got ${op}`);
  const opcode = op & 0x7f;
  const resultCode = r.u16();
  const epochS = r.u32();
  const known = opcode === NatPmpOpcode.EXTERNAL_ADDRESS || opcode === NatPmpOpcode.MAP_UDP || opcode === NatPmpOpcode.MAP_TCP;
  if (!known || (bytes.length === 8 && resultCode !== NatPmpResultCode.SUCCESS)) {
    if (resultCode === NatPmpResultCode.SUCCESS) fail(`expected an error result for unknown opcode ${opcode}, got SUCCESS`);
    return { op: 'error', opcode, resultCode, epochS };
  }
  if (opcode === NatPmpOpcode.EXTERNAL_ADDRESS) {
    return { op: 'external-address', resultCode, epochS, externalAddress: formatIPv4(r.bytesView(4, 'external address')) };
  }
  const internalPort = r.u16('MAP response internal port');
  const externalPort = r.u16('MAP response external port');
  const lifetimeS = r.u32('MAP response lifetime');
  return { op: 'map', protocol: opcode === NatPmpOpcode.MAP_UDP ? 'udp' : 'tcp', resultCode, epochS, internalPort, externalPort, lifetimeS };
}
