// Counters of the rendezvous server core: every input is counted once in `received` and
// ends answered, in an error, or dropped for one reason.
import { ERROR_CODES, type RendezvousErrorCode } from './codec.ts';

/** Why an input got no answer. */
export type RendezvousDrop =
  /** Over the per-source budget. */
  | 'rate-limited'
  /** Not a rendezvous frame, or a header too broken to address an answer. */
  | 'malformed'
  /** A message a server never receives (CHALLENGE, PUNCH, …). */
  | 'unexpected'
  /** HELLO shorter than the CHALLENGE it asks for (it must pad itself). */
  | 'hello-too-small'
  /** An ERROR answer would be larger than the input. */
  | 'amplification';

export const RENDEZVOUS_DROPS: readonly RendezvousDrop[] = ['rate-limited', 'malformed', 'unexpected', 'hello-too-small', 'amplification'];

/** Counters of the core; the driver adds transport counters around them. */
export interface RendezvousStats {
  /** Inputs handled: datagrams and stream frames. */
  received: number;
  challenges: number;
  /** New names registered. */
  registered: number;
  /** Registrations renewed by their own key (restart, new address). */
  reregistered: number;
  keepalives: number;
  /** Leases that ended without keepalive. */
  expired: number;
  /** Registrations their holder ended with UNREGISTER. */
  unregistered: number;
  connects: number;
  joins: number;
  /** PUNCH frames produced (two per introduction). */
  punchOrders: number;
  /** ERROR answers by code. */
  errors: Record<Exclude<RendezvousErrorCode, 'unknown'>, number>;
  dropped: Record<RendezvousDrop, number>;
}

/** Fresh zeroed counters. */
export function createRendezvousStats(): RendezvousStats {
  return {
    received: 0, challenges: 0, registered: 0, reregistered: 0, keepalives: 0, expired: 0, unregistered: 0, connects: 0, joins: 0, punchOrders: 0,
    errors: Object.fromEntries(Object.keys(ERROR_CODES).map((c) => [c, 0])) as RendezvousStats['errors'],
    dropped: Object.fromEntries(RENDEZVOUS_DROPS.map((r) => [r, 0])) as Record<RendezvousDrop, number>,
  };
}
