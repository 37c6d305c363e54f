// Keys for MESSAGE-INTEGRITY: RFC 8489 §9.1.1 (short-term), §9.2.2 (long-term, MD5
// or SHA-256 per PASSWORD-ALGORITHM), §14.4 (USERHASH); RFC 8265 §4.2 OpaqueString
// preparation, and RFC 4013 SASLprep for RFC 5389 peers.
import { createHash } from 'node:crypto';
import { NatkitError } from '../util/index.ts';
import { PasswordAlgorithm } from './attributes/auth.ts';

const utf8 = new TextEncoder();

// RFC 3454 C.1.2 non-ASCII spaces; OpaqueString and SASLprep both map them to U+0020.
const NON_ASCII_SPACE = /[\u00a0\u1680\u2000-\u200b\u202f\u205f\u3000]/gu;
// RFC 3454 B.1 "commonly mapped to nothing" (SASLprep only). The class lists combining
// marks (variation selectors) on purpose: each is removed on its own.
// eslint-disable-next-line no-misleading-character-class
const MAPPED_TO_NOTHING = /[\u00ad\u034f\u1806\u180b-\u180d\u200b-\u200d\u2060\ufe00-\ufe0f\ufeff]/gu;
// Control characters are prohibited by both profiles (RFC 3454 C.2, RFC 8264 §9.12).
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/u;

/** RFC 8265 §4.2 OpaqueString (enforcement): non-ASCII spaces → U+0020, then NFC. */
export function opaqueString(text: string): string {
  const out = text.replace(NON_ASCII_SPACE, ' ').normalize('NFC');
  if (out.length === 0 || CONTROL.test(out)) {
    throw new NatkitError('ERR_INVALID_ARGUMENT', 'expected a non-empty string without control characters');
  }
  return out;
}

/** RFC 4013 SASLprep as RFC 5389 peers apply it: map (B.1, C.1.2), NFKC, prohibit controls. */
export function saslprep(text: string): string {
  const out = text.replace(MAPPED_TO_NOTHING, '').replace(NON_ASCII_SPACE, ' ').normalize('NFKC');
  if (CONTROL.test(out)) throw new NatkitError('ERR_INVALID_ARGUMENT', 'expected a string without control characters');
  return out;
}

/** Short-term key: the prepared password itself (RFC 8489 §9.1.1). */
export function shortTermKey(password: string): Uint8Array {
  return utf8.encode(opaqueString(password));
}

/** Long-term credential inputs. */
export interface LongTermCredentials {
  readonly username: string;
  readonly realm: string;
  readonly password: string;
  /** A PasswordAlgorithm number. @default PasswordAlgorithm.MD5 */
  readonly algorithm?: number;
  /**
   * Password preparation: 'opaque' (RFC 8489) or 'saslprep' (RFC 5389 peers), or
   * 'none' when the caller already prepared it. @default 'opaque'
   */
  readonly prepare?: 'opaque' | 'saslprep' | 'none';
}

/** key = H(username ":" realm ":" password), H = MD5 or SHA-256 (RFC 8489 §9.2.2). */
export function longTermKey(c: LongTermCredentials): Uint8Array {
  const prep = c.prepare === 'saslprep' ? saslprep : c.prepare === 'none' ? (s: string) => s : opaqueString;
  const algorithm = c.algorithm ?? PasswordAlgorithm.MD5;
  const hash = algorithm === PasswordAlgorithm.MD5 ? 'md5' : algorithm === PasswordAlgorithm.SHA256 ? 'sha256' : undefined;
  if (hash === undefined) throw new NatkitError('ERR_INVALID_ARGUMENT', `password algorithm: expected 1 (MD5) or 2 (SHA-256), got ${algorithm}`);
  return createHash(hash).update(`${c.username}:${prep(c.realm)}:${prep(c.password)}`, 'utf8').digest();
}

/** USERHASH = SHA-256(OpaqueString(username) ":" OpaqueString(realm)) (RFC 8489 §14.4). */
export function userhash(username: string, realm: string): Uint8Array {
  return createHash('sha256').update(`${opaqueString(username)}:${opaqueString(realm)}`, 'utf8').digest();
}
