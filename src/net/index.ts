// natkit/net (layer 1): the transport seam — types, endpoint helpers, the RFC 7983
// packet demultiplexer and the stream framer. Real sockets live in net/node and the
// simulated world in net/sim, each imported through its own index.
export type {
  BindOptions,
  Clock,
  ConnectOptions,
  Endpoint,
  Env,
  ListenOptions,
  Logger,
  Network,
  PacketHandler,
  PacketSocket,
  Random,
  SocketStats,
  StreamListener,
  StreamSocket,
  Timer,
  TlsClientOptions,
  TlsServerOptions,
} from './types.ts';
export { endpoint, endpointKey, formatEndpoint, parseEndpoint, sameEndpoint, splitHostPort } from './endpoint.ts';
export {
  MUX_DTLS,
  MUX_RTP,
  MUX_STUN,
  MUX_TURN_CHANNEL,
  MUX_ZRTP,
  PacketMux,
  type MuxRange,
  type MuxStats,
  type RouteOptions,
} from './mux.ts';
export { StreamFramer, type MessageHandler, type StreamFramerOptions } from './framing.ts';
export { FailureCounter } from './failures.ts';
export { FedSocket } from './fed-socket.ts';
export { FramedSession, type FramedSessionOptions, type FramedSessionStats } from './framed-session.ts';
