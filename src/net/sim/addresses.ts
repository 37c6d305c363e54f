// The simulated world's address plan, the lab's (shared/lab/NAT-RECIPES.md):
//   internet hosts     198.18.0.10–.100, then 198.18.2.0/23 onward   2001:db8::10–::100
//   internet routers   198.18.0.101–.254, then 198.18.1.0/24          2001:db8::101–::fff
//   LAN of router N    100.64.N.0/24 (RFC 6598 shared space), or      2001:db8:N::/64
//                      198.19.N.0/24 when it is public (no NAT on the way up)
// Router N's LAN side is .1 (::1); its hosts take .2 onward. Addresses are unique
// world-wide, so a trace never shows one address meaning two hosts.
import { NatkitError, formatIPv4, ipv4ToNumber, normalizeAddress, type IpFamily } from '../../util/index.ts';

/** Hands out addresses from a sequence, skipping those taken anywhere in the world. */
export class AddressPool {
  readonly family: IpFamily;
  private readonly source: Iterator<string>;
  private readonly taken: Set<string>;
  private readonly what: string;

  constructor(family: IpFamily, what: string, source: Iterable<string>, taken: Set<string>) {
    this.family = family;
    this.what = what;
    this.source = source[Symbol.iterator]();
    this.taken = taken;
  }

  /** The next free address, now taken; throws ERR_CONFIG when the pool is used up. */
  next(): string {
    for (let r = this.source.next(); r.done !== true; r = this.source.next()) {
      if (this.taken.has(r.value)) continue;
      this.taken.add(r.value);
      return r.value;
    }
    throw new NatkitError('ERR_CONFIG', `no IPv${this.family} address left for ${this.what}`);
  }
}

/** IPv4 addresses from `first` to `last`, skipping .0 and .255. */
export function* ipv4Range(first: string, last: string): Generator<string> {
  const a = ipv4ToNumber(first);
  const b = ipv4ToNumber(last);
  if (a === undefined || b === undefined) throw new NatkitError('ERR_INVALID_ARGUMENT', `bad IPv4 range ${first}–${last}`);
  for (let n = a; n <= b; n++) {
    const low = n & 0xff;
    if (low !== 0 && low !== 0xff) yield formatIPv4(Uint8Array.of(n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, low));
  }
}

/** IPv6 addresses `prefix` + hex(n) for n in [first, last]; `prefix` ends in '::' or ':'. */
export function* ipv6Range(prefix: string, first: number, last: number): Generator<string> {
  for (let n = first; n <= last; n++) yield normalizeAddress(`${prefix}${n.toString(16)}`);
}

/** Host pools of the internet itself. */
export function internetHostSources(): Record<IpFamily, Iterable<string>> {
  return {
    4: chain(ipv4Range('198.18.0.10', '198.18.0.100'), ipv4Range('198.18.2.1', '198.18.255.254')),
    6: chain(ipv6Range('2001:db8::', 0x10, 0x100), ipv6Range('2001:db8::', 0x1000, 0xffff)),
  };
}

/** Router WAN pools of the internet itself. */
export function internetRouterSources(): Record<IpFamily, Iterable<string>> {
  return {
    4: chain(ipv4Range('198.18.0.101', '198.18.0.254'), ipv4Range('198.18.1.1', '198.18.1.254')),
    6: ipv6Range('2001:db8::', 0x101, 0xfff),
  };
}

/** The /24 (IPv4) and /64 (IPv6) of router `index`'s LAN: the gateway address and a host pool. */
export function lanPlan(index: number, isPublic: boolean): Record<IpFamily, { gateway: string; hosts: Iterable<string> }> {
  if (!Number.isInteger(index) || index < 1 || index > (isPublic ? 255 : 0x3fff)) {
    throw new NatkitError('ERR_CONFIG', `no ${isPublic ? 'public' : '100.64.0.0/10'} LAN left for router ${index}`);
  }
  const base = isPublic ? `198.19.${index}` : `100.${64 + (index >> 8)}.${index & 0xff}`;
  const v6 = `2001:db8:${index.toString(16)}::`;
  return {
    4: { gateway: `${base}.1`, hosts: ipv4Range(`${base}.2`, `${base}.254`) },
    6: { gateway: `${v6}1`, hosts: ipv6Range(v6, 2, 0xffff) },
  };
}

function* chain(...parts: Iterable<string>[]): Generator<string> {
  for (const p of parts) yield* p;
}
