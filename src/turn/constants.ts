// TURN numbers: RFC 8656 §17 (methods), §18 (attribute values), §19 (error codes),
// §12 (channel numbers; RFC 5766 §11 for the legacy range), §3.2/§7.2/§9/§11 (lifetimes).

/** TURN methods (RFC 8656 §17). */
export const ALLOCATE = 0x003;
export const REFRESH = 0x004;
export const SEND = 0x006;
export const DATA = 0x007;
export const CREATE_PERMISSION = 0x008;
export const CHANNEL_BIND = 0x009;

/** REQUESTED-TRANSPORT protocol number for UDP, the only one this server relays (RFC 8656 §18.7). */
export const TRANSPORT_UDP = 17;

/** Address family values of REQUESTED-ADDRESS-FAMILY and friends (RFC 8656 §18.10). */
export const AddressFamily = { IPV4: 0x01, IPV6: 0x02 } as const;

/** Channel numbers a client may bind (RFC 8656 §12): 0x4000–0x4FFF. */
export const MIN_CHANNEL = 0x4000;
export const MAX_CHANNEL = 0x4fff;
/** Highest channel number of RFC 5766 §11 (0x4000–0x7FFF), which a server accepts with legacyChannels. */
export const MAX_LEGACY_CHANNEL = 0x7fff;

/** Allocation lifetime when the client asks for none or less (RFC 8656 §3.2, §7.2): 10 minutes. */
export const DEFAULT_LIFETIME_S = 600;
/** Permission lifetime, not configurable (RFC 8656 §9): 300 seconds. */
export const PERMISSION_LIFETIME_S = 300;
/** Channel binding lifetime (RFC 8656 §11): 10 minutes. */
export const CHANNEL_LIFETIME_S = 600;
/** After a binding expires, neither its number nor its peer may be rebound elsewhere for 5 minutes (RFC 8656 §11). */
export const CHANNEL_QUARANTINE_S = 300;
/** How long the port EVEN-PORT's R bit reserves is held (RFC 8656 §7.2: "approximately 30 seconds"). */
export const RESERVATION_LIFETIME_S = 30;

/** Error codes TURN adds to STUN's (RFC 8656 §19, RFC 8489 §14.8 for 438). */
export const TurnErrorCode = {
  FORBIDDEN: 403,
  ALLOCATION_MISMATCH: 437,
  STALE_NONCE: 438,
  ADDRESS_FAMILY_NOT_SUPPORTED: 440,
  WRONG_CREDENTIALS: 441,
  UNSUPPORTED_TRANSPORT_PROTOCOL: 442,
  PEER_ADDRESS_FAMILY_MISMATCH: 443,
  ALLOCATION_QUOTA_REACHED: 486,
  INSUFFICIENT_CAPACITY: 508,
} as const;
export type TurnErrorCode = (typeof TurnErrorCode)[keyof typeof TurnErrorCode];

/** Reason phrases of the TURN error codes, as in the IANA registry. */
export const TURN_REASON_PHRASES: Readonly<Record<TurnErrorCode, string>> = {
  403: 'Forbidden',
  437: 'Allocation Mismatch',
  438: 'Stale Nonce',
  440: 'Address Family not Supported',
  441: 'Wrong Credentials',
  442: 'Unsupported Transport Protocol',
  443: 'Peer Address Family Mismatch',
  486: 'Allocation Quota Reached',
  508: 'Insufficient Capacity',
};
