// The client side of long-term credentials, RFC 8489 §9.2 as RFC 8656 §5 requires:
// the first request goes without credentials (§9.2.3.1); a 401 or 438 brings REALM,
// NONCE and maybe PASSWORD-ALGORITHMS (§9.2.5); later requests carry USERNAME or
// USERHASH (§14.4), REALM, NONCE, the algorithms (§9.2.3.2) and MESSAGE-INTEGRITY(-SHA256).
import {
  NONCE, PASSWORD_ALGORITHM, PASSWORD_ALGORITHMS, PasswordAlgorithm, REALM, USERHASH, USERNAME, attr, longTermKey, userhash,
  type AttrEntry, type IntegrityAlgorithm, type PasswordAlgorithmEntry, type StunMessage,
} from '../../stun/index.ts';

/** RFC 8489 §9.2: a nonce that starts with this cookie carries 24 bits of security features in 4 base64 characters. */
const NONCE_COOKIE = 'obMatJos2';
/** Security feature bits (RFC 8489 §18.1, bit 0 first): password algorithms, username anonymity. */
const FEATURE_PASSWORD_ALGORITHMS = 0x800000;
const FEATURE_USERNAME_ANONYMITY = 0x400000;

/** What the client proves itself with. */
export interface TurnCredentials {
  readonly username: string;
  readonly password: string;
  /**
   * Send USERHASH instead of USERNAME when the server offers username anonymity
   * (RFC 8489 §9.2.3.2, §14.4). @default false
   */
  readonly userhash?: boolean;
}

/** How a request is signed once the server has challenged us. */
export interface Signing {
  readonly key: Uint8Array;
  readonly integrity: IntegrityAlgorithm;
}

/** The security features of a nonce (RFC 8489 §9.2); 0 without the cookie. */
function nonceFeatures(nonce: string): number {
  if (!nonce.startsWith(NONCE_COOKIE) || nonce.length < NONCE_COOKIE.length + 4) return 0;
  const bits = Buffer.from(nonce.slice(NONCE_COOKIE.length, NONCE_COOKIE.length + 4), 'base64');
  return bits.length === 3 ? (bits[0]! << 16) | (bits[1]! << 8) | bits[2]! : 0;
}

/** What a challenge taught: realm, nonce, algorithms, and the key they make. */
interface Learnt {
  readonly realm: string;
  readonly nonce: string;
  /** The server's PASSWORD-ALGORITHMS, echoed back, and our pick from it. */
  readonly algorithms: { readonly offered: readonly PasswordAlgorithmEntry[]; readonly chosen: PasswordAlgorithmEntry } | undefined;
  readonly anonymous: boolean;
  readonly signing: Signing;
}

/** Realm, nonce and key learnt from the server's challenges. */
export class LongTermAuth {
  private readonly credentials: TurnCredentials;
  private learnt: Learnt | undefined;

  constructor(credentials: TurnCredentials) {
    this.credentials = credentials;
  }

  /** The key and MAC once challenged; undefined before (RFC 8489 §9.2.3.1). */
  get sign(): Signing | undefined {
    return this.learnt?.signing;
  }

  /**
   * Takes REALM, NONCE and PASSWORD-ALGORITHMS from a 401 or 438 (RFC 8489 §9.2.5). False
   * when REALM or NONCE is missing, or no offered algorithm is one we know: the challenge
   * cannot be answered. Throws StunDecodeError for malformed attributes.
   */
  challenge(msg: StunMessage): boolean {
    const realm = msg.get(REALM);
    const nonce = msg.get(NONCE);
    if (realm === undefined || nonce === undefined) return false;
    const features = nonceFeatures(nonce);
    const offered = msg.get(PASSWORD_ALGORITHMS);
    let algorithms: Learnt['algorithms'];
    // §9.2.5: the algorithms count only with the feature bit in the nonce; either alone
    // (a bid-down, or an RFC 5389 server) means MD5 without PASSWORD-ALGORITHM(S).
    if (offered !== undefined && (features & FEATURE_PASSWORD_ALGORITHMS) !== 0) {
      // The server lists its preference first; we take the first we support.
      const chosen = offered.find((e) => e.algorithm === PasswordAlgorithm.SHA256 || e.algorithm === PasswordAlgorithm.MD5);
      if (chosen === undefined) return false;
      algorithms = { offered, chosen };
    }
    const { username, password } = this.credentials;
    this.learnt = {
      realm,
      nonce,
      algorithms,
      anonymous: this.credentials.userhash === true && (features & FEATURE_USERNAME_ANONYMITY) !== 0,
      signing: {
        key: longTermKey({ username, password, realm, algorithm: algorithms?.chosen.algorithm ?? PasswordAlgorithm.MD5 }),
        // MESSAGE-INTEGRITY-SHA256 to a server that speaks RFC 8489 (it announced its
        // algorithms); MESSAGE-INTEGRITY to an RFC 5389 one, which knows no other.
        integrity: algorithms === undefined ? 'sha1' : 'sha256',
      },
    };
    return true;
  }

  /** The credential attributes of a request (§9.2.3.2); none before the first challenge. */
  attributes(): AttrEntry[] {
    const l = this.learnt;
    if (l === undefined) return [];
    const { username } = this.credentials;
    const out = [l.anonymous ? attr(USERHASH, userhash(username, l.realm)) : attr(USERNAME, username), attr(REALM, l.realm), attr(NONCE, l.nonce)];
    if (l.algorithms !== undefined) out.push(attr(PASSWORD_ALGORITHMS, l.algorithms.offered), attr(PASSWORD_ALGORITHM, l.algorithms.chosen));
    return out;
  }

  /** Forgets realm and nonce: a new server challenges afresh (RFC 8489 §10). */
  reset(): void {
    this.learnt = undefined;
  }
}
