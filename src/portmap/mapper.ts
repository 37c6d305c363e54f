// PortMapper: one facade over PCP (RFC 6887), NAT-PMP (RFC 6886) and UPnP IGD. It finds
// which protocols the gateway answers (first in `order` wins and is remembered), keeps
// each mapping alive by renewing it between 1/2 and 5/8 of its lifetime (RFC 6886 §3.3
// says renew at 1/2, RFC 6887 §11.2.1 between 1/2 and 5/8: we draw in that window),
// retries failures with jittered exponential backoff, maps everything again when the
// gateway lost state (RFC 6886 §3.6 and RFC 6887 §8.5 epochs, PCP ANNOUNCE §14.1.1, a
// new UPnP BOOTID or a vanished entry), deletes what it made on close(), and finds UPnP
// entries an earlier instance left behind by their description. No socket or timer of
// its own outside env: it runs on real sockets and in the simulated world alike.
import { type Endpoint, type Env, type Timer } from '../net/index.ts';
import { NatkitError, isNatkitError, throwIfAborted } from '../util/index.ts';
import { gatewayEndpoint } from './client-base.ts';
import { defaultGateway, type RouteTablesText } from './gateway.ts';
import { probeProtocol, type PortMappingProbe, type ProbeContext, type ProtocolProbe } from './mapper-probe.ts';
import { MAPPER_PROTOCOLS, Mapping, nonceBytes, nonceHex, updateMapping, type MapperProtocol, type MappingChange, type MappingRecord } from './mapping.ts';
import type { MapProtocol } from './natpmp.ts';
import { PortControlClient } from './port-control.ts';
import type { RetransmitTimers } from './retransmit.ts';
import { UpnpGateway } from './upnp-gateway.ts';
import type { UpnpMappingEntry } from './upnp-map.ts';
import { isUpnpFault } from './upnp-soap.ts';
import { SSDP_PORT } from './upnp-ssdp.ts';

/** Timeouts of PortMapper; every duration in milliseconds. */
export interface PortMapperTimeouts {
  /** Each protocol's probe (probe(), the first map()). @default 2000 */
  readonly probeMs?: number;
  /** Each PCP/NAT-PMP request and each UPnP SOAP exchange. @default 10000 */
  readonly callMs?: number;
  /** SSDP search for the UPnP gateway. @default 2000 */
  readonly upnpSearchMs?: number;
}

/** How failed renewals are retried. */
export interface RenewalOptions {
  /** First retry after a failed renewal. @default 5000 */
  readonly retryMinMs?: number;
  /** Longest wait between retries (the backoff doubles up to it). @default 600000 */
  readonly retryMaxMs?: number;
  /** Failed attempts after a mapping is lost before the mapper gives it up (onChange 'failed', state 'removed'). @default 10 */
  readonly maxLostAttempts?: number;
  /** How often a permanent UPnP lease (0) is checked with GetSpecificPortMappingEntry. @default 1800000 */
  readonly permanentCheckMs?: number;
}

/** Options of PortMapper.create(). */
export interface PortMapperOptions {
  /** Network, clock, randomness (nonces, jitter) and logger. */
  readonly env: Env;
  /** The NAT-PMP/PCP server (port 5351 unless given), also searched for UPnP by unicast on port 1900. @default the default gateway of `routeTables` */
  readonly gateway?: Endpoint | string;
  /** The system's route tables (natkit's readRouteTables()), for the default gateway. @default none: without `gateway`, only UPnP by multicast */
  readonly routeTables?: RouteTablesText;
  /**
   * Our address toward the gateway: the PCP header's client address (RFC 6887 §7.1), the
   * UPnP internal client, the address the port-control socket binds. natkit's Node entry
   * fills it with localAddressToward(gateway). Required for PCP. @default none
   */
  readonly localAddress?: string;
  /** Protocols in the order tried; leaving one out disables it. @default ['pcp', 'natpmp', 'upnp'] */
  readonly order?: readonly MapperProtocol[];
  /** Label of UPnP descriptions: entries read `LABEL INSTANCE`. @default 'natkit' */
  readonly description?: string;
  /** This mapper's tag in UPnP descriptions, [A-Za-z0-9._-]{1,32}. @default 8 random hex digits */
  readonly instance?: string;
  /** Where UPnP is searched. @default unicast to the gateway's port 1900 and multicast */
  readonly upnp?: { readonly search?: readonly Endpoint[]; readonly multicast?: boolean };
  readonly timeouts?: PortMapperTimeouts;
  readonly renewal?: RenewalOptions;
  /** close() when this fires: natkit's CLI and Node entry pass one that SIGINT/SIGTERM abort. */
  readonly closeOn?: AbortSignal;
  /** Called when a held mapping's external address or port changes, or it is lost or restored. */
  readonly onChange?: (change: MappingChange) => void;
  /** Cancels create(). */
  readonly signal?: AbortSignal;
}

/** What map() asks for. */
export interface MapRequest {
  readonly protocol: MapProtocol;
  readonly internalPort: number;
  /** The external port wanted; the gateway may give another. @default internalPort for UPnP, no preference for PCP/NAT-PMP */
  readonly externalPort?: number;
  /** Seconds asked for (RFC 6886 §3.3 recommends 7200); 0 asks UPnP for a permanent lease. @default 7200 */
  readonly lifetimeS?: number;
  /** Use only this protocol. @default the first of `order` that answers */
  readonly via?: MapperProtocol;
  readonly signal?: AbortSignal;
}

/** One row of list(). */
export interface ListedMapping {
  readonly via: MapperProtocol;
  readonly protocol: MapProtocol;
  readonly externalPort: number;
  readonly internalClient: string;
  readonly internalPort: number;
  /** UPnP's description; '' for PCP and NAT-PMP, which carry none. */
  readonly description: string;
  /** Lease left (UPnP) or granted (PCP/NAT-PMP), seconds; 0 permanent. */
  readonly leaseS: number;
  /** The description is natkit's label (any instance). */
  readonly ours: boolean;
  /** This mapper holds it. */
  readonly held: boolean;
}

/** What list() returns: UPnP's table (when UPnP answers) and the PCP/NAT-PMP mappings held. */
export interface MappingList {
  readonly mappings: readonly ListedMapping[];
  /** Why the UPnP table could not be read. */
  readonly upnpError?: string;
}

/** What close() did. */
export interface CloseReport {
  readonly removed: readonly MappingRecord[];
  readonly failed: readonly { readonly mapping: MappingRecord; readonly error: unknown }[];
}

interface Held {
  readonly mapping: Mapping;
  readonly request: MapRequest;
  timer: Timer | undefined;
  /** A renewal is running. */
  busy: boolean;
  failures: number;
}

interface Granted {
  readonly record: MappingRecord;
  readonly expiresAt: number;
  readonly gatewayReset: boolean;
}

const DEFAULT_LIFETIME_S = 7200;
/** A grant shorter than this is still renewed no sooner (a gateway granting 1 s must not make us spin). */
const MIN_RENEW_MS = 1000;
const INSTANCE = /^[A-Za-z0-9._-]{1,32}$/;
const upnpProtocol = (p: MapProtocol): 'UDP' | 'TCP' => (p === 'udp' ? 'UDP' : 'TCP');
const escapeRegExp = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const messageOf = (err: unknown): string => (err instanceof Error ? err.message : String(err));

function checkPort(port: number | undefined, what: string, min: number): void {
  if (port !== undefined && (!Number.isInteger(port) || port < min || port > 65535)) throw new NatkitError('ERR_INVALID_ARGUMENT', `${what}: expected a port ${min}–65535, got ${port}`);
}

/** The gateway a mapper talks to: `gateway`, else the default route's (IPv4 first: NAT-PMP is IPv4 only). */
export function mapperGateway(o: Pick<PortMapperOptions, 'gateway' | 'routeTables'>): Endpoint | undefined {
  if (o.gateway !== undefined) return gatewayEndpoint(o.gateway);
  const found = o.routeTables === undefined ? undefined : defaultGateway(o.routeTables, 4) ?? defaultGateway(o.routeTables);
  return found && gatewayEndpoint(found.address);
}

/** One gateway's port mappings, through whichever protocol it answers. */
export class PortMapper {
  /** The NAT-PMP/PCP server, when one is known. */
  readonly gateway: Endpoint | undefined;
  /** The description prefix of this mapper's UPnP entries: `LABEL INSTANCE`. */
  readonly upnpDescription: string;
  readonly order: readonly MapperProtocol[];
  private readonly env: Env;
  private readonly o: PortMapperOptions;
  private readonly control: PortControlClient | undefined;
  private readonly held = new Map<number, Held>();
  private readonly stalePattern: RegExp;
  private readonly closer = new AbortController();
  private nextId = 1;
  private preferred: MapperProtocol | undefined;
  private upnpGateway: Promise<UpnpGateway> | undefined;
  private lastBootId: { location: string; bootId: number | undefined } | undefined;
  private closing: Promise<CloseReport> | undefined;
  private readonly onCloseSignal = (): void => void this.close();

  private constructor(o: PortMapperOptions, gateway: Endpoint | undefined, control: PortControlClient | undefined, instance: string) {
    this.o = o;
    this.env = o.env;
    this.gateway = gateway;
    this.control = control;
    this.order = o.order ?? MAPPER_PROTOCOLS;
    const label = o.description ?? 'natkit';
    this.upnpDescription = `${label} ${instance}`;
    this.stalePattern = new RegExp(`^${escapeRegExp(label)} [A-Za-z0-9._-]{1,32}$`);
    o.closeOn?.addEventListener('abort', this.onCloseSignal, { once: true });
  }

  /** Finds the gateway and binds the PCP/NAT-PMP socket; nothing is sent yet. */
  static async create(o: PortMapperOptions): Promise<PortMapper> {
    throwIfAborted(o.signal, 'PortMapper.create');
    const order = o.order ?? MAPPER_PROTOCOLS;
    if (order.length === 0 || order.some((p) => !MAPPER_PROTOCOLS.includes(p)) || new Set(order).size !== order.length) {
      throw new NatkitError('ERR_INVALID_ARGUMENT', `order: expected distinct protocols of ${MAPPER_PROTOCOLS.join(', ')}, got ${JSON.stringify(order)}`);
    }
    const label = o.description ?? 'natkit';
    if (label === '' || label.length > 200 || /[\r\n]/.test(label)) throw new NatkitError('ERR_INVALID_ARGUMENT', `description: expected 1–200 characters on one line, got ${JSON.stringify(label.slice(0, 60))}`);
    const instance = o.instance ?? nonceHex(o.env.random.bytes(4));
    if (!INSTANCE.test(instance)) throw new NatkitError('ERR_INVALID_ARGUMENT', `instance: expected [A-Za-z0-9._-]{1,32}, got ${JSON.stringify(instance.slice(0, 40))}`);
    const gateway = mapperGateway(o);
    const wantsControl = gateway !== undefined && (order.includes('pcp') || order.includes('natpmp'));
    if (wantsControl && o.localAddress === undefined) {
      throw new NatkitError('ERR_INVALID_ARGUMENT', 'PortMapper: PCP/NAT-PMP need localAddress, our address toward the gateway (RFC 6887 §7.1); natkit\'s Node entry finds it with localAddressToward()');
    }
    const self: { mapper?: PortMapper } = {};
    const control = wantsControl
      ? await PortControlClient.create({
        env: o.env, gateway,
        ...(o.localAddress !== undefined && { localAddress: o.localAddress, clientAddress: o.localAddress }),
        ...(o.signal && { signal: o.signal }),
        // RFC 6887 §14.1.1: an unsolicited ANNOUNCE with an invalid epoch means the server lost its mappings.
        onUnsolicited: (_res, info) => {
          if (info.gatewayReset) self.mapper?.remapAll(['pcp', 'natpmp'], undefined);
        },
      })
      : undefined;
    const mapper = new PortMapper(o, gateway, control, instance);
    self.mapper = mapper;
    if (o.closeOn?.aborted === true) await mapper.close();
    return mapper;
  }

  /** The protocol that last mapped, tried first from now on. */
  get via(): MapperProtocol | undefined {
    return this.preferred;
  }

  /** The mappings held, in the order made. */
  get mappings(): readonly Mapping[] {
    return [...this.held.values()].map((h) => h.mapping);
  }

  /** Asks every protocol of `order` at once which answers, and the external address each gives. */
  async probe(options: { readonly signal?: AbortSignal } = {}): Promise<PortMappingProbe> {
    this.throwIfClosed('probe');
    const start = this.env.clock.now();
    const ctx = this.probeContext(options.signal);
    const skipped = (protocol: MapperProtocol): ProtocolProbe => ({ protocol, available: false, durationMs: 0, error: 'not in order' });
    const [pcp, natpmp, upnp] = await Promise.all(MAPPER_PROTOCOLS.map((p) => (this.order.includes(p) ? probeProtocol(p, ctx) : Promise.resolve(skipped(p)))));
    const byName = { pcp: pcp!, natpmp: natpmp!, upnp: upnp! };
    return {
      gateway: this.gateway && `${this.gateway.address}:${this.gateway.port}`,
      ...byName,
      available: this.order.filter((p) => byName[p].available),
      durationMs: this.env.clock.now() - start,
    };
  }

  /** The external address, from the protocols of `order` in turn (the one that mapped first). */
  async externalAddress(options: { readonly signal?: AbortSignal } = {}): Promise<{ readonly via: MapperProtocol; readonly address: string }> {
    this.throwIfClosed('externalAddress');
    const ctx = this.probeContext(options.signal);
    const reasons: string[] = [];
    for (const p of this.candidatesOrder()) {
      const r = await probeProtocol(p, ctx);
      if (r.externalAddress !== undefined) return { via: p, address: r.externalAddress };
      reasons.push(`${p}: ${r.error ?? 'no address'}`);
    }
    throw new NatkitError('ERR_PORTMAP_UNAVAILABLE', `no port-mapping protocol gave an external address (${reasons.join('; ')})`);
  }

  /**
   * Maps a port through the first protocol of `order` that answers (found by probe() on
   * the first call, then remembered) and keeps it alive until unmap(), release() or
   * close(). Rejects with ERR_PORTMAP_UNAVAILABLE naming what each protocol said.
   */
  async map(request: MapRequest): Promise<Mapping> {
    this.throwIfClosed('map');
    if (request.protocol !== 'udp' && request.protocol !== 'tcp') throw new NatkitError('ERR_INVALID_ARGUMENT', `protocol: expected udp or tcp, got ${String(request.protocol)}`);
    checkPort(request.internalPort, 'internalPort', 1);
    checkPort(request.externalPort, 'externalPort', 1);
    const lifetimeS = request.lifetimeS ?? DEFAULT_LIFETIME_S;
    if (!Number.isInteger(lifetimeS) || lifetimeS < 0 || lifetimeS > 604_800) throw new NatkitError('ERR_INVALID_ARGUMENT', `lifetimeS: expected 0–604800, got ${lifetimeS}`);
    if (request.via !== undefined && !this.order.includes(request.via)) throw new NatkitError('ERR_INVALID_ARGUMENT', `via: ${request.via} is not in order (${this.order.join(', ')})`);
    const candidates = request.via !== undefined ? [request.via] : await this.candidates(request.signal);
    const errors: unknown[] = [];
    for (const via of candidates) {
      try {
        const granted = await this.request(via, request, undefined, request.signal);
        if (request.via === undefined) this.preferred = via;
        const h: Held = { mapping: new Mapping(this.nextId++, granted.record, granted.expiresAt), request: { ...request, lifetimeS }, timer: undefined, busy: false, failures: 0 };
        this.held.set(h.mapping.id, h);
        if (granted.gatewayReset) this.remapAll([via], h);
        this.scheduleRenewal(h, granted);
        return h.mapping;
      } catch (err) {
        if (isNatkitError(err, 'ERR_ABORTED') || isNatkitError(err, 'ERR_CLOSED') || isNatkitError(err, 'ERR_INVALID_ARGUMENT')) throw err;
        errors.push(err);
      }
    }
    throw new NatkitError('ERR_PORTMAP_UNAVAILABLE', `${request.protocol} port ${request.internalPort} not mapped: ${errors.map(messageOf).join('; ')}`, { cause: new AggregateError(errors) });
  }

  /**
   * Deletes a mapping: one this mapper holds, or a record of one made earlier (PCP needs
   * its nonce, RFC 6887 §15; NAT-PMP deletes by internal port, RFC 6886 §3.4). A UPnP
   * entry already gone (714) counts as deleted. Rejects with ERR_PORTMAP_REFUSED.
   */
  async unmap(target: Mapping | MappingRecord, options: { readonly signal?: AbortSignal } = {}): Promise<void> {
    const record = target instanceof Mapping ? this.drop(target, 'removed') : target;
    await this.remove(record, options.signal);
  }

  /** Stops renewing a mapping and forgets it: it lives until its lifetime ends (a CLI that exits). */
  release(mapping: Mapping): MappingRecord {
    return this.drop(mapping, 'released');
  }

  /** UPnP's mapping table (read when UPnP is in `order` and answers) and the PCP/NAT-PMP mappings held. */
  async list(options: { readonly signal?: AbortSignal } = {}): Promise<MappingList> {
    this.throwIfClosed('list');
    const held: ListedMapping[] = this.mappings.filter((m) => m.via !== 'upnp').map((m) => ({
      via: m.via, protocol: m.protocol, externalPort: m.externalPort, internalClient: m.record.internalClient, internalPort: m.internalPort,
      description: '', leaseS: m.lifetimeS, ours: true, held: true,
    }));
    if (!this.order.includes('upnp')) return { mappings: held };
    let entries: UpnpMappingEntry[];
    try {
      entries = await (await this.upnp(options.signal)).listPortMappings(options.signal && { signal: options.signal });
    } catch (err) {
      if (isNatkitError(err, 'ERR_ABORTED')) throw err;
      return { mappings: held, upnpError: messageOf(err) };
    }
    const upnp = entries.map((e): ListedMapping => ({
      via: 'upnp', protocol: e.protocol === 'UDP' ? 'udp' : 'tcp', externalPort: e.externalPort, internalClient: e.internalClient,
      internalPort: e.internalPort, description: e.description, leaseS: e.leaseS, ours: this.stalePattern.test(e.description), held: this.holdsUpnp(e),
    }));
    return { mappings: [...upnp, ...held] };
  }

  /**
   * Deletes UPnP entries an earlier instance left: description `LABEL INSTANCE` with our
   * label, our address as internal client, not held by this mapper, and not kept by
   * `keep` (entries another running process still owns). Other programs' entries never
   * match. Resolves with the entries deleted.
   */
  async removeStale(options: { readonly keep?: (entry: UpnpMappingEntry) => boolean; readonly signal?: AbortSignal } = {}): Promise<UpnpMappingEntry[]> {
    this.throwIfClosed('removeStale');
    const gw = await this.upnp(options.signal);
    const client = this.o.localAddress ?? gw.localAddress;
    const call = options.signal && { signal: options.signal };
    const stale = (await gw.listPortMappings(call)).filter((e) =>
      this.stalePattern.test(e.description) && e.internalClient === client && !this.holdsUpnp(e) && options.keep?.(e) !== true);
    for (const e of stale) await this.deleteUpnp(gw, e.externalPort, e.protocol === 'UDP' ? 'udp' : 'tcp', options.signal);
    return stale;
  }

  /** Deletes every mapping held (PCP with its nonce, NAT-PMP lifetime 0, UPnP DeletePortMapping) and closes the socket. Idempotent. */
  close(): Promise<CloseReport> {
    this.o.closeOn?.removeEventListener('abort', this.onCloseSignal);
    this.closing ??= this.shutdown();
    return this.closing;
  }

  /** Settles with close()'s report once the mapper closed, however close() was called. */
  get closed(): Promise<CloseReport> {
    return this.closedPromise;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  // Declared first: the promise's executor below sets it.
  private resolveClosed!: (report: CloseReport) => void;
  private readonly closedPromise = new Promise<CloseReport>((resolve) => (this.resolveClosed = resolve));

  private async shutdown(): Promise<CloseReport> {
    this.closer.abort();
    const records = this.mappings.map((m) => this.drop(m, 'removed'));
    const results = await Promise.allSettled(records.map((r) => this.remove(r, undefined)));
    await this.control?.close();
    const removed: MappingRecord[] = [];
    const failed: { mapping: MappingRecord; error: unknown }[] = [];
    results.forEach((r, i) => (r.status === 'fulfilled' ? removed.push(records[i]!) : failed.push({ mapping: records[i]!, error: r.reason })));
    this.resolveClosed({ removed, failed });
    return { removed, failed };
  }

  /** Stops renewing `m` and forgets it. */
  private drop(m: Mapping, state: 'removed' | 'released'): MappingRecord {
    const h = this.held.get(m.id);
    if (h === undefined) throw new NatkitError('ERR_INVALID_ARGUMENT', `mapping ${m.id} (${m.protocol} ${m.internalPort}) is not held by this mapper`);
    h.timer?.cancel();
    this.held.delete(m.id);
    updateMapping(m, m.record, m.expiresAt, state);
    return m.record;
  }

  private async remove(r: MappingRecord, signal: AbortSignal | undefined): Promise<void> {
    if (r.via === 'upnp') return this.deleteUpnp(await this.upnp(signal), r.externalPort, r.protocol, signal);
    const control = this.requireControl(r.via);
    const d = await control.delete({ via: r.via, protocol: r.protocol, internalPort: r.internalPort, ...(r.nonce !== undefined && { nonce: nonceBytes(r.nonce) }) }, {
      timers: this.callTimers(r.via), ...(signal && { signal }),
    });
    if (!d.ok) throw new NatkitError('ERR_PORTMAP_REFUSED', `${r.via} delete of ${r.protocol} ${r.internalPort}: the gateway answered ${d.result}`);
  }

  private async deleteUpnp(gw: UpnpGateway, externalPort: number, protocol: MapProtocol, signal: AbortSignal | undefined): Promise<void> {
    try {
      await gw.deletePortMapping({ externalPort, protocol: upnpProtocol(protocol) }, signal && { signal });
    } catch (err) {
      if (!isUpnpFault(err, 714)) throw err; // NoSuchEntryInArray: already gone
    }
  }

  /** Asks `via` for the mapping; `current` renews it (same nonce, same external port). */
  private async request(via: MapperProtocol, req: MapRequest, current: MappingRecord | undefined, signal: AbortSignal | undefined): Promise<Granted> {
    const lifetimeS = req.lifetimeS ?? DEFAULT_LIFETIME_S;
    if (via === 'upnp') {
      const gw = await this.upnp(signal);
      const call = { timeoutMs: this.callMs * 2, ...(signal && { signal }) };
      const r = await gw.mapPort({
        protocol: upnpProtocol(req.protocol), internalPort: req.internalPort, description: this.upnpDescription, leaseS: lifetimeS,
        ...(this.o.localAddress !== undefined && { internalClient: this.o.localAddress }),
        ...((current?.externalPort ?? req.externalPort) !== undefined && { externalPort: current?.externalPort ?? req.externalPort }),
      }, call);
      const externalAddress = (await gw.getExternalIPAddress(call)) ?? '';
      return {
        record: { via, protocol: req.protocol, internalPort: r.internalPort, internalClient: r.internalClient, externalAddress, externalPort: r.externalPort, lifetimeS: r.leaseS, description: r.description },
        expiresAt: r.leaseS === 0 ? Infinity : this.env.clock.now() + r.leaseS * 1000,
        gatewayReset: false,
      };
    }
    const control = this.requireControl(via);
    // PCP: a renewal repeats the nonce (§11.2.1); suggest the port we hold (RFC 6886 §3.3, RFC 6887 §11.1).
    const suggested = current?.externalPort ?? req.externalPort;
    const r = await control.mapWith(via, {
      protocol: req.protocol, internalPort: req.internalPort, lifetimeS, timers: this.callTimers(via),
      ...(suggested !== undefined && { suggestedExternalPort: suggested }),
      ...(current?.nonce !== undefined && { nonce: nonceBytes(current.nonce) }),
      ...(signal && { signal }),
    });
    if (!r.ok) throw new NatkitError('ERR_PORTMAP_REFUSED', `${via} map of ${req.protocol} ${req.internalPort}: the gateway answered ${r.result}`);
    const m = r.mapping;
    return {
      record: {
        via, protocol: req.protocol, internalPort: req.internalPort, internalClient: control.pcp.clientAddress, externalAddress: m.externalAddress,
        externalPort: m.externalPort, lifetimeS: m.lifetimeS, ...(m.nonce !== undefined && { nonce: nonceHex(m.nonce) }),
      },
      // Lifetimes count from the answer's arrival (RFC 6887 §11.5).
      expiresAt: r.receivedAt + m.lifetimeS * 1000,
      gatewayReset: r.gatewayReset,
    };
  }

  /** RFC 6887 §11.2.1: renew between 1/2 and 5/8 of the lifetime (RFC 6886 §3.3: at 1/2). */
  private scheduleRenewal(h: Held, granted: Granted): void {
    const lifetimeMs = granted.expiresAt - this.env.clock.now();
    const delay = Number.isFinite(lifetimeMs) ? lifetimeMs * (0.5 + 0.125 * this.random()) : this.o.renewal?.permanentCheckMs ?? 1_800_000;
    this.schedule(h, Math.max(MIN_RENEW_MS, delay));
  }

  private schedule(h: Held, delayMs: number): void {
    h.timer?.cancel();
    h.timer = this.env.clock.setTimer(delayMs, () => void this.renew(h));
  }

  /** Renews (or re-makes) one mapping; never rejects: a failure is retried or reported through onChange. */
  private async renew(h: Held): Promise<void> {
    h.timer = undefined;
    if (h.busy || !this.held.has(h.mapping.id) || this.closer.signal.aborted) return;
    h.busy = true;
    const previous = h.mapping.record;
    try {
      if (previous.via === 'upnp' && previous.lifetimeS === 0 && (await this.upnpEntryIsOurs(previous))) {
        this.schedule(h, this.o.renewal?.permanentCheckMs ?? 1_800_000);
        return;
      }
      const granted = await this.request(previous.via, h.request, previous, this.closer.signal);
      if (!this.held.has(h.mapping.id)) return; // unmapped meanwhile: unmap() deletes what it knew
      const wasLost = h.mapping.state === 'lost';
      h.failures = 0;
      updateMapping(h.mapping, granted.record, granted.expiresAt, 'active');
      if (wasLost) this.emit({ kind: 'restored', mapping: h.mapping, previous });
      else if (granted.record.externalAddress !== previous.externalAddress || granted.record.externalPort !== previous.externalPort) this.emit({ kind: 'changed', mapping: h.mapping, previous });
      if (granted.gatewayReset) this.remapAll([previous.via], h);
      this.scheduleRenewal(h, granted);
    } catch (err) {
      if (this.closer.signal.aborted || !this.held.has(h.mapping.id)) return;
      this.failed(h, previous, err);
    } finally {
      h.busy = false;
    }
  }

  /** A failed renewal: lost once expired, retried with jittered exponential backoff, given up after maxLostAttempts. */
  private failed(h: Held, previous: MappingRecord, err: unknown): void {
    const r = this.o.renewal ?? {};
    h.failures++;
    // A UPnP gateway that stopped answering may have restarted on another port: search again.
    if (previous.via === 'upnp') this.upnpGateway = undefined;
    const now = this.env.clock.now();
    if (h.mapping.state === 'active' && now >= h.mapping.expiresAt) {
      updateMapping(h.mapping, previous, h.mapping.expiresAt, 'lost');
      h.failures = 1;
      this.emit({ kind: 'lost', mapping: h.mapping, previous, error: err });
    } else if (h.mapping.state === 'lost' && h.failures > (r.maxLostAttempts ?? 10)) {
      this.drop(h.mapping, 'removed');
      this.emit({ kind: 'failed', mapping: h.mapping, previous, error: err });
      return;
    }
    const minMs = r.retryMinMs ?? 5000;
    let delay = Math.min(r.retryMaxMs ?? 600_000, minMs * 2 ** Math.min(h.failures - 1, 20)) * (0.8 + 0.4 * this.random());
    // Before expiry, try again at least once more in the time left (as DHCP's T1/T2 do).
    if (h.mapping.state === 'active') delay = Math.min(delay, Math.max(minMs, (h.mapping.expiresAt - now) / 2));
    this.schedule(h, delay);
  }

  /** The gateway lost state (epoch, BOOTID): map every mapping of these protocols again now (RFC 6886 §3.6, RFC 6887 §8.5). */
  private remapAll(protocols: readonly MapperProtocol[], except: Held | undefined): void {
    for (const h of this.held.values()) if (h !== except && !h.busy && protocols.includes(h.mapping.via)) this.schedule(h, 0);
  }

  private async upnpEntryIsOurs(r: MappingRecord): Promise<boolean> {
    const gw = await this.upnp(this.closer.signal);
    const e = await gw.getSpecificPortMappingEntry({ externalPort: r.externalPort, protocol: upnpProtocol(r.protocol) }, { signal: this.closer.signal });
    return e !== undefined && e.internalClient === r.internalClient && e.internalPort === r.internalPort;
  }

  private holdsUpnp(e: UpnpMappingEntry): boolean {
    return this.mappings.some((m) => m.via === 'upnp' && m.externalPort === e.externalPort && upnpProtocol(m.protocol) === e.protocol);
  }

  /** The UPnP gateway, discovered once; a new BOOTID or LOCATION on a later search means it restarted. */
  private upnp(signal: AbortSignal | undefined): Promise<UpnpGateway> {
    this.upnpGateway ??= this.discoverUpnp(signal);
    const p = this.upnpGateway;
    // A failed search is not cached: the next call searches again.
    void p.catch(() => {
      if (this.upnpGateway === p) this.upnpGateway = undefined;
    });
    return p;
  }

  private async discoverUpnp(signal: AbortSignal | undefined): Promise<UpnpGateway> {
    const search = this.o.upnp?.search ?? (this.gateway?.family === 4 ? [{ ...this.gateway, port: SSDP_PORT }] : []);
    const gw = await UpnpGateway.discover({
      env: this.env, unicast: search, multicast: this.o.upnp?.multicast ?? true,
      timeoutMs: this.o.timeouts?.upnpSearchMs ?? 2000, retransmitMs: 500, requestTimeoutMs: this.callMs,
      ...(this.o.localAddress !== undefined && { localAddress: this.o.localAddress }),
      ...(signal && { signal }),
    });
    const seen = { location: gw.location.href, bootId: gw.ssdp?.bootId };
    const before = this.lastBootId;
    this.lastBootId = seen;
    // UDA 1.1 §1.2: BOOTID.UPNP.ORG grows on every reboot; the reboot lost the leases.
    if (before !== undefined && (before.bootId !== seen.bootId || before.location !== seen.location)) this.remapAll(['upnp'], undefined);
    return gw;
  }

  private async candidates(signal: AbortSignal | undefined): Promise<MapperProtocol[]> {
    if (this.preferred !== undefined) return this.candidatesOrder();
    const found = await this.probe(signal && { signal });
    if (found.available.length > 0) return [...found.available];
    const why = MAPPER_PROTOCOLS.filter((p) => this.order.includes(p)).map((p) => `${p}: ${found[p].error ?? 'no answer'}`).join('; ');
    throw new NatkitError('ERR_PORTMAP_UNAVAILABLE', `no port-mapping protocol answered${found.gateway === undefined ? ' (no default gateway)' : ` at ${found.gateway}`}: ${why}`);
  }

  /** `order`, the remembered protocol first. */
  private candidatesOrder(): MapperProtocol[] {
    return this.preferred === undefined ? [...this.order] : [this.preferred, ...this.order.filter((p) => p !== this.preferred)];
  }

  private probeContext(signal: AbortSignal | undefined): ProbeContext {
    const probeMs = this.o.timeouts?.probeMs ?? 2000;
    const s = signal === undefined ? this.closer.signal : AbortSignal.any([signal, this.closer.signal]);
    return {
      now: () => this.env.clock.now(),
      control: this.control,
      upnp: () => this.upnp(s),
      // Probes deviate from RFC 6887 §8.1.1's 3 s IRT, as every client that probes does: an answer comes within milliseconds or not at all.
      timers: { pcp: { initialMs: Math.min(500, probeMs), maxDurationMs: probeMs }, natpmp: { initialMs: Math.min(250, probeMs), maxDurationMs: probeMs } },
      signal: s,
    };
  }

  private get callMs(): number {
    return this.o.timeouts?.callMs ?? 10_000;
  }

  private callTimers(via: 'pcp' | 'natpmp'): RetransmitTimers {
    return via === 'pcp' ? { initialMs: Math.min(3000, this.callMs / 4), maxDurationMs: this.callMs } : { maxDurationMs: this.callMs };
  }

  private requireControl(via: MapperProtocol): PortControlClient {
    if (this.control === undefined) throw new NatkitError('ERR_PORTMAP_UNAVAILABLE', `${via}: no gateway known (pass gateway or routeTables)`);
    return this.control;
  }

  private random(): number {
    const b = this.env.random.bytes(2);
    return (((b[0] ?? 0) << 8) | (b[1] ?? 0)) / 65536;
  }

  private emit(change: MappingChange): void {
    this.o.onChange?.(change);
  }

  private throwIfClosed(what: string): void {
    if (this.closing !== undefined) throw new NatkitError('ERR_CLOSED', `PortMapper.${what}: the mapper is closed`);
  }
}
