// Text to Endpoint with name resolution: `host:port`, `[v6]:port`, `v6`, `host`. IP literals
// go through parseEndpoint and never reach DNS; names go to the OS resolver (getaddrinfo).
import { lookup } from 'node:dns/promises';
import { NatkitError, abortError, ipFamily, throwIfAborted, type IpFamily } from '../../util/index.ts';
import { endpoint, parseEndpoint, splitHostPort } from '../endpoint.ts';
import type { Endpoint } from '../types.ts';

/** Resolves a host name to one address of `family` (0: either); rejects when there is none. */
export type HostLookup = (host: string, family: 0 | IpFamily) => Promise<{ address: string }>;

/** Settings of resolveEndpoint. */
export interface ResolveOptions {
  /** Only addresses of this family; literals of the other family are rejected. @default either */
  readonly family?: IpFamily;
  /** The resolver (tests inject one). @default node:dns/promises lookup (getaddrinfo: hosts file, then DNS) */
  readonly lookup?: HostLookup;
  readonly signal?: AbortSignal;
}

/** getaddrinfo through node:dns/promises; the first answer in the resolver's order. */
const systemLookup: HostLookup = (host, family) => lookup(host, { family });

/**
 * Parses `text` and resolves a host name to one address (the resolver's first answer).
 * Rejects with ERR_INVALID_ARGUMENT (malformed, wrong family), ERR_SOCKET (name not
 * resolved, with the resolver error as cause) or ERR_ABORTED.
 */
export async function resolveEndpoint(text: string, defaultPort?: number, options: ResolveOptions = {}): Promise<Endpoint> {
  throwIfAborted(options.signal, 'resolveEndpoint');
  const { host, port } = splitHostPort(text, defaultPort);
  const want = options.family;
  if (ipFamily(host) !== undefined) {
    const literal = parseEndpoint(text, defaultPort);
    if (want !== undefined && literal.family !== want) {
      throw new NatkitError('ERR_INVALID_ARGUMENT', `expected an IPv${want} address, got "${text}"`);
    }
    return literal;
  }
  if (!/^[A-Za-z0-9_.-]+$/.test(host) || host.startsWith('.') || host.startsWith('-')) {
    throw new NatkitError('ERR_INVALID_ARGUMENT', `expected an IP address or host name, got "${host}"`);
  }
  // getaddrinfo cannot be cancelled: on abort we stop waiting and drop its answer.
  const signal = options.signal;
  let onAbort: (() => void) | undefined;
  const aborted = new Promise<never>((_resolve, reject) => {
    onAbort = () => reject(abortError(signal, 'resolveEndpoint'));
    signal?.addEventListener('abort', onAbort, { once: true });
  });
  try {
    const found = await Promise.race([(options.lookup ?? systemLookup)(host, want ?? 0), aborted]);
    return endpoint(found.address, port);
  } catch (err) {
    if (err instanceof NatkitError) throw err;
    const what = `"${host}"${want === undefined ? '' : ` to IPv${want}`}`;
    throw new NatkitError('ERR_SOCKET', `could not resolve ${what}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  } finally {
    if (onAbort !== undefined) signal?.removeEventListener('abort', onAbort);
  }
}
