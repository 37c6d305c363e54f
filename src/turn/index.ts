// natkit/turn: TURN, RFC 8656.
//
// - The codec: TURN methods and error codes (constants.ts), the thirteen TURN attributes
//   registered in the STUN attribute registry (attributes.ts; importing this module adds
//   them to decodeMessage/encodeMessage), ChannelData framing (channel-data.ts, §12.4).
// - The server (server/): a sans-I/O core (client messages and peer datagrams in with
//   their 5-tuple or relayed address and the time, one reply or one relayed datagram out;
//   Allocate incl. EVEN-PORT/RESERVATION-TOKEN and dual allocation, Refresh,
//   CreatePermission, ChannelBind, Send/Data, ChannelData; long-term credentials with
//   self-validating nonces and the TURN REST API; a peer address policy; quotas; expiry
//   driven by nextTimerAt()/expire(now)), and TurnServer, its driver: UDP, TCP and TLS
//   listeners, a pool of relay sockets in a port range, an advertised external address,
//   a per-source rate limit on unauthenticated requests, per-allocation bandwidth, users
//   reloaded on demand. Not done: DF and ICMP on relayed datagrams (§11), which the
//   Env seam does not expose.
// - Metrics (metrics.ts): the server's counters in Prometheus text with bounded labels.
// - The client (client/): a sans-I/O core (the 401/438 handshake with SHA-256 and
//   USERHASH, ALTERNATE-SERVER once, refreshes, permissions and channels made on demand,
//   keepalives toward the server over UDP) and TurnClient.allocate() → RelayedSocket,
//   a PacketSocket over UDP, TCP or TLS that can share a socket with STUN.
// The CLI commands `natkit turn` and `natkit turn-server` live in src/cli.
export * from './constants.ts';
export * from './attributes.ts';
export * from './channel-data.ts';
export * from './server/index.ts';
export * from './metrics.ts';
export * from './client/index.ts';
