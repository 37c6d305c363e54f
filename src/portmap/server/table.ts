// The mapping table of a port-mapping gateway, one for NAT-PMP (RFC 6886), PCP (RFC 6887)
// and UPnP IGD alike: an external port per protocol has one holder whoever asked for it
// (RFC 6887 §11.3; WANIPConnection:2 729 ConflictWithOtherMechanisms), lifetimes on the
// caller's clock, the epoch (RFC 6886 §3.6, RFC 6887 §8.5) and the limits of the box.
// Mappings are installed through a backend: the NAT itself. Sans-I/O: time is passed in.
import type { Endpoint } from '../../net/index.ts';
import { NatkitError, type IpFamily } from '../../util/index.ts';
import type { MapProtocol } from '../natpmp.ts';

/** Where mappings really take effect. SimRouter (natkit/sim) satisfies it as it is. */
export interface PortForwardBackend {
  /** Forwards `externalPort` to `internal` (replacing what held it) for `lifetimeMs`, or until removed when absent. */
  forwardPort(options: { readonly internal: Endpoint; readonly externalPort: number; readonly proto: MapProtocol; readonly lifetimeMs?: number }): unknown;
  /** Removes the forward at `externalPort`. */
  unforwardPort(options: { readonly externalPort: number; readonly proto: MapProtocol; readonly family: IpFamily }): unknown;
}

/** The protocol a mapping was made with. */
export type MappingOrigin = 'natpmp' | 'pcp' | 'upnp';

/** A mapping the gateway holds. */
export interface GatewayMapping {
  readonly origin: MappingOrigin;
  readonly protocol: MapProtocol;
  readonly internal: Endpoint;
  readonly externalPort: number;
  /** Granted lifetime in seconds; 0: permanent (a UPnP lease of 0). */
  readonly lifetimeS: number;
  readonly createdMs: number;
  /** Infinity when permanent. */
  readonly expiresMs: number;
  /** PCP's mapping nonce (RFC 6887 §11.1); undefined for the others. */
  readonly nonce: Uint8Array | undefined;
  /** UPnP NewPortMappingDescription; '' for the others. */
  readonly description: string;
}

/** What a protocol asks the table for. */
export type MappingRequest = Omit<GatewayMapping, 'createdMs' | 'expiresMs'>;

/** Limits of the gateway. */
export interface GatewayLimits {
  /** Most mappings held at once. @default 1024 */
  readonly maxMappings?: number;
  /** Longest lifetime granted, seconds (longer requests get this, RFC 6886 §3.3, RFC 6887 §15). @default 86400 */
  readonly maxLifetimeS?: number;
  /** External ports that may be mapped, inclusive. @default [1024, 65535] */
  readonly portRange?: readonly [number, number];
  /** Where the search for a free port starts when none is wanted or the wanted one is taken. @default 49152 (RFC 6335 §6 dynamic ports) */
  readonly allocationStart?: number;
  /** External ports never granted (in use by the box itself). @default none */
  readonly refusedPorts?: Iterable<number>;
}

/** Counters of the table. */
export interface MappingTableStats {
  /** forwardPort/unforwardPort calls that threw; the request was refused. */
  backendErrors: number;
  /** Mappings removed because their lifetime ended. */
  expired: number;
}

const key = (protocol: MapProtocol, externalPort: number): string => `${protocol}/${externalPort}`;

function checkPort(name: string, port: number): number {
  if (!Number.isInteger(port) || port < 1 || port > 0xffff) throw new NatkitError('ERR_INVALID_ARGUMENT', `${name}: expected a port 1–65535, got ${port}`);
  return port;
}

/** The table: external port → mapping, per protocol. */
export class MappingTable {
  /** External ports refused whatever the request; mutable while running. */
  readonly refusedPorts: Set<number>;
  readonly stats: MappingTableStats = { backendErrors: 0, expired: 0 };
  readonly maxMappings: number;
  readonly maxLifetimeS: number;
  readonly portRange: readonly [number, number];
  private readonly allocationStart: number;
  private readonly backend: PortForwardBackend | undefined;
  private readonly byExternal = new Map<string, GatewayMapping>();
  private epochStartMs: number;

  /** Without a backend nothing is forwarded (a gateway that only answers). */
  constructor(options: { readonly backend?: PortForwardBackend; readonly limits?: GatewayLimits; readonly nowMs: number }) {
    const l = options.limits ?? {};
    this.backend = options.backend;
    this.maxMappings = l.maxMappings ?? 1024;
    this.maxLifetimeS = l.maxLifetimeS ?? 86_400;
    const [lo, hi] = l.portRange ?? [1024, 65535];
    if (checkPort('portRange low', lo) > checkPort('portRange high', hi)) throw new NatkitError('ERR_INVALID_ARGUMENT', `portRange: low ${lo} above high ${hi}`);
    this.portRange = [lo, hi];
    this.allocationStart = Math.min(hi, Math.max(lo, l.allocationStart ?? 49_152));
    if (!Number.isInteger(this.maxMappings) || this.maxMappings < 0) throw new NatkitError('ERR_INVALID_ARGUMENT', `maxMappings: expected a whole number ≥ 0, got ${this.maxMappings}`);
    if (!(this.maxLifetimeS >= 1)) throw new NatkitError('ERR_INVALID_ARGUMENT', `maxLifetimeS: expected ≥ 1, got ${this.maxLifetimeS}`);
    this.refusedPorts = new Set(l.refusedPorts ?? []);
    this.epochStartMs = options.nowMs;
  }

  /** Seconds since the start of the epoch (RFC 6886 §3.6, RFC 6887 §8.5). */
  epochS(nowMs: number): number {
    return Math.max(0, Math.floor((nowMs - this.epochStartMs) / 1000));
  }

  /** A reboot: every mapping removed, the epoch starts over (clients see gatewayReset). */
  restart(nowMs: number): void {
    for (const m of [...this.byExternal.values()]) this.remove(m);
    this.epochStartMs = nowMs;
  }

  /** Every mapping, oldest first (expired ones included until swept). */
  list(): GatewayMapping[] {
    return [...this.byExternal.values()];
  }

  /** Removes expired mappings; returns when the next one expires (undefined: none will). */
  sweep(nowMs: number): number | undefined {
    let next: number | undefined;
    for (const m of [...this.byExternal.values()]) {
      if (m.expiresMs <= nowMs) {
        this.remove(m);
        this.stats.expired++;
      } else if (m.expiresMs !== Infinity) next = Math.min(next ?? Infinity, m.expiresMs);
    }
    return next;
  }

  /** The live mapping at an external port. */
  atExternal(protocol: MapProtocol, externalPort: number, nowMs: number): GatewayMapping | undefined {
    const m = this.byExternal.get(key(protocol, externalPort));
    if (m === undefined || m.expiresMs > nowMs) return m;
    this.remove(m);
    this.stats.expired++;
    return undefined;
  }

  /** The live NAT-PMP or PCP mapping of an internal endpoint (RFC 6887 §11.3: protocol, address and port name it). */
  ofInternal(protocol: MapProtocol, internal: Endpoint, nowMs: number): GatewayMapping | undefined {
    for (const m of this.byExternal.values()) {
      if (m.origin !== 'upnp' && m.protocol === protocol && m.internal.address === internal.address && m.internal.port === internal.port) {
        return this.atExternal(protocol, m.externalPort, nowMs);
      }
    }
    return undefined;
  }

  /** True when `port` may be given to `holder` (in range, not refused, not another's). */
  isAvailable(protocol: MapProtocol, port: number, nowMs: number, holder?: GatewayMapping): boolean {
    if (port < this.portRange[0] || port > this.portRange[1] || this.refusedPorts.has(port)) return false;
    const m = this.atExternal(protocol, port, nowMs);
    return m === undefined || m === holder;
  }

  /**
   * `wanted` when available, else the first available port upward from `from` (default
   * allocationStart), wrapping in the range; undefined when every port is taken.
   */
  pickPort(protocol: MapProtocol, wanted: number, nowMs: number, holder?: GatewayMapping, from = this.allocationStart): number | undefined {
    if (wanted !== 0 && this.isAvailable(protocol, wanted, nowMs, holder)) return wanted;
    const [lo, hi] = this.portRange;
    const size = hi - lo + 1;
    const start = Math.min(hi, Math.max(lo, from));
    for (let i = 0; i < size; i++) {
      const p = lo + ((start - lo + i) % size);
      if (this.isAvailable(protocol, p, nowMs, holder)) return p;
    }
    return undefined;
  }

  /** The lifetime granted for `askedS`: at most maxLifetimeS; 0 stays permanent. */
  grantS(askedS: number): number {
    return Math.min(askedS, this.maxLifetimeS);
  }

  /**
   * Installs a mapping (replacing `replaces`, the requester's previous one) and forwards it.
   * Undefined when the table is full or the backend refused.
   */
  put(request: MappingRequest, nowMs: number, replaces?: GatewayMapping): GatewayMapping | undefined {
    if (replaces === undefined && this.byExternal.size >= this.maxMappings) return undefined;
    const m: GatewayMapping = {
      ...request, createdMs: replaces?.createdMs ?? nowMs,
      expiresMs: request.lifetimeS === 0 ? Infinity : nowMs + request.lifetimeS * 1000,
      nonce: request.nonce && Uint8Array.from(request.nonce),
    };
    if (replaces !== undefined && replaces.externalPort !== m.externalPort) this.remove(replaces);
    try {
      this.backend?.forwardPort({
        internal: m.internal, externalPort: m.externalPort, proto: m.protocol, ...(m.lifetimeS !== 0 && { lifetimeMs: m.lifetimeS * 1000 }),
      });
    } catch {
      // The NAT refused (no translation, address family not carried): answered as a failure, counted.
      this.stats.backendErrors++;
      if (replaces !== undefined) this.byExternal.delete(key(replaces.protocol, replaces.externalPort));
      return undefined;
    }
    this.byExternal.set(key(m.protocol, m.externalPort), m);
    return m;
  }

  /** Removes a mapping and its forward. */
  remove(m: GatewayMapping): void {
    if (this.byExternal.get(key(m.protocol, m.externalPort)) !== m) return;
    this.byExternal.delete(key(m.protocol, m.externalPort));
    try {
      this.backend?.unforwardPort({ externalPort: m.externalPort, proto: m.protocol, family: m.internal.family });
    } catch {
      this.stats.backendErrors++;
    }
  }
}
