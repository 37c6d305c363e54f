// IP address parsing and formatting (RFC 4291 §2.2 text forms, RFC 5952 canonical output).
import { isIP } from 'node:net';
import { NatkitError } from './errors.ts';

/** Address family: 4 or 6. */
export type IpFamily = 4 | 6;

/** Family of an address string, or undefined when it is no IP address. */
export function ipFamily(address: string): IpFamily | undefined {
  const v = isIP(address);
  return v === 4 ? 4 : v === 6 ? 6 : undefined;
}

/**
 * IPv4-mapped IPv6 (RFC 4291 §2.5.5.2, in any text form: `::ffff:1.2.3.4`,
 * `::ffff:102:304`, `0:0:0:0:0:ffff:…`) becomes `a.b.c.d`; other IPv6 becomes RFC 5952
 * canonical text; anything else is kept.
 */
export function normalizeAddress(address: string): string {
  if (ipFamily(address) !== 6) return address;
  const bytes = parseIPv6(address);
  return isIPv4Mapped(bytes) ? formatIPv4(bytes.subarray(12)) : formatIPv6(bytes);
}

/** True for ::ffff:0:0/96: ten zero bytes, then 0xffff. */
function isIPv4Mapped(bytes: Uint8Array): boolean {
  for (let i = 0; i < 10; i++) if (bytes[i] !== 0) return false;
  return bytes[10] === 0xff && bytes[11] === 0xff;
}

/**
 * A dotted-quad IPv4 address as one 32-bit number (first byte highest), or undefined when
 * `address` is not one. Accepts what `isIP` calls IPv4 (decimal, no leading zeros), in one
 * pass without a regex or arrays: it runs for every STUN response.
 */
export function ipv4ToNumber(address: string): number | undefined {
  let value = 0;
  let part = 0;
  let digits = 0;
  let dots = 0;
  for (let i = 0; i < address.length; i++) {
    const c = address.charCodeAt(i) - 48; // '0'
    if (c >= 0 && c <= 9) {
      if (digits === 1 && part === 0) return undefined; // a leading zero
      part = part * 10 + c;
      if (++digits > 3 || part > 255) return undefined;
    } else if (c === -2 && digits > 0 && dots < 3) { // '.'
      value = (value << 8) | part;
      part = 0;
      digits = 0;
      dots++;
    } else {
      return undefined;
    }
  }
  return dots === 3 && digits > 0 ? ((value << 8) | part) >>> 0 : undefined;
}

/** Parses a dotted-quad IPv4 address into 4 bytes. */
export function parseIPv4(address: string): Uint8Array {
  const v = ipv4ToNumber(address);
  if (v === undefined) throw new NatkitError('ERR_INVALID_ARGUMENT', `expected an IPv4 address, got "${address}"`);
  return Uint8Array.of(v >>> 24, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff);
}

/** Parses any RFC 4291 IPv6 text form (including embedded IPv4) into 16 bytes. */
export function parseIPv6(address: string): Uint8Array {
  if (isIP(address) !== 6) throw new NatkitError('ERR_INVALID_ARGUMENT', `expected an IPv6 address, got "${address}"`);
  // Rewrite a trailing dotted quad as two hex words, then drop any zone index.
  const text = (address.split('%', 1)[0] ?? '').replace(/(\d+)\.(\d+)\.(\d+)\.(\d+)$/, (_m, a: string, b: string, c: string, d: string) =>
    `${((Number(a) << 8) | Number(b)).toString(16)}:${((Number(c) << 8) | Number(d)).toString(16)}`,
  );
  const words = (s: string): number[] => (s === '' ? [] : s.split(':').map((h) => parseInt(h, 16)));
  const gap = text.indexOf('::');
  const hi = words(gap < 0 ? text : text.slice(0, gap));
  const lo = gap < 0 ? [] : words(text.slice(gap + 2));
  const all = [...hi, ...new Array<number>(8 - hi.length - lo.length).fill(0), ...lo];
  const out = new Uint8Array(16);
  all.forEach((w, i) => {
    out[i * 2] = w >> 8;
    out[i * 2 + 1] = w & 0xff;
  });
  return out;
}

/** Formats 4 bytes as dotted-quad. */
export function formatIPv4(bytes: Uint8Array): string {
  return `${bytes[0] ?? 0}.${bytes[1] ?? 0}.${bytes[2] ?? 0}.${bytes[3] ?? 0}`;
}

/** Formats 16 bytes in RFC 5952 canonical form (longest zero run, leftmost, length ≥ 2, compressed). */
export function formatIPv6(bytes: Uint8Array): string {
  const words: number[] = [];
  for (let i = 0; i < 16; i += 2) words.push(((bytes[i] ?? 0) << 8) | (bytes[i + 1] ?? 0));
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (words[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (ws: number[]): string => ws.map((w) => w.toString(16)).join(':');
  if (bestStart < 0) return hex(words);
  return `${hex(words.slice(0, bestStart))}::${hex(words.slice(bestStart + bestLen))}`;
}

/** Address bytes of either family (IPv4-mapped IPv6 is not produced: callers normalise first). */
export function parseIp(address: string): Uint8Array {
  return ipFamily(address) === 4 ? parseIPv4(address) : parseIPv6(address);
}

/** Formats 4 or 16 bytes. */
export function formatIp(bytes: Uint8Array): string {
  if (bytes.length === 4) return formatIPv4(bytes);
  if (bytes.length === 16) return formatIPv6(bytes);
  throw new NatkitError('ERR_INVALID_ARGUMENT', `expected 4 or 16 address bytes, got ${bytes.length}`);
}
