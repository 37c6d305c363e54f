// Which peers a relay may reach. RFC 8656 §21.3 (and §9.1, §10.2, §11.2: 403 Forbidden)
// lets a server refuse peers by policy; a relay that reaches loopback, private networks
// or a cloud metadata endpoint (169.254.169.254) would let any client probe the server's
// own network, so those are denied unless an allow-list admits them. The ranges are the
// non-global entries of the IANA special-purpose registries (RFC 6890 and successors).
import { NatkitError, ipFamily, parseIp } from '../../util/index.ts';

/** Special-purpose IPv4 ranges that are not globally reachable. */
const DENIED_V4 = [
  '0.0.0.0/8', // "this network", unspecified (RFC 791)
  '10.0.0.0/8', // private (RFC 1918)
  '100.64.0.0/10', // shared address space, CGNAT (RFC 6598)
  '127.0.0.0/8', // loopback (RFC 1122)
  '169.254.0.0/16', // link-local, cloud metadata (RFC 3927)
  '172.16.0.0/12', // private (RFC 1918)
  '192.0.0.0/24', // IETF protocol assignments (RFC 6890)
  '192.0.2.0/24', // TEST-NET-1 (RFC 5737)
  '192.88.99.0/24', // 6to4 relay anycast, deprecated (RFC 7526)
  '192.168.0.0/16', // private (RFC 1918)
  '198.18.0.0/15', // benchmarking (RFC 2544); natkit's lab internet: allow-list it there
  '198.51.100.0/24', // TEST-NET-2 (RFC 5737)
  '203.0.113.0/24', // TEST-NET-3 (RFC 5737)
  '224.0.0.0/4', // multicast (RFC 5771)
  '240.0.0.0/4', // reserved (RFC 1112), limited broadcast 255.255.255.255
];

/** Special-purpose IPv6 ranges that are not globally reachable. */
const DENIED_V6 = [
  '::/8', // unspecified, loopback, IPv4-compatible, reserved (RFC 4291)
  '100::/64', // discard-only (RFC 6666)
  '2001::/23', // IETF protocol assignments, Teredo (RFC 2928, RFC 4380)
  '2001:db8::/32', // documentation (RFC 3849); natkit's simulated internet
  '2002::/16', // 6to4, embeds any IPv4 address (RFC 3056, deprecated by RFC 7526)
  '3fff::/20', // documentation (RFC 9637)
  '5f00::/16', // SRv6 SIDs (RFC 9602)
  'fc00::/7', // unique local (RFC 4193)
  'fe80::/10', // link-local (RFC 4291)
  'fec0::/10', // site-local, deprecated (RFC 3879)
  'ff00::/8', // multicast (RFC 4291)
];

/** An address prefix. */
interface Prefix {
  readonly bytes: Uint8Array;
  readonly bits: number;
}

/** Parses `address/bits` or a bare address (a host prefix); throws ERR_CONFIG. */
export function parsePrefix(text: string): Prefix {
  const [address = '', bitsText] = text.split('/', 2);
  const family = ipFamily(address);
  if (family === undefined) throw new NatkitError('ERR_CONFIG', `peer policy: expected an address or CIDR prefix, got "${text}"`);
  const max = family === 4 ? 32 : 128;
  const bits = bitsText === undefined ? max : /^\d{1,3}$/.test(bitsText) ? Number(bitsText) : NaN;
  if (!(bits >= 0 && bits <= max)) throw new NatkitError('ERR_CONFIG', `peer policy: prefix length in "${text}" outside 0–${max}`);
  return { bytes: parseIp(address), bits };
}

/** True when `bytes` (an address of the prefix's family) lies inside `p`. */
function inPrefix(bytes: Uint8Array, p: Prefix): boolean {
  if (bytes.length !== p.bytes.length) return false;
  const whole = p.bits >> 3;
  for (let i = 0; i < whole; i++) if (bytes[i] !== p.bytes[i]) return false;
  const rest = p.bits & 7;
  if (rest === 0) return true;
  const mask = (0xff << (8 - rest)) & 0xff;
  return ((bytes[whole]! ^ p.bytes[whole]!) & mask) === 0;
}

/** IPv6 forms that carry an IPv4 address a dual-stack socket would reach: ::ffff:0:0/96 and NAT64 64:ff9b::/96. */
const EMBEDDED_V4 = [parsePrefix('::ffff:0:0/96'), parsePrefix('64:ff9b::/96')];

export interface PeerPolicyOptions {
  /** Addresses or CIDR prefixes admitted even when a deny rule matches (e.g. a lab's private network). @default [] */
  readonly allow?: readonly string[];
  /** Prefixes denied besides the special-purpose ranges. @default [] */
  readonly deny?: readonly string[];
  /** The server's own addresses (listening and relayed), denied so a relay cannot loop into the server. @default [] */
  readonly serverAddresses?: readonly string[];
}

/** Decides whether a relay may send to, and accept from, a peer address. */
export class PeerPolicy {
  private readonly allow: readonly Prefix[];
  private readonly deny: readonly Prefix[];

  constructor(options: PeerPolicyOptions = {}) {
    this.allow = (options.allow ?? []).map(parsePrefix);
    this.deny = [...DENIED_V4, ...DENIED_V6, ...(options.deny ?? []), ...(options.serverAddresses ?? [])].map(parsePrefix);
  }

  /** True when a relay may talk to `address` (normalised text, either family). */
  permits(address: string): boolean {
    if (ipFamily(address) === undefined) return false;
    const bytes = parseIp(address);
    // An IPv4 address written as IPv6 is judged as the IPv4 address it reaches.
    if (EMBEDDED_V4.some((p) => inPrefix(bytes, p)) && !this.allow.some((p) => inPrefix(bytes, p))) {
      return this.judge(bytes.subarray(12));
    }
    return this.judge(bytes);
  }

  private judge(bytes: Uint8Array): boolean {
    if (this.allow.some((p) => inPrefix(bytes, p))) return true;
    return !this.deny.some((p) => inPrefix(bytes, p));
  }
}
