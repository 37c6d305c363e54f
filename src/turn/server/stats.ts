// Counters of the TURN server core: every input ends in one reply, one relayed datagram,
// one keepalive or one drop, so received = replies + relayed + keepalives + Σ dropped.

/** Why an input got neither a reply nor a relay (RFC 8656 "silently discarded" cases, and our guards). */
export type TurnDropReason =
  /** Neither STUN nor ChannelData, a broken header, an RFC 3489 message or a bad FINGERPRINT. */
  | 'malformed'
  /** Responses, and indications other than Send and Binding: a server has no transactions of its own (RFC 8489 §6.3). */
  | 'unexpected-class'
  /** Requests of methods a TURN server does not serve. */
  | 'unknown-method'
  /** Send indication or ChannelData without an allocation on its 5-tuple (RFC 8656 §10.2, §12.5). */
  | 'no-allocation'
  /** Send indication missing XOR-PEER-ADDRESS or DATA, or with an unknown comprehension-required attribute (RFC 8656 §10.2). */
  | 'bad-indication'
  /** No permission for the peer's IP address (RFC 8656 §9: both directions). */
  | 'no-permission'
  /** ChannelData on a channel not bound, or no longer (RFC 8656 §12.5). */
  | 'unbound-channel'
  /** The peer's family has no relayed address in the allocation. */
  | 'family-mismatch'
  /** A datagram for a relayed address no allocation owns (expired, released). */
  | 'unknown-relay'
  /** A peer datagram too large to wrap in a Data indication. */
  | 'too-large'
  /** A request answered without proven credentials (Binding, challenges) over its source's budget. */
  | 'rate-limited'
  /** Relayed data over the allocation's bandwidth budget. */
  | 'bandwidth';

/** Every drop reason, for iterating counters. */
export const TURN_DROP_REASONS: readonly TurnDropReason[] = [
  'malformed', 'unexpected-class', 'unknown-method', 'no-allocation', 'bad-indication', 'no-permission', 'unbound-channel',
  'family-mismatch', 'unknown-relay', 'too-large', 'rate-limited', 'bandwidth',
];

/** Counters of the sans-I/O TURN core. */
export interface TurnServerCoreStats {
  /** Inputs handled, from clients and from peers. */
  received: number;
  /** Responses to clients (success and error). */
  replies: number;
  /** Error responses by code. */
  errors: Record<number, number>;
  /** Datagrams relayed client → peer, and their application bytes. */
  toPeerPackets: number;
  toPeerBytes: number;
  /** Datagrams relayed peer → client (Data indications and ChannelData), and their application bytes. */
  toClientPackets: number;
  toClientBytes: number;
  /** Binding indications from clients: keepalives of their NAT mappings, never answered (RFC 8489 §6.3.2). */
  keepalives: number;
  /** Inputs that got nothing, by reason. */
  dropped: Record<TurnDropReason, number>;
  /** Allocations created, and ended by Refresh with lifetime 0 or by expiry. */
  allocationsCreated: number;
  allocationsDeleted: number;
  allocationsExpired: number;
  /** Allocations ended because their client's TCP or TLS connection closed. */
  allocationsDisconnected: number;
  /** Requests with MESSAGE-INTEGRITY that failed it: unknown user, wrong password (401). */
  authFailures: number;
}

/** Fresh zeroed counters. */
export function createTurnStats(): TurnServerCoreStats {
  return {
    received: 0, replies: 0, errors: {}, toPeerPackets: 0, toPeerBytes: 0, toClientPackets: 0, toClientBytes: 0, keepalives: 0,
    dropped: Object.fromEntries(TURN_DROP_REASONS.map((r) => [r, 0])) as Record<TurnDropReason, number>,
    allocationsCreated: 0, allocationsDeleted: 0, allocationsExpired: 0, allocationsDisconnected: 0, authFailures: 0,
  };
}
