// Counters of the STUN server core: every input ends in exactly one outcome, so
// received = success + badRequest + unknownAttribute + plain + Σ dropped.

/** Why an input got no reply (RFC 8489 §6.3: "silently discarded" cases, and our guards). */
export type DropReason =
  /** Over the per-source budget of the rate limiter. */
  | 'rate-limited'
  /** Not a STUN message (plain mode off), or a TURN ChannelData frame. */
  | 'not-stun'
  /** Plain mode: the datagram is smaller than the text reply would be (no amplification). */
  | 'plain-too-small'
  /** STUN-shaped but the header is broken: length, class or type make no request (RFC 8489 §6.3). */
  | 'malformed'
  /** Indications get no response (RFC 8489 §6.3.2). */
  | 'indication'
  /** Success and error responses: a server has no transactions of its own (RFC 8489 §6.3). */
  | 'response'
  /** Methods other than Binding are silently discarded (RFC 8489 §6.3). */
  | 'unknown-method'
  /** FINGERPRINT present and wrong (RFC 8489 §6.3, §14.7). */
  | 'bad-fingerprint'
  /** RFC 3489 client while legacy support is off. */
  | 'legacy-disabled'
  /** Safety net: a reply over the amplification bound (never expected). */
  | 'reply-too-large';

/** Every drop reason, for iterating counters. */
export const DROP_REASONS: readonly DropReason[] = [
  'rate-limited', 'not-stun', 'plain-too-small', 'malformed', 'indication', 'response', 'unknown-method',
  'bad-fingerprint', 'legacy-disabled', 'reply-too-large',
];

/** Counters of the sans-I/O core; the driver adds transport counters around them. */
export interface StunServerCoreStats {
  /** Inputs handled: datagrams and stream frames. */
  received: number;
  bytesIn: number;
  /** Replies produced (success, error and plain). */
  replies: number;
  bytesOut: number;
  /** Binding success responses. */
  success: number;
  /** Of those, to RFC 3489 clients. */
  legacy: number;
  /** 400 Bad Request responses. */
  badRequest: number;
  /** 420 Unknown Attribute responses. */
  unknownAttribute: number;
  /** `ip,port\n` replies (plain mode). */
  plain: number;
  /** Inputs that got no reply, by reason. */
  dropped: Record<DropReason, number>;
  /** Successes that honoured a CHANGE-REQUEST with a flag set. */
  changed: number;
  /** Successes sent to a RESPONSE-PORT. */
  responsePort: number;
  /** Successes that carried PADDING. */
  padded: number;
  /** Successes answered from a template: Binding requests without attributes to a basic server (template.ts). */
  templated: number;
  /** RFC 3489 requests with RESPONSE-ADDRESS, answered to their source instead (never reflected). */
  responseAddressIgnored: number;
}

/** Fresh zeroed counters. */
export function createCoreStats(): StunServerCoreStats {
  return {
    received: 0, bytesIn: 0, replies: 0, bytesOut: 0, success: 0, legacy: 0, badRequest: 0, unknownAttribute: 0, plain: 0,
    dropped: Object.fromEntries(DROP_REASONS.map((r) => [r, 0])) as Record<DropReason, number>,
    changed: 0, responsePort: 0, padded: 0, templated: 0, responseAddressIgnored: 0,
  };
}

/** Sum of the dropped counters. */
export function totalDropped(stats: StunServerCoreStats): number {
  let n = 0;
  for (const r of DROP_REASONS) n += stats.dropped[r];
  return n;
}
