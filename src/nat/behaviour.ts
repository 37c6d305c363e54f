// What a NAT does, in RFC 4787's words (§4.1 mapping, §4.3 port assignment, §5
// filtering, §6 hairpinning, §4.3 mapping refresh), and the classic RFC 3489 §5 labels
// derived from them for display. Pure: the discovery driver measures, this names.

/** RFC 4787 §4.1 mapping and §5 filtering behaviours; 'unknown' when not measurable. */
export type Behaviour = 'endpoint-independent' | 'address-dependent' | 'address-and-port-dependent' | 'unknown';

/** The classic RFC 3489 §5 / §10.1 outcomes (the seed's table), plus 'unknown'. */
export type ClassicType =
  | 'udp-blocked'
  | 'open-internet'
  | 'symmetric-udp-firewall'
  | 'full-cone'
  | 'restricted-cone'
  | 'port-restricted-cone'
  | 'symmetric'
  | 'unknown';

/** How the NAT picks external ports (RFC 4787 §4.2.1 port preservation, §4.2.2 ranges). */
export type PortAllocation =
  | { readonly kind: 'preserving' }
  | { readonly kind: 'sequential'; readonly step: number }
  | { readonly kind: 'random' }
  | { readonly kind: 'unknown' };

/** A display name for each classic type. */
export const CLASSIC_NAMES: Readonly<Record<ClassicType, string>> = {
  'udp-blocked': 'UDP blocked',
  'open-internet': 'Open internet',
  'symmetric-udp-firewall': 'Symmetric UDP firewall',
  'full-cone': 'Full cone NAT',
  'restricted-cone': 'Restricted cone NAT',
  'port-restricted-cone': 'Port-restricted cone NAT',
  symmetric: 'Symmetric NAT',
  unknown: 'Unknown',
};

/** What the classic label is derived from. */
export interface ClassicInputs {
  /** Any answer came back over UDP. */
  readonly udp: boolean;
  /** The mapped address differs from the socket's own; undefined when not known. */
  readonly natted: boolean | undefined;
  readonly mapping: Behaviour;
  readonly filtering: Behaviour;
}

/**
 * The RFC 3489 §10.1 decision tree expressed in RFC 4787 terms: without NAT, filtering
 * tells open internet from a symmetric UDP firewall; behind one, a mapping that depends
 * on the destination is "symmetric", else filtering picks the cone.
 */
export function classicType(i: ClassicInputs): ClassicType {
  if (!i.udp) return 'udp-blocked';
  if (i.natted === undefined) return 'unknown';
  if (!i.natted) {
    if (i.filtering === 'unknown') return 'unknown';
    return i.filtering === 'endpoint-independent' ? 'open-internet' : 'symmetric-udp-firewall';
  }
  if (i.mapping === 'unknown') return 'unknown';
  if (i.mapping !== 'endpoint-independent') return 'symmetric';
  switch (i.filtering) {
    case 'endpoint-independent':
      return 'full-cone';
    case 'address-dependent':
      return 'restricted-cone';
    case 'address-and-port-dependent':
      return 'port-restricted-cone';
    default:
      return 'unknown';
  }
}

/** One observed mapping: the local port a socket used and the external port the NAT gave it, in the order they were made. */
export interface PortSample {
  readonly localPort: number;
  readonly mappedPort: number;
}

/** Largest difference between consecutive allocations still read as "sequential" (RFC 4787 §4.2.2 leaves the step to the NAT). */
const MAX_SEQUENTIAL_STEP = 16;

/**
 * Reads the allocation pattern from mappings made one after another: every external
 * port equal to its local port is preservation; one constant small difference between
 * consecutive external ports is a sequential allocator with that step; anything else
 * is random. Fewer than three samples say nothing about a sequence.
 */
export function portAllocation(samples: readonly PortSample[]): PortAllocation {
  if (samples.length === 0) return { kind: 'unknown' };
  if (samples.every((s) => s.localPort === s.mappedPort)) return { kind: 'preserving' };
  if (samples.length < 3) return { kind: 'unknown' };
  const steps = samples.slice(1).map((s, i) => s.mappedPort - samples[i]!.mappedPort);
  const [first] = steps;
  if (first !== undefined && first !== 0 && Math.abs(first) <= MAX_SEQUENTIAL_STEP && steps.every((d) => d === first)) return { kind: 'sequential', step: first };
  return { kind: 'random' };
}

/** What the advice is written from. */
export interface AdviceInputs extends ClassicInputs {
  readonly hairpinning: boolean | undefined;
  readonly allocation: PortAllocation;
  /** Longest idle time the mapping was seen to survive, seconds. */
  readonly bindingAliveS: number | undefined;
  /** Shortest idle time after which the mapping was seen gone, seconds. */
  readonly bindingExpiredS: number | undefined;
}

/** Plain-language consequences for someone who wants direct connections. */
export function advice(i: AdviceInputs): string[] {
  const out: string[] = [];
  const kind = classicType(i);
  if (kind === 'udp-blocked') {
    out.push('UDP does not get through: peers can reach you only through a relay over TCP or TLS (TURN on 443).');
    return out;
  }
  if (kind === 'open-internet') out.push('No NAT and no filtering: any peer can reach you directly.');
  if (kind === 'symmetric-udp-firewall') out.push('No NAT, but a firewall drops unsolicited UDP: hole punching works when both sides send first.');
  if (kind === 'full-cone' || kind === 'restricted-cone' || kind === 'port-restricted-cone') {
    out.push('Your mapping does not depend on the destination (RFC 4787 REQ-1): hole punching works with most peers.');
    if (i.filtering === 'address-and-port-dependent') out.push('Peers behind a symmetric NAT will need a relay to reach you.');
  }
  if (kind === 'symmetric') {
    out.push('Your NAT gives each destination its own port: direct connections with peers behind port-restricted or symmetric NATs need a relay.');
    if (i.allocation.kind === 'sequential') out.push(`Ports are allocated in steps of ${i.allocation.step}: port prediction may open a direct path to cone NATs.`);
    if (i.allocation.kind === 'random') out.push('Ports are random: only peers with endpoint-independent filtering can be reached directly.');
  }
  if (i.hairpinning === false) out.push('No hairpinning (RFC 4787 REQ-9): two peers behind this same NAT must use their LAN addresses to reach each other.');
  if (kind !== 'open-internet' && (i.bindingAliveS !== undefined || i.bindingExpiredS !== undefined)) {
    const alive = i.bindingAliveS ?? 0;
    // RFC 4787 REQ-5 wants at least 2 minutes; keepalives go below what was seen to survive.
    const keepalive = Math.max(1, Math.floor(Math.min(alive > 0 ? alive : (i.bindingExpiredS ?? 15) / 2, 120) * 0.8));
    out.push(`Idle mappings survive ${alive > 0 ? `at least ${alive} s` : 'less than the first check'}${i.bindingExpiredS !== undefined ? ` and are gone by ${i.bindingExpiredS} s` : ''}: send keepalives every ${keepalive} s.`);
  }
  return out;
}
