// natkit/turn server: the sans-I/O TURN core (RFC 8656), what it is built from, and the driver.
export { TurnServerCore, type TurnAllocationInfo, type TurnBandwidthOptions, type TurnServerCoreOptions } from './core.ts';
export { type ToClient, type ToPeer, type TurnClientInput, type TurnPeerInput, type TurnResult } from './replies.ts';
export { fiveTupleKey, type FiveTuple, type RelayCounters, type TurnTransport } from './allocation.ts';
export { OFFERED_ALGORITHMS, TurnAuthenticator, type AuthResult, type TurnUserSecret, type SigningKey, type TurnAuthOptions } from './auth.ts';
export { PeerPolicy, parsePrefix, type PeerPolicyOptions } from './peer-policy.ts';
export { PortPoolAllocator, type PortPoolAllocatorOptions, type RelayAllocator, type RelayGrant, type RelayRequest } from './relay-allocator.ts';
export { TURN_DROP_REASONS, createTurnStats, type TurnDropReason, type TurnServerCoreStats } from './stats.ts';
export { RelaySocketPool, type RelayPoolStats, type RelaySocketPoolOptions } from './relay-pool.ts';
export { type TurnStreamOptions, type TurnStreamStats } from './stream.ts';
export { TurnServer, type TurnListen, type TurnServerEndpoint, type TurnServerOptions, type TurnServerStats } from './driver.ts';
