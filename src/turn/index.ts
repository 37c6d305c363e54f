// natkit/turn: TURN, RFC 8656 (in progress).
//
// What exists:
// - the codec: TURN methods and error codes (constants.ts), the thirteen TURN attributes
//   registered in the STUN attribute registry (attributes.ts; importing this module adds
//   them to decodeMessage/encodeMessage), ChannelData framing (channel-data.ts, §12.4);
// - a sans-I/O server core (server/): client messages and peer datagrams in with their
//   5-tuple or relayed address and the time, one reply or one relayed datagram out;
//   Allocate (incl. EVEN-PORT/RESERVATION-TOKEN and dual allocation), Refresh,
//   CreatePermission, ChannelBind, Send/Data, ChannelData; long-term credentials with
//   self-validating nonces and the TURN REST API; a peer address policy; quotas; expiry
//   driven by nextTimerAt()/expire(now). Relayed addresses come from a RelayAllocator.
//
// Still to come:
// - the driver: binds the client-facing sockets (UDP, TCP/TLS with StreamFramer cutting
//   STUN and padded ChannelData frames), a RelayAllocator that binds one UDP socket per
//   relayed address (or a pool of pre-bound ones, since allocate() is synchronous), feeds
//   handlePeer(), sets DF where it can (then `dontFragment: true`), turns ICMP errors into
//   Data indications with the ICMP attribute, arms one Clock timer at nextTimerAt(), and
//   rate-limits unauthenticated requests per source like the STUN server does;
// - the client (Allocate/Refresh/permissions/channels, a relayed PacketSocket), CLI
//   (`natkit turn-server`, config schema), metrics, coturn interop and the benchmark.
export * from './constants.ts';
export * from './attributes.ts';
export * from './channel-data.ts';
export * from './server/index.ts';
export * from './metrics.ts';
export * from './client/index.ts';
