// natkit/turn client: the sans-I/O core (RFC 8656 §7–§12 from the client's side) and the
// driver that presents a relayed transport address as a PacketSocket.
export { TurnClientCore, type TurnAddressFamily, type TurnAllocation, type TurnClientAction, type TurnClientCoreOptions, type TurnClientCoreStats, type TurnClientState, type TurnDelivery, type TurnRequestKind } from './core.ts';
export { LongTermAuth, type Signing, type TurnCredentials } from './auth.ts';
export { TurnError } from './errors.ts';
export { type PeerRequest } from './peers.ts';
export { RelayedSocket, TurnClient, type TurnAllocateOptions, type TurnServerAddress, type TurnClientTransport } from './relayed-socket.ts';
