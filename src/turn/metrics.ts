// The TURN server's counters in the Prometheus text exposition format (version 0.0.4).
// Label values come from fixed sets only (direction, drop reason, error code, end of an
// allocation, stream event): no user names or addresses, so the series count is bounded.
import { connectionFamilies, metric, renderFamilies, type MetricFamily } from '../util/index.ts';
import { TURN_DROP_REASONS, type TurnServerStats } from './server/index.ts';

const PREFIX = 'natkit_turn_';

/** Renders `stats` (TurnServer.stats) as Prometheus text: content type `text/plain; version=0.0.4`. */
export function renderMetrics(stats: TurnServerStats): string {
  const families: MetricFamily[] = [
    metric('allocations', 'gauge', 'Live allocations.', stats.allocations),
    metric('permissions', 'gauge', 'Live permissions over all allocations.', stats.permissions),
    metric('channels', 'gauge', 'Live channel bindings over all allocations.', stats.channels),
    {
      name: 'relay_sockets', type: 'gauge', help: 'Relay sockets held by allocations and bound ahead.',
      samples: [[{ state: 'in-use' }, stats.relay.inUse], [{ state: 'spare' }, stats.relay.spare]],
    },
    metric('allocations_created_total', 'counter', 'Allocations created.', stats.allocationsCreated),
    {
      name: 'allocations_ended_total', type: 'counter', help: 'Allocations ended, by how.',
      samples: [
        [{ reason: 'refresh-0' }, stats.allocationsDeleted],
        [{ reason: 'expired' }, stats.allocationsExpired],
        [{ reason: 'disconnected' }, stats.allocationsDisconnected],
      ],
    },
    {
      name: 'relayed_packets_total', type: 'counter', help: 'Datagrams relayed, by direction.',
      samples: [[{ direction: 'to-peer' }, stats.toPeerPackets], [{ direction: 'to-client' }, stats.toClientPackets]],
    },
    {
      name: 'relayed_bytes_total', type: 'counter', help: 'Application bytes relayed, by direction.',
      samples: [[{ direction: 'to-peer' }, stats.toPeerBytes], [{ direction: 'to-client' }, stats.toClientBytes]],
    },
    metric('received_total', 'counter', 'Client messages and peer datagrams handled.', stats.received),
    metric('responses_total', 'counter', 'Responses sent to clients.', stats.replies),
    metric('keepalives_total', 'counter', 'Binding indications from clients (keepalives, never answered).', stats.keepalives),
    {
      name: 'error_responses_total', type: 'counter', help: 'Error responses, by code.',
      samples: Object.entries(stats.errors).sort(([a], [b]) => Number(a) - Number(b)).map(([code, n]) => [{ code }, n]),
    },
    metric('auth_failures_total', 'counter', 'Requests whose credentials failed (401 with MESSAGE-INTEGRITY).', stats.authFailures),
    metric('peer_denied_total', 'counter', 'Permissions and channels refused by the peer policy (403).', stats.errors[403] ?? 0),
    {
      name: 'dropped_total', type: 'counter', help: 'Inputs neither answered nor relayed, by reason.',
      samples: TURN_DROP_REASONS.map((reason) => [{ reason }, stats.dropped[reason]]),
    },
    metric('relay_bind_failures_total', 'counter', 'Relay socket binds that failed.', stats.relay.bindFailures),
    metric('relay_exhausted_total', 'counter', 'Allocations refused for want of a bound relay socket.', stats.relay.exhausted),
    metric('send_errors_total', 'counter', 'UDP sends refused, client-facing and relay sockets.', stats.sendErrors + stats.relay.sendErrors),
    metric('internal_errors_total', 'counter', 'Unexpected failures caught.', stats.internalErrors),
    ...connectionFamilies(stats.streams, ['accepted', 'refused', 'idleClosed', 'garbageClosed', 'slowClosed', 'errored']),
  ];
  return renderFamilies(PREFIX, families);
}
