// natkit: the public API with Node defaults. Areas are also importable alone
// (natkit/net, natkit/stun); this entry adds the real-socket environment (nodeEnv).
export * from './util/index.ts';
export * from './net/index.ts';
export {
  NodeNetwork, consoleLogger, cryptoRandom, localAddressToward, nodeEnv, readRouteTables, resolveEndpoint, silentLogger, systemClock,
  type HostLookup, type LogLevel, type NodeNetworkOptions, type ReadRouteTablesOptions, type ResolveOptions, type RouteTables,
} from './net/node/index.ts';
export * from './stun/index.ts';
export * from './portmap/index.ts';
