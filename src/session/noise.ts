// The Noise Protocol Framework, revision 34 (noiseprotocol.org/noise.html): §4 crypto
// functions for 25519 / ChaChaPoly / SHA256, §5.1 CipherState, §5.2 SymmetricState,
// §5.3 HandshakeState, and the XX pattern of §7.5. Node's crypto does the primitives
// (X25519, ChaCha20-Poly1305, HMAC-SHA256); this file only sequences them as the spec says.
import { createCipheriv, createDecipheriv, createHash, createHmac, createPrivateKey, createPublicKey, createSecretKey, diffieHellman, type KeyObject } from 'node:crypto';
import { NatkitError } from '../util/index.ts';

/** The protocol name hashed into h (§8). */
export const NOISE_XX_NAME = 'Noise_XX_25519_ChaChaPoly_SHA256';
export const DHLEN = 32;
export const HASHLEN = 32;
export const TAGLEN = 16;
/** §5.1: 2^64-1 is reserved; nonces run up to 2^64-2. */
const MAX_NONCE = 0xffff_ffff_ffff_ffffn;

/** PKCS #8 prefix of an X25519 private key (RFC 8410 §7) before its 32 bytes. */
const PKCS8_X25519 = Uint8Array.from([0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x6e, 0x04, 0x22, 0x04, 0x20]);
/** SPKI prefix of an X25519 public key (RFC 8410 §4) before its 32 bytes. */
const SPKI_X25519 = Uint8Array.from([0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x6e, 0x03, 0x21, 0x00]);

/** An X25519 key pair (raw 32-byte keys, RFC 7748). */
export interface KeyPair {
  readonly privateKey: Uint8Array;
  readonly publicKey: Uint8Array;
}

/** The X25519 key pair whose private key is these 32 bytes (e.g. `env.random.bytes(32)`). */
export function x25519KeyPair(privateKey: Uint8Array): KeyPair {
  if (privateKey.length !== DHLEN) throw new NatkitError('ERR_INVALID_ARGUMENT', `X25519 private key: expected 32 bytes, got ${privateKey.length}`);
  const spki = createPublicKey(privateKeyObject(privateKey)).export({ format: 'der', type: 'spki' });
  return { privateKey: Uint8Array.from(privateKey), publicKey: new Uint8Array(spki.subarray(SPKI_X25519.length)) };
}

function privateKeyObject(raw: Uint8Array): KeyObject {
  return createPrivateKey({ key: Buffer.concat([PKCS8_X25519, raw]), format: 'der', type: 'pkcs8' });
}

/** §4.1 DH(): X25519. Node refuses a low-order point (all-zero output); that fails the handshake. */
export function dh(pair: KeyPair, publicKey: Uint8Array): Uint8Array {
  if (publicKey.length !== DHLEN) throw new NatkitError('ERR_PROTOCOL', `X25519 public key: expected 32 bytes, got ${publicKey.length}`);
  try {
    const pub = createPublicKey({ key: Buffer.concat([SPKI_X25519, publicKey]), format: 'der', type: 'spki' });
    return new Uint8Array(diffieHellman({ privateKey: privateKeyObject(pair.privateKey), publicKey: pub }));
  } catch (err) {
    throw new NatkitError('ERR_PROTOCOL', 'X25519 with the peer key failed (a low-order point?)', { cause: err });
  }
}

/** §4.2 nonce for ChaChaPoly: 32 bits of zeros, then the 64-bit counter little-endian. */
function chachaNonce(n: bigint): Buffer {
  const nonce = Buffer.alloc(12);
  nonce.writeBigUInt64LE(n, 4);
  return nonce;
}

/**
 * The KeyObject of a raw key, made once per key array (keys change only on rekey): Node
 * checks a raw key against KeyObject and CryptoKey by throwing and catching on each
 * createCipheriv, which cost about half the CPU of a small-message stream.
 */
const keyObjects = new WeakMap<Uint8Array, KeyObject>();
function keyObject(k: Uint8Array): KeyObject {
  let o = keyObjects.get(k);
  if (o === undefined) {
    o = createSecretKey(k);
    keyObjects.set(k, o);
  }
  return o;
}

/** §4.2 ENCRYPT(k, n, ad, plaintext): ciphertext with the 16-byte tag appended. */
export function encrypt(k: Uint8Array, n: bigint, ad: Uint8Array, plaintext: Uint8Array): Uint8Array {
  const c = createCipheriv('chacha20-poly1305', keyObject(k), chachaNonce(n), { authTagLength: TAGLEN });
  c.setAAD(ad, { plaintextLength: plaintext.length });
  const out = Buffer.concat([c.update(plaintext), c.final(), c.getAuthTag()]);
  return new Uint8Array(out.buffer, out.byteOffset, out.length);
}

/** §4.2 DECRYPT(k, n, ad, ciphertext): the plaintext, or undefined when authentication fails. */
export function decrypt(k: Uint8Array, n: bigint, ad: Uint8Array, ciphertext: Uint8Array): Uint8Array | undefined {
  if (ciphertext.length < TAGLEN) return undefined;
  const d = createDecipheriv('chacha20-poly1305', keyObject(k), chachaNonce(n), { authTagLength: TAGLEN });
  const body = ciphertext.subarray(0, ciphertext.length - TAGLEN);
  d.setAAD(ad, { plaintextLength: body.length });
  d.setAuthTag(ciphertext.subarray(ciphertext.length - TAGLEN));
  try {
    const out = Buffer.concat([d.update(body), d.final()]);
    return new Uint8Array(out.buffer, out.byteOffset, out.length);
  } catch {
    return undefined;
  }
}

/** §4.2 REKEY(k): the first 32 bytes of ENCRYPT(k, maxnonce, zerolen, zeros). */
export function rekey(k: Uint8Array): Uint8Array {
  return encrypt(k, MAX_NONCE, new Uint8Array(0), new Uint8Array(32)).slice(0, 32);
}

function hash(...parts: Uint8Array[]): Uint8Array {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
}

function hmac(key: Uint8Array, ...parts: Uint8Array[]): Uint8Array {
  const m = createHmac('sha256', key);
  for (const p of parts) m.update(p);
  return new Uint8Array(m.digest());
}

/** §4.3 HKDF(chaining_key, input_key_material, 2 or 3 outputs). */
export function hkdf(chainingKey: Uint8Array, ikm: Uint8Array, outputs: 2 | 3): Uint8Array[] {
  const temp = hmac(chainingKey, ikm);
  const o1 = hmac(temp, Uint8Array.of(1));
  const o2 = hmac(temp, o1, Uint8Array.of(2));
  if (outputs === 2) return [o1, o2];
  return [o1, o2, hmac(temp, o2, Uint8Array.of(3))];
}

/** §5.1 CipherState: a key (or none) and a 64-bit nonce counter. */
export class CipherState {
  private k: Uint8Array | undefined;
  /** The next nonce. */
  n = 0n;

  constructor(key?: Uint8Array) {
    this.k = key === undefined ? undefined : Uint8Array.from(key);
  }

  hasKey(): boolean {
    return this.k !== undefined;
  }

  /** The key, for transports that number their packets themselves (§5.1 SetNonce use). */
  get key(): Uint8Array | undefined {
    return this.k;
  }

  initializeKey(key: Uint8Array | undefined): void {
    this.k = key === undefined ? undefined : Uint8Array.from(key);
    this.n = 0n;
  }

  encryptWithAd(ad: Uint8Array, plaintext: Uint8Array): Uint8Array {
    if (this.k === undefined) return plaintext;
    if (this.n >= MAX_NONCE) throw new NatkitError('ERR_PROTOCOL', 'Noise nonce exhausted (2^64-1 reserved)');
    const out = encrypt(this.k, this.n, ad, plaintext);
    this.n++;
    return out;
  }

  /** Throws ERR_PROTOCOL when authentication fails; n only advances on success (§5.1). */
  decryptWithAd(ad: Uint8Array, ciphertext: Uint8Array): Uint8Array {
    if (this.k === undefined) return ciphertext;
    if (this.n >= MAX_NONCE) throw new NatkitError('ERR_PROTOCOL', 'Noise nonce exhausted (2^64-1 reserved)');
    const out = decrypt(this.k, this.n, ad, ciphertext);
    if (out === undefined) throw new NatkitError('ERR_PROTOCOL', 'Noise decryption failed: the message was altered or the keys differ');
    this.n++;
    return out;
  }

  /** A copy (for reads that must not change the state when they fail). */
  clone(): CipherState {
    const c = new CipherState(this.k);
    c.n = this.n;
    return c;
  }

  /** §5.1 Rekey(). */
  rekey(): void {
    if (this.k !== undefined) this.k = rekey(this.k);
  }
}

/** §5.2 SymmetricState. */
export class SymmetricState {
  cipher = new CipherState();
  private ck: Uint8Array;
  private hv: Uint8Array;

  constructor(protocolName: string) {
    const name = new TextEncoder().encode(protocolName);
    if (name.length <= HASHLEN) {
      this.hv = new Uint8Array(HASHLEN);
      this.hv.set(name);
    } else {
      this.hv = hash(name);
    }
    this.ck = this.hv;
  }

  get h(): Uint8Array {
    return this.hv;
  }

  /** A copy of ck, h and the CipherState. */
  clone(): SymmetricState {
    const c = new SymmetricState('');
    c.ck = this.ck;
    c.hv = this.hv;
    c.cipher = this.cipher.clone();
    return c;
  }

  mixKey(ikm: Uint8Array): void {
    const [ck, tempK] = hkdf(this.ck, ikm, 2);
    this.ck = ck!;
    this.cipher.initializeKey(tempK!.subarray(0, 32));
  }

  mixHash(data: Uint8Array): void {
    this.hv = hash(this.hv, data);
  }

  encryptAndHash(plaintext: Uint8Array): Uint8Array {
    const c = this.cipher.encryptWithAd(this.hv, plaintext);
    this.mixHash(c);
    return c;
  }

  decryptAndHash(ciphertext: Uint8Array): Uint8Array {
    const p = this.cipher.decryptWithAd(this.hv, ciphertext);
    this.mixHash(ciphertext);
    return p;
  }

  /** §5.2 Split(): the initiator's sending and receiving CipherStates, in that order. */
  split(): [CipherState, CipherState] {
    const [k1, k2] = hkdf(this.ck, new Uint8Array(0), 2);
    return [new CipherState(k1!.subarray(0, 32)), new CipherState(k2!.subarray(0, 32))];
  }
}

type Token = 'e' | 's' | 'ee' | 'es' | 'se' | 'ss';
/** §7.5 XX: -> e; <- e, ee, s, es; -> s, se. */
const XX: readonly (readonly Token[])[] = [['e'], ['e', 'ee', 's', 'es'], ['s', 'se']];

export interface HandshakeOptions {
  readonly initiator: boolean;
  /** This side's static X25519 key pair. */
  readonly staticKeyPair: KeyPair;
  /** Draws the ephemeral private key (32 bytes) when the pattern needs it. */
  readonly ephemeral: () => Uint8Array;
  /** Bound into h before the first message (§6); both sides must give the same bytes. @default empty */
  readonly prologue?: Uint8Array;
}

/** What a completed handshake leaves: the transport keys and the channel binding. */
export interface HandshakeResult {
  /** CipherState for what this side sends. */
  readonly send: CipherState;
  /** CipherState for what this side receives. */
  readonly receive: CipherState;
  /** The final h (§11.2 channel binding). */
  readonly handshakeHash: Uint8Array;
  /** The peer's static X25519 public key. */
  readonly remoteStatic: Uint8Array;
}

/** §5.3 HandshakeState for the XX pattern. A failed read leaves it failed (§5.3: abandon the handshake). */
export class HandshakeState {
  readonly initiator: boolean;
  private ss: SymmetricState;
  private readonly s: KeyPair;
  private e: KeyPair | undefined;
  private rs: Uint8Array | undefined;
  private re: Uint8Array | undefined;
  private readonly ephemeral: () => Uint8Array;
  private index = 0;
  private failed = false;
  private result: HandshakeResult | undefined;

  constructor(options: HandshakeOptions) {
    this.initiator = options.initiator;
    this.s = options.staticKeyPair;
    this.ephemeral = options.ephemeral;
    this.ss = new SymmetricState(NOISE_XX_NAME);
    this.ss.mixHash(options.prologue ?? new Uint8Array(0));
  }

  /** True when this side writes the next message. */
  get isMyTurn(): boolean {
    return (this.index % 2 === 0) === this.initiator;
  }

  get complete(): HandshakeResult | undefined {
    return this.result;
  }

  /** The peer's static key once a message carried it. */
  get remoteStatic(): Uint8Array | undefined {
    return this.rs;
  }

  /** §5.3 WriteMessage(payload). */
  writeMessage(payload: Uint8Array = new Uint8Array(0)): Uint8Array {
    const tokens = this.next(true);
    const out: Uint8Array[] = [];
    for (const t of tokens) {
      switch (t) {
        case 'e':
          this.e = x25519KeyPair(this.ephemeral());
          out.push(this.e.publicKey);
          this.ss.mixHash(this.e.publicKey);
          break;
        case 's':
          out.push(this.ss.encryptAndHash(this.s.publicKey));
          break;
        default:
          this.mixDh(t);
      }
    }
    out.push(this.ss.encryptAndHash(payload));
    this.advance();
    return Buffer.concat(out);
  }

  /** §5.3 ReadMessage(message): the payload; throws ERR_PROTOCOL (and fails the handshake) on a bad message. */
  readMessage(message: Uint8Array): Uint8Array {
    const tokens = this.next(false);
    try {
      let at = 0;
      const take = (n: number): Uint8Array => {
        if (message.length < at + n) throw new NatkitError('ERR_PROTOCOL', `Noise handshake message truncated: needed ${at + n} bytes, got ${message.length}`);
        const part = message.subarray(at, at + n);
        at += n;
        return part;
      };
      for (const t of tokens) {
        switch (t) {
          case 'e':
            this.re = Uint8Array.from(take(DHLEN));
            this.ss.mixHash(this.re);
            break;
          case 's':
            this.rs = Uint8Array.from(this.ss.decryptAndHash(take(this.ss.cipher.hasKey() ? DHLEN + TAGLEN : DHLEN)));
            break;
          default:
            this.mixDh(t);
        }
      }
      const payload = this.ss.decryptAndHash(message.subarray(at));
      this.advance();
      return payload;
    } catch (err) {
      this.failed = true;
      this.rs = undefined;
      throw err;
    }
  }

  /**
   * ReadMessage that leaves the state as it was when the message is bad, instead of failing
   * the handshake: on UDP anyone can inject a datagram, and dropping it is as if it never
   * came (WireGuard does the same). `accept` may refuse an authentic message too (the
   * payload fails a check of the application's). Returns undefined for a refused message.
   */
  tryReadMessage(message: Uint8Array, accept?: (payload: Uint8Array, remoteStatic: Uint8Array | undefined) => boolean): Uint8Array | undefined {
    if (this.failed) return this.readMessage(message);
    const saved = { ss: this.ss.clone(), e: this.e, rs: this.rs, re: this.re, index: this.index };
    const restore = (): undefined => {
      ({ ss: this.ss, e: this.e, rs: this.rs, re: this.re, index: this.index } = saved);
      this.failed = false;
      this.result = undefined;
      return undefined;
    };
    let payload: Uint8Array;
    try {
      payload = this.readMessage(message);
    } catch (err) {
      if (!(err instanceof NatkitError) || err.code !== 'ERR_PROTOCOL') throw err;
      return restore();
    }
    return accept === undefined || accept(payload, this.rs) ? payload : restore();
  }

  private next(writing: boolean): readonly Token[] {
    if (this.failed) throw new NatkitError('ERR_PROTOCOL', 'the Noise handshake has failed');
    const tokens = XX[this.index];
    if (tokens === undefined) throw new NatkitError('ERR_PROTOCOL', 'the Noise handshake is complete');
    if (this.isMyTurn !== writing) throw new NatkitError('ERR_PROTOCOL', `Noise handshake: expected to ${writing ? 'read' : 'write'} message ${this.index + 1}`);
    return tokens;
  }

  private mixDh(t: 'ee' | 'es' | 'se' | 'ss'): void {
    // §7.1: "es" is DH(e, rs) for the initiator and DH(s, re) for the responder; "se" the reverse.
    const need = <T>(v: T | undefined): T => {
      if (v === undefined) throw new NatkitError('ERR_PROTOCOL', `Noise handshake: key missing for ${t}`);
      return v;
    };
    const i = this.initiator;
    const [mine, theirs] =
      t === 'ee' ? [this.e, this.re]
      : t === 'ss' ? [this.s, this.rs]
      : t === 'es' ? (i ? [this.e, this.rs] : [this.s, this.re])
      : (i ? [this.s, this.re] : [this.e, this.rs]);
    this.ss.mixKey(dh(need(mine), need(theirs)));
  }

  private advance(): void {
    this.index++;
    if (this.index < XX.length) return;
    const [c1, c2] = this.ss.split();
    this.result = {
      send: this.initiator ? c1 : c2,
      receive: this.initiator ? c2 : c1,
      handshakeHash: this.ss.h,
      remoteStatic: this.rs!,
    };
  }
}
