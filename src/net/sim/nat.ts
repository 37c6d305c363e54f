// A router's translation and filtering state, RFC 4787 (NAT behavioural requirements for
// UDP) with its knobs independent: §4.1 mapping, §4.2 port assignment, §4.3 mapping
// refresh, §5 filtering; hairpinning (§6) is decided by the router, which sees both sides.
// TCP uses the same knobs with RFC 5382's longer idle timeout. The table is a function
// of the packets it sees and the time passed in: no timers, expired entries go when met.
// One external address per family makes IP address pooling "paired" (REQ-2), and the
// knobs never change while the router runs (REQ-11, deterministic behaviour).
import { NatkitError } from '../../util/index.ts';
import { endpointKey } from '../endpoint.ts';
import type { Endpoint } from '../types.ts';
import type { SimProto } from './packet.ts';
import type { SimRandom } from './random.ts';
import type { DropReason } from './trace.ts';

/** RFC 4787 dependence of mapping (§4.1) or filtering (§5) on the remote endpoint. */
export type Dependence = 'endpoint-independent' | 'address-dependent' | 'address-and-port-dependent';

/** How a NAT picks the external port of a new mapping (RFC 4787 §4.2.1). */
export type PortAllocation =
  /** The internal port when free, else a random one ("port preservation"). */
  | { readonly kind: 'preserving' }
  /** Each new mapping takes the previous port + step (wrapping in portRange), skipping ports in use. */
  | { readonly kind: 'sequential'; readonly step?: number; readonly start?: number }
  /** Uniform over portRange, skipping ports in use. */
  | { readonly kind: 'random' };

/** What a router does to an address family. */
export type RouterKind =
  /** NAPT: rewrites the source to the router's address (RFC 4787 §4). */
  | 'nat'
  /** A stateful firewall without NAT: addresses kept, inbound filtered as configured. */
  | 'firewall'
  /** Forwards everything both ways. */
  | 'open';

/** A router's behaviour for one address family. Every field is an independent knob. */
export interface NatBehaviour {
  /** @default 'nat' */
  readonly kind: RouterKind;
  /** RFC 4787 §4.1; only for kind 'nat'. @default 'endpoint-independent' (REQ-1) */
  readonly mapping: Dependence;
  /** RFC 4787 §5; for 'nat' and 'firewall'. @default 'address-and-port-dependent' */
  readonly filtering: Dependence;
  /** RFC 4787 §4.2.1; only for kind 'nat'. @default { kind: 'preserving' } */
  readonly portAllocation: PortAllocation;
  /** External ports mappings take, inclusive. @default [1024, 65535] */
  readonly portRange: readonly [number, number];
  /** RFC 4787 §6: LAN hosts reach each other through the external address. @default false (stock Linux; REQ-9 asks for true) */
  readonly hairpinning: boolean;
  /** Idle time after which a UDP mapping goes (RFC 4787 §4.3), ms. @default 300000 (REQ-5c) */
  readonly mappingTimeoutMs: number;
  /** Idle time after which a TCP mapping goes, ms. @default 7440000 (RFC 5382 REQ-5: 2 h 4 min) */
  readonly tcpTimeoutMs: number;
  /** Inbound packets refresh the mapping (RFC 4787 REQ-6a; outbound always do, REQ-6). @default true */
  readonly refreshOnInbound: boolean;
  /** Drop every UDP packet both ways (TCP still passes). @default false */
  readonly blockUdp: boolean;
}

/** Any subset of the knobs; the rest keep their defaults. */
export type NatOptions = Partial<NatBehaviour>;

/** Linux masquerade's behaviour: a port-restricted cone that keeps ports. */
export const DEFAULT_BEHAVIOUR: NatBehaviour = Object.freeze({
  kind: 'nat',
  mapping: 'endpoint-independent',
  filtering: 'address-and-port-dependent',
  portAllocation: Object.freeze({ kind: 'preserving' }),
  portRange: Object.freeze<[number, number]>([1024, 65535]),
  hairpinning: false,
  mappingTimeoutMs: 300_000,
  tcpTimeoutMs: 7_440_000,
  refreshOnInbound: true,
  blockUdp: false,
});

/** The defaults with `options` over them, checked. */
export function resolveBehaviour(options: NatOptions = {}): NatBehaviour {
  const b: NatBehaviour = { ...DEFAULT_BEHAVIOUR, ...options };
  const [lo, hi] = b.portRange;
  if (!Number.isInteger(lo) || !Number.isInteger(hi) || lo < 1 || hi > 0xffff || lo > hi) {
    throw new NatkitError('ERR_INVALID_ARGUMENT', `portRange must be whole ports within 1–65535, low first, got [${lo}, ${hi}]`);
  }
  if (b.portAllocation.kind === 'sequential') {
    const step = b.portAllocation.step ?? 1;
    if (!Number.isInteger(step) || step < 1 || step > hi - lo + 1) {
      throw new NatkitError('ERR_INVALID_ARGUMENT', `sequential step must be a whole number within 1–${hi - lo + 1}, got ${step}`);
    }
  }
  for (const key of ['mappingTimeoutMs', 'tcpTimeoutMs'] as const) {
    if (!(b[key] > 0)) throw new NatkitError('ERR_INVALID_ARGUMENT', `${key} must be > 0, got ${b[key]}`);
  }
  return b;
}

/** One mapping (for 'firewall', one connection-tracking entry: external = internal). */
export interface Mapping {
  readonly proto: SimProto;
  readonly internal: Endpoint;
  readonly external: Endpoint;
  /** The remote the mapping was made for under address(-and-port)-dependent mapping. */
  readonly remote: string | undefined;
  readonly createdMs: number;
  /** Goes when the time passes this without a refresh. */
  readonly expiresMs: number;
  /** A port forward: open to anyone, kept until removed or its lifetime ends, never refreshed. */
  readonly isForward: boolean;
}

/** A mapping and its filtering state. */
interface Entry {
  proto: SimProto;
  internal: Endpoint;
  external: Endpoint;
  /** Keys of byKey that lead here. */
  keys: string[];
  remote: string | undefined;
  createdMs: number;
  expiresMs: number;
  isForward: boolean;
  /** RFC 4787 §5: the remote addresses and endpoints this mapping has sent to. */
  sentToAddresses: Set<string>;
  sentToEndpoints: Set<string>;
}

/** Result of translating an outbound packet. */
export type OutboundResult =
  | { readonly ok: true; readonly external: Endpoint; readonly created: boolean; readonly expired: boolean }
  | { readonly ok: false; readonly reason: DropReason; readonly detail: string };

/** Result of an inbound packet. */
export type InboundResult =
  | { readonly ok: true; readonly internal: Endpoint }
  | { readonly ok: false; readonly reason: DropReason; readonly detail: string };

/** Translation state of one router, one address family, one protocol. */
export class NatTable {
  private readonly behaviour: NatBehaviour;
  /** The router's external address; undefined for kind 'firewall' (no translation). */
  private readonly externalAddress: string | undefined;
  private readonly proto: SimProto;
  private readonly random: SimRandom;
  private readonly timeoutMs: number;
  private readonly byKey = new Map<string, Entry>();
  /** Port forwards by internal endpoint: their outbound traffic uses them whatever the mapping knob. */
  private readonly forwards = new Map<string, Entry>();
  private readonly byExternal = new Map<string, Entry>();
  private readonly usedPorts = new Set<number>();
  private nextSequential: number | undefined;

  constructor(init: { behaviour: NatBehaviour; externalAddress: string | undefined; proto: SimProto; random: SimRandom }) {
    this.behaviour = init.behaviour;
    this.externalAddress = init.externalAddress;
    this.proto = init.proto;
    this.random = init.random;
    this.timeoutMs = init.proto === 'tcp' ? init.behaviour.tcpTimeoutMs : init.behaviour.mappingTimeoutMs;
  }

  /** Finds or makes the mapping for `internal` → `remote` and records the remote for filtering. */
  outbound(internal: Endpoint, remote: Endpoint, nowMs: number): OutboundResult {
    const key = this.mappingKey(internal, remote);
    let entry = this.forwards.get(endpointKey(internal)) ?? this.byKey.get(key);
    let expired = false;
    if (entry !== undefined && this.isExpired(entry, nowMs)) {
      this.remove(entry);
      entry = undefined;
      expired = true;
    }
    let created = false;
    if (entry === undefined) {
      const external = this.allocate(internal);
      if (external === undefined) {
        const [lo, hi] = this.behaviour.portRange;
        return { ok: false, reason: 'ports-exhausted', detail: `every port of ${lo}–${hi} is mapped` };
      }
      entry = {
        proto: this.proto, internal, external, keys: [key], createdMs: nowMs, expiresMs: nowMs + this.timeoutMs, isForward: false,
        remote: this.remoteOf(remote), sentToAddresses: new Set(), sentToEndpoints: new Set(),
      };
      this.add(entry);
      created = true;
    }
    // RFC 4787 REQ-6: outbound packets always refresh the mapping.
    if (!entry.isForward) entry.expiresMs = nowMs + this.timeoutMs;
    entry.sentToAddresses.add(remote.address);
    entry.sentToEndpoints.add(endpointKey(remote));
    return { ok: true, external: entry.external, created, expired };
  }

  /**
   * Applies filtering to a packet from `remote` to `external` and finds its internal
   * endpoint. `filtered` false: a hairpinned packet, which RFC 4787 §6 forwards to any
   * active mapping.
   */
  inbound(remote: Endpoint, external: Endpoint, nowMs: number, filtered = true): InboundResult {
    const entry = this.byExternal.get(endpointKey(external));
    if (entry === undefined) return { ok: false, reason: 'no-mapping', detail: `nothing mapped at ${endpointKey(external)}` };
    if (this.isExpired(entry, nowMs)) {
      this.remove(entry);
      return { ok: false, reason: 'mapping-expired', detail: `idle since ${entry.expiresMs - this.timeoutMs} ms, timeout ${this.timeoutMs} ms` };
    }
    const refusal = entry.isForward || !filtered ? undefined : this.filter(entry, remote);
    if (refusal !== undefined) return { ok: false, reason: 'filtered', detail: refusal };
    // RFC 4787 REQ-6a: inbound refresh is the NAT's choice.
    if (this.behaviour.refreshOnInbound && !entry.isForward) entry.expiresMs = nowMs + this.timeoutMs;
    return { ok: true, internal: entry.internal };
  }

  /** True when a live mapping has `external` as its external endpoint. */
  isMapped(external: Endpoint, nowMs: number): boolean {
    const entry = this.byExternal.get(endpointKey(external));
    return entry !== undefined && !this.isExpired(entry, nowMs);
  }

  /**
   * A port forward: inbound to `externalPort` from anyone goes to `internal` until
   * removed (or `lifetimeMs` passes). Replaces what held the port. Only with translation.
   */
  forward(internal: Endpoint, externalPort: number, nowMs: number, lifetimeMs?: number): Mapping {
    const address = this.externalAddress;
    if (address === undefined) throw new NatkitError('ERR_INVALID_ARGUMENT', 'port forwards need a translating router (kind "nat")');
    const external: Endpoint = { address, port: externalPort, family: internal.family };
    const held = this.byExternal.get(endpointKey(external));
    if (held !== undefined) this.remove(held);
    const previous = this.forwards.get(endpointKey(internal));
    if (previous !== undefined) this.remove(previous);
    const entry: Entry = {
      proto: this.proto, internal, external, keys: [`forward>${endpointKey(external)}`], remote: undefined, createdMs: nowMs,
      expiresMs: lifetimeMs === undefined ? Infinity : nowMs + lifetimeMs, isForward: true,
      sentToAddresses: new Set(), sentToEndpoints: new Set(),
    };
    this.add(entry);
    // Outbound from the forwarded endpoint leaves through this mapping, whatever the mapping knob.
    this.forwards.set(endpointKey(internal), entry);
    return snapshot(entry);
  }

  /** Removes the mapping at `externalPort`; true when there was one. */
  unforward(externalPort: number): boolean {
    const address = this.externalAddress;
    if (address === undefined) return false;
    const entry = [...this.byExternal.values()].find((e) => e.external.port === externalPort && e.external.address === address);
    if (entry === undefined) return false;
    this.remove(entry);
    return true;
  }

  /** Live mappings, oldest first; expired ones are removed on the way. */
  list(nowMs: number): Mapping[] {
    const out: Mapping[] = [];
    for (const entry of new Set(this.byExternal.values())) {
      if (this.isExpired(entry, nowMs)) this.remove(entry);
      else out.push(snapshot(entry));
    }
    return out.sort((a, b) => a.createdMs - b.createdMs);
  }

  /** RFC 4787 §4.1: what a mapping is reused for. Without translation, one entry per internal endpoint. */
  private mappingKey(internal: Endpoint, remote: Endpoint): string {
    const self = endpointKey(internal);
    if (this.externalAddress === undefined) return self;
    switch (this.behaviour.mapping) {
      case 'endpoint-independent':
        return self;
      case 'address-dependent':
        return `${self}>${remote.address}`;
      case 'address-and-port-dependent':
        return `${self}>${endpointKey(remote)}`;
    }
  }

  /** The remote a dependent mapping is tied to, for display. */
  private remoteOf(remote: Endpoint): string | undefined {
    if (this.externalAddress === undefined) return undefined;
    switch (this.behaviour.mapping) {
      case 'endpoint-independent':
        return undefined;
      case 'address-dependent':
        return remote.address;
      case 'address-and-port-dependent':
        return endpointKey(remote);
    }
  }

  /** RFC 4787 §5 (REQ-8 leaves the choice to the NAT): why `remote` may not reach the mapping, or undefined. */
  private filter(entry: Entry, remote: Endpoint): string | undefined {
    switch (this.behaviour.filtering) {
      case 'endpoint-independent':
        return undefined;
      case 'address-dependent':
        return entry.sentToAddresses.has(remote.address)
          ? undefined
          : `address-dependent: ${endpointKey(entry.external)} has not sent to ${remote.address}`;
      case 'address-and-port-dependent':
        return entry.sentToEndpoints.has(endpointKey(remote))
          ? undefined
          : `address-and-port-dependent: ${endpointKey(entry.external)} has not sent to ${endpointKey(remote)}`;
    }
  }

  private isExpired(entry: Entry, nowMs: number): boolean {
    return nowMs >= entry.expiresMs;
  }

  /** The external endpoint of a new mapping: the internal one without translation, else a port per §4.2.1. */
  private allocate(internal: Endpoint): Endpoint | undefined {
    const address = this.externalAddress;
    if (address === undefined) return internal;
    const port = this.pickPort(internal.port);
    return port === undefined ? undefined : { address, port, family: internal.family };
  }

  /**
   * RFC 4787 §4.2.1 port assignment. Ports are never shared between mappings (REQ-3: no
   * "port overloading"); REQ-3a (keep well-known ports well-known) is not modelled: every
   * port comes from portRange. REQ-4 (parity) is not modelled either.
   */
  private pickPort(internalPort: number): number | undefined {
    const [lo, hi] = this.behaviour.portRange;
    const size = hi - lo + 1;
    if (this.usedPorts.size >= size) return undefined;
    const free = (p: number): boolean => !this.usedPorts.has(p);
    const wrap = (p: number): number => lo + ((((p - lo) % size) + size) % size);
    const a = this.behaviour.portAllocation;
    switch (a.kind) {
      case 'preserving':
        // Port preservation; when the port is taken or outside the range, fall back to random.
        if (internalPort >= lo && internalPort <= hi && free(internalPort)) return internalPort;
        return this.randomPort(lo, size, free, wrap);
      case 'sequential': {
        const step = a.step ?? 1;
        let p = this.nextSequential ?? wrap(a.start ?? this.random.int(lo, hi + 1));
        for (let i = 0; i < size && !free(p); i++) p = wrap(p + 1);
        this.nextSequential = wrap(p + step);
        return p;
      }
      case 'random':
        return this.randomPort(lo, size, free, wrap);
    }
  }

  private randomPort(lo: number, size: number, free: (p: number) => boolean, wrap: (p: number) => number): number {
    let p = lo + this.random.int(0, size);
    for (let i = 0; i < size && !free(p); i++) p = wrap(p + 1);
    return p;
  }

  private add(entry: Entry): void {
    for (const k of entry.keys) this.byKey.set(k, entry);
    this.byExternal.set(endpointKey(entry.external), entry);
    if (this.externalAddress !== undefined) this.usedPorts.add(entry.external.port);
  }

  private remove(entry: Entry): void {
    for (const k of entry.keys) if (this.byKey.get(k) === entry) this.byKey.delete(k);
    if (this.forwards.get(endpointKey(entry.internal)) === entry) this.forwards.delete(endpointKey(entry.internal));
    this.byExternal.delete(endpointKey(entry.external));
    if (this.externalAddress !== undefined) this.usedPorts.delete(entry.external.port);
  }
}

function snapshot(e: Entry): Mapping {
  return { proto: e.proto, internal: e.internal, external: e.external, remote: e.remote, createdMs: e.createdMs, expiresMs: e.expiresMs, isForward: e.isForward };
}
