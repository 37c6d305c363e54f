// natkit/stun server: the sans-I/O core (RFC 8489 §6.3, RFC 5780 §6–§7, RFC 3489 §8.2)
// and the driver that binds its sockets.
export { StunServerCore, rateKey, type ServerInput, type ServerOutcome, type ServerReply, type ServerResult, type StunServerCoreOptions } from './core.ts';
export { MAX_REASON_BYTES, MAX_UNKNOWN_LISTED, plainReply, replyBound } from './replies.ts';
export {
  SERVER_ROLES, ServerRole, changedRole, hasAlternate, roleEndpoint, roleName, validateLayout, type ServerLayout, type ServerTransport,
} from './roles.ts';
export { DROP_REASONS, createCoreStats, totalDropped, type DropReason, type StunServerCoreStats } from './stats.ts';
export { type StunServerStreamOptions, type StunServerStreamStats } from './stream.ts';
export { StunServer, bindUdpLayout, type ServerEndpoint, type StunServerOptions, type StunServerStats, type StunServerTlsOptions } from './server.ts';
