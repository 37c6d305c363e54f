// natkit/stun: the STUN codec (RFC 8489, RFC 5389, RFC 5780, RFC 3489), client and server.
export * from './constants.ts';
export * from './attribute.ts';
export * from './message.ts';
export * from './credentials.ts';
export * from './attributes/address.ts';
export * from './attributes/text.ts';
export * from './attributes/auth.ts';
export * from './attributes/error.ts';
export * from './attributes/rfc5780.ts';
export * from './transaction.ts';
export * from './rto.ts';
export * from './binding.ts';
export * from './client.ts';
export * from './server/index.ts';
