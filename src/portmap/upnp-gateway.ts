// A UPnP Internet Gateway Device's WAN connection service (IGD:1 and IGD:2), found by
// SSDP and its device description, controlled by SOAP: GetExternalIPAddress,
// AddPortMapping, AddAnyPortMapping, DeletePortMapping, GetSpecificPortMappingEntry and
// GetGenericPortMappingEntry (WANIPConnection:1 §2.4, WANIPConnection:2 §2.5; the PPP
// service has the same actions). Holds no socket: every call opens and closes its own
// connection under a deadline.
import { endpoint, type Endpoint, type Env } from '../net/index.ts';
import { NatkitError, isNatkitError } from '../util/index.ts';
import { Deadline } from './upnp-deadline.ts';
import { checkLocation, parseDeviceDescription, type DeviceDescription, type WanConnectionService } from './upnp-description.ts';
import { httpRequest } from './upnp-http.ts';
import { mapPortWithFallbacks, type UpnpMapRequest, type UpnpMapResult, type UpnpMappingEntry, type UpnpPortMapping, type UpnpProtocol } from './upnp-map.ts';
import { isUpnpFault, soapCall } from './upnp-soap.ts';
import { searchSsdp, type SsdpResponse, type SsdpSearchOptions } from './upnp-ssdp.ts';

/** Options of every gateway call. */
export interface UpnpCallOptions {
  /** The whole call. @default the gateway's timeoutMs */
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal;
}

/** Options of UpnpGateway.open(). */
export interface UpnpOpenOptions {
  readonly env: Env;
  /** LOCATION of the root device description. */
  readonly location: string;
  /** Who answered the SSDP search: LOCATION must be on that address (SSRF guard). @default not checked */
  readonly from?: Endpoint;
  /** The SSDP answer, kept for its BOOTID. */
  readonly ssdp?: SsdpResponse;
  /** Each HTTP exchange (description, every SOAP call). @default 5000 */
  readonly timeoutMs?: number;
  /** Largest description accepted. @default 262144 */
  readonly maxDescriptionBytes?: number;
  readonly signal?: AbortSignal;
}

/** Options of UpnpGateway.discover(): an SSDP search, then open() on the answers. */
export interface UpnpDiscoverOptions extends Omit<SsdpSearchOptions, 'until'> {
  readonly env: Env;
  /** Each HTTP exchange. @default 5000 */
  readonly requestTimeoutMs?: number;
}

/** A mapping's key (DeletePortMapping, GetSpecificPortMappingEntry). */
export interface UpnpMappingKey {
  /** @default '' (any remote host) */
  readonly remoteHost?: string;
  readonly externalPort: number;
  readonly protocol: UpnpProtocol;
}

const MAX_LEASE_S = 604_800;
/** Most WAN services probed by open(), and most LOCATIONs tried by discover(): a hostile LAN cannot make either run long. */
const MAX_CANDIDATES = 8;

function checkPort(port: number, what: string, min = 1): void {
  if (!Number.isInteger(port) || port < min || port > 65535) throw new NatkitError('ERR_INVALID_ARGUMENT', `${what}: expected a port ${min}–65535, got ${port}`);
}

function outArg(out: ReadonlyMap<string, string>, name: string, action: string): string {
  const v = out.get(name);
  if (v === undefined) throw new NatkitError('ERR_PROTOCOL', `${action}: response lacks ${name}`);
  return v;
}

function outUint(out: ReadonlyMap<string, string>, name: string, action: string, max: number): number {
  const v = outArg(out, name, action);
  const n = /^\d{1,10}$/.test(v) ? Number(v) : NaN;
  if (!(n <= max)) throw new NatkitError('ERR_PROTOCOL', `${action}: ${name} must be an integer 0–${max}, got ${JSON.stringify(v.slice(0, 40))}`);
  return n;
}

/** UDA 1.1 §2.5 boolean: 0/1, false/true, no/yes. */
function outBool(out: ReadonlyMap<string, string>, name: string, action: string): boolean {
  const v = outArg(out, name, action).toLowerCase();
  if (['1', 'true', 'yes'].includes(v)) return true;
  if (['0', 'false', 'no'].includes(v)) return false;
  throw new NatkitError('ERR_PROTOCOL', `${action}: ${name} must be a boolean, got ${JSON.stringify(v.slice(0, 40))}`);
}

function entryFrom(out: ReadonlyMap<string, string>, action: string, key: Partial<UpnpMappingKey>): UpnpMappingEntry {
  const protocol: string = key.protocol ?? outArg(out, 'NewProtocol', action).toUpperCase();
  if (protocol !== 'TCP' && protocol !== 'UDP') throw new NatkitError('ERR_PROTOCOL', `${action}: NewProtocol must be TCP or UDP, got ${JSON.stringify(protocol.slice(0, 20))}`);
  return {
    remoteHost: key.remoteHost ?? outArg(out, 'NewRemoteHost', action),
    externalPort: key.externalPort ?? outUint(out, 'NewExternalPort', action, 65535),
    protocol,
    internalPort: outUint(out, 'NewInternalPort', action, 65535),
    internalClient: outArg(out, 'NewInternalClient', action),
    enabled: outBool(out, 'NewEnabled', action),
    description: out.get('NewPortMappingDescription') ?? '',
    leaseS: outUint(out, 'NewLeaseDuration', action, 0xffffffff),
  };
}

const mappingArgs = (m: UpnpPortMapping): [string, string][] => [
  ['NewRemoteHost', m.remoteHost], ['NewExternalPort', String(m.externalPort)], ['NewProtocol', m.protocol],
  ['NewInternalPort', String(m.internalPort)], ['NewInternalClient', m.internalClient], ['NewEnabled', m.enabled ? '1' : '0'],
  ['NewPortMappingDescription', m.description], ['NewLeaseDuration', String(m.leaseS)],
];

const keyArgs = (k: UpnpMappingKey): [string, string][] => [
  ['NewRemoteHost', k.remoteHost ?? ''], ['NewExternalPort', String(k.externalPort)], ['NewProtocol', k.protocol],
];

/** A gateway's WAN connection service, ready for SOAP calls. */
export class UpnpGateway {
  readonly env: Env;
  /** Where the description came from. */
  readonly location: URL;
  readonly description: DeviceDescription;
  /** The service in use: the first of description.services that answered. */
  readonly service: WanConnectionService;
  /** The SSDP answer that led here, when discovered. */
  readonly ssdp: SsdpResponse | undefined;
  /** Our address on the LAN toward the gateway: the default internal client of mappings. */
  readonly localAddress: string;
  private readonly timeoutMs: number;

  private constructor(env: Env, location: URL, description: DeviceDescription, service: WanConnectionService, ssdp: SsdpResponse | undefined, localAddress: string, timeoutMs: number) {
    this.env = env;
    this.location = location;
    this.description = description;
    this.service = service;
    this.ssdp = ssdp;
    this.localAddress = localAddress;
    this.timeoutMs = timeoutMs;
  }

  /** IGD version of the service: 2 for WANIPConnection:2. */
  get version(): 1 | 2 {
    return this.service.version;
  }

  /**
   * Fetches the description at `location` and picks its WAN connection service. With
   * several (a router with two WAN links, or IP and PPP), the first whose
   * GetExternalIPAddress answers with an address wins, else the first. Rejects with
   * ERR_PROTOCOL (guard, description), ERR_XML, ERR_HTTP_*, ERR_UPNP_NOT_FOUND (no WAN
   * connection service), ERR_TIMEOUT or ERR_ABORTED.
   */
  static async open(options: UpnpOpenOptions): Promise<UpnpGateway> {
    const { env } = options;
    const timeoutMs = options.timeoutMs ?? 5000;
    const location = checkLocation(options.location, options.from);
    const { response, local } = await httpRequest(env, { method: 'GET', url: location }, {
      timeoutMs, maxBodyBytes: options.maxDescriptionBytes ?? 262_144, ...(options.signal && { signal: options.signal }),
    });
    if (response.head.status !== 200) throw new NatkitError('ERR_HTTP_STATUS', `GET ${location.href}: expected 200, got ${response.head.status} ${response.head.reason}`);
    const description = parseDeviceDescription(new TextDecoder().decode(response.body), location);
    const [first, ...others] = description.services;
    if (first === undefined) {
      const why = description.rejected.map((r) => `${r.serviceType}: ${r.why}`).join('; ');
      throw new NatkitError('ERR_UPNP_NOT_FOUND', `${location.href} (${description.deviceType || 'no deviceType'}) offers no usable WANIPConnection or WANPPPConnection service${why === '' ? '' : ` (${why})`}`);
    }
    const make = (s: WanConnectionService): UpnpGateway => new UpnpGateway(env, location, description, s, options.ssdp, local.address, timeoutMs);
    if (others.length === 0) return make(first);
    for (const s of description.services.slice(0, MAX_CANDIDATES)) {
      const gw = make(s);
      try {
        if ((await gw.getExternalIPAddress(options.signal && { signal: options.signal })) !== undefined) return gw;
      } catch (err) {
        if (isNatkitError(err, 'ERR_ABORTED')) throw err;
      }
    }
    return make(first);
  }

  /**
   * Searches by SSDP and opens the first gateway that works, answers from the unicast
   * addresses first. Rejects with ERR_UPNP_NOT_FOUND (nothing answered, or nothing
   * usable: the reasons are in the message and `cause`), or ERR_ABORTED.
   */
  static async discover(options: UpnpDiscoverOptions): Promise<UpnpGateway> {
    const { env, requestTimeoutMs, ...search } = options;
    const preferred = new Set((search.unicast ?? []).map((e) => e.address));
    const found = await searchSsdp(env, { ...search, until: (r) => preferred.size === 0 || preferred.has(r.from.address) });
    const candidates = [...found.responses].sort((a, b) => Number(preferred.has(b.from.address)) - Number(preferred.has(a.from.address)));
    const tried = new Set<string>();
    const errors: unknown[] = [];
    for (const r of candidates) {
      if (tried.has(r.location)) continue;
      if (tried.size >= MAX_CANDIDATES) break;
      tried.add(r.location);
      try {
        return await UpnpGateway.open({
          env, location: r.location, from: r.from, ssdp: r,
          ...(requestTimeoutMs !== undefined && { timeoutMs: requestTimeoutMs }), ...(search.signal && { signal: search.signal }),
        });
      } catch (err) {
        if (isNatkitError(err, 'ERR_ABORTED')) throw err;
        errors.push(err);
      }
    }
    const heard = found.responses.length === 0 ? 'no SSDP answer' : `${found.responses.length} SSDP answer(s), none usable: ${errors.map((e) => (e instanceof Error ? e.message : String(e))).join('; ')}`;
    throw new NatkitError('ERR_UPNP_NOT_FOUND', `no UPnP Internet Gateway Device found (${heard})`, { cause: new AggregateError(errors) });
  }

  /** The external IPv4 address, or undefined when the gateway has none ('' or 0.0.0.0: not connected). */
  async getExternalIPAddress(options: UpnpCallOptions = {}): Promise<string | undefined> {
    const out = await this.call('GetExternalIPAddress', [], options);
    const text = outArg(out, 'NewExternalIPAddress', 'GetExternalIPAddress');
    if (text === '' || text === '0.0.0.0') return undefined;
    try {
      return endpoint(text, 0).address;
    } catch (err) {
      throw new NatkitError('ERR_PROTOCOL', `GetExternalIPAddress: expected an IP address, got ${JSON.stringify(text.slice(0, 60))}`, { cause: err });
    }
  }

  /** AddPortMapping as is (no fallbacks); rejects with UpnpFaultError on refusal. */
  async addPortMapping(m: UpnpPortMapping, options: UpnpCallOptions = {}): Promise<void> {
    this.checkMapping(m);
    await this.call('AddPortMapping', mappingArgs(m), options);
  }

  /** AddAnyPortMapping (IGD:2): resolves with the external port the gateway reserved. */
  async addAnyPortMapping(m: UpnpPortMapping, options: UpnpCallOptions = {}): Promise<number> {
    this.checkMapping(m);
    if (this.version !== 2) throw new NatkitError('ERR_INVALID_ARGUMENT', `AddAnyPortMapping needs WANIPConnection:2, this gateway offers ${this.service.serviceType}`);
    const out = await this.call('AddAnyPortMapping', mappingArgs(m), options);
    return outUint(out, 'NewReservedPort', 'AddAnyPortMapping', 65535);
  }

  /** DeletePortMapping; a mapping that is not there rejects with fault 714. */
  async deletePortMapping(key: UpnpMappingKey, options: UpnpCallOptions = {}): Promise<void> {
    checkPort(key.externalPort, 'externalPort');
    await this.call('DeletePortMapping', keyArgs(key), options);
  }

  /** The mapping at an external port, or undefined when there is none (714 NoSuchEntryInArray). */
  async getSpecificPortMappingEntry(key: UpnpMappingKey, options: UpnpCallOptions = {}): Promise<UpnpMappingEntry | undefined> {
    checkPort(key.externalPort, 'externalPort');
    try {
      const out = await this.call('GetSpecificPortMappingEntry', keyArgs(key), options);
      return entryFrom(out, 'GetSpecificPortMappingEntry', { remoteHost: key.remoteHost ?? '', externalPort: key.externalPort, protocol: key.protocol });
    } catch (err) {
      if (isUpnpFault(err, 714)) return undefined;
      throw err;
    }
  }

  /** The mapping at `index` of the gateway's table, or undefined past its end (713, 714). */
  async getGenericPortMappingEntry(index: number, options: UpnpCallOptions = {}): Promise<UpnpMappingEntry | undefined> {
    if (!Number.isInteger(index) || index < 0 || index > 65535) throw new NatkitError('ERR_INVALID_ARGUMENT', `index: expected 0–65535, got ${index}`);
    try {
      return entryFrom(await this.call('GetGenericPortMappingEntry', [['NewPortMappingIndex', String(index)]], options), 'GetGenericPortMappingEntry', {});
    } catch (err) {
      if (isUpnpFault(err, 713, 714)) return undefined;
      throw err;
    }
  }

  /**
   * The gateway's mapping table, read entry by entry up to `max`. The end is 713 per
   * WANIPConnection:1; real routers also answer 714, 402 or 501 there, so those end the
   * list too.
   */
  async listPortMappings(options: UpnpCallOptions & { readonly max?: number } = {}): Promise<UpnpMappingEntry[]> {
    const max = options.max ?? 256;
    using deadline = new Deadline(this.env.clock, options.timeoutMs ?? this.timeoutMs * 4, options.signal, 'listPortMappings');
    const entries: UpnpMappingEntry[] = [];
    try {
      for (let i = 0; i < max; i++) {
        const entry = await this.getGenericPortMappingEntry(i, { signal: deadline.signal, timeoutMs: Math.min(this.timeoutMs, deadline.remainingMs) });
        if (entry === undefined) break;
        entries.push(entry);
      }
    } catch (err) {
      if (!isUpnpFault(err, 402, 501)) throw deadline.explain(err);
    }
    return entries;
  }

  /** Maps a port with the fallbacks real routers need (upnp-map.ts). */
  async mapPort(request: UpnpMapRequest, options: UpnpCallOptions = {}): Promise<UpnpMapResult> {
    const mapping: UpnpPortMapping = {
      remoteHost: '',
      protocol: request.protocol,
      internalPort: request.internalPort,
      externalPort: request.externalPort ?? request.internalPort,
      internalClient: request.internalClient ?? this.localAddress,
      enabled: true,
      description: request.description ?? 'natkit',
      leaseS: request.leaseS ?? 3600,
    };
    this.checkMapping(mapping);
    using deadline = new Deadline(this.env.clock, options.timeoutMs ?? this.timeoutMs * 4, options.signal, 'mapPort');
    try {
      return await mapPortWithFallbacks(this, mapping, {
        signal: deadline.signal,
        maxAttempts: request.maxAttempts ?? 4,
        randomPort: () => {
          const b = this.env.random.bytes(2);
          return 1024 + ((((b[0] ?? 0) << 8) | (b[1] ?? 0)) % (65536 - 1024));
        },
      });
    } catch (err) {
      throw deadline.explain(err);
    }
  }

  private checkMapping(m: UpnpPortMapping): void {
    checkPort(m.internalPort, 'internalPort');
    checkPort(m.externalPort, 'externalPort');
    if (m.protocol !== 'TCP' && m.protocol !== 'UDP') throw new NatkitError('ERR_INVALID_ARGUMENT', `protocol: expected TCP or UDP, got ${String(m.protocol)}`);
    // WANIPConnection:2: leases are 0–604800 s; IGD:1 allows more, but nothing needs it.
    if (!Number.isInteger(m.leaseS) || m.leaseS < 0 || m.leaseS > MAX_LEASE_S) throw new NatkitError('ERR_INVALID_ARGUMENT', `leaseS: expected 0–${MAX_LEASE_S}, got ${m.leaseS}`);
    if (m.description.length > 256) throw new NatkitError('ERR_INVALID_ARGUMENT', `description: at most 256 characters, got ${m.description.length}`);
    try {
      endpoint(m.internalClient, 0);
    } catch (err) {
      throw new NatkitError('ERR_INVALID_ARGUMENT', `internalClient: expected an IP address, got ${JSON.stringify(m.internalClient)}`, { cause: err });
    }
  }

  private async call(action: string, args: readonly (readonly [string, string])[], options: UpnpCallOptions): Promise<ReadonlyMap<string, string>> {
    const { out } = await soapCall(this.env, { controlUrl: this.service.controlUrl, serviceType: this.service.serviceType, action, args }, {
      timeoutMs: options.timeoutMs ?? this.timeoutMs, ...(options.signal && { signal: options.signal }),
    });
    return out;
  }
}
