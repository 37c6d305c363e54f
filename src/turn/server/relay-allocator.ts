// Relayed transport addresses (RFC 8656 §7.2): the core asks an injected allocator for an
// address and port and never binds a socket itself; the driver binds what was handed out.
// PortPoolAllocator is the pure default: one address per family, ports drawn at random
// from 49152–65535 (RFC 8656 §7.2 "SHOULD be ... in the range 49152-65535"), with
// EVEN-PORT (even port, and the R bit's hold on the next one, §7.2).
import type { Endpoint, Random } from '../../net/index.ts';
import { NatkitError, ipFamily, normalizeAddress, type IpFamily } from '../../util/index.ts';

/** What an Allocate asks of the allocator. */
export interface RelayRequest {
  readonly family: IpFamily;
  /** EVEN-PORT: the port must be even (RFC 8656 §18.6). */
  readonly evenPort: boolean;
  /** EVEN-PORT's R bit: also hold port + 1, returned as `reserved` (RFC 8656 §7.2). */
  readonly reserveNext: boolean;
}

/** What the allocator handed out; the core returns each endpoint through release(). */
export interface RelayGrant {
  readonly relayed: Endpoint;
  /** With `reserveNext`: port + 1, held until the core claims or releases it. */
  readonly reserved?: Endpoint;
}

/** Hands out relayed transport addresses; the driver's implementation binds the sockets. */
export interface RelayAllocator {
  /** Addresses relayed endpoints use: the core denies them as peers (no relay loops, RFC 8656 §21.3). */
  readonly addresses: readonly string[];
  /** True when relayed addresses of this family can be had (else 440, RFC 8656 §7.2). */
  supports(family: IpFamily): boolean;
  /** A free relayed endpoint, or undefined when none is left (508). Synchronous: the answer goes in the response. */
  allocate(request: RelayRequest): RelayGrant | undefined;
  /** Gives an endpoint back (allocation deleted or expired, reservation unused). Idempotent. */
  release(relayed: Endpoint): void;
}

export interface PortPoolAllocatorOptions {
  /** The relay address of each family served, e.g. { 4: '198.51.100.1' }. */
  readonly addresses: { readonly [F in IpFamily]?: string };
  /** Lowest port handed out. @default 49152 */
  readonly minPort?: number;
  /** Highest port handed out. @default 65535 */
  readonly maxPort?: number;
  /** Draws the first port tried, so relayed ports are hard to guess (RFC 8656 §21.1.1). */
  readonly random: Random;
}

/** A pure allocator over a port range: bookkeeping only, sockets are the driver's. */
export class PortPoolAllocator implements RelayAllocator {
  readonly addresses: readonly string[];
  private readonly byFamily: { readonly [F in IpFamily]?: string };
  private readonly minPort: number;
  private readonly maxPort: number;
  private readonly random: Random;
  private readonly used: { readonly [F in IpFamily]: Set<number> } = { 4: new Set(), 6: new Set() };

  constructor(options: PortPoolAllocatorOptions) {
    const byFamily: { [F in IpFamily]?: string } = {};
    for (const family of [4, 6] as const) {
      const address = options.addresses[family];
      if (address === undefined) continue;
      const normal = normalizeAddress(address);
      if (ipFamily(normal) !== family) throw new NatkitError('ERR_CONFIG', `relay address for IPv${family}: got "${address}"`);
      byFamily[family] = normal;
    }
    this.byFamily = byFamily;
    this.addresses = Object.values(byFamily);
    [this.minPort, this.maxPort] = relayPortRange(options.minPort, options.maxPort);
    this.random = options.random;
  }

  supports(family: IpFamily): boolean {
    return this.byFamily[family] !== undefined;
  }

  allocate(request: RelayRequest): RelayGrant | undefined {
    const address = this.byFamily[request.family];
    if (address === undefined) return undefined;
    const used = this.used[request.family];
    const span = this.maxPort - this.minPort + 1;
    const r = this.random.bytes(2);
    const start = ((r[0]! << 8) | r[1]!) % span;
    // One pass over the range from a random start: bounded by its size.
    for (let i = 0; i < span; i++) {
      const port = this.minPort + ((start + i) % span);
      if (used.has(port) || (request.evenPort && port % 2 !== 0)) continue;
      if (request.reserveNext && (port === this.maxPort || used.has(port + 1))) continue;
      used.add(port);
      const relayed: Endpoint = { address, port, family: request.family };
      if (!request.reserveNext) return { relayed };
      used.add(port + 1);
      return { relayed, reserved: { address, port: port + 1, family: request.family } };
    }
    return undefined;
  }

  release(relayed: Endpoint): void {
    if (this.byFamily[relayed.family] === relayed.address) this.used[relayed.family].delete(relayed.port);
  }

  /** Ports in use or held, per family. */
  inUse(family: IpFamily): number {
    return this.used[family].size;
  }
}

/** The relay port range with its defaults (RFC 8656 §7.2: 49152–65535); throws ERR_CONFIG unless 1 ≤ min < max ≤ 65535. */
export function relayPortRange(min = 49152, max = 65535): [number, number] {
  if (!Number.isInteger(min) || !Number.isInteger(max) || min < 1 || max > 0xffff || min >= max) {
    throw new NatkitError('ERR_CONFIG', `relay ports: expected 1 ≤ min < max ≤ 65535, got ${min}–${max}`);
  }
  return [min, max];
}
