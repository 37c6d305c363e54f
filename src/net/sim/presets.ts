// The classic NAT types (RFC 3489 §5, the seed's table) as sets of RFC 4787 knobs. The
// RFC 4787 words are the model; these names are labels, matching natkit/nat's ClassicType.
import type { NatOptions } from './nat.ts';

/** Names of the classic presets (the RFC 3489 outcomes). */
export type NatPresetName =
  | 'open-internet'
  | 'full-cone'
  | 'restricted-cone'
  | 'port-restricted-cone'
  | 'symmetric'
  | 'symmetric-udp-firewall'
  | 'udp-blocked';

/**
 * Each classic type in RFC 4787 terms. Spread one and override a knob for a variant:
 * `{ ...NAT_PRESETS.symmetric, portAllocation: { kind: 'sequential', step: 1 } }`.
 */
export const NAT_PRESETS: Readonly<Record<NatPresetName, NatOptions>> = Object.freeze({
  /** No translation, no filtering. */
  'open-internet': { kind: 'open' },
  /** EIM + EIF. */
  'full-cone': { kind: 'nat', mapping: 'endpoint-independent', filtering: 'endpoint-independent', portAllocation: { kind: 'preserving' } },
  /** EIM + ADF. */
  'restricted-cone': { kind: 'nat', mapping: 'endpoint-independent', filtering: 'address-dependent', portAllocation: { kind: 'preserving' } },
  /** EIM + APDF (Linux masquerade). */
  'port-restricted-cone': { kind: 'nat', mapping: 'endpoint-independent', filtering: 'address-and-port-dependent', portAllocation: { kind: 'preserving' } },
  /** APDM + APDF with random ports (Linux `masquerade fully-random`). */
  symmetric: { kind: 'nat', mapping: 'address-and-port-dependent', filtering: 'address-and-port-dependent', portAllocation: { kind: 'random' } },
  /** Public addresses, APDF: only answers to what was sent get in. */
  'symmetric-udp-firewall': { kind: 'firewall', filtering: 'address-and-port-dependent' },
  /** UDP dropped both ways behind a port-restricted NAT; TCP passes. */
  'udp-blocked': { kind: 'nat', mapping: 'endpoint-independent', filtering: 'address-and-port-dependent', blockUdp: true },
});
