// natkit/rendezvous (layer 4): the signaling protocol (codec), the server core and driver,
// and the client that registers from the peer's own socket and receives PUNCH orders.
export * from './tlv.ts';
export * from './codec.ts';
export * from './identity.ts';
export * from './stats.ts';
export { RendezvousCore, type CoreInput, type CoreResult, type CoreSend, type RendezvousCoreOptions } from './core.ts';
export { RendezvousServer, type ListenAt, type RendezvousServerOptions, type RendezvousServerStats } from './server.ts';
export {
  RendezvousClient, RendezvousError, type PunchOrder, type PunchPeer, type RendezvousClientOptions, type RendezvousClientStats,
} from './client.ts';
