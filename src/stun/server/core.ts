// The STUN server's sans-I/O core: RFC 8489 §6.3 (receiving a message, §6.3.1 requests,
// §6.3.1.1 responses), RFC 5780 §6–§7 (NAT behaviour discovery: CHANGE-REQUEST,
// RESPONSE-PORT, PADDING, RESPONSE-ORIGIN, OTHER-ADDRESS), RFC 5389 §12.2 and RFC 3489
// §8.2 (classic clients), and the seed's plain `ip,port\n` reply. Bytes, the role of the
// socket they came in on, the sender and the time go in; at most one reply (bytes, the
// role to send it from, the destination) or a drop reason comes out. No sockets, no clock.
import type { Endpoint } from '../../net/index.ts';
import { RateLimiter, parseIPv6, type IpFamily, type RateLimiterOptions } from '../../util/index.ts';
import { ByteWriter } from '../../wire/index.ts';
import { StunDecodeError } from '../attribute.ts';
import { BINDING, HEADER_LENGTH, MAGIC_COOKIE, StunClass } from '../constants.ts';
import { checkFingerprint, decodeMessage, looksLikeStun, type StunMessage } from '../message.ts';
import { RESPONSE_ADDRESS } from '../attributes/address.ts';
import { CHANGE_REQUEST, PADDING, RESPONSE_PORT, type ChangeRequest } from '../attributes/rfc5780.ts';
import { SOFTWARE } from '../attributes/text.ts';
import { errorResponse, legacySuccess, modernSuccess, plainReply, replyFloor } from './replies.ts';
import { changedRole, hasAlternate, isUnspecified, roleEndpoint, validateLayout, type ServerLayout, type ServerRole, type ServerTransport } from './roles.ts';
import { createCoreStats, type DropReason, type StunServerCoreStats } from './stats.ts';
import { BindingTemplate, isBareBindingRequest } from './template.ts';

/**
 * Comprehension-required types an RFC 5389/8489 Binding request may carry (RFC 8489 §18.3,
 * RFC 5780 §7). The authentication ones are known and ignored, not refused: a basic
 * server does not authenticate (RFC 5389 §13), and RFC 8489 §6.3 says known-but-unexpected
 * attributes SHOULD be ignored.
 */
const MODERN_KNOWN: ReadonlySet<number> = new Set([
  0x0001, // MAPPED-ADDRESS
  0x0003, // CHANGE-REQUEST
  0x0006, // USERNAME
  0x0008, // MESSAGE-INTEGRITY
  0x0009, // ERROR-CODE
  0x000a, // UNKNOWN-ATTRIBUTES
  0x0014, // REALM
  0x0015, // NONCE
  0x001c, // MESSAGE-INTEGRITY-SHA256
  0x001d, // PASSWORD-ALGORITHM
  0x001e, // USERHASH
  0x0020, // XOR-MAPPED-ADDRESS
  0x0026, // PADDING
  0x0027, // RESPONSE-PORT
]);
// RESPONSE-ADDRESS (0x0002), SOURCE-ADDRESS and CHANGED-ADDRESS are not in the set: RFC 5389
// §12.2 has the server view them as unknown comprehension-required attributes (420).

/** Types an RFC 3489 Binding request may carry (RFC 3489 §11.2). */
const LEGACY_KNOWN: ReadonlySet<number> = new Set([
  0x0001, // MAPPED-ADDRESS
  0x0002, // RESPONSE-ADDRESS: decoded, never acted upon
  0x0003, // CHANGE-REQUEST
  0x0004, // SOURCE-ADDRESS
  0x0005, // CHANGED-ADDRESS
  0x0006, // USERNAME
  0x0007, // PASSWORD
  0x0008, // MESSAGE-INTEGRITY
  0x0009, // ERROR-CODE
  0x000a, // UNKNOWN-ATTRIBUTES
  0x000b, // REFLECTED-FROM
]);

/** Options of the core. */
export interface StunServerCoreOptions {
  /** Where the server listens; role endpoints come from it (validated, see validateLayout). */
  readonly layout: ServerLayout;
  /** SOFTWARE attribute text (RFC 8489 §14.14, < 128 characters); false for none. @default 'natkit' */
  readonly software?: string | false;
  /** Per-source token bucket (IPv4 address or IPv6 /64); false turns it off. @default { ratePerS: 20, burst: 40, maxKeys: 65536 } */
  readonly rateLimit?: RateLimiterOptions | false;
  /** Answer non-STUN datagrams with the sender's `ip,port\n` (the seed's protocol). @default false */
  readonly plain?: boolean;
  /** Answer RFC 3489 clients (RFC 5389 §13: a stand-alone server SHOULD). @default true */
  readonly legacy?: boolean;
}

/** One input: a datagram, or one frame of a stream. */
export interface ServerInput {
  readonly data: Uint8Array;
  /** Role of the socket (or listener) it arrived on. */
  readonly role: ServerRole;
  /** The sender: source of the datagram, remote end of the stream. */
  readonly from: Endpoint;
  readonly transport: ServerTransport;
  /** Monotonic milliseconds (Clock.now()). */
  readonly now: number;
}

/** A reply to send: on a stream, write it to the same stream (`via` and `to` are informative). */
export interface ServerReply {
  readonly data: Uint8Array;
  /** Role of the socket the reply must leave from (RFC 5780 §6.1, table 1). */
  readonly via: ServerRole;
  readonly to: Endpoint;
}

/** How an input ended. */
export type ServerOutcome = 'success' | 'error' | 'plain' | 'dropped';

/** What the core decided for one input. */
export interface ServerResult {
  readonly outcome: ServerOutcome;
  readonly reply?: ServerReply;
  /** With outcome 'error'. */
  readonly errorCode?: 400 | 420;
  /** With outcome 'dropped'. */
  readonly drop?: DropReason;
}

/** What a success adds to the sub-counters of success. */
interface SuccessNotes {
  readonly legacy: boolean;
  readonly changed: boolean;
  readonly padded: boolean;
  readonly responsePort: boolean;
  readonly templated: boolean;
}

/** A result plus what it adds to the sub-counters of success, applied once it is final. */
interface Decision extends ServerResult {
  readonly notes?: SuccessNotes;
}

const TEMPLATED: SuccessNotes = { legacy: false, changed: false, padded: false, responsePort: false, templated: true };

/** The sans-I/O STUN server: `handle()` one input at a time; counters in `stats`. */
export class StunServerCore {
  readonly layout: ServerLayout;
  readonly stats: StunServerCoreStats = createCoreStats();
  readonly plain: boolean;
  readonly software: string | undefined;
  private readonly legacy: boolean;
  private readonly limiter: RateLimiter | undefined;
  /** replyBound's floor for this SOFTWARE, computed once. */
  private readonly replyFloor: number;
  /** Responses to bare Binding requests, by family of the sender (see templated()). */
  private readonly templates: { [F in IpFamily]?: BindingTemplate | undefined } = {};

  constructor(options: StunServerCoreOptions) {
    this.layout = validateLayout(options.layout);
    this.software = options.software === false ? undefined : (options.software ?? 'natkit');
    // Encode once now so a SOFTWARE text over the RFC 8489 §14.14 limits fails at startup.
    if (this.software !== undefined) SOFTWARE.encode(this.software, new ByteWriter(), { transactionId: new Uint8Array(12) });
    this.plain = options.plain ?? false;
    this.legacy = options.legacy ?? true;
    this.limiter = options.rateLimit === false ? undefined : new RateLimiter(options.rateLimit ?? {});
    this.replyFloor = replyFloor(this.software);
  }

  /** Largest reply this core produces for a request of `requestBytes`: replyBound(requestBytes, software). */
  maxReplyBytes(requestBytes: number): number {
    return Math.max(requestBytes, this.replyFloor);
  }

  /** Rate limiter counters, when limiting is on. */
  get rateLimiter(): RateLimiter | undefined {
    return this.limiter;
  }

  /** Decides what to do with one input. Never throws on any bytes. */
  handle(input: ServerInput): ServerResult {
    const s = this.stats;
    s.received++;
    s.bytesIn += input.data.length;
    if (this.limiter !== undefined && !this.limiter.take(rateKey(input.from), input.now)) return this.drop('rate-limited');
    const d = this.classify(input);
    if (d.reply !== undefined && d.reply.data.length > this.maxReplyBytes(input.data.length)) return this.drop('reply-too-large');
    if (d.outcome === 'dropped' || d.reply === undefined) return this.drop(d.drop ?? 'malformed');
    if (d.outcome === 'success') s.success++;
    else if (d.outcome === 'plain') s.plain++;
    else if (d.errorCode === 400) s.badRequest++;
    else s.unknownAttribute++;
    if (d.notes !== undefined) {
      if (d.notes.legacy) s.legacy++;
      if (d.notes.changed) s.changed++;
      if (d.notes.padded) s.padded++;
      if (d.notes.responsePort) s.responsePort++;
      if (d.notes.templated) s.templated++;
    }
    s.replies++;
    s.bytesOut += d.reply.data.length;
    const { outcome, reply, errorCode } = d;
    return errorCode === undefined ? { outcome, reply } : { outcome, reply, errorCode };
  }

  /**
   * The plain reply for a stream (the driver decides when a stream is plain: first byte
   * not STUN, or silence). Counted as one input. Undefined when plain mode is off.
   */
  plainStreamReply(from: Endpoint, role: ServerRole): ServerReply | undefined {
    if (!this.plain) return undefined;
    const data = plainReply(from);
    const s = this.stats;
    s.received++;
    s.plain++;
    s.replies++;
    s.bytesOut += data.length;
    return { data, via: role, to: from };
  }

  /** Counts an input the driver discarded before the core saw its bytes (e.g. a stream that sent garbage). */
  countDrop(reason: DropReason, bytes = 0): void {
    this.stats.received++;
    this.stats.bytesIn += bytes;
    this.stats.dropped[reason]++;
  }

  private classify(input: ServerInput): Decision {
    const templated = this.templated(input);
    if (templated !== undefined) return templated;
    const { data } = input;
    if (!looksLikeStun(data)) return this.notStun(input);
    let msg: StunMessage;
    try {
      msg = decodeMessage(data);
    } catch (err) {
      if (!(err instanceof StunDecodeError)) throw err;
      // A sound Binding request header with broken attributes is still a request we can
      // answer (RFC 8489 §6.3.1.1 error response); anything else is not STUN to us.
      if (isBindingRequestHeader(data)) return this.reject(input, bindingTransactionId(data), 400, `Bad Request: ${err.message}`, false);
      return this.plain ? this.notStun(input) : { outcome: 'dropped', drop: 'malformed' };
    }
    // RFC 8489 §6.3: a class or method the server does not handle is silently discarded.
    if (msg.cls === StunClass.INDICATION) return { outcome: 'dropped', drop: 'indication' };
    if (msg.cls !== StunClass.REQUEST) return { outcome: 'dropped', drop: 'response' };
    if (msg.method !== BINDING) return { outcome: 'dropped', drop: 'unknown-method' };
    if (msg.isLegacy && !this.legacy) return { outcome: 'dropped', drop: 'legacy-disabled' };
    if (!msg.isLegacy && checkFingerprint(msg) === 'mismatch') return { outcome: 'dropped', drop: 'bad-fingerprint' };
    return this.binding(input, msg);
  }

  /**
   * The commonest request by far, an RFC 8489 Binding request without attributes, to a
   * basic server (no alternate address and port: no RFC 5780 attributes in the response,
   * whatever the receiving role) gets the full path's response to the first such request
   * of its family, with ID and XOR-MAPPED-ADDRESS rewritten (template.ts): the same bytes
   * without decoding or encoding. Its shape passes every check of classify() and binding():
   * STUN, a request, Binding, a cookie (not RFC 3489), no FINGERPRINT, nothing to refuse.
   * Undefined: take the full path.
   */
  private templated(input: ServerInput): Decision | undefined {
    const { data, from } = input;
    if (!isBareBindingRequest(data) || hasAlternate(this.layout, input.transport)) return undefined;
    const template = this.templates[from.family];
    if (template === undefined) {
      const d = this.binding(input, decodeMessage(data));
      if (d.reply !== undefined) this.templates[from.family] = BindingTemplate.from(d.reply.data);
      return d;
    }
    const reply = template.fill(data, from);
    return reply === undefined ? undefined : { outcome: 'success', reply: { data: reply, via: input.role, to: from }, notes: TEMPLATED };
  }

  /** RFC 8489 §6.3.1 and RFC 5780 §6.1, in the order the checks apply. */
  private binding(input: ServerInput, msg: StunMessage): Decision {
    const { transport, role, from } = input;
    const legacy = msg.isLegacy;
    const fingerprint = !legacy && msg.has(0x8028);
    const id = msg.transactionId;
    const unknown = msg.unknownRequired(legacy ? LEGACY_KNOWN : MODERN_KNOWN);
    if (unknown.length > 0) return this.reject(input, id, 420, undefined, fingerprint, unknown);

    let change: ChangeRequest | undefined;
    let responsePort: number | undefined;
    let padding = false;
    try {
      change = msg.get(CHANGE_REQUEST);
      if (legacy) {
        if (msg.get(RESPONSE_ADDRESS) !== undefined) this.stats.responseAddressIgnored++;
      } else {
        responsePort = msg.get(RESPONSE_PORT);
        padding = msg.get(PADDING) !== undefined;
      }
    } catch (err) {
      if (!(err instanceof StunDecodeError)) throw err;
      return this.reject(input, id, 400, `Bad Request: ${err.message}`, fingerprint);
    }

    const alternate = hasAlternate(this.layout, transport);
    const wantsChange = change !== undefined && (change.changeIp || change.changePort);
    // RFC 5780 §6: without two addresses and two ports, "MUST respond with a 420 (Unknown
    // Attribute) to any Request with a CHANGE-REQUEST attribute". An RFC 3489 client's
    // CHANGE-REQUEST with no flag set asks for nothing, so it is answered.
    if (change !== undefined && !alternate && (!legacy || wantsChange)) {
      return this.reject(input, id, 420, undefined, fingerprint, [CHANGE_REQUEST.type]);
    }
    // RFC 5780 §6.1, §7.5, §10: RESPONSE-PORT with PADDING MUST get a 400 (amplification).
    if (responsePort !== undefined && padding) {
      return this.reject(input, id, 400, 'Bad Request: RESPONSE-PORT with PADDING', fingerprint);
    }
    if (responsePort === 0) return this.reject(input, id, 400, 'Bad Request: RESPONSE-PORT 0', fingerprint);
    // A stream reply goes back on the same connection (RFC 8489 §6.3.1.2), and the server
    // never opens one towards the client (RFC 8489 §6.2.2), so a change cannot be made:
    // the filtering tests that use it are UDP only (RFC 5780 §3.2). Say so, rather than
    // answer from the same socket and let the client infer the wrong filtering.
    if (wantsChange && transport !== 'udp') {
      return this.reject(input, id, 400, 'Bad Request: CHANGE-REQUEST needs UDP', fingerprint);
    }

    const via = wantsChange && change !== undefined ? changedRole(role, change.changeIp, change.changePort) : role;
    // RFC 5780 §7.5: to the request's source address, at RESPONSE-PORT (UDP only, §3.3).
    const to = responsePort !== undefined && transport === 'udp' ? { ...from, port: responsePort } : from;
    const origin = roleEndpoint(this.layout, transport, via);
    // RFC 5780 §6.1 table 1 (and RFC 3489 §11.2.3 CHANGED-ADDRESS): Ca:Cp relative to where
    // the request arrived, "regardless of the value of the CHANGE-REQUEST flags".
    const other = alternate ? roleEndpoint(this.layout, transport, changedRole(role, true, true)) : undefined;
    const concreteOrigin = origin !== undefined && !isUnspecified(origin.address) ? origin : undefined;
    let data: Uint8Array;
    if (legacy) {
      data = legacySuccess({ request: msg, mapped: from, sourceAddress: concreteOrigin, changedAddress: other });
    } else {
      // The RFC 5780 attributes go out only when the server is a full behaviour-discovery
      // server (two addresses × two ports); a one-address server is a basic RFC 8489 §13
      // server that still understands PADDING and RESPONSE-PORT (RFC 5780 §5).
      data = modernSuccess({
        request: msg,
        mapped: from,
        withMappedAddress: alternate,
        responseOrigin: alternate ? concreteOrigin : undefined,
        otherAddress: other,
        software: this.software,
        padding,
        fingerprint,
      });
    }
    const notes = { legacy, changed: wantsChange, padded: padding, responsePort: responsePort !== undefined && transport === 'udp', templated: false };
    return { outcome: 'success', reply: { data, via, to }, notes };
  }

  private reject(
    input: ServerInput, transactionId: Uint8Array, code: 400 | 420, reason: string | undefined, fingerprint: boolean, unknown?: readonly number[],
  ): Decision {
    const data = errorResponse({
      transactionId, code, software: this.software, fingerprint, ...(reason !== undefined && { reason }), ...(unknown !== undefined && { unknown }),
    });
    return { outcome: 'error', errorCode: code, reply: { data, via: input.role, to: input.from } };
  }

  private notStun(input: ServerInput): Decision {
    // On streams the driver decides about plain replies (first byte, silence): see plainStreamReply.
    if (!this.plain || input.transport !== 'udp') return { outcome: 'dropped', drop: 'not-stun' };
    const data = plainReply(input.from);
    // Only a datagram at least as large as the answer gets one: the plain protocol has no
    // handshake, so a spoofed source must not buy more bytes than it sent. Streams are
    // exempt: TCP's handshake proves the source.
    if (input.transport === 'udp' && input.data.length < data.length) return { outcome: 'dropped', drop: 'plain-too-small' };
    return { outcome: 'plain', reply: { data, via: input.role, to: input.from } };
  }

  private drop(reason: DropReason): ServerResult {
    this.stats.dropped[reason]++;
    return { outcome: 'dropped', drop: reason };
  }
}

/** Rate-limit key: the IPv4 address, or the IPv6 /64 (one subscriber's usual allocation). */
export function rateKey(from: Endpoint): string {
  if (from.family === 4) return from.address;
  const b = parseIPv6(from.address);
  let key = '';
  for (let i = 0; i < 8; i++) key += b[i]!.toString(16).padStart(2, '0');
  return key;
}

/** Binding request type and a length that fits: the header is sound even if attributes are not. */
function isBindingRequestHeader(data: Uint8Array): boolean {
  const type = (data[0]! << 8) | data[1]!;
  const length = (data[2]! << 8) | data[3]!;
  return type === 0x0001 && length % 4 === 0 && length + HEADER_LENGTH === data.length;
}

/** Transaction ID of a sound header: 12 bytes after the cookie, or the RFC 3489 16. */
function bindingTransactionId(data: Uint8Array): Uint8Array {
  const cookie = ((data[4]! << 24) | (data[5]! << 16) | (data[6]! << 8) | data[7]!) >>> 0;
  return data.subarray(cookie === MAGIC_COOKIE ? 8 : 4, HEADER_LENGTH);
}
