// The RTO a client starts each UDP transaction with: RFC 8489 §6.2.1 asks for the RFC
// 6298 estimator (SRTT, RTTVAR) with 1 ms accuracy, an estimate cached per server IP
// address and discarded after 10 minutes without transactions to that server.
import { NatkitError } from '../util/index.ts';

/** Settings of an RtoCache. */
export interface RtoCacheOptions {
  /** RTO toward a server with no estimate (RFC 8489 §6.2.1: at least 500 ms). @default 500 */
  readonly initialMs?: number;
  /**
   * Lowest RTO an estimate may give. RFC 8489 §6.2.1 drops RFC 6298's one-second floor;
   * a floor of our own keeps scheduling jitter on fast paths from causing spurious
   * retransmissions. @default 100
   */
  readonly minMs?: number;
  /** Highest RTO, also after backoff (RFC 6298 §2.5 allows a maximum of at least 60 s). @default 60000 */
  readonly maxMs?: number;
  /** An estimate unused this long is stale (RFC 8489 §6.2.1: 10 minutes). @default 600000 */
  readonly staleMs?: number;
  /** Servers remembered at once; the least recently used is forgotten beyond it. @default 256 */
  readonly maxServers?: number;
}

interface Estimate {
  srtt: number;
  rttvar: number;
  rto: number;
  usedAt: number;
}

/** Clock granularity G of RFC 6298 §2: we keep 1 ms accuracy (RFC 8489 §6.2.1). */
const GRANULARITY_MS = 1;

/** Per-server RTO estimates; pass one cache to several clients to share what they learn. */
export class RtoCache {
  readonly initialMs: number;
  readonly minMs: number;
  readonly maxMs: number;
  readonly staleMs: number;
  readonly maxServers: number;
  /** In least-recently-used order (Map iteration order). */
  private readonly servers = new Map<string, Estimate>();

  constructor(options: RtoCacheOptions = {}) {
    this.initialMs = options.initialMs ?? 500;
    this.minMs = options.minMs ?? 100;
    this.maxMs = options.maxMs ?? 60_000;
    this.staleMs = options.staleMs ?? 600_000;
    this.maxServers = options.maxServers ?? 256;
    if (!(this.minMs > 0 && this.minMs <= this.initialMs && this.initialMs <= this.maxMs) || !(this.staleMs > 0) || !(this.maxServers >= 1)) {
      throw new NatkitError('ERR_INVALID_ARGUMENT', `RTO cache: expected 0 < minMs ≤ initialMs ≤ maxMs, staleMs > 0, maxServers ≥ 1; got ${JSON.stringify(options)}`);
    }
  }

  /** Servers with an estimate (stale ones included until next looked up). */
  get size(): number {
    return this.servers.size;
  }

  /** The RTO to start a transaction to `address` with at `now`. */
  rto(address: string, now: number): number {
    const e = this.lookup(address, now);
    if (e === undefined) return this.initialMs;
    e.usedAt = now;
    return e.rto;
  }

  /**
   * Feeds an RTT measured at `now`. Only from transactions sent once (Karn's algorithm,
   * RFC 6298 §3): with retransmissions it is unknown which transmission was answered.
   */
  sample(address: string, rttMs: number, now: number): void {
    if (!(rttMs >= 0) || !Number.isFinite(rttMs)) return;
    const e = this.lookup(address, now);
    if (e === undefined) {
      // RFC 6298 §2.2: the first measurement.
      this.remember(address, { srtt: rttMs, rttvar: rttMs / 2, rto: 0, usedAt: now });
    } else {
      // RFC 6298 §2.3: β = 1/4, α = 1/8; RTTVAR first, with the old SRTT.
      e.rttvar = 0.75 * e.rttvar + 0.25 * Math.abs(e.srtt - rttMs);
      e.srtt = 0.875 * e.srtt + 0.125 * rttMs;
      e.usedAt = now;
      this.remember(address, e);
    }
    const fresh = this.servers.get(address)!;
    fresh.rto = this.clamp(fresh.srtt + Math.max(GRANULARITY_MS, 4 * fresh.rttvar));
  }

  /** A transaction to `address` got no response: back off (RFC 6298 §5.5) for the next one. */
  timedOut(address: string, now: number): void {
    const e = this.lookup(address, now);
    if (e === undefined) return;
    e.rto = this.clamp(e.rto * 2);
    e.usedAt = now;
  }

  private clamp(ms: number): number {
    return Math.min(this.maxMs, Math.max(this.minMs, ms));
  }

  private lookup(address: string, now: number): Estimate | undefined {
    const e = this.servers.get(address);
    if (e === undefined) return undefined;
    if (now - e.usedAt > this.staleMs) {
      this.servers.delete(address);
      return undefined;
    }
    return e;
  }

  private remember(address: string, e: Estimate): void {
    this.servers.delete(address);
    this.servers.set(address, e);
    if (this.servers.size > this.maxServers) {
      const oldest = this.servers.keys().next();
      if (oldest.done !== true) this.servers.delete(oldest.value);
    }
  }
}
