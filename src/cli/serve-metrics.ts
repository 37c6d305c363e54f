// The STUN and rendezvous counters of `natkit serve` in the Prometheus text format, next
// to TURN's renderMetrics() in one exposition. Labels come from fixed sets only (drop
// reasons, error names, connection events), so the series count is bounded.
import { RENDEZVOUS_DROPS, type RendezvousServerStats } from '../rendezvous/index.ts';
import { DROP_REASONS, type StunServerStats } from '../stun/index.ts';
import { connectionFamilies, metric, renderFamilies } from '../util/index.ts';

/** `natkit_stun_*`: Binding answers, errors and drops of the STUN server. */
export function renderStunMetrics(s: StunServerStats): string {
  return renderFamilies('natkit_stun_', [
    metric('received_total', 'counter', 'STUN messages handled.', s.received),
    metric('success_total', 'counter', 'Binding success responses.', s.success),
    metric('legacy_total', 'counter', 'Of those, to RFC 3489 clients.', s.legacy),
    metric('changed_total', 'counter', 'Successes sent from the other address or port (CHANGE-REQUEST, RFC 5780).', s.changed),
    {
      name: 'error_responses_total', type: 'counter', help: 'Error responses, by code.',
      samples: [[{ code: '400' }, s.badRequest], [{ code: '420' }, s.unknownAttribute]],
    },
    { name: 'dropped_total', type: 'counter', help: 'Inputs not answered, by reason.', samples: DROP_REASONS.map((reason) => [{ reason }, s.dropped[reason]]) },
    metric('send_errors_total', 'counter', 'UDP sends refused on the STUN sockets (in natkit serve: the shared ones, whoever sent).', s.sendErrors),
    metric('internal_errors_total', 'counter', 'Unexpected failures caught.', s.internalErrors),
    ...connectionFamilies(s.streams, ['accepted', 'refused', 'idleClosed', 'garbageClosed', 'slowClosed', 'plainClosed', 'errored']),
  ]);
}

/** `natkit_rendezvous_*`: registrations, introductions, errors and drops of the rendezvous server. */
export function renderRendezvousMetrics(s: RendezvousServerStats, registrations: number): string {
  return renderFamilies('natkit_rendezvous_', [
    metric('registrations', 'gauge', 'Live registrations.', registrations),
    metric('received_total', 'counter', 'Frames handled, UDP and TCP.', s.received),
    metric('challenges_total', 'counter', 'CHALLENGE answers to HELLO.', s.challenges),
    {
      name: 'registrations_total', type: 'counter', help: 'Registrations accepted, by kind.',
      samples: [[{ kind: 'new' }, s.registered], [{ kind: 'renewed' }, s.reregistered]],
    },
    metric('keepalives_total', 'counter', 'KEEPALIVE frames answered.', s.keepalives),
    metric('expired_total', 'counter', 'Leases that ended without keepalive.', s.expired),
    metric('unregistered_total', 'counter', 'Registrations ended by UNREGISTER (the peer closed).', s.unregistered),
    {
      name: 'requests_total', type: 'counter', help: 'Introduction requests, by kind.',
      samples: [[{ kind: 'connect' }, s.connects], [{ kind: 'join' }, s.joins]],
    },
    metric('punch_orders_total', 'counter', 'PUNCH orders sent (two per introduction).', s.punchOrders),
    {
      name: 'errors_total', type: 'counter', help: 'ERROR answers, by code name.',
      samples: Object.entries(s.errors).map(([code, n]) => [{ code }, n]),
    },
    { name: 'dropped_total', type: 'counter', help: 'Frames not answered, by reason.', samples: RENDEZVOUS_DROPS.map((reason) => [{ reason }, s.dropped[reason]]) },
    metric('internal_errors_total', 'counter', 'Unexpected failures caught.', s.internalErrors),
    ...connectionFamilies(s.streams, ['accepted', 'refused', 'idleClosed', 'garbageClosed', 'slowClosed', 'errored']),
  ]);
}
