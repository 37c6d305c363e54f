// Building the server's replies: RFC 8489 §6.3.1.1 (success and error responses),
// RFC 5780 §6.1 (MAPPED-ADDRESS next to XOR-MAPPED-ADDRESS, RESPONSE-ORIGIN,
// OTHER-ADDRESS, PADDING), RFC 5389 §12.2 and RFC 3489 §8.2/§11.2 (classic responses),
// and the seed's plain `ip,port\n` text.
import type { Endpoint } from '../../net/index.ts';
import { BINDING, HEADER_LENGTH, REASON_PHRASES, StunClass } from '../constants.ts';
import { attr, encodeMessage, type AttrEntry, type StunMessage } from '../message.ts';
import {
  CHANGED_ADDRESS, MAPPED_ADDRESS, OTHER_ADDRESS, RESPONSE_ORIGIN, SOURCE_ADDRESS, XOR_MAPPED_ADDRESS,
} from '../attributes/address.ts';
import { ERROR_CODE, UNKNOWN_ATTRIBUTES } from '../attributes/error.ts';
import { PADDING } from '../attributes/rfc5780.ts';
import { SOFTWARE } from '../attributes/text.ts';

/** Most types listed in UNKNOWN-ATTRIBUTES: enough for a client, and keeps a 420 small. */
export const MAX_UNKNOWN_LISTED = 32;
/** Longest reason phrase the server writes, in bytes (ours are ASCII). */
export const MAX_REASON_BYTES = 64;

const ADDRESS_ATTR_MAX = 4 + 20; // TLV header + IPv6 address value (RFC 8489 §14.1)
const FINGERPRINT_SIZE = 8;
const PADDING_HEADER = 4;
const utf8 = new TextEncoder();

/** Bytes of the SOFTWARE attribute (TLV, padded), 0 when none. */
export function softwareSize(software: string | undefined): number {
  if (software === undefined) return 0;
  const n = utf8.encode(software).length;
  return 4 + ((n + 3) & ~3);
}

/**
 * The size every reply may have whatever the request's size: an unpadded success with
 * every RFC 5780 attribute in IPv6 form, SOFTWARE and FINGERPRINT (see replyBound).
 */
export function replyFloor(software: string | undefined): number {
  return HEADER_LENGTH + 4 * ADDRESS_ATTR_MAX + softwareSize(software) + FINGERPRINT_SIZE + PADDING_HEADER;
}

/**
 * Largest reply the server may produce for a request of `requestBytes` bytes: never more
 * than the request, except up to replyFloor (the floor every STUN server has). PADDING in
 * the reply is cut to the request's size, not the MTU RFC 5780 §6.1 suggests (see modernSuccess).
 */
export function replyBound(requestBytes: number, software: string | undefined): number {
  return Math.max(requestBytes, replyFloor(software));
}

/** What a Binding success response carries. */
export interface SuccessReply {
  readonly request: StunMessage;
  readonly mapped: Endpoint;
  /** RFC 5780 §6.1: MAPPED-ADDRESS too (ALG detection, §3.6). */
  readonly withMappedAddress: boolean;
  /** RFC 5780 §7.3 RESPONSE-ORIGIN: the socket the reply leaves from. */
  readonly responseOrigin: Endpoint | undefined;
  /** RFC 5780 §7.4 OTHER-ADDRESS: the alternate address and port. */
  readonly otherAddress: Endpoint | undefined;
  readonly software: string | undefined;
  /** The request carried PADDING (RFC 5780 §6.1: the response MUST then carry it too). */
  readonly padding: boolean;
  readonly fingerprint: boolean;
}

/** A Binding success response to an RFC 5389/8489 client. */
export function modernSuccess(r: SuccessReply): Uint8Array {
  const attributes: AttrEntry[] = [attr(XOR_MAPPED_ADDRESS, r.mapped)];
  if (r.withMappedAddress) attributes.push(attr(MAPPED_ADDRESS, r.mapped));
  if (r.responseOrigin !== undefined) attributes.push(attr(RESPONSE_ORIGIN, r.responseOrigin));
  if (r.otherAddress !== undefined) attributes.push(attr(OTHER_ADDRESS, r.otherAddress));
  if (r.software !== undefined) attributes.push(attr(SOFTWARE, r.software));
  const head = { method: BINDING, cls: StunClass.SUCCESS, transactionId: r.request.transactionId };
  const options = { fingerprint: r.fingerprint };
  const plain = encodeMessage({ ...head, attributes }, options);
  if (!r.padding) return plain;
  // RFC 5780 §6.1 says the server SHOULD pad to the MTU of the outgoing interface. A
  // 20-byte request would then buy a 1500-byte reply — an amplifier for spoofed sources
  // (RFC 5780 §10: "servers should not allocate more memory than the size of the received
  // datagram"). We pad only up to the request's own size: a client that pads its request
  // to the MTU, as RFC 5780 §5 asks, still gets an MTU-sized (fragmenting) reply.
  const room = r.request.raw.length - plain.length - PADDING_HEADER;
  const bytes = Math.max(0, room - (room % 4));
  return encodeMessage({ ...head, attributes: [...attributes, attr(PADDING, bytes)] }, options);
}

/** What a Binding success response to an RFC 3489 client carries (RFC 3489 §8.2). */
export interface LegacySuccessReply {
  readonly request: StunMessage;
  readonly mapped: Endpoint;
  /** SOURCE-ADDRESS: the socket the reply leaves from. */
  readonly sourceAddress: Endpoint | undefined;
  /** CHANGED-ADDRESS: the alternate address and port. */
  readonly changedAddress: Endpoint | undefined;
}

/**
 * A Binding success response to an RFC 3489 client. RFC 5389 §12.2: echo the 16-byte
 * transaction ID (cookie field included) and use MAPPED-ADDRESS, not XOR-MAPPED-ADDRESS.
 * No SOFTWARE or FINGERPRINT: RFC 3489 parsers know no attribute padding (§11.2), and
 * FINGERPRINT is not backwards compatible (RFC 5389 §8).
 */
export function legacySuccess(r: LegacySuccessReply): Uint8Array {
  const attributes: AttrEntry[] = [attr(MAPPED_ADDRESS, r.mapped)];
  if (r.sourceAddress !== undefined) attributes.push(attr(SOURCE_ADDRESS, r.sourceAddress));
  if (r.changedAddress !== undefined) attributes.push(attr(CHANGED_ADDRESS, r.changedAddress));
  return encodeMessage({ method: BINDING, cls: StunClass.SUCCESS, transactionId: r.request.transactionId, attributes });
}

/** What an error response carries. */
export interface ErrorReply {
  /** 12 bytes, or 16 for an RFC 3489 client. */
  readonly transactionId: Uint8Array;
  readonly code: 400 | 420;
  /** Reason phrase; @default the RFC 8489 §14.8 phrase. Cut to MAX_REASON_BYTES. */
  readonly reason?: string;
  /** For 420: the unknown comprehension-required types (RFC 8489 §14.13). */
  readonly unknown?: readonly number[];
  readonly software: string | undefined;
  readonly fingerprint: boolean;
}

/** A Binding error response (RFC 8489 §6.3.1.1); RFC 3489 layout when the ID has 16 bytes. */
export function errorResponse(r: ErrorReply): Uint8Array {
  const legacy = r.transactionId.length === 16;
  let reason = asciiCut(r.reason ?? REASON_PHRASES[r.code] ?? 'Error', MAX_REASON_BYTES);
  // RFC 3489 §11.2.9: the reason phrase fills whole 4-byte words (no attribute padding).
  if (legacy) reason = reason.padEnd(Math.ceil(reason.length / 4) * 4, ' ');
  const attributes: AttrEntry[] = [attr(ERROR_CODE, { code: r.code, reason })];
  if (r.unknown !== undefined) {
    const list = r.unknown.slice(0, MAX_UNKNOWN_LISTED);
    // RFC 3489 §11.2.10: an odd count repeats one type so the value fills whole words.
    if (legacy && list.length % 2 === 1) list.push(list[list.length - 1]!);
    attributes.push(attr(UNKNOWN_ATTRIBUTES, list));
  }
  if (!legacy && r.software !== undefined) attributes.push(attr(SOFTWARE, r.software));
  return encodeMessage(
    { method: BINDING, cls: StunClass.ERROR, transactionId: r.transactionId, attributes },
    { fingerprint: !legacy && r.fingerprint },
  );
}

/** The seed's plain reply: the sender's `ip,port\n`. */
export function plainReply(from: Endpoint): Uint8Array {
  return utf8.encode(`${from.address},${from.port}\n`);
}

/** Printable ASCII of `text`, at most `max` characters. */
function asciiCut(text: string, max: number): string {
  return text.replace(/[^\x20-\x7e]/g, '?').slice(0, max);
}
