// The answering side of a UPnP Internet Gateway Device, sans-I/O: SSDP search answers
// (UDA 1.1 §1.3.3), the root description (UDA 1.1 §2.3) of IGD:1 or IGD:2 with one
// WANIPConnection:1 or :2 service, and its SOAP control (UDA 1.1 §3.2; WANIPConnection:1
// §2.4, WANIPConnection:2 §2.5) on the shared mapping table, with the faults real
// gateways send. Quirks of real routers can be switched on (725, 724, IGD:2 without
// AddAnyPortMapping) so clients can be tested against them.
import { endpoint, type Endpoint } from '../../net/index.ts';
import { isNatkitError } from '../../util/index.ts';
import { field, parseHead, type HttpMessage } from '../upnp-http-parse.ts';
import { UPNP_ERRORS, UpnpFaultError, buildSoapFault, buildSoapResponse, escapeXml, parseSoapRequest } from '../upnp-soap.ts';
import type { MapProtocol } from '../natpmp.ts';
import type { GatewayMapping, MappingTable } from './table.ts';

/** Where the description is served. */
export const UPNP_DESCRIPTION_PATH = '/rootDesc.xml';
/** The control URL of the WANIPConnection service. */
export const UPNP_CONTROL_PATH = '/ctl/IPConn';

/** The UPnP side of the gateway and the quirks it can play. */
export interface UpnpServerOptions {
  /** IGD and WANIPConnection version. @default 1 */
  readonly version?: 1 | 2;
  /** Refuse leases other than 0 with 725 OnlyPermanentLeasesSupported (IGD:1 routers that do). @default false */
  readonly permanentOnly?: boolean;
  /** Refuse an external port other than the internal one with 724 SamePortValuesRequired. @default false */
  readonly samePortRequired?: boolean;
  /** Advertise IGD:2 but answer AddAnyPortMapping with 401 Invalid Action. @default false */
  readonly noAddAny?: boolean;
  /** @default 'natkit gateway' */
  readonly friendlyName?: string;
  /** The device's UDN. @default 'uuid:00000000-0000-4000-8000-000000000001' */
  readonly udn?: string;
  /** BOOTID.UPNP.ORG at start (UDA 1.1 §1.2.2); restart() adds one. @default 1 */
  readonly bootId?: number;
}

/** What the responder needs beyond UpnpServerOptions. */
export interface UpnpResponderOptions extends UpnpServerOptions {
  readonly externalAddress: string;
  /** Let a control point map, delete for, other hosts than itself. @default false (606, as miniupnpd's secure mode) */
  readonly allowThirdParty?: boolean;
  /** Whether `client` may map at all; false answers 606. @default everyone may */
  readonly authorize?: (client: Endpoint) => boolean;
}

/** WANIPConnection:2 §2.3.16: a lease of 0 means the longest, one week. */
const IGD2_MAX_LEASE_S = 604_800;
const REASONS: Readonly<Record<number, string>> = { 200: 'OK', 400: 'Bad Request', 404: 'Not Found', 405: 'Method Not Allowed', 500: 'Internal Server Error' };
const UPNP_PROTOCOL: Readonly<Record<string, MapProtocol>> = { UDP: 'udp', TCP: 'tcp' };

/** An HTTP/1.1 response that closes the connection (UDA 1.1 §2.1: one exchange per connection is fine). */
export function formatHttpResponse(status: number, body: string, fields: Readonly<Record<string, string>> = {}): string {
  const lines = [`HTTP/1.1 ${status} ${REASONS[status] ?? 'Error'}`, 'Content-Type: text/xml; charset="utf-8"', `Content-Length: ${new TextEncoder().encode(body).length}`, 'Connection: close'];
  for (const [name, value] of Object.entries(fields)) lines.push(`${name}: ${value}`);
  return `${lines.join('\r\n')}\r\n\r\n${body}`;
}

const fault = (action: string, code: number): UpnpFaultError => new UpnpFaultError(action, code, UPNP_ERRORS[code] ?? '', 500);

/** Answers SSDP searches, description fetches and SOAP control. */
export class UpnpIgdResponder {
  readonly version: 1 | 2;
  readonly serviceType: string;
  /** BOOTID.UPNP.ORG now. */
  bootId: number;
  private readonly table: MappingTable;
  private readonly options: UpnpResponderOptions;
  private readonly udn: string;

  constructor(table: MappingTable, options: UpnpResponderOptions) {
    this.table = table;
    this.options = options;
    this.version = options.version ?? 1;
    this.serviceType = `urn:schemas-upnp-org:service:WANIPConnection:${this.version}`;
    this.udn = options.udn ?? 'uuid:00000000-0000-4000-8000-000000000001';
    this.bootId = options.bootId ?? 1;
  }

  /** The root device description: IGD → WANDevice → WANConnectionDevice → WANIPConnection. */
  description(): string {
    const v = this.version;
    const name = escapeXml(this.options.friendlyName ?? 'natkit gateway');
    return `<?xml version="1.0"?>\n<root xmlns="urn:schemas-upnp-org:device-1-0"><specVersion><major>1</major><minor>1</minor></specVersion><device><deviceType>urn:schemas-upnp-org:device:InternetGatewayDevice:${v}</deviceType><friendlyName>${name}</friendlyName><manufacturer>natkit</manufacturer><modelName>natkit gateway</modelName><UDN>${this.udn}</UDN><deviceList><device><deviceType>urn:schemas-upnp-org:device:WANDevice:${v}</deviceType><deviceList><device><deviceType>urn:schemas-upnp-org:device:WANConnectionDevice:${v}</deviceType><serviceList><service><serviceType>${this.serviceType}</serviceType><serviceId>urn:upnp-org:serviceId:WANIPConn1</serviceId><controlURL>${UPNP_CONTROL_PATH}</controlURL><eventSubURL>/evt/IPConn</eventSubURL><SCPDURL>/WANIPCn.xml</SCPDURL></service></serviceList></device></deviceList></device></deviceList></device></root>\n`;
  }

  /**
   * The answer to an SSDP datagram, or undefined: only M-SEARCH for ssdp:all,
   * upnp:rootdevice, our UDN, or a type we offer at the version asked or lower (UDA 1.1
   * §1.3.2) is answered, with the ST it asked for.
   */
  search(data: Uint8Array, location: string): Uint8Array | undefined {
    let st: string | undefined;
    try {
      const head = parseHead(data, 'ERR_SSDP_DECODE', 8192);
      if (head.reason !== 'M-SEARCH' || head.target !== '*') return undefined;
      st = field(head.fields, 'st');
    } catch (err) {
      if (isNatkitError(err, 'ERR_SSDP_DECODE')) return undefined;
      throw err;
    }
    if (st === undefined || !this.matches(st)) return undefined;
    const usn = st === this.udn ? this.udn : `${this.udn}::${st}`;
    return new TextEncoder().encode(`HTTP/1.1 200 OK\r\nCACHE-CONTROL: max-age=120\r\nST: ${st}\r\nUSN: ${usn}\r\nEXT:\r\nSERVER: natkit/1 UPnP/1.1 natkit-gateway/1\r\nLOCATION: ${location}\r\nBOOTID.UPNP.ORG: ${this.bootId}\r\nCONFIGID.UPNP.ORG: 1\r\n\r\n`);
  }

  /** The HTTP answer to one request from `client`. */
  respond(request: HttpMessage, client: Endpoint, nowMs: number): string {
    const { reason: method, target } = request.head;
    if (target === UPNP_DESCRIPTION_PATH) return method === 'GET' ? formatHttpResponse(200, this.description()) : formatHttpResponse(405, '');
    if (target !== UPNP_CONTROL_PATH) return formatHttpResponse(404, '');
    if (method !== 'POST') return formatHttpResponse(405, '');
    let action: string;
    let args: ReadonlyMap<string, string>;
    try {
      ({ action, args } = parseSoapRequest(new TextDecoder().decode(request.body)));
    } catch (err) {
      if (isNatkitError(err, 'ERR_XML') || isNatkitError(err, 'ERR_PROTOCOL')) return formatHttpResponse(400, '');
      throw err;
    }
    try {
      const out = this.control(action, args, client, nowMs);
      // UDA 1.1 §3.2.2: EXT in every action response.
      return formatHttpResponse(200, buildSoapResponse(this.serviceType, action, out), { EXT: '' });
    } catch (err) {
      if (!(err instanceof UpnpFaultError) || err.upnpCode === undefined) throw err;
      return formatHttpResponse(500, buildSoapFault(err.upnpCode, err.upnpDescription));
    }
  }

  private matches(st: string): boolean {
    if (st === 'ssdp:all' || st === 'upnp:rootdevice' || st === this.udn) return true;
    const m = /^urn:schemas-upnp-org:(device:InternetGatewayDevice|device:WANDevice|device:WANConnectionDevice|service:WANIPConnection):(\d)$/.exec(st);
    return m !== null && Number(m[2]) >= 1 && Number(m[2]) <= this.version;
  }

  /** One action: its out arguments, or a thrown UpnpFaultError. */
  private control(action: string, args: ReadonlyMap<string, string>, client: Endpoint, nowMs: number): [string, string][] {
    if (this.options.authorize?.(client) === false) throw fault(action, 606);
    switch (action) {
      case 'GetExternalIPAddress':
        return [['NewExternalIPAddress', this.options.externalAddress]];
      case 'AddPortMapping':
      case 'AddAnyPortMapping':
        return this.add(action, args, client, nowMs);
      case 'DeletePortMapping': {
        const m = this.entryAt(action, args, nowMs);
        if (!this.mayManage(m.internal.address, client)) throw fault(action, 606);
        this.table.remove(m);
        return [];
      }
      case 'GetSpecificPortMappingEntry':
        return entryArgs(this.entryAt(action, args, nowMs), false);
      case 'GetGenericPortMappingEntry': {
        const index = uintArg(action, args, 'NewPortMappingIndex', 0xffff);
        this.table.sweep(nowMs);
        const m = this.table.list()[index];
        if (m === undefined) throw fault(action, 713);
        return entryArgs(m, true);
      }
      default:
        throw fault(action, 401);
    }
  }

  /** AddPortMapping (WANIPConnection:1 §2.4.16) and AddAnyPortMapping (WANIPConnection:2 §2.5.16). */
  private add(action: 'AddPortMapping' | 'AddAnyPortMapping', args: ReadonlyMap<string, string>, client: Endpoint, nowMs: number): [string, string][] {
    const isAny = action === 'AddAnyPortMapping';
    if (isAny && (this.version !== 2 || this.options.noAddAny === true)) throw fault(action, 401);
    if ((args.get('NewRemoteHost') ?? '').trim() !== '') throw fault(action, 726);
    const protocol = protocolArg(action, args);
    const wanted = uintArg(action, args, 'NewExternalPort', 0xffff);
    const internalPort = uintArg(action, args, 'NewInternalPort', 0xffff);
    const leaseS = uintArg(action, args, 'NewLeaseDuration', this.version === 2 ? IGD2_MAX_LEASE_S : 0xffffffff);
    const internal = internalClient(action, args);
    if (internalPort === 0) throw fault(action, this.version === 2 ? 732 : 402);
    if (wanted === 0 && !isAny) throw fault(action, 716);
    if (!this.mayManage(internal.address, client)) throw fault(action, 606);
    if (this.options.permanentOnly === true && leaseS !== 0) throw fault(action, 725);
    if (this.options.samePortRequired === true && wanted !== internalPort) throw fault(action, 724);
    const endpointOf = { ...internal, port: internalPort };
    const held = wanted === 0 ? undefined : this.table.atExternal(protocol, wanted, nowMs);
    const own = held !== undefined && held.origin === 'upnp' && held.internal.address === internal.address && held.internal.port === internalPort ? held : undefined;
    let externalPort: number | undefined = wanted;
    if (own === undefined && (wanted === 0 || !this.table.isAvailable(protocol, wanted, nowMs))) {
      // 729 (IGD:2) when another mechanism (NAT-PMP, PCP) holds the port, else 718.
      if (!isAny) throw fault(action, held !== undefined && held.origin !== 'upnp' && this.version === 2 ? 729 : 718);
      externalPort = this.table.pickPort(protocol, 0, nowMs, undefined, wanted + 1);
      if (externalPort === undefined) throw fault(action, 728);
    }
    // IGD:2 turns a lease of 0 into the longest one; IGD:1 keeps it permanent.
    const lifetimeS = this.table.grantS(this.version === 2 && leaseS === 0 ? IGD2_MAX_LEASE_S : leaseS);
    const m = this.table.put({
      origin: 'upnp', protocol, internal: endpointOf, externalPort, lifetimeS, nonce: undefined, description: args.get('NewPortMappingDescription') ?? '',
    }, nowMs, own);
    if (m === undefined) throw fault(action, this.table.list().length >= this.table.maxMappings ? 728 : 501);
    return isAny ? [['NewReservedPort', String(externalPort)]] : [];
  }

  private entryAt(action: string, args: ReadonlyMap<string, string>, nowMs: number): GatewayMapping {
    const protocol = protocolArg(action, args);
    const m = this.table.atExternal(protocol, uintArg(action, args, 'NewExternalPort', 0xffff), nowMs);
    if (m === undefined) throw fault(action, 714);
    return m;
  }

  private mayManage(internalAddress: string, client: Endpoint): boolean {
    return this.options.allowThirdParty === true || internalAddress === client.address;
  }
}

function uintArg(action: string, args: ReadonlyMap<string, string>, name: string, max: number): number {
  const text = args.get(name)?.trim() ?? '';
  const n = /^\d{1,10}$/.test(text) ? Number(text) : NaN;
  if (!(n <= max)) throw fault(action, 402);
  return n;
}

function protocolArg(action: string, args: ReadonlyMap<string, string>): MapProtocol {
  const p = UPNP_PROTOCOL[args.get('NewProtocol')?.trim().toUpperCase() ?? ''];
  if (p === undefined) throw fault(action, 402);
  return p;
}

function internalClient(action: string, args: ReadonlyMap<string, string>): Endpoint {
  try {
    return endpoint(args.get('NewInternalClient')?.trim() ?? '', 0);
  } catch (err) {
    if (isNatkitError(err)) throw fault(action, 402);
    throw err;
  }
}

/** A mapping as GetSpecificPortMappingEntry (and, with its key first, GetGenericPortMappingEntry) report it. */
function entryArgs(m: GatewayMapping, generic: boolean): [string, string][] {
  const key: [string, string][] = generic ? [['NewRemoteHost', ''], ['NewExternalPort', String(m.externalPort)], ['NewProtocol', m.protocol.toUpperCase()]] : [];
  return [
    ...key, ['NewInternalPort', String(m.internal.port)], ['NewInternalClient', m.internal.address], ['NewEnabled', '1'],
    ['NewPortMappingDescription', m.description], ['NewLeaseDuration', String(m.lifetimeS)],
  ];
}
