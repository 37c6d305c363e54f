// Segments and routers: the internet is a segment; every router joins one segment with
// its WAN side and owns another, its LAN, where hosts and further routers (NAT behind
// NAT, as in carrier-grade NAT) join. Routing is by exact address: each segment knows
// the addresses on it, and the addresses behind a router that does not translate them;
// anything else goes to the segment's owner, or nowhere on the internet.
import { NatkitError, ipFamily, type IpFamily } from '../../util/index.ts';
import { formatEndpoint } from '../endpoint.ts';
import type { Endpoint } from '../types.ts';
import { AddressPool, lanPlan } from './addresses.ts';
import type { Attachment, Fabric, Wire } from './fabric.ts';
import { SimHost } from './host.ts';
import { Link, type LinkOptions } from './link.ts';
import { NatTable, resolveBehaviour, type Mapping, type NatBehaviour, type NatOptions } from './nat.ts';
import type { SimPacket, SimProto } from './packet.ts';
import type { DropReason } from './trace.ts';

/** Options of addHost(). */
export interface HostOptions {
  /** Unique name, shown in the trace and keying the host's random stream. @default 'host1', 'host2', … */
  readonly name?: string;
  /** Its addresses, either family; the first of a family is its default source. @default one IPv4 and, where the segment has IPv6, one IPv6 address from the plan */
  readonly addresses?: readonly string[];
  /** With planned addresses: take an IPv6 one too. @default true */
  readonly ipv6?: boolean;
  /** Impairments of its access link. @default none */
  readonly link?: LinkOptions;
}

/** Options of addRouter(). */
export interface RouterOptions {
  /** Unique name. @default 'router1', … */
  readonly name?: string;
  /** IPv4 behaviour: a NAT_PRESETS entry, any knobs, or both spread together. @default port-restricted cone keeping ports (DEFAULT_BEHAVIOUR) */
  readonly nat?: NatOptions;
  /**
   * IPv6 behaviour, laid over `nat`; 'off' leaves the LAN without IPv6.
   * @default { kind: 'firewall' } (stateful filtering without translation, as RFC 6092 has CPE do), 'open' when IPv4 is open
   */
  readonly ipv6?: NatOptions | 'off';
  /** WAN addresses, at most one per family. @default from the plan of the segment it joins */
  readonly wanAddresses?: readonly string[];
  /** Impairments of its WAN link. @default none */
  readonly link?: LinkOptions;
}

type Pools = Partial<Record<IpFamily, Iterable<string>>>;

/** A network segment: the internet, or a router's LAN. */
export class SimSegment implements Wire {
  readonly name: string;
  /** @internal */
  readonly routes = new Map<string, Attachment>();
  /** @internal */
  readonly gateway: Attachment | undefined;
  /** The router whose LAN this is; undefined for the internet. */
  readonly owner: SimRouter | undefined;
  /** Its IPv4 addresses are public: the internet, or a LAN behind routers that do not translate. */
  readonly isPublic: boolean;
  private readonly fabric: Fabric;
  private readonly hostPools: Partial<Record<IpFamily, AddressPool>> = {};
  private readonly routerPools: Partial<Record<IpFamily, AddressPool>> = {};

  constructor(fabric: Fabric, init: { name: string; owner?: SimRouter; isPublic: boolean; hosts: Pools; routers?: Pools }) {
    this.fabric = fabric;
    this.name = init.name;
    this.owner = init.owner;
    this.gateway = init.owner?.lanSide;
    this.isPublic = init.isPublic;
    for (const family of [4, 6] as const) {
      const hosts = init.hosts[family];
      if (hosts !== undefined) this.hostPools[family] = new AddressPool(family, `hosts on ${init.name}`, hosts, fabric.takenAddresses);
      const routers = init.routers?.[family];
      const pool = routers === undefined ? this.hostPools[family] : new AddressPool(family, `routers on ${init.name}`, routers, fabric.takenAddresses);
      if (pool !== undefined) this.routerPools[family] = pool;
    }
  }

  /** True when hosts here get addresses of `family` by default. */
  hasFamily(family: IpFamily): boolean {
    return this.hostPools[family] !== undefined;
  }

  /** A host on this segment. */
  addHost(options: HostOptions = {}): SimHost {
    const fabric = this.fabric;
    const name = fabric.claimName('host', options.name);
    const addresses = options.addresses !== undefined
      ? options.addresses.map((a) => fabric.claimAddress(a))
      : ([4, 6] as const).filter((f) => f === 4 || options.ipv6 !== false).flatMap((f) => this.hostPools[f]?.next() ?? []);
    if (addresses.length === 0) throw new NatkitError('ERR_CONFIG', `host ${name} would have no address`);
    const link = new Link(`${name}.link`, fabric.random.fork(`link:${name}`), options.link);
    const host = new SimHost(fabric, { name, addresses, link, route: (packet, from) => fabric.transmit(packet, this, from.attachment) });
    for (const a of addresses) this.register(a, host.attachment);
    fabric.adopt(host);
    return host;
  }

  /** A router whose WAN side is on this segment. */
  addRouter(options: RouterOptions = {}): SimRouter {
    return new SimRouter(this.fabric, this, options);
  }

  /** @internal the next planned router address of `family`, if the segment has that family. */
  plannedRouterAddress(family: IpFamily): string | undefined {
    return this.routerPools[family]?.next();
  }

  /** @internal routes `address` here to `to`, and on up while the owner does not translate its family. */
  register(address: string, to: Attachment): void {
    this.routes.set(address, to);
    const owner = this.owner;
    const family = ipFamily(address);
    if (owner === undefined || family === undefined) return;
    const b = owner.behaviour[family];
    if (b !== undefined && b.kind !== 'nat') owner.wan.register(address, owner.wanSide);
  }
}

/** Options of SimRouter.forwardPort(). */
export interface ForwardOptions {
  /** Where inbound packets go. */
  readonly internal: Endpoint;
  /** @default internal.port */
  readonly externalPort?: number;
  /** @default 'udp' */
  readonly proto?: SimProto;
  /** Removed after this long; @default never */
  readonly lifetimeMs?: number;
}

/** A router: NAT, stateful firewall or plain forwarding per family, between its WAN segment and its LAN. */
export class SimRouter {
  readonly name: string;
  /** Its LAN: add hosts and routers here (or through addHost/addRouter). */
  readonly lan: SimSegment;
  /** The segment its WAN side joins. */
  readonly wan: SimSegment;
  /** Its WAN link (change impairments with `link.set()`). */
  readonly link: Link;
  /** Behaviour per family; undefined: the family is not carried. */
  readonly behaviour: Readonly<Record<IpFamily, NatBehaviour | undefined>>;
  /** The router's own sockets, on its WAN and LAN addresses (services such as a port-mapping gateway). */
  readonly host: SimHost;
  /** @internal */
  readonly wanSide: Attachment;
  /** @internal */
  readonly lanSide: Attachment;
  private readonly fabric: Fabric;
  private readonly wanAddresses: Partial<Record<IpFamily, string>> = {};
  private readonly lanAddresses: Partial<Record<IpFamily, string>> = {};
  private readonly tables = new Map<string, NatTable>();

  constructor(fabric: Fabric, wan: SimSegment, options: RouterOptions) {
    this.fabric = fabric;
    this.name = fabric.claimName('router', options.name);
    this.wan = wan;
    const index = fabric.nextRouterIndex();
    const b4 = resolveBehaviour(options.nat);
    for (const a of options.wanAddresses ?? []) {
      const address = fabric.claimAddress(a);
      const family = ipFamily(address) ?? 4;
      if (this.wanAddresses[family] !== undefined) throw new NatkitError('ERR_CONFIG', `router ${this.name}: one WAN address per family, got ${options.wanAddresses?.join(', ')}`);
      this.wanAddresses[family] = address;
    }
    const ipv6 = options.ipv6;
    if (options.wanAddresses === undefined) {
      for (const family of ipv6 === 'off' ? [4] as const : [4, 6] as const) {
        const address = wan.plannedRouterAddress(family);
        if (address !== undefined) this.wanAddresses[family] = address;
      }
    }
    const b6 = ipv6 === 'off' || this.wanAddresses[6] === undefined
      ? undefined
      : resolveBehaviour({ ...options.nat, kind: b4.kind === 'open' ? 'open' : 'firewall', ...ipv6 });
    this.behaviour = { 4: this.wanAddresses[4] === undefined ? undefined : b4, 6: b6 };
    const isPublic = b4.kind !== 'nat' && wan.isPublic;
    const plan = lanPlan(index, isPublic);
    this.lanAddresses[4] = fabric.claimAddress(plan[4].gateway);
    if (b6 !== undefined) this.lanAddresses[6] = fabric.claimAddress(plan[6].gateway);
    this.link = new Link(`${this.name}.link`, fabric.random.fork(`link:${this.name}`), options.link);
    this.wanSide = { name: this.name, link: this.link, node: this, arrive: (p) => this.fromWan(p) };
    this.lanSide = { name: this.name, link: undefined, node: this, arrive: (p) => this.fromLan(p) };
    const own = [this.wanAddresses[4], this.wanAddresses[6], this.lanAddresses[4], this.lanAddresses[6]].filter((a) => a !== undefined);
    this.host = new SimHost(fabric, { name: this.name, addresses: own, link: undefined, route: (p) => this.routeOwn(p) });
    this.lan = new SimSegment(fabric, {
      name: `${this.name}.lan`, owner: this, isPublic,
      hosts: { 4: plan[4].hosts, ...(b6 !== undefined && { 6: plan[6].hosts }) },
    });
    for (const a of [this.wanAddresses[4], this.wanAddresses[6]]) if (a !== undefined) wan.register(a, this.wanSide);
    for (const a of [this.lanAddresses[4], this.lanAddresses[6]]) if (a !== undefined) this.lan.register(a, this.host.attachment);
    fabric.adopt(this);
  }

  /** Its WAN address of `family` (the external address of its mappings). */
  wanAddress(family: IpFamily = 4): string {
    return need(this.wanAddresses[family], `router ${this.name} has no IPv${family} WAN address`);
  }

  /** Its LAN-side (gateway) address of `family`. */
  lanAddress(family: IpFamily = 4): string {
    return need(this.lanAddresses[family], `router ${this.name} has no IPv${family} LAN address`);
  }

  /** A host on its LAN. */
  addHost(options?: HostOptions): SimHost {
    return this.lan.addHost(options);
  }

  /** A router behind this one (NAT behind NAT). */
  addRouter(options?: RouterOptions): SimRouter {
    return this.lan.addRouter(options);
  }

  /** Live mappings (for 'firewall', connection states), oldest first. */
  mappings(options: { readonly proto?: SimProto; readonly family?: IpFamily } = {}): Mapping[] {
    return this.tables.get(`${options.family ?? 4}/${options.proto ?? 'udp'}`)?.list(this.fabric.clock.now()) ?? [];
  }

  /** A port forward on the WAN address, open to anyone (what UPnP, NAT-PMP or PCP would install). */
  forwardPort(options: ForwardOptions): Mapping {
    const { internal } = options;
    const table = this.table(internal.family, options.proto ?? 'udp');
    if (table === undefined) throw new NatkitError('ERR_CONFIG', `router ${this.name} does not carry IPv${internal.family}`);
    return table.forward(internal, options.externalPort ?? internal.port, this.fabric.clock.now(), options.lifetimeMs);
  }

  /** Removes the mapping at `externalPort`; true when there was one. */
  unforwardPort(options: { readonly externalPort: number; readonly proto?: SimProto; readonly family?: IpFamily }): boolean {
    return this.table(options.family ?? 4, options.proto ?? 'udp')?.unforward(options.externalPort) ?? false;
  }

  /** Closes the router's own sockets. */
  destroy(): void {
    this.host.destroy();
  }

  private table(family: IpFamily, proto: SimProto): NatTable | undefined {
    const behaviour = this.behaviour[family];
    if (behaviour === undefined) return undefined;
    const key = `${family}/${proto}`;
    let table = this.tables.get(key);
    if (table === undefined) {
      const externalAddress = behaviour.kind === 'nat' ? this.wanAddresses[family] : undefined;
      table = new NatTable({ behaviour, externalAddress, proto, random: this.fabric.random.fork(`nat:${this.name}:${key}`) });
      this.tables.set(key, table);
    }
    return table;
  }

  /** From the LAN toward anywhere else: translate or record state, then on to the WAN. */
  private fromLan(p: SimPacket): void {
    if (p.ttl <= 1) return this.drop(p, 'ttl');
    if (this.host.addresses.includes(p.dst.address)) return this.toSelfFromLan(p);
    const family = p.dst.family;
    const b = this.behaviour[family];
    const table = this.table(family, p.proto);
    if (b === undefined || table === undefined) return this.drop(p, 'family-off', `${this.name} carries no IPv${family}`);
    if (p.proto === 'udp' && b.blockUdp) return this.drop(p, 'udp-blocked');
    const out: SimPacket = { ...p, ttl: p.ttl - 1 };
    if (b.kind === 'open') return this.forward(out, this.wan, this.wanSide, 'forward');
    const r = table.outbound(p.src, p.dst, this.fabric.clock.now());
    if (!r.ok) return this.drop(p, r.reason, r.detail);
    const fresh = r.created ? ` (new ${b.kind === 'nat' ? 'mapping' : 'state'}${r.expired ? ', the old one expired' : ''})` : '';
    if (b.kind === 'nat') {
      this.forward({ ...out, src: r.external }, this.wan, this.wanSide, 'translate', `src ${formatEndpoint(p.src)} → ${formatEndpoint(r.external)}${fresh}`);
    } else {
      this.forward(out, this.wan, this.wanSide, 'forward', fresh === '' ? undefined : fresh.trim());
    }
  }

  /** From the WAN: filter and translate back, or deliver to the router itself. */
  private fromWan(p: SimPacket): void {
    if (p.ttl <= 1) return this.drop(p, 'ttl');
    const family = p.dst.family;
    const b = this.behaviour[family];
    const table = this.table(family, p.proto);
    if (b === undefined || table === undefined) return this.drop(p, 'family-off', `${this.name} carries no IPv${family}`);
    if (p.proto === 'udp' && b.blockUdp) return this.drop(p, 'udp-blocked');
    const isOwn = this.host.addresses.includes(p.dst.address);
    if (isOwn && b.kind !== 'nat') return this.host.network.receive(p);
    if (b.kind === 'open') return this.forward({ ...p, ttl: p.ttl - 1 }, this.lan, this.lanSide, 'forward');
    const r = table.inbound(p.src, p.dst, this.fabric.clock.now());
    if (r.ok) {
      const detail = b.kind === 'nat' ? `dst ${formatEndpoint(p.dst)} → ${formatEndpoint(r.internal)}` : undefined;
      return this.forward({ ...p, dst: r.internal, ttl: p.ttl - 1 }, this.lan, this.lanSide, b.kind === 'nat' ? 'translate' : 'forward', detail);
    }
    // Not a mapping: the router's own socket, if one is bound there.
    if (isOwn && r.reason === 'no-mapping' && this.host.network.accepts(p)) return this.host.network.receive(p);
    // A firewall without state for the destination refuses it: that is its filtering.
    const reason: DropReason = b.kind === 'firewall' && r.reason === 'no-mapping' ? 'filtered' : r.reason;
    this.drop(p, reason, b.kind === 'firewall' && r.reason === 'no-mapping' ? `no outbound state for ${formatEndpoint(p.dst)}` : r.detail);
  }

  /**
   * From the LAN to the router's own address: hairpinning when it is a mapped external
   * endpoint (RFC 4787 §6), else the router's own sockets.
   */
  private toSelfFromLan(p: SimPacket): void {
    const family = p.dst.family;
    const b = this.behaviour[family];
    const table = this.table(family, p.proto);
    const now = this.fabric.clock.now();
    if (b?.kind !== 'nat' || table === undefined || p.dst.address !== this.wanAddresses[family] || !table.isMapped(p.dst, now)) {
      return this.host.network.receive(p);
    }
    if (p.proto === 'udp' && b.blockUdp) return this.drop(p, 'udp-blocked');
    // RFC 4787 REQ-9 asks every NAT to hairpin; many do not (stock Linux included).
    if (!b.hairpinning) return this.drop(p, 'hairpin-off', `${formatEndpoint(p.dst)} is a mapping of this NAT`);
    // REQ-9a: the hairpinned packet carries the sender's external address and port. §6
    // forwards it to the mapping's internal endpoint, unfiltered (as Linux's hairpin DNAT).
    const out = table.outbound(p.src, p.dst, now);
    if (!out.ok) return this.drop(p, out.reason, out.detail);
    const back = table.inbound(out.external, p.dst, now, false);
    if (!back.ok) return this.drop({ ...p, src: out.external }, back.reason, back.detail);
    this.forward({ ...p, src: out.external, dst: back.internal, ttl: p.ttl - 1 }, this.lan, this.lanSide, 'hairpin',
      `src ${formatEndpoint(p.src)} → ${formatEndpoint(out.external)}, dst ${formatEndpoint(p.dst)} → ${formatEndpoint(back.internal)}`);
  }

  /** The router's own packets: to the LAN when the address is there, else out of the WAN, untranslated. */
  private routeOwn(p: SimPacket): void {
    if (this.lan.routes.has(p.dst.address)) this.fabric.transmit(p, this.lan, this.host.attachment);
    else this.fabric.transmit(p, this.wan, this.wanSide);
  }

  private forward(p: SimPacket, wire: Wire, from: Attachment, event: 'forward' | 'translate' | 'hairpin', detail?: string): void {
    this.fabric.trace.record(p, this.name, event, detail === undefined ? {} : { detail });
    this.fabric.transmit(p, wire, from);
  }

  private drop(p: SimPacket, reason: DropReason, detail?: string): void {
    this.fabric.trace.record(p, this.name, 'drop', { reason, ...(detail !== undefined && { detail }) });
  }
}

function need(value: string | undefined, message: string): string {
  if (value === undefined) throw new NatkitError('ERR_CONFIG', message);
  return value;
}
