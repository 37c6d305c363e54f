// natkit/net/node: the transport seam over real sockets, the system clock and OS randomness.
export { NodeNetwork, type NodeNetworkOptions } from './network.ts';
export { NodeUdpSocket, type UdpSocketOptions } from './udp.ts';
export { NodeStreamSocket } from './stream.ts';
export { resolveEndpoint, type HostLookup, type ResolveOptions } from './resolve.ts';
export { systemClock, cryptoRandom, nodeEnv } from './env.ts';
export { silentLogger, consoleLogger, type LogLevel } from './logger.ts';
export { localAddressToward, readRouteTables, type ReadRouteTablesOptions, type RouteTables } from './routes.ts';
