// STUN header constants: RFC 8489 §5 (header, magic cookie), §18.2 (methods),
// §18.4 (error codes); RFC 3489 §11.1 for the cookie-less legacy header.

/** Fixed value in bytes 4–7 of every RFC 5389/8489 message (RFC 8489 §5). */
export const MAGIC_COOKIE = 0x2112a442;
/** Header bytes before the attributes. */
export const HEADER_LENGTH = 20;
/** Transaction ID bytes after the cookie (RFC 8489 §5); RFC 3489 used 16 (cookie included). */
export const TRANSACTION_ID_LENGTH = 12;
export const LEGACY_TRANSACTION_ID_LENGTH = 16;

/** The two class bits (C1 C0) of the message type (RFC 8489 §5). */
export const StunClass = {
  REQUEST: 0b00,
  INDICATION: 0b01,
  SUCCESS: 0b10,
  ERROR: 0b11,
} as const;
export type StunClass = (typeof StunClass)[keyof typeof StunClass];

/** STUN methods defined by RFC 8489 §18.2; TURN adds its own in src/turn. */
export const BINDING = 0x001;

/** Error codes of RFC 8489 §14.8 that a STUN server or client meets. */
export const ErrorCode = {
  TRY_ALTERNATE: 300,
  BAD_REQUEST: 400,
  UNAUTHENTICATED: 401,
  UNKNOWN_ATTRIBUTE: 420,
  STALE_NONCE: 438,
  SERVER_ERROR: 500,
} as const;

/** Reason phrases RFC 8489 §14.8 recommends, by code. */
export const REASON_PHRASES: Readonly<Record<number, string>> = {
  300: 'Try Alternate',
  400: 'Bad Request',
  401: 'Unauthenticated',
  420: 'Unknown Attribute',
  438: 'Stale Nonce',
  500: 'Server Error',
};

/** Packs method and class into the 14-bit message type (RFC 8489 §5, figure 3). */
export function messageType(method: number, cls: StunClass): number {
  return (
    (method & 0x000f) |
    ((method & 0x0070) << 1) |
    ((method & 0x0f80) << 2) |
    ((cls & 0b01) << 4) |
    ((cls & 0b10) << 7)
  );
}

/** Method bits of a message type. */
export function methodOf(type: number): number {
  return (type & 0x000f) | ((type & 0x00e0) >> 1) | ((type & 0x3e00) >> 2);
}

/** Class bits of a message type. */
export function classOf(type: number): StunClass {
  return (((type >> 4) & 0b01) | ((type >> 7) & 0b10)) as StunClass;
}
