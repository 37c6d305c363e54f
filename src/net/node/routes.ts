// The system's routing table and source address selection, for port-control clients
// (portmap) that must find the default gateway and name their own address (RFC 6887 §7.1).
// Linux only: the tables come from /proc; elsewhere they read as absent.
import { createSocket } from 'node:dgram';
import { readFile } from 'node:fs/promises';
import { endianness } from 'node:os';
import { NatkitError, abortError, throwIfAborted } from '../../util/index.ts';
import type { Endpoint } from '../types.ts';

/** The route tables as text, for portmap's defaultGateway(). */
export interface RouteTables {
  /** /proc/net/route; undefined where it does not exist. */
  readonly ipv4: string | undefined;
  /** /proc/net/ipv6_route; undefined where it does not exist (no IPv6, or not Linux). */
  readonly ipv6: string | undefined;
  /** This host's byte order, in which /proc/net/route prints addresses. */
  readonly endianness: 'LE' | 'BE';
}

/** Options of readRouteTables(). */
export interface ReadRouteTablesOptions {
  /** Directory holding net/route and net/ipv6_route. @default '/proc' */
  readonly procDir?: string;
  readonly signal?: AbortSignal;
}

async function readIfPresent(path: string, signal: AbortSignal | undefined): Promise<string | undefined> {
  try {
    return await readFile(path, { encoding: 'utf8', ...(signal && { signal }) });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    if ((err as Error).name === 'AbortError') throw abortError(signal, `reading ${path}`);
    throw new NatkitError('ERR_SOCKET', `reading ${path}: ${(err as Error).message}`, { cause: err });
  }
}

/** Reads the IPv4 and IPv6 route tables; a missing file reads as undefined. */
export async function readRouteTables(options: ReadRouteTablesOptions = {}): Promise<RouteTables> {
  const dir = options.procDir ?? '/proc';
  throwIfAborted(options.signal, 'readRouteTables');
  const [ipv4, ipv6] = await Promise.all([readIfPresent(`${dir}/net/route`, options.signal), readIfPresent(`${dir}/net/ipv6_route`, options.signal)]);
  return { ipv4, ipv6, endianness: endianness() };
}

/**
 * The local address the system would send from toward `remote` (a connected UDP socket
 * that sends nothing: the kernel picks the source by its routes). Rejects with ERR_SOCKET
 * when there is no route.
 */
export async function localAddressToward(remote: Endpoint): Promise<string> {
  const socket = createSocket(remote.family === 6 ? 'udp6' : 'udp4');
  try {
    return await new Promise<string>((resolve, reject) => {
      socket.once('error', (err) => reject(new NatkitError('ERR_SOCKET', `no source address toward ${remote.address}: ${err.message}`, { cause: err })));
      socket.connect(remote.port, remote.address, () => resolve(socket.address().address));
    });
  } finally {
    await new Promise<void>((resolve) => socket.close(() => resolve()));
  }
}
