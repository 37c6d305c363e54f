// PCP constants shared by the message and option codecs (RFC 6887): version (§9),
// opcodes (§19.2), result codes (§7.4), option codes (§19.4), the decode error, and
// addresses as PCP carries them (§5).
import { DecodeError, formatIPv4, formatIPv6, ipFamily, parseIPv4, parseIPv6 } from '../util/index.ts';

/** The PCP version this code speaks (RFC 6887 §9). */
export const PCP_VERSION = 2;
/** Length of the common request and response headers (§7.1, §7.2). */
export const PCP_HEADER_LENGTH = 24;
/** Largest PCP message (§7). */
export const PCP_MAX_LENGTH = 1100;
/** Length of a MAP nonce (§11.1). */
export const PCP_NONCE_LENGTH = 12;

/** Opcodes (§19.2). PEER is not implemented. */
export const PcpOpcode = {
  ANNOUNCE: 0,
  MAP: 1,
  PEER: 2,
} as const;

/** Option codes (RFC 6887 §19.4). */
export const PcpOptionCode = {
  THIRD_PARTY: 1,
  PREFER_FAILURE: 2,
  FILTER: 3,
} as const;

/** Result codes (RFC 6887 §7.4). */
export const PcpResultCode = {
  SUCCESS: 0,
  UNSUPP_VERSION: 1,
  NOT_AUTHORIZED: 2,
  MALFORMED_REQUEST: 3,
  UNSUPP_OPCODE: 4,
  UNSUPP_OPTION: 5,
  MALFORMED_OPTION: 6,
  NETWORK_FAILURE: 7,
  NO_RESOURCES: 8,
  UNSUPP_PROTOCOL: 9,
  USER_EX_QUOTA: 10,
  CANNOT_PROVIDE_EXTERNAL: 11,
  ADDRESS_MISMATCH: 12,
  EXCESSIVE_REMOTE_PEERS: 13,
} as const;
/** The name of a PCP result code; codes RFC 6887 does not define are 'UNKNOWN'. */
export type PcpResult = keyof typeof PcpResultCode | 'UNKNOWN';

/** A PCP datagram that does not decode; `resultCode` is what a server answers to such a request. */
export class PcpDecodeError extends DecodeError {
  /** For requests: the result code of the error response (§7.4); absent: drop silently. */
  readonly resultCode: number | undefined;

  constructor(message: string, offset: number, resultCode?: number) {
    super(`PCP: ${message}`, offset, { code: 'ERR_PCP_DECODE' });
    this.name = 'PcpDecodeError';
    this.resultCode = resultCode;
  }
}

/** Runs a decoder, turning ByteReader's bare DecodeError (truncation) into a PcpDecodeError with `resultCode`. */
export function pcpDecoding<T>(decode: () => T, resultCode?: number): T {
  try {
    return decode();
  } catch (err) {
    if (err instanceof PcpDecodeError || !(err instanceof DecodeError)) throw err;
    throw new PcpDecodeError(err.message, err.offset, resultCode);
  }
}

/** An address as PCP carries it (§5): IPv6, or IPv4 as IPv4-mapped IPv6 (`0.0.0.0` → ::ffff:0.0.0.0). */
export function encodePcpAddress(address: string): Uint8Array {
  if (ipFamily(address) === 4) {
    const out = new Uint8Array(16);
    out[10] = 0xff;
    out[11] = 0xff;
    out.set(parseIPv4(address), 12);
    return out;
  }
  return parseIPv6(address);
}

/** 16 bytes (§5) as text: IPv4-mapped becomes dotted quad, other IPv6 RFC 5952 text. */
export function decodePcpAddress(bytes: Uint8Array): string {
  let mapped = bytes[10] === 0xff && bytes[11] === 0xff;
  for (let i = 0; i < 10 && mapped; i++) mapped = bytes[i] === 0;
  return mapped ? formatIPv4(bytes.subarray(12, 16)) : formatIPv6(bytes);
}

const RESULT_NAMES = new Map<number, PcpResult>(Object.entries(PcpResultCode).map(([k, v]) => [v, k as PcpResult]));

/** The name of a result code. */
export function pcpResult(code: number): PcpResult {
  return RESULT_NAMES.get(code) ?? 'UNKNOWN';
}
