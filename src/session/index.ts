// natkit/session (layer 5): an encrypted, reliable message channel over any datagram path
// (docs/session.md). Noise XX over X25519 / ChaCha20-Poly1305 / SHA-256 with each static
// key bound to the peer's Ed25519 identity; per-packet counters with a replay window and
// rekeying; fragmentation, selective acknowledgements, RFC 6298 retransmission and a flow
// window. The cores are sans-I/O; SecureSession runs them on an Env.
export * from './noise.ts';
export { ReplayWindow, REPLAY_WINDOW_BITS, type ReplayVerdict } from './replay-window.ts';
export {
  PACKET_TRANSPORT, TRANSPORT_HEADER_BYTES, TRANSPORT_OVERHEAD, Transport,
  type RekeyOptions, type TransportDrop, type TransportStats,
} from './transport.ts';
export { DATA_HEADER_BYTES, FRAME_ACK, FRAME_CLOSE, FRAME_DATA, ReliableChannel, type ReliableOptions, type ReliableStats } from './reliable.ts';
export { IDENTITY_PROOF_BYTES, checkIdentityProof, identityProof, staticKeySignedData } from './identity-proof.ts';
export {
  PACKET_HANDSHAKE_1, PACKET_HANDSHAKE_2, PACKET_HANDSHAKE_3, SessionCore,
  type SessionCloseOptions, type SessionClosedBy, type SessionOptions, type SessionPeer, type SessionRole, type SessionState, type SessionStats,
} from './session.ts';
export { SecureSession, type DatagramPath, type SecureSessionOptions } from './driver.ts';
export { secureConnection, type PunchedConnection, type SecureConnectionOptions } from './secure-connection.ts';
