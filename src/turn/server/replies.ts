// Replies of the TURN core and the shapes of its inputs and outputs: RFC 8489 §6.3.1.1
// (success and error responses echo the method and transaction ID), §9.2.4 (401/438 carry
// REALM, NONCE and PASSWORD-ALGORITHMS without integrity; every later response carries
// the request's MESSAGE-INTEGRITY or -SHA256), §14.7 (FINGERPRINT when the request had one).
import type { Endpoint } from '../../net/index.ts';
import {
  ERROR_CODE, NONCE, PASSWORD_ALGORITHMS, REALM, SOFTWARE, StunClass, attr, encodeMessage, type AttrEntry, type StunMessage,
} from '../../stun/index.ts';
import { TURN_REASON_PHRASES, type TurnErrorCode } from '../constants.ts';
import type { FiveTuple } from './allocation.ts';
import { OFFERED_ALGORITHMS, type SigningKey, type TurnAuthenticator } from './auth.ts';
import type { TurnDropReason, TurnServerCoreStats } from './stats.ts';

/** STUN errors the core answers with besides the TURN ones. */
export type CoreErrorCode = TurnErrorCode | 400 | 401 | 420;

const REASONS: Readonly<Record<number, string>> = { ...TURN_REASON_PHRASES, 400: 'Bad Request', 401: 'Unauthenticated', 420: 'Unknown Attribute' };

/** The reason phrase of a code the core answers with. */
export function reasonOf(code: CoreErrorCode): string {
  return REASONS[code] ?? 'Error';
}

/** A message from a client on its 5-tuple. */
export interface TurnClientInput extends FiveTuple {
  /** One datagram, or one frame of a stream (a STUN message or a padded ChannelData). */
  readonly data: Uint8Array;
  /** Monotonic milliseconds (Clock.now()). */
  readonly now: number;
}

/** A datagram a peer sent to a relayed transport address. */
export interface TurnPeerInput {
  readonly data: Uint8Array;
  readonly peer: Endpoint;
  readonly relayed: Endpoint;
  readonly now: number;
}

/** Bytes for the client on its 5-tuple (a response, Data indication or ChannelData). */
export interface ToClient {
  readonly kind: 'client';
  readonly to: FiveTuple;
  readonly data: Uint8Array;
}

/** A datagram for a peer, sent from a relayed transport address. `data` may be a view into the input. */
export interface ToPeer {
  readonly kind: 'peer';
  readonly from: Endpoint;
  readonly to: Endpoint;
  readonly data: Uint8Array;
  /** Set the DF bit (RFC 8656 §10.2, §12.5). */
  readonly dontFragment: boolean;
}

/** What the core decided for one input: one output, a keepalive, or a drop reason. */
export interface TurnResult {
  readonly output?: ToClient | ToPeer;
  /** The code of an error response. */
  readonly errorCode?: number;
  /** A Binding indication: the client's keepalive, which gets nothing back (RFC 8489 §6.3.2). */
  readonly keepalive?: true;
  readonly drop?: TurnDropReason;
}

/** A request that passed authentication. */
export interface Authed extends SigningKey {
  readonly input: TurnClientInput;
  readonly msg: StunMessage;
  readonly username: string;
}

/** Builds and counts the core's responses. */
export class Replies {
  private readonly software: string | undefined;
  private readonly stats: TurnServerCoreStats;
  private readonly auth: TurnAuthenticator;

  constructor(software: string | undefined, stats: TurnServerCoreStats, auth: TurnAuthenticator) {
    this.software = software;
    this.stats = stats;
    this.auth = auth;
  }

  /** 401 or 438 with REALM, a fresh NONCE and PASSWORD-ALGORITHMS, without integrity (RFC 8489 §9.2.4). */
  challenge(input: TurnClientInput, msg: StunMessage, code: 401 | 438, reason: string, signed?: SigningKey): TurnResult {
    return this.error(input, msg, code, reason, signed, [
      attr(REALM, this.auth.realm),
      attr(NONCE, this.auth.nonce(input.client.address, input.now)),
      attr(PASSWORD_ALGORITHMS, OFFERED_ALGORITHMS),
    ]);
  }

  /** An error response; integrity-protected when the request authenticated (RFC 8489 §9.2.4). */
  error(
    input: TurnClientInput, msg: StunMessage, code: CoreErrorCode, reason: string | undefined, signed?: SigningKey, extra: readonly AttrEntry[] = [],
  ): TurnResult {
    const attributes = [attr(ERROR_CODE, { code, reason: (reason ?? reasonOf(code)).slice(0, 128) }), ...extra];
    this.stats.errors[code] = (this.stats.errors[code] ?? 0) + 1;
    return { ...this.respond(input, msg, StunClass.ERROR, attributes, signed), errorCode: code };
  }

  /** A response of class `cls` with `attributes` (and SOFTWARE). */
  respond(input: TurnClientInput, msg: StunMessage, cls: StunClass, attributes: readonly AttrEntry[], signed?: SigningKey): TurnResult {
    return this.bytes(input, this.encode(msg, cls, attributes, signed));
  }

  /** The bytes of a response to `msg`. */
  encode(msg: StunMessage, cls: StunClass, attributes: readonly AttrEntry[], signed?: SigningKey): Uint8Array {
    const all = this.software === undefined ? attributes : [...attributes, attr(SOFTWARE, this.software)];
    return encodeMessage(
      { method: msg.method, cls, transactionId: msg.transactionId, attributes: all },
      {
        fingerprint: msg.has(0x8028),
        ...(signed !== undefined && { key: signed.key, integrity: signed.sha256 ? 'sha256' : 'sha1' }),
      },
    );
  }

  /** `data` as a reply to the client on the input's 5-tuple. */
  bytes(input: TurnClientInput, data: Uint8Array): TurnResult {
    this.stats.replies++;
    return { output: { kind: 'client', to: { client: input.client, server: input.server, transport: input.transport }, data } };
  }
}
