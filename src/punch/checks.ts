// Connectivity checks as ICE makes them (RFC 8445 §7.2): STUN Binding requests with
// short-term credentials (RFC 8489 §9.1: USERNAME "their-ufrag:our-ufrag",
// MESSAGE-INTEGRITY keyed with the receiver's password, FINGERPRINT), the role
// attributes and USE-CANDIDATE (RFC 8445 §7.1.1–§7.1.2, §16.1); and natkit's frames for
// application data and path control, whose first bytes RFC 7983 §7 leaves unassigned.
// Pure: encode and classify bytes; the engine keeps the transactions.
import { createHmac } from 'node:crypto';
import type { Endpoint } from '../net/index.ts';
import {
  BINDING, StunClass, StunDecodeError, USERNAME, XOR_MAPPED_ADDRESS, attr, checkFingerprint, checkIntegrity, decodeMessage,
  defineAttribute, encodeMessage, looksLikeStun, shortTermKey, transactionKey, type AttrCodec,
} from '../stun/index.ts';

/** RFC 8445 §16.1 USE-CANDIDATE (0x0025): the controlling agent nominates this pair; no value. */
export const USE_CANDIDATE = defineAttribute<true>({
  type: 0x0025,
  name: 'USE-CANDIDATE',
  encode: () => undefined,
  decode(r) {
    if (r.remaining !== 0) throw new StunDecodeError(`USE-CANDIDATE: expected no value, got ${r.remaining} bytes`, r.offset);
    return true;
  },
});

/** A 64-bit tie-breaker (RFC 8445 §16.1). */
function roleAttribute(type: number, name: string): AttrCodec<bigint> {
  return defineAttribute<bigint>({
    type,
    name,
    encode: (value, w) => void w.u64(value),
    decode(r) {
      if (r.remaining !== 8) throw new StunDecodeError(`${name}: expected 8 bytes, got ${r.remaining}`, r.offset);
      return r.u64(name);
    },
  });
}

/** RFC 8445 §16.1 ICE-CONTROLLED (0x8029). */
export const ICE_CONTROLLED = roleAttribute(0x8029, 'ICE-CONTROLLED');
/** RFC 8445 §16.1 ICE-CONTROLLING (0x802A). */
export const ICE_CONTROLLING = roleAttribute(0x802a, 'ICE-CONTROLLING');

/** First byte of application data frames (RFC 7983 §7: 192–255 unassigned; rendezvous takes 0xD0). */
export const FRAME_DATA = 0xd1;
/** First byte of path-control frames: the controlling side starts an upgrade round. */
export const FRAME_UPGRADE = 0xd2;

/** One side's short-term credentials (RFC 8445 §5.3: ufrag ≥ 4 characters, password ≥ 22). */
export interface IceCredentials {
  readonly ufrag: string;
  readonly password: string;
}

/** Both sides' credentials, as one side sees them. */
export interface PairCredentials {
  readonly local: IceCredentials;
  readonly remote: IceCredentials;
}

/** What the pair's credentials are derived from: the rendezvous PUNCH order's pair id and both peers' public keys. */
export interface PairSecretInputs {
  readonly pairId: Uint8Array;
  readonly localKey: Uint8Array;
  readonly remoteKey: Uint8Array;
}

/**
 * Credentials both peers derive alike from the pair id and their public keys: HMAC-SHA256
 * keyed with the pair id over a label and the side's key. They bind checks to one PUNCH
 * order; they prove no identity (anyone who saw the order could derive them), which is
 * the session layer's work.
 */
export function pairCredentials(inputs: PairSecretInputs): PairCredentials {
  const derive = (key: Uint8Array): IceCredentials => {
    const mac = (label: string): string => createHmac('sha256', inputs.pairId).update(label).update(key).digest('base64url');
    return { ufrag: mac('natkit ufrag').slice(0, 8), password: mac('natkit password').slice(0, 24) };
  };
  return { local: derive(inputs.localKey), remote: derive(inputs.remoteKey) };
}

/** A check request to encode. */
export interface CheckRequest {
  readonly transactionId: Uint8Array;
  readonly controlling: boolean;
  readonly tieBreaker: bigint;
  /** Nominate the pair (controlling side only). */
  readonly useCandidate: boolean;
}

/** Encodes a check to the remote side: USERNAME "remote:local", keyed with the remote password (RFC 8445 §7.2.2). */
export function encodeCheck(req: CheckRequest, creds: PairCredentials): Uint8Array {
  const attributes = [
    attr(USERNAME, `${creds.remote.ufrag}:${creds.local.ufrag}`),
    req.controlling ? attr(ICE_CONTROLLING, req.tieBreaker) : attr(ICE_CONTROLLED, req.tieBreaker),
    ...(req.useCandidate ? [attr(USE_CANDIDATE, true as const)] : []),
  ];
  return encodeMessage({ method: BINDING, cls: StunClass.REQUEST, transactionId: req.transactionId, attributes }, {
    key: shortTermKey(creds.remote.password), fingerprint: true,
  });
}

/** What an authenticated datagram was. */
export type Inbound =
  /** A check from the peer; answer it with `response`. */
  | { readonly kind: 'request'; readonly useCandidate: boolean; readonly response: Uint8Array }
  /** The answer to one of our checks. */
  | { readonly kind: 'response'; readonly transactionKey: string }
  | { readonly kind: 'data'; readonly payload: Uint8Array }
  | { readonly kind: 'upgrade' }
  /** Not ours, or failed authentication (RFC 8489 §9.1.3: discarded silently). */
  | { readonly kind: 'drop'; readonly reason: 'not-a-check' | 'bad-fingerprint' | 'bad-username' | 'bad-integrity' | 'malformed' };

/**
 * Classifies one datagram: checks with our ufrag and password are answered (RFC 8445
 * §7.3: a success response with XOR-MAPPED-ADDRESS, integrity with our password),
 * responses are checked with the remote password, frames are unwrapped.
 */
export function readInbound(data: Uint8Array, from: Endpoint, creds: PairCredentials): Inbound {
  const first = data[0];
  if (first === FRAME_DATA) return { kind: 'data', payload: data.subarray(1) };
  if (first === FRAME_UPGRADE && data.length === 1) return { kind: 'upgrade' };
  if (!looksLikeStun(data)) return { kind: 'drop', reason: 'not-a-check' };
  try {
    const msg = decodeMessage(Uint8Array.from(data), { allowLegacy: false });
    if (msg.method !== BINDING) return { kind: 'drop', reason: 'not-a-check' };
    // RFC 8445 §7.2.2: every check carries FINGERPRINT, which tells it from other STUN on the socket.
    if (checkFingerprint(msg) !== 'ok') return { kind: 'drop', reason: 'bad-fingerprint' };
    if (msg.cls === StunClass.REQUEST) {
      if (msg.get(USERNAME) !== `${creds.local.ufrag}:${creds.remote.ufrag}`) return { kind: 'drop', reason: 'bad-username' };
      const key = shortTermKey(creds.local.password);
      if (checkIntegrity(msg, key) !== 'ok') return { kind: 'drop', reason: 'bad-integrity' };
      const response = encodeMessage({
        method: BINDING, cls: StunClass.SUCCESS, transactionId: msg.transactionId, attributes: [attr(XOR_MAPPED_ADDRESS, from)],
      }, { key, fingerprint: true });
      return { kind: 'request', useCandidate: msg.has(USE_CANDIDATE), response };
    }
    if (msg.cls !== StunClass.SUCCESS) return { kind: 'drop', reason: 'not-a-check' };
    if (checkIntegrity(msg, shortTermKey(creds.remote.password)) !== 'ok') return { kind: 'drop', reason: 'bad-integrity' };
    return { kind: 'response', transactionKey: transactionKey(msg.transactionId) };
  } catch (err) {
    if (err instanceof StunDecodeError) return { kind: 'drop', reason: 'malformed' };
    throw err;
  }
}

/** An application datagram as it goes on the wire. */
export function dataFrame(payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(payload.length + 1);
  out[0] = FRAME_DATA;
  out.set(payload, 1);
  return out;
}

/** The upgrade frame: "start a round of direct checks now". */
export const UPGRADE_FRAME: Uint8Array = Uint8Array.of(FRAME_UPGRADE);
