// A rendezvous identity: an Ed25519 key pair (RFC 8032) whose public key owns a name on
// the server. REGISTER proves possession by signing the server's challenge (the nonce
// carries the server's time and is bound to the sender's address) together with the
// name and the key. Node's crypto does the curve work.
import { createPrivateKey, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
import { NatkitError } from '../util/index.ts';
import { PUBLIC_KEY_BYTES, SIGNATURE_BYTES } from './tlv.ts';

/** What a client needs to register: its raw public key and a signer. */
export interface RendezvousIdentity {
  /** Raw Ed25519 public key (32 bytes, RFC 8032 §5.1.5). */
  readonly publicKey: Uint8Array;
  /** Ed25519 signature (64 bytes) over `data`. */
  sign(data: Uint8Array): Uint8Array;
}

/** PKCS #8 prefix of an Ed25519 private key (RFC 8410 §7) before its 32-byte seed. */
const PKCS8_PREFIX = Uint8Array.from([0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20]);
/** SPKI prefix of an Ed25519 public key (RFC 8410 §4) before its 32 bytes. */
const SPKI_PREFIX = Uint8Array.from([0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00]);

/** The identity of an Ed25519 private key (a KeyObject, e.g. from generateKeyPairSync('ed25519')). */
export function identityFromKey(privateKey: KeyObject): RendezvousIdentity {
  if (privateKey.asymmetricKeyType !== 'ed25519' || privateKey.type !== 'private') {
    throw new NatkitError('ERR_INVALID_ARGUMENT', `expected an Ed25519 private key, got ${privateKey.type} ${privateKey.asymmetricKeyType ?? 'key'}`);
  }
  const spki = createPublicKey(privateKey).export({ format: 'der', type: 'spki' });
  const publicKey = new Uint8Array(spki.subarray(SPKI_PREFIX.length));
  return { publicKey, sign: (data) => new Uint8Array(sign(null, data, privateKey)) };
}

/** The identity whose private key is the 32-byte seed (RFC 8032 §5.1.5), e.g. `env.random.bytes(32)`. */
export function identityFromSeed(seed: Uint8Array): RendezvousIdentity {
  if (seed.length !== 32) throw new NatkitError('ERR_INVALID_ARGUMENT', `Ed25519 seed: expected 32 bytes, got ${seed.length}`);
  const der = new Uint8Array(PKCS8_PREFIX.length + 32);
  der.set(PKCS8_PREFIX);
  der.set(seed, PKCS8_PREFIX.length);
  return identityFromKey(createPrivateKey({ key: Buffer.from(der), format: 'der', type: 'pkcs8' }));
}

/** Checks an Ed25519 signature by a raw public key; false for any malformed input. */
export function verifySignature(publicKey: Uint8Array, data: Uint8Array, signature: Uint8Array): boolean {
  if (publicKey.length !== PUBLIC_KEY_BYTES || signature.length !== SIGNATURE_BYTES) return false;
  const der = new Uint8Array(SPKI_PREFIX.length + PUBLIC_KEY_BYTES);
  der.set(SPKI_PREFIX);
  der.set(publicKey, SPKI_PREFIX.length);
  try {
    return verify(null, data, createPublicKey({ key: Buffer.from(der), format: 'der', type: 'spki' }), signature);
  } catch {
    // A public key that is not a curve point: no signature verifies under it.
    return false;
  }
}

const CONTEXT = new TextEncoder().encode('natkit-rendezvous/1 register\0');

/** The bytes REGISTER signs: a context string, the server's nonce, the name (length-prefixed) and the public key. */
export function registerSignedData(nonce: Uint8Array, name: Uint8Array, publicKey: Uint8Array): Uint8Array {
  const out = new Uint8Array(CONTEXT.length + nonce.length + 1 + name.length + publicKey.length);
  let at = 0;
  for (const part of [CONTEXT, nonce, Uint8Array.of(name.length), name, publicKey]) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}
