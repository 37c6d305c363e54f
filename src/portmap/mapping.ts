// The mappings a PortMapper holds: a live view that the mapper updates as it renews
// (RFC 6886 §3.3, RFC 6887 §11.2.1), re-maps after a gateway reset (RFC 6886 §3.6,
// RFC 6887 §8.5) or loses a mapping; and the record a later process needs to renew or
// delete it (PCP's nonce, RFC 6887 §15).
import { NatkitError } from '../util/index.ts';
import type { MapProtocol } from './natpmp.ts';

/** The three port-mapping protocols. */
export type MapperProtocol = 'pcp' | 'natpmp' | 'upnp';

/** Every protocol, in PortMapper's default order: PCP (RFC 6887 §9 supersedes NAT-PMP), NAT-PMP, UPnP IGD. */
export const MAPPER_PROTOCOLS: readonly MapperProtocol[] = ['pcp', 'natpmp', 'upnp'];

/** A mapping as data: JSON-safe, enough for another process to renew or delete it. */
export interface MappingRecord {
  readonly via: MapperProtocol;
  readonly protocol: MapProtocol;
  readonly internalPort: number;
  /** Our LAN address: the mapping's internal client. */
  readonly internalClient: string;
  readonly externalAddress: string;
  readonly externalPort: number;
  /** Granted lifetime; 0 for a permanent UPnP lease. */
  readonly lifetimeS: number;
  /** PCP: the mapping's nonce in hex; refresh and delete repeat it (RFC 6887 §15). */
  readonly nonce?: string;
  /** UPnP: the description the entry carries in the router's table. */
  readonly description?: string;
}

/**
 * active: granted and renewed; lost: expired while renewals failed (still retried);
 * removed: deleted by unmap() or close(); released: left to expire, no longer renewed.
 */
export type MappingState = 'active' | 'lost' | 'removed' | 'released';

/** What onChange reports. */
export interface MappingChange {
  /**
   * changed: another external address or port; lost: expired without renewal (still
   * retried); restored: granted again after lost; failed: given up after maxLostAttempts.
   */
  readonly kind: 'changed' | 'lost' | 'restored' | 'failed';
  readonly mapping: Mapping;
  readonly previous: MappingRecord;
  /** Why a renewal failed (lost, failed). */
  readonly error?: unknown;
}

let update: (m: Mapping, record: MappingRecord, expiresAt: number, state: MappingState) => void;

/** A mapping the PortMapper made: its fields follow renewals. */
export class Mapping {
  /** Unique within its mapper. */
  readonly id: number;
  #record: MappingRecord;
  #expiresAt: number;
  #state: MappingState = 'active';

  static {
    update = (m, record, expiresAt, state) => {
      m.#record = record;
      m.#expiresAt = expiresAt;
      m.#state = state;
    };
  }

  constructor(id: number, record: MappingRecord, expiresAt: number) {
    this.id = id;
    this.#record = record;
    this.#expiresAt = expiresAt;
  }

  get via(): MapperProtocol {
    return this.#record.via;
  }

  get protocol(): MapProtocol {
    return this.#record.protocol;
  }

  get internalPort(): number {
    return this.#record.internalPort;
  }

  get externalAddress(): string {
    return this.#record.externalAddress;
  }

  get externalPort(): number {
    return this.#record.externalPort;
  }

  get lifetimeS(): number {
    return this.#record.lifetimeS;
  }

  /** Clock time (env.clock) the current grant ends; Infinity for a permanent UPnP lease. */
  get expiresAt(): number {
    return this.#expiresAt;
  }

  get state(): MappingState {
    return this.#state;
  }

  /** The current grant as data. */
  get record(): MappingRecord {
    return this.#record;
  }

  toJSON(): MappingRecord & { readonly id: number; readonly state: MappingState } {
    return { id: this.id, ...this.#record, state: this.#state };
  }
}

/** Sets a mapping's grant and state (the mapper's alone; not exported from the index). */
export function updateMapping(m: Mapping, record: MappingRecord, expiresAt: number, state: MappingState): void {
  update(m, record, expiresAt, state);
}

/** PCP nonces travel as hex in records. */
export function nonceHex(nonce: Uint8Array): string {
  return Array.from(nonce, (b) => b.toString(16).padStart(2, '0')).join('');
}

/** The nonce of a record; throws ERR_INVALID_ARGUMENT for anything but 24 hex digits (RFC 6887 §11.1: 96 bits). */
export function nonceBytes(hex: string): Uint8Array {
  if (!/^[0-9a-fA-F]{24}$/.test(hex)) throw new NatkitError('ERR_INVALID_ARGUMENT', `PCP nonce: expected 24 hex digits, got ${JSON.stringify(hex.slice(0, 40))}`);
  return Uint8Array.from({ length: 12 }, (_, i) => parseInt(hex.slice(2 * i, 2 * i + 2), 16));
}
