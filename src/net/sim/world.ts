// The simulated world: one seed, one virtual clock, one packet trace, an internet segment
// (198.18.0.0/15, 2001:db8::/32) with hosts and routers on it, and the hop-by-hop
// transport between them. See index.ts for a usage example.
import { NatkitError, ipFamily, normalizeAddress } from '../../util/index.ts';
import type { Logger } from '../types.ts';
import { internetHostSources, internetRouterSources } from './addresses.ts';
import { SimClock, type RunOptions, type StepOptions } from './clock.ts';
import type { Attachment, Fabric, Wire } from './fabric.ts';
import type { SimHost } from './host.ts';
import type { Link } from './link.ts';
import type { OpenSockets } from './network.ts';
import type { SimPacket } from './packet.ts';
import { SimRandom } from './random.ts';
import { SimSegment, type HostOptions, type RouterOptions, type SimRouter } from './topology.ts';
import { PacketTrace, TRACE_CAPACITY } from './trace.ts';

/** Options of a World. */
export interface WorldOptions {
  /** Seed of every random draw: equal seeds and equal actions give equal traces. @default 1 */
  readonly seed?: number | string;
  /** Virtual time at the start, ms. @default 0 */
  readonly startMs?: number;
  /** Entries the packet trace keeps. @default 2000 */
  readonly traceCapacity?: number;
  /** Receives every host's log records, with `host` and `timeMs` added. @default drops them */
  readonly logger?: Logger;
  /** Largest simulated TCP segment, bytes. @default 1460 */
  readonly tcpMssBytes?: number;
  /** Stream write() returns false once this many written bytes are unread by the peer. @default 262144 */
  readonly tcpHighWaterBytes?: number;
}

const silent: Logger = { debug: () => undefined, info: () => undefined, warn: () => undefined };

/** A deterministic simulated network on a virtual clock. */
export class World implements Fabric, AsyncDisposable {
  readonly clock: SimClock;
  /** The root random stream; hosts, links and NATs use streams forked from it by name. */
  readonly random: SimRandom;
  readonly trace: PacketTrace;
  readonly logger: Logger;
  /** The public internet segment. */
  readonly internet: SimSegment;
  readonly tcpMssBytes: number;
  readonly tcpHighWaterBytes: number;
  /** @internal */
  readonly takenAddresses = new Set<string>();
  private readonly nodes = new Map<string, SimHost | SimRouter>();
  private readonly counters = new Map<string, number>();
  private packets = 0;
  private routerCount = 0;
  private isClosed = false;

  constructor(options: WorldOptions = {}) {
    this.clock = new SimClock(options.startMs === undefined ? {} : { startMs: options.startMs });
    this.random = new SimRandom(options.seed ?? 1);
    this.trace = new PacketTrace(this.clock, options.traceCapacity ?? TRACE_CAPACITY);
    this.logger = options.logger ?? silent;
    this.tcpMssBytes = positive('tcpMssBytes', options.tcpMssBytes ?? 1460);
    this.tcpHighWaterBytes = positive('tcpHighWaterBytes', options.tcpHighWaterBytes ?? 256 * 1024);
    this.internet = new SimSegment(this, { name: 'internet', isPublic: true, hosts: internetHostSources(), routers: internetRouterSources() });
  }

  /** A host on the internet (public addresses). */
  addHost(options?: HostOptions): SimHost {
    return this.internet.addHost(options);
  }

  /** A router on the internet; add LAN hosts with router.addHost(). */
  addRouter(options?: RouterOptions): SimRouter {
    return this.internet.addRouter(options);
  }

  /** The host or router called `name`. */
  node(name: string): SimHost | SimRouter {
    const found = this.nodes.get(name);
    if (found === undefined) throw new NatkitError('ERR_INVALID_ARGUMENT', `no host or router named "${name}"`);
    return found;
  }

  /** Runs the world until `work` settles (see SimClock.run). */
  run<T>(work: Promise<T> | (() => Promise<T>), options?: RunOptions): Promise<T> {
    return this.clock.run(work, options);
  }

  /** Lets `ms` of virtual time pass (see SimClock.elapse). */
  elapse(ms: number, options?: StepOptions): Promise<void> {
    return this.clock.elapse(ms, options);
  }

  /** Runs until nothing is scheduled (true) or the next event is more than maxMs away (false); see SimClock.settle. */
  settle(options?: RunOptions): Promise<boolean> {
    return this.clock.settle(options);
  }

  /** Sockets still open on every host and router. */
  openSockets(): OpenSockets {
    let udp = 0;
    let listeners = 0;
    let streams = 0;
    for (const node of this.nodes.values()) {
      const open = ('host' in node ? node.host : node).openSockets();
      udp += open.udp;
      listeners += open.listeners;
      streams += open.streams;
    }
    return { udp, listeners, streams };
  }

  /** Closes every socket and drops every scheduled event. Idempotent. */
  close(): Promise<void> {
    if (!this.isClosed) {
      this.isClosed = true;
      for (const node of this.nodes.values()) node.destroy();
      this.clock.clear();
    }
    return Promise.resolve();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /** @internal */
  nextPacketId(): number {
    return ++this.packets;
  }

  /** @internal */
  transmit(packet: SimPacket, wire: Wire, from: Attachment): void {
    if (this.isClosed) return;
    let to = wire.routes.get(packet.dst.address);
    if (to === undefined && wire.gateway !== undefined && wire.gateway.node !== from.node) to = wire.gateway;
    if (to === undefined || to.node === from.node) {
      this.trace.record(packet, wire.name, 'drop', { reason: 'no-route', detail: `nothing on ${wire.name} has ${packet.dst.address}` });
      return;
    }
    const target = to;
    for (const delayMs of this.cross(packet, from.link, target.link)) {
      this.clock.setTimer(delayMs, () => {
        if (!this.isClosed) target.arrive(packet);
      });
    }
  }

  /** @internal */
  claimName(prefix: string, wanted: string | undefined): string {
    if (wanted !== undefined) {
      if (wanted === '' || this.nodes.has(wanted) || wanted === 'internet') throw new NatkitError('ERR_CONFIG', `node name "${wanted}" is empty or taken`);
      return wanted;
    }
    for (;;) {
      const n = (this.counters.get(prefix) ?? 0) + 1;
      this.counters.set(prefix, n);
      if (!this.nodes.has(`${prefix}${n}`)) return `${prefix}${n}`;
    }
  }

  /** @internal */
  claimAddress(address: string): string {
    const normal = normalizeAddress(address);
    if (ipFamily(normal) === undefined) throw new NatkitError('ERR_INVALID_ARGUMENT', `expected an IP address, got "${address}"`);
    if (this.takenAddresses.has(normal)) throw new NatkitError('ERR_CONFIG', `address ${normal} is already in use in this world`);
    this.takenAddresses.add(normal);
    return normal;
  }

  /** @internal */
  nextRouterIndex(): number {
    return ++this.routerCount;
  }

  /** @internal */
  adopt(node: SimHost | SimRouter): void {
    this.nodes.set(node.name, node);
  }

  /** Copies of `packet` that cross both links, with their delays; losses and copies are traced. */
  private cross(packet: SimPacket, ...links: (Link | undefined)[]): number[] {
    let delays = [0];
    // Stream segments stand for a retransmitting transport: never lost or duplicated.
    const reliable = packet.proto === 'tcp';
    for (const link of links) {
      if (link === undefined) continue;
      const next: number[] = [];
      for (const base of delays) {
        const c = link.cross(reliable);
        if (c.lost) this.trace.record(packet, link.name, 'drop', { reason: 'loss' });
        if (c.duplicated) this.trace.record(packet, link.name, 'duplicate');
        if (c.reordered) this.trace.record(packet, link.name, 'delay', { detail: `held back ${link.impairments.reorderDelayMs} ms` });
        for (const d of c.delaysMs) next.push(base + d);
      }
      delays = next;
    }
    return delays;
  }
}

function positive(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 1) throw new NatkitError('ERR_INVALID_ARGUMENT', `${name} must be a whole number ≥ 1, got ${value}`);
  return value;
}
