// The default gateway from the system's routing table, where NAT-PMP and PCP requests go
// (RFC 6886 §3: "the client sends to its default gateway"; RFC 6887 §8.1 likewise by
// default). Pure parsers of Linux's /proc/net/route and /proc/net/ipv6_route text; the
// files are read by net/node (readRouteTables), keeping this layer free of I/O.
import { DecodeError, formatIPv4, formatIPv6, type IpFamily } from '../util/index.ts';

/** The route tables as text, as net/node's readRouteTables() returns them. */
export interface RouteTablesText {
  /** /proc/net/route, if present. */
  readonly ipv4?: string | undefined;
  /** /proc/net/ipv6_route, if present. */
  readonly ipv6?: string | undefined;
  /**
   * Byte order /proc/net/route prints addresses in: the host's, as the kernel prints the
   * raw 32-bit value with %08X. @default 'LE' (x86, ARM)
   */
  readonly endianness?: 'LE' | 'BE';
}

/** One route of the table. */
export interface SystemRoute {
  readonly family: IpFamily;
  readonly interface: string;
  readonly destination: string;
  readonly prefixLength: number;
  /** The next hop; undefined for on-link routes. */
  readonly gateway: string | undefined;
  readonly metric: number;
  /** RTF_* flags (linux/route.h). */
  readonly flags: number;
}

/** linux/route.h: route usable, next hop is a gateway, unreachable (reject). */
const RTF_UP = 0x1;
const RTF_GATEWAY = 0x2;
const RTF_REJECT = 0x200;

function fail(message: string, line: number): never {
  throw new DecodeError(`route table line ${line}: ${message}`, line);
}

function hexField(text: string | undefined, digits: number, what: string, line: number): number {
  if (text === undefined || text.length !== digits || !/^[0-9A-Fa-f]+$/.test(text)) fail(`expected ${digits} hex digits for ${what}, got ${JSON.stringify(text)}`, line);
  return parseInt(text, 16);
}

/** A /proc/net/route address: the 32-bit value in host byte order. */
function ipv4Bytes(value: number, endianness: 'LE' | 'BE'): Uint8Array {
  const be = Uint8Array.of(value >>> 24, (value >>> 16) & 0xff, (value >>> 8) & 0xff, value & 0xff);
  return endianness === 'BE' ? be : be.reverse();
}

function prefixOf(mask: Uint8Array, line: number): number {
  let bits = 0;
  let ended = false;
  for (const byte of mask) {
    for (let b = 7; b >= 0; b--) {
      const on = ((byte >> b) & 1) === 1;
      if (on && ended) fail(`netmask ${formatIPv4(mask)} is not contiguous`, line);
      if (on) bits++;
      else ended = true;
    }
  }
  return bits;
}

/**
 * Parses /proc/net/route: a header naming the columns (Iface, Destination, Gateway,
 * Flags, Metric, Mask…), then one route per line with addresses as 8 hex digits.
 */
export function parseProcNetRoute(text: string, endianness: 'LE' | 'BE' = 'LE'): SystemRoute[] {
  const lines = text.split('\n').map((l) => l.trim());
  const header = (lines[0] ?? '').split(/\s+/);
  const col = (name: string): number => {
    const i = header.indexOf(name);
    if (i < 0) fail(`expected a header with column ${name}, got ${JSON.stringify(lines[0] ?? '')}`, 1);
    return i;
  };
  const [iIface, iDest, iGw, iFlags, iMetric, iMask] = ['Iface', 'Destination', 'Gateway', 'Flags', 'Metric', 'Mask'].map(col) as [number, number, number, number, number, number];
  const routes: SystemRoute[] = [];
  for (let n = 1; n < lines.length; n++) {
    const line = lines[n]!;
    if (line === '') continue;
    const f = line.split(/\s+/);
    const iface = f[iIface];
    const metric = Number(f[iMetric]);
    if (iface === undefined || !Number.isInteger(metric) || metric < 0) fail(`expected an interface and a metric, got ${JSON.stringify(line)}`, n + 1);
    const gw = hexField(f[iGw], 8, 'the gateway', n + 1);
    routes.push({
      family: 4,
      interface: iface,
      destination: formatIPv4(ipv4Bytes(hexField(f[iDest], 8, 'the destination', n + 1), endianness)),
      prefixLength: prefixOf(ipv4Bytes(hexField(f[iMask], 8, 'the mask', n + 1), endianness), n + 1),
      gateway: gw === 0 ? undefined : formatIPv4(ipv4Bytes(gw, endianness)),
      metric,
      flags: hexField(f[iFlags], 4, 'the flags', n + 1),
    });
  }
  return routes;
}

function ipv6Of(text: string | undefined, what: string, line: number): Uint8Array {
  if (text === undefined || !/^[0-9A-Fa-f]{32}$/.test(text)) fail(`expected 32 hex digits for ${what}, got ${JSON.stringify(text)}`, line);
  return Uint8Array.from({ length: 16 }, (_, i) => parseInt(text.slice(2 * i, 2 * i + 2), 16));
}

/**
 * Parses /proc/net/ipv6_route: no header; per line destination, its prefix length,
 * source, its prefix length, next hop (addresses as 32 hex digits in network order),
 * then metric, refcount, use, flags (8 hex digits each) and the interface.
 */
export function parseProcNetIpv6Route(text: string): SystemRoute[] {
  const routes: SystemRoute[] = [];
  const lines = text.split('\n');
  for (let n = 0; n < lines.length; n++) {
    const line = lines[n]!.trim();
    if (line === '') continue;
    const f = line.split(/\s+/);
    if (f.length !== 10) fail(`expected 10 fields, got ${f.length}`, n + 1);
    const next = ipv6Of(f[4], 'the next hop', n + 1);
    routes.push({
      family: 6,
      interface: f[9]!,
      destination: formatIPv6(ipv6Of(f[0], 'the destination', n + 1)),
      prefixLength: hexField(f[1], 2, 'the prefix length', n + 1),
      gateway: next.every((b) => b === 0) ? undefined : formatIPv6(next),
      metric: hexField(f[5], 8, 'the metric', n + 1),
      flags: hexField(f[8], 8, 'the flags', n + 1),
    });
  }
  return routes;
}

/** A default route's next hop. A link-local IPv6 gateway is reached through `interface`. */
export interface DefaultGateway {
  readonly address: string;
  readonly family: IpFamily;
  readonly interface: string;
  readonly metric: number;
}

/** Usable default routes with a next hop, lowest metric first (IPv4 before IPv6 at equal metric). */
export function defaultGateways(routes: readonly SystemRoute[]): DefaultGateway[] {
  return routes
    .filter((r) => r.prefixLength === 0 && r.gateway !== undefined && (r.flags & (RTF_UP | RTF_GATEWAY)) === (RTF_UP | RTF_GATEWAY) && (r.flags & RTF_REJECT) === 0 && r.interface !== 'lo')
    .map((r) => ({ address: r.gateway!, family: r.family, interface: r.interface, metric: r.metric }))
    .sort((a, b) => a.metric - b.metric || a.family - b.family);
}

/** The best default gateway in the tables (of `family` when given), or undefined. */
export function defaultGateway(tables: RouteTablesText, family?: IpFamily): DefaultGateway | undefined {
  const routes = [
    ...(tables.ipv4 === undefined ? [] : parseProcNetRoute(tables.ipv4, tables.endianness)),
    ...(tables.ipv6 === undefined ? [] : parseProcNetIpv6Route(tables.ipv6)),
  ];
  return defaultGateways(routes).find((g) => family === undefined || g.family === family);
}
