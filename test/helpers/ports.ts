// Free port numbers for third-party servers that take numbers rather than sockets
// (coturn). The system proposes each port (a bind to port 0); an exclusive UDP and TCP
// bind on every address proves it free; an abstract-namespace Unix socket named after
// the port (Linux, unix(7)) locks it against concurrent test runs until release(), and
// the kernel drops that lock with the process, so a crashed run leaves none behind.
// An unrelated program can still take a port between the probe and the server's own
// bind: callers retry when the server reports a bind failure.
import { createSocket } from 'node:dgram';
import { createServer, type Server } from 'node:net';

/** Ports held for a server until release(). */
export interface PortReservation extends AsyncDisposable {
  readonly ports: readonly number[];
  /** Drops the locks. Idempotent. */
  release(): Promise<void>;
}

/** Options of reservePorts(). */
export interface ReserveOptions {
  /** Addresses on which every port must be free (one family). */
  readonly addresses: readonly string[];
  /** How many ports. */
  readonly count: number;
  /** Candidates tried before giving up. @default 50 */
  readonly attempts?: number;
}

/** Finds `count` distinct ports free for UDP and TCP on every address, and locks them. */
export async function reservePorts(options: ReserveOptions): Promise<PortReservation> {
  const first = options.addresses[0];
  if (first === undefined) throw new Error('reservePorts: expected at least one address');
  const locks: Server[] = [];
  const ports: number[] = [];
  const release = async (): Promise<void> => {
    await Promise.all(locks.splice(0).map((l) => new Promise<void>((resolve) => l.close(() => resolve()))));
  };
  try {
    for (let attempt = 0; ports.length < options.count; attempt++) {
      if (attempt >= (options.attempts ?? 50)) throw new Error(`reservePorts: found ${ports.length} of ${options.count} free ports on ${options.addresses.join(', ')}`);
      const port = await systemPort(first);
      if (ports.includes(port)) continue;
      const lock = await lockPort(port);
      if (lock === undefined) continue;
      if (await isFree(options.addresses, port)) {
        locks.push(lock);
        ports.push(port);
      } else {
        await new Promise<void>((resolve) => lock.close(() => resolve()));
      }
    }
  } catch (err) {
    await release();
    throw err;
  }
  return { ports, release, [Symbol.asyncDispose]: release };
}

/** A port the system considers free on `address` (UDP, bound and closed again). */
async function systemPort(address: string): Promise<number> {
  const socket = createSocket(address.includes(':') ? 'udp6' : 'udp4');
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind({ address, port: 0, exclusive: true }, () => resolve());
    });
    return socket.address().port;
  } finally {
    await new Promise<void>((resolve) => socket.close(() => resolve()));
  }
}

/** The lock of `port` for this process, or undefined when another process holds it. */
async function lockPort(port: number): Promise<Server | undefined> {
  // Abstract Unix sockets exist on Linux only; elsewhere the probe alone decides.
  if (process.platform !== 'linux') return createServer();
  const server = createServer();
  return new Promise((resolve) => {
    server.once('error', () => resolve(undefined));
    server.listen(`\0natkit-test-port-${port}`, () => resolve(server));
  });
}

/** True when `port` binds exclusively for UDP and TCP on every address. */
async function isFree(addresses: readonly string[], port: number): Promise<boolean> {
  const closers: (() => Promise<void>)[] = [];
  try {
    for (const address of addresses) {
      const udp = createSocket(address.includes(':') ? 'udp6' : 'udp4');
      closers.push(() => new Promise((resolve) => udp.close(() => resolve())));
      await new Promise<void>((resolve, reject) => {
        udp.once('error', reject);
        udp.bind({ address, port, exclusive: true }, () => resolve());
      });
      const tcp = createServer();
      await new Promise<void>((resolve, reject) => {
        tcp.once('error', reject);
        tcp.listen({ host: address, port, exclusive: true }, () => resolve());
      });
      closers.push(() => new Promise((resolve) => tcp.close(() => resolve())));
    }
    return true;
  } catch {
    return false;
  } finally {
    await Promise.all(closers.map((c) => c()));
  }
}
