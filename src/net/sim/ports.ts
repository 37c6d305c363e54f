// A host's port bindings for one protocol, with the conflict rules of a Linux socket
// without SO_REUSEADDR (a wildcard and a specific address clash on the same port; IPv4
// and IPv6 are separate, '::' being IPv6-only as in net/node), and the errors a real
// socket reports, as NatkitError with the errno code as cause, like net/node's.
import { NatkitError } from '../../util/index.ts';
import type { IpFamily } from '../../util/index.ts';
import type { SimRandom } from './random.ts';

/** The errno codes the simulated sockets report (net/node passes the OS's through as `cause`). */
export type SimErrno = 'EADDRINUSE' | 'EADDRNOTAVAIL' | 'ECONNREFUSED' | 'ECONNRESET' | 'ENETUNREACH' | 'CERT_UNTRUSTED' | 'EPROTO';

/** ERR_SOCKET whose cause carries `code`, as a failed system call in net/node does. */
export function socketError(message: string, code: SimErrno): NatkitError {
  const cause = Object.assign(new Error(`${code}: ${message}`), { code });
  return new NatkitError('ERR_SOCKET', `${message} (${code})`, { cause });
}

/** The wildcard address of a family. */
export function anyAddress(family: IpFamily): string {
  return family === 4 ? '0.0.0.0' : '::';
}

/** Ephemeral ports (RFC 6335 §6 dynamic range). */
const EPHEMERAL_FIRST = 49152;
const EPHEMERAL_LAST = 65535;

/** What is bound on one protocol of a host: family → port → address → item. */
export class PortTable<T> {
  private readonly bound = new Map<string, Map<string, T>>();

  /** True when `address:port` may be bound (no same address, no wildcard clash). */
  isFree(family: IpFamily, address: string, port: number): boolean {
    const at = this.bound.get(`${family}/${port}`);
    if (at === undefined || at.size === 0) return true;
    return address !== anyAddress(family) && !at.has(address) && !at.has(anyAddress(family));
  }

  add(family: IpFamily, address: string, port: number, item: T): void {
    const key = `${family}/${port}`;
    let at = this.bound.get(key);
    if (at === undefined) this.bound.set(key, (at = new Map<string, T>()));
    at.set(address, item);
  }

  remove(family: IpFamily, address: string, port: number, item: T): void {
    const key = `${family}/${port}`;
    const at = this.bound.get(key);
    if (at?.get(address) !== item) return;
    at.delete(address);
    if (at.size === 0) this.bound.delete(key);
  }

  /** What receives for `address:port`: the exact binding, else the wildcard one. */
  lookup(family: IpFamily, address: string, port: number): T | undefined {
    const at = this.bound.get(`${family}/${port}`);
    return at?.get(address) ?? at?.get(anyAddress(family));
  }

  /** Every item bound. */
  items(): T[] {
    return [...this.bound.values()].flatMap((at) => [...at.values()]);
  }

  /** A free ephemeral port for `address` (random start, then upward), or undefined when none is left. */
  ephemeral(family: IpFamily, address: string, random: SimRandom): number | undefined {
    const size = EPHEMERAL_LAST - EPHEMERAL_FIRST + 1;
    const start = random.int(0, size);
    for (let i = 0; i < size; i++) {
      const port = EPHEMERAL_FIRST + ((start + i) % size);
      if (this.isFree(family, address, port)) return port;
    }
    return undefined;
  }
}
