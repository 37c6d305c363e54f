// secureConnection(): a SecureSession over a connection connect() made (natkit/punch). The
// PUNCH order decides both sides' roles and names the peer's key, so the handshake needs
// nothing more: the controlling side initiates, and only the key the order named is let in.
import type { PeerConnection } from '../punch/index.ts';
import { SecureSession, type DatagramPath, type SecureSessionOptions } from './driver.ts';

/** What secureConnection() needs of a connection: a PeerConnection, or anything shaped like one. */
export interface PunchedConnection extends DatagramPath, Pick<PeerConnection, 'controlling'> {
  readonly peer: Pick<PeerConnection['peer'], 'publicKey'>;
}

/** SecureSession's options less what the connection decides (path, role, peer key). */
export type SecureConnectionOptions = Omit<SecureSessionOptions, 'path' | 'role' | 'peerIdentityKey'>;

/**
 * Starts a secure session on `conn`: the initiator is the controlling side (the PUNCH order
 * makes exactly one side controlling), and the peer must prove `conn.peer.publicKey`.
 * Closing the session leaves the connection open; close it too.
 */
export function secureConnection(conn: PunchedConnection, options: SecureConnectionOptions): SecureSession {
  return new SecureSession({
    ...options,
    path: conn,
    role: conn.controlling ? 'initiator' : 'responder',
    peerIdentityKey: conn.peer.publicKey,
  });
}
