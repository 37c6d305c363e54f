// Relayed transport addresses backed by real sockets (RFC 8656 §7.2). The core's
// RelayAllocator is synchronous (the address goes into the Allocate response at once),
// binding is not: each family keeps a few UDP sockets bound ahead on random ports of the
// range (§7.2 "SHOULD ... be random", §21.1.1), mostly as even/odd pairs so EVEN-PORT with
// the R bit can be met, and refills in the background after each grant. A released port
// is closed, never reused, so the port is free again at once.
import { type Endpoint, type Network, type PacketSocket, type Random } from '../../net/index.ts';
import { NatkitError, ipFamily, normalizeAddress, type IpFamily } from '../../util/index.ts';
import { relayPortRange, type RelayAllocator, type RelayGrant, type RelayRequest } from './relay-allocator.ts';

/** Options of RelaySocketPool.create. */
export interface RelaySocketPoolOptions {
  readonly network: Network;
  readonly random: Random;
  /** Local addresses relays bind to, at most one per family (concrete, not a wildcard). */
  readonly addresses: readonly string[];
  /** The address advertised in XOR-RELAYED-ADDRESS for its family, when a 1:1 NAT fronts the relay. @default the bound address */
  readonly externalAddress?: string;
  /** Lowest relay port. @default 49152 */
  readonly minPort?: number;
  /** Highest relay port. @default 65535 */
  readonly maxPort?: number;
  /** Sockets kept bound ahead per family. @default 16 */
  readonly spare?: number;
  /** A datagram from `from` reached the relayed endpoint `relayed` (the advertised one). */
  readonly onPacket: (relayed: Endpoint, data: Uint8Array, from: Endpoint) => void;
  /** A background bind or close failed for another reason than a taken port. */
  readonly onError: (error: Error) => void;
}

/** One family's relay sockets, by port. */
interface FamilyPool {
  readonly family: IpFamily;
  readonly local: string;
  readonly advertised: string;
  readonly spare: Map<number, PacketSocket>;
  readonly used: Map<number, PacketSocket>;
  filling: Promise<void> | undefined;
}

/** Counters of the pool. */
export interface RelayPoolStats {
  /** Relay sockets held by allocations and reservations. */
  inUse: number;
  /** Sockets bound ahead. */
  spare: number;
  /** Binds that failed (port taken, or another error). */
  bindFailures: number;
  /** Grants refused because no spare socket fitted (the core answers 508). */
  exhausted: number;
  /** UDP sends the relay sockets refused, closed ones included. */
  sendErrors: number;
}

/** A RelayAllocator whose endpoints are bound UDP sockets. */
export class RelaySocketPool implements RelayAllocator {
  readonly addresses: readonly string[];
  private readonly options: RelaySocketPoolOptions;
  private readonly minPort: number;
  private readonly maxPort: number;
  private readonly target: number;
  private readonly pools: { [F in IpFamily]?: FamilyPool } = {};
  private bindFailures = 0;
  private exhausted = 0;
  /** Send errors of sockets already closed. */
  private retiredSendErrors = 0;
  private closed = false;

  private constructor(options: RelaySocketPoolOptions) {
    this.options = options;
    [this.minPort, this.maxPort] = relayPortRange(options.minPort, options.maxPort);
    this.target = options.spare ?? 16;
    if (!Number.isInteger(this.target) || this.target < 2) throw new NatkitError('ERR_CONFIG', `spare relay sockets: expected an integer ≥ 2, got ${this.target}`);
    const external = options.externalAddress === undefined ? undefined : normalizeAddress(options.externalAddress);
    if (external !== undefined && ipFamily(external) === undefined) throw new NatkitError('ERR_CONFIG', `external address: expected an IP address, got "${external}"`);
    for (const text of options.addresses) {
      const local = normalizeAddress(text);
      const family = ipFamily(local);
      if (family === undefined || local === '0.0.0.0' || local === '::') {
        throw new NatkitError('ERR_CONFIG', `relay address: expected a concrete IP address, got "${text}"`);
      }
      if (this.pools[family] !== undefined) throw new NatkitError('ERR_CONFIG', `relay addresses: more than one IPv${family} address`);
      const advertised = external !== undefined && ipFamily(external) === family ? external : local;
      this.pools[family] = { family, local, advertised, spare: new Map(), used: new Map(), filling: undefined };
    }
    if (options.addresses.length === 0) throw new NatkitError('ERR_CONFIG', 'relay addresses: expected at least one');
    this.addresses = [...new Set(Object.values(this.pools).flatMap((p) => [p.local, p.advertised]))];
  }

  /** Validates, then binds the first spare sockets of every family. */
  static async create(options: RelaySocketPoolOptions): Promise<RelaySocketPool> {
    const pool = new RelaySocketPool(options);
    try {
      await Promise.all(Object.values(pool.pools).map((p) => pool.fill(p)));
      for (const p of Object.values(pool.pools)) {
        if (p.spare.size === 0) throw new NatkitError('ERR_SOCKET', `no relay port could be bound on ${p.local} in ${pool.minPort}–${pool.maxPort}`);
      }
    } catch (err) {
      await pool.close();
      throw err;
    }
    return pool;
  }

  get stats(): RelayPoolStats {
    let inUse = 0;
    let spare = 0;
    let sendErrors = this.retiredSendErrors;
    for (const p of Object.values(this.pools)) {
      inUse += p.used.size;
      spare += p.spare.size;
      for (const s of [...p.used.values(), ...p.spare.values()]) sendErrors += s.stats.sendErrors;
    }
    return { inUse, spare, bindFailures: this.bindFailures, exhausted: this.exhausted, sendErrors };
  }

  supports(family: IpFamily): boolean {
    return this.pools[family] !== undefined;
  }

  allocate(request: RelayRequest): RelayGrant | undefined {
    const p = this.pools[request.family];
    if (p === undefined || this.closed) return undefined;
    const port = this.pick(p, request);
    if (port === undefined) {
      this.exhausted++;
      return undefined;
    }
    const grant: RelayGrant = request.reserveNext
      ? { relayed: this.take(p, port), reserved: this.take(p, port + 1) }
      : { relayed: this.take(p, port) };
    this.fill(p).catch((err: unknown) => this.options.onError(asError(err)));
    return grant;
  }

  release(relayed: Endpoint): void {
    const p = this.pools[relayed.family];
    const socket = p?.advertised === relayed.address ? p.used.get(relayed.port) : undefined;
    if (p === undefined || socket === undefined) return;
    p.used.delete(relayed.port);
    this.retire(socket);
  }

  /** The socket behind a granted endpoint. */
  socketFor(relayed: Endpoint): PacketSocket | undefined {
    const p = this.pools[relayed.family];
    return p?.advertised === relayed.address ? p.used.get(relayed.port) : undefined;
  }

  /** Closes every socket; grants stop. Idempotent. */
  async close(): Promise<void> {
    this.closed = true;
    const pools = Object.values(this.pools);
    await Promise.allSettled(pools.flatMap((p) => (p.filling === undefined ? [] : [p.filling])));
    const sockets = pools.flatMap((p) => [...p.spare.values(), ...p.used.values()]);
    for (const p of pools) {
      p.spare.clear();
      p.used.clear();
    }
    await Promise.allSettled(sockets.map((s) => s.close()));
  }

  /**
   * A spare port fitting the request. Plain requests prefer a port whose pair partner is
   * gone, keeping whole pairs for EVEN-PORT; one pass over the spares.
   */
  private pick(p: FamilyPool, request: RelayRequest): number | undefined {
    let fallback: number | undefined;
    for (const port of p.spare.keys()) {
      if (request.reserveNext) {
        if (port % 2 === 0 && p.spare.has(port + 1)) return port;
      } else if (request.evenPort) {
        if (port % 2 === 0) return port;
      } else if (!p.spare.has(port ^ 1)) {
        return port;
      } else {
        fallback ??= port;
      }
    }
    return fallback;
  }

  private take(p: FamilyPool, port: number): Endpoint {
    const socket = p.spare.get(port)!;
    p.spare.delete(port);
    p.used.set(port, socket);
    return { address: p.advertised, port, family: p.family };
  }

  /** Binds spares up to the target, one fill per family at a time; at most 4 tries per missing socket. */
  private fill(p: FamilyPool): Promise<void> {
    p.filling ??= this.bindSpares(p).finally(() => {
      p.filling = undefined;
    });
    return p.filling;
  }

  private async bindSpares(p: FamilyPool): Promise<void> {
    const span = this.maxPort - this.minPort + 1;
    for (let tries = 4 * this.target; tries > 0 && !this.closed && p.spare.size < this.target; tries--) {
      const r = this.options.random.bytes(2);
      // An even port and its odd partner (§7.2 EVEN-PORT); the partner alone if the range ends.
      const even = (this.minPort + (((r[0]! << 8) | r[1]!) % span)) & ~1;
      for (const port of [even, even + 1]) {
        if (port < this.minPort || port > this.maxPort || p.spare.has(port) || p.used.has(port)) continue;
        const socket = await this.bind(p, port);
        if (socket === undefined) break;
        if (this.closed) {
          this.retire(socket);
          return;
        }
        p.spare.set(port, socket);
      }
    }
  }

  private async bind(p: FamilyPool, port: number): Promise<PacketSocket | undefined> {
    try {
      const socket = await this.options.network.bindUdp({ address: p.local, port });
      const relayed: Endpoint = { address: p.advertised, port, family: p.family };
      socket.onPacket((data, from) => this.options.onPacket(relayed, data, from));
      return socket;
    } catch (err) {
      this.bindFailures++;
      // A taken port is the expected failure; anything else is reported.
      if (!(err instanceof NatkitError && /in use|EADDRINUSE/i.test(err.message))) this.options.onError(asError(err));
      return undefined;
    }
  }

  private retire(socket: PacketSocket): void {
    socket.onPacket(undefined);
    this.retiredSendErrors += socket.stats.sendErrors;
    socket.close().catch((err: unknown) => this.options.onError(asError(err)));
  }
}

/** A thrown value as an Error. */
function asError(err: unknown): Error {
  return err instanceof Error ? err : new NatkitError('ERR_SOCKET', `non-error thrown: ${String(err)}`, { cause: err });
}
