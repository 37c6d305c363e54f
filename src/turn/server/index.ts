// natkit/turn server: the sans-I/O TURN core (RFC 8656) and what it is built from.
export { TurnServerCore, type TurnServerCoreOptions } from './core.ts';
export { type ToClient, type ToPeer, type TurnClientInput, type TurnPeerInput, type TurnResult } from './replies.ts';
export { fiveTupleKey, type FiveTuple, type TurnTransport } from './allocation.ts';
export { OFFERED_ALGORITHMS, TurnAuthenticator, type AuthResult, type SigningKey, type TurnAuthOptions } from './auth.ts';
export { PeerPolicy, parsePrefix, type PeerPolicyOptions } from './peer-policy.ts';
export { PortPoolAllocator, type PortPoolAllocatorOptions, type RelayAllocator, type RelayGrant, type RelayRequest } from './relay-allocator.ts';
export { TURN_DROP_REASONS, createTurnStats, type TurnDropReason, type TurnServerCoreStats } from './stats.ts';
