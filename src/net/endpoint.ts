// Endpoint helpers: construction with normalisation, map keys, text forms.
import { NatkitError, ipFamily, normalizeAddress } from '../util/index.ts';
import type { Endpoint } from './types.ts';

/** Builds an Endpoint, normalising the address (IPv4-mapped → IPv4, canonical IPv6). */
export function endpoint(address: string, port: number): Endpoint {
  const normal = normalizeAddress(address);
  const family = ipFamily(normal);
  if (family === undefined) throw new NatkitError('ERR_INVALID_ARGUMENT', `expected an IP address, got "${address}"`);
  if (!Number.isInteger(port) || port < 0 || port > 0xffff) {
    throw new NatkitError('ERR_INVALID_ARGUMENT', `port ${port} outside 0–65535`);
  }
  return { address: normal, port, family };
}

/** The one map key for an endpoint. */
export function endpointKey(e: Endpoint): string {
  return e.family === 6 ? `[${e.address}]:${e.port}` : `${e.address}:${e.port}`;
}

/** Same address and port. */
export function sameEndpoint(a: Endpoint, b: Endpoint): boolean {
  return a.port === b.port && a.address === b.address;
}

/** Text form for people: `1.2.3.4:5` or `[::1]:5`. */
export const formatEndpoint = endpointKey;

/** Splits `host:port`, `[v6]:port`, `v6` or `host` (with `defaultPort`); the host is not checked. */
export function splitHostPort(text: string, defaultPort?: number): { host: string; port: number } {
  const bracket = /^\[([^\]]+)\](?::(\d+))?$/.exec(text);
  let host = text;
  let portText: string | undefined;
  if (bracket) {
    host = bracket[1] ?? '';
    portText = bracket[2];
  } else if (ipFamily(text) !== 6) {
    const i = text.lastIndexOf(':');
    if (i >= 0) {
      host = text.slice(0, i);
      portText = text.slice(i + 1);
    }
  }
  const port = portText === undefined ? defaultPort : /^\d{1,5}$/.test(portText) ? Number(portText) : NaN;
  if (port === undefined || Number.isNaN(port) || port > 0xffff || host === '') {
    throw new NatkitError('ERR_INVALID_ARGUMENT', `expected host:port, got "${text}"`);
  }
  return { host, port };
}

/**
 * Parses `host:port`, `[v6]:port`, `v6` or `host` (with `defaultPort`). Only IP literals:
 * name resolution belongs to the caller (see net/node resolveEndpoint).
 */
export function parseEndpoint(text: string, defaultPort?: number): Endpoint {
  const { host, port } = splitHostPort(text, defaultPort);
  return endpoint(host, port);
}
