// Binds the Noise static key (X25519) to the peer's rendezvous identity (Ed25519): the
// handshake payload of messages 2 and 3 carries the Ed25519 public key and its signature
// over a context string and the X25519 static key. The payload travels encrypted (XX
// hides both statics from passive observers) and the static key is proven by the es/se
// DH, so whoever completes the handshake holds both private keys.
import { verifySignature, type RendezvousIdentity } from '../rendezvous/index.ts';

const CONTEXT = new TextEncoder().encode('natkit-session/1 static key\0');
export const IDENTITY_PROOF_BYTES = 32 + 64;

/** The bytes the identity signs: context and the raw X25519 static key. */
export function staticKeySignedData(staticKey: Uint8Array): Uint8Array {
  const out = new Uint8Array(CONTEXT.length + staticKey.length);
  out.set(CONTEXT);
  out.set(staticKey, CONTEXT.length);
  return out;
}

/** The payload proving `identity` owns `staticKey`. */
export function identityProof(identity: RendezvousIdentity, staticKey: Uint8Array): Uint8Array {
  const out = new Uint8Array(IDENTITY_PROOF_BYTES);
  out.set(identity.publicKey);
  out.set(identity.sign(staticKeySignedData(staticKey)), 32);
  return out;
}

/** The Ed25519 key a proof names when its signature over `staticKey` holds; undefined otherwise. */
export function checkIdentityProof(proof: Uint8Array, staticKey: Uint8Array): Uint8Array | undefined {
  if (proof.length !== IDENTITY_PROOF_BYTES) return undefined;
  const key = proof.slice(0, 32);
  return verifySignature(key, staticKeySignedData(staticKey), proof.subarray(32)) ? key : undefined;
}
