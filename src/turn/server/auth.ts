// Long-term credentials for TURN: RFC 8489 §9.2 (401 challenge with REALM, NONCE and
// PASSWORD-ALGORITHMS; §9.2.4 checks on receipt; 438 for stale nonces; USERHASH §14.4)
// as RFC 8656 §5 requires, and the TURN REST API's time-limited credentials
// (draft-uberti-behave-turn-rest-00 §2.2: username "expiry:user", password =
// base64(HMAC-SHA1(secret, username))). Nonces carry their own expiry and the client's
// address, signed with a per-process secret: the server keeps no nonce table.
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { Random } from '../../net/index.ts';
import { NatkitError } from '../../util/index.ts';
import { ByteWriter } from '../../wire/index.ts';
import {
  MESSAGE_INTEGRITY, MESSAGE_INTEGRITY_SHA256, NONCE, PASSWORD_ALGORITHM, PASSWORD_ALGORITHMS, PasswordAlgorithm, REALM, USERHASH,
  USERNAME, checkIntegrity, longTermKey, userhash, type PasswordAlgorithmEntry, type StunMessage,
} from '../../stun/index.ts';

/**
 * RFC 8489 §9.2 nonce cookie: "obMatJos2" then the 24-bit security feature set in base64;
 * 0xC00000 sets "Password algorithms" and "Username anonymity" (§18.1).
 */
const NONCE_COOKIE = 'obMatJos2wAAA';
/** Bytes of the nonce's expiry (milliseconds on the driver's clock) and of its truncated MAC. */
const EXPIRY_BYTES = 6;
const MAC_BYTES = 12;

/** What the server offers, preferred first (RFC 8489 §14.11). */
export const OFFERED_ALGORITHMS: readonly PasswordAlgorithmEntry[] = [
  { algorithm: PasswordAlgorithm.SHA256, parameters: new Uint8Array(0) },
  { algorithm: PasswordAlgorithm.MD5, parameters: new Uint8Array(0) },
];

/**
 * A static user's secret: the password, or the MD5 long-term key itself (RFC 8489 §9.2.2,
 * coturn's `name:0x<hex>` users), which serves MD5 only: a client that picks SHA-256
 * (§9.2.4 PASSWORD-ALGORITHM) gets 401.
 */
export type TurnUserSecret = string | { readonly md5Key: Uint8Array };

/** Authentication settings of the TURN server. */
export interface TurnAuthOptions {
  /** REALM (RFC 8489 §14.9). */
  readonly realm: string;
  /** Static users: username → password or key. @default {} */
  readonly users?: Readonly<Record<string, TurnUserSecret>>;
  /**
   * TURN REST API shared secrets; every one is tried, so a rotation lists the new secret
   * and the old one until the old credentials expire. @default []
   */
  readonly sharedSecrets?: readonly string[];
  /** How long a nonce stays fresh. @default 600 */
  readonly nonceLifetimeS?: number;
  /**
   * Unix time in milliseconds when the driver's clock reads 0 (`Date.now() - clock.now()`):
   * REST API usernames carry a Unix expiry. @default 0
   */
  readonly epochOffsetMs?: number;
}

/** The key a request was checked with, to sign its response; SHA-256 when it used MESSAGE-INTEGRITY-SHA256. */
export interface SigningKey {
  readonly key: Uint8Array;
  readonly sha256: boolean;
}

/** The outcome of checking a request's credentials. */
export type AuthResult =
  | ({ readonly kind: 'ok'; readonly username: string } & SigningKey)
  /**
   * 401 (challenge, unknown user, bad MAC), 438 (stale nonce): answer with REALM, a fresh
   * NONCE and the algorithms; a 438 is `signed` with the key the request proved (§9.2.4).
   */
  | { readonly kind: 'challenge'; readonly code: 401 | 438; readonly reason: string; readonly signed?: SigningKey }
  /** 400: the request is malformed for authentication (RFC 8489 §9.2.4). */
  | { readonly kind: 'bad'; readonly reason: string };

/** Checks long-term credentials and mints nonces; pure apart from the secret drawn at construction. */
export class TurnAuthenticator {
  readonly realm: string;
  private users: ReadonlyMap<string, TurnUserSecret> = new Map();
  /** USERHASH → username, for the static users (RFC 8489 §14.4). */
  private byHash: ReadonlyMap<string, string> = new Map();
  private readonly sharedSecrets: readonly string[];
  private readonly nonceLifetimeMs: number;
  private readonly epochOffsetMs: number;
  private readonly secret: Uint8Array;

  constructor(options: TurnAuthOptions, random: Random) {
    this.realm = options.realm;
    // Encode once now so a REALM over the RFC 8489 §14.9 limits fails at startup.
    REALM.encode(this.realm, new ByteWriter(), { transactionId: new Uint8Array(12) });
    this.setUsers(options.users ?? {});
    this.sharedSecrets = options.sharedSecrets ?? [];
    const lifetime = options.nonceLifetimeS ?? 600;
    if (!(lifetime > 0)) throw new NatkitError('ERR_CONFIG', `nonceLifetimeS: expected a positive number, got ${lifetime}`);
    this.nonceLifetimeMs = lifetime * 1000;
    this.epochOffsetMs = options.epochOffsetMs ?? 0;
    this.secret = random.bytes(32);
  }

  /** Replaces the static users (a reloaded users file); allocations made under removed users live on until they end. */
  setUsers(users: Readonly<Record<string, TurnUserSecret>>): void {
    this.users = new Map(Object.entries(users));
    this.byHash = new Map([...this.users.keys()].map((u) => [Buffer.from(userhash(u, this.realm)).toString('hex'), u]));
  }

  /** A fresh nonce for a client at `address`, valid until now + nonceLifetimeS. */
  nonce(address: string, now: number): string {
    const payload = Buffer.alloc(EXPIRY_BYTES);
    payload.writeUIntBE(Math.max(0, Math.floor(now + this.nonceLifetimeMs)), 0, EXPIRY_BYTES);
    return NONCE_COOKIE + Buffer.concat([payload, this.mac(payload, address)]).toString('base64url');
  }

  /**
   * RFC 8489 §9.2.4, in its order: the stale-nonce check comes last, so only a client that
   * proved its credentials learns that its nonce expired (and the 438 can carry integrity).
   * USERHASH resolves only static users. Throws StunDecodeError for malformed attributes.
   */
  check(msg: StunMessage, address: string, now: number): AuthResult {
    if (!msg.has(MESSAGE_INTEGRITY) && !msg.has(MESSAGE_INTEGRITY_SHA256)) return { kind: 'challenge', code: 401, reason: 'Unauthenticated' };
    const name = msg.get(USERNAME);
    const hash = name === undefined ? msg.get(USERHASH) : undefined;
    const nonce = msg.get(NONCE);
    if ((name === undefined && hash === undefined) || !msg.has(REALM) || nonce === undefined) {
      return { kind: 'bad', reason: 'Bad Request: integrity without USERNAME or USERHASH, REALM and NONCE' };
    }
    const algorithm = this.algorithm(msg);
    if (algorithm === undefined) return { kind: 'bad', reason: 'Bad Request: PASSWORD-ALGORITHM(S) do not match the offer' };
    const username = name ?? (hash && this.byHash.get(Buffer.from(hash).toString('hex')));
    if (username === undefined) return { kind: 'challenge', code: 401, reason: 'Unauthenticated' };
    const sha256 = msg.has(MESSAGE_INTEGRITY_SHA256);
    for (const key of this.keys(username, algorithm, now)) {
      if (checkIntegrity(msg, key) !== 'ok') continue;
      if (!this.fresh(nonce, address, now)) return { kind: 'challenge', code: 438, reason: 'Stale Nonce', signed: { key, sha256 } };
      return { kind: 'ok', username, key, sha256 };
    }
    return { kind: 'challenge', code: 401, reason: 'Unauthenticated' };
  }

  /** Candidate keys: the static user's, else one per shared secret while the REST username is unexpired. */
  private keys(username: string, algorithm: number, now: number): Uint8Array[] {
    const key = (password: string): Uint8Array => longTermKey({ username, realm: this.realm, password, algorithm });
    const secret = this.users.get(username);
    if (typeof secret === 'string') return [key(secret)];
    if (secret !== undefined) return algorithm === PasswordAlgorithm.MD5 ? [secret.md5Key] : [];
    const expiry = /^(\d{1,12}):/.exec(username);
    if (expiry === null || Number(expiry[1]) * 1000 <= this.epochOffsetMs + now) return [];
    return this.sharedSecrets.map((s) => key(createHmac('sha1', s).update(username, 'utf8').digest('base64')));
  }

  /**
   * RFC 8489 §9.2.4: neither PASSWORD-ALGORITHMS nor PASSWORD-ALGORITHM means MD5; otherwise
   * both must be there, the list must be the one we offered, and the choice one of it.
   */
  private algorithm(msg: StunMessage): number | undefined {
    const list = msg.get(PASSWORD_ALGORITHMS);
    const chosen = msg.get(PASSWORD_ALGORITHM);
    if (list === undefined && chosen === undefined) return PasswordAlgorithm.MD5;
    if (list === undefined || chosen === undefined) return undefined;
    const same = list.length === OFFERED_ALGORITHMS.length && list.every((e, i) => e.algorithm === OFFERED_ALGORITHMS[i]!.algorithm && e.parameters.length === 0);
    return same && OFFERED_ALGORITHMS.some((e) => e.algorithm === chosen.algorithm) ? chosen.algorithm : undefined;
  }

  private fresh(nonce: string, address: string, now: number): boolean {
    if (!nonce.startsWith(NONCE_COOKIE)) return false;
    const body = Buffer.from(nonce.slice(NONCE_COOKIE.length), 'base64url');
    if (body.length !== EXPIRY_BYTES + MAC_BYTES) return false;
    const payload = body.subarray(0, EXPIRY_BYTES);
    return timingSafeEqual(body.subarray(EXPIRY_BYTES), this.mac(payload, address)) && payload.readUIntBE(0, EXPIRY_BYTES) > now;
  }

  private mac(payload: Uint8Array, address: string): Buffer {
    return createHmac('sha256', this.secret).update(payload).update(address, 'utf8').digest().subarray(0, MAC_BYTES);
  }
}
