// A small fake UPnP Internet Gateway Device on loopback for e2e tests: a real UDP SSDP
// responder (answers unicast M-SEARCH) and a real TCP HTTP server (node:net) serving the
// root description and SOAP control of one WANIPConnection service, with a mapping
// table that behaves like miniupnpd's: conflicts (718), permanent-only leases (725),
// same-port-only (724), AddAnyPortMapping on IGD:2, listing by index (713 at the end).
// `hook` lets a test take over any HTTP request to play a hostile gateway.
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { createServer, type Server, type Socket } from 'node:net';
import { endpoint, type Endpoint } from '../../src/net/index.ts';
import { child, parseXml } from '../../src/portmap/upnp-xml.ts';

/** One HTTP request the fake received. */
export interface FakeRequest {
  readonly method: string;
  readonly path: string;
  readonly headers: ReadonlyMap<string, string>;
  readonly body: string;
  /** SOAP action name, when the body is one. */
  readonly action: string | undefined;
  /** SOAP in arguments. */
  readonly args: ReadonlyMap<string, string>;
}

/** A mapping in the fake's table. */
export interface FakeMapping {
  readonly externalPort: number;
  readonly protocol: string;
  readonly internalPort: number;
  readonly internalClient: string;
  readonly description: string;
  readonly leaseS: number;
}

export interface FakeIgdOptions {
  /** WANIPConnection version offered. @default 1 */
  readonly version?: 1 | 2;
  /** @default '203.0.113.7' */
  readonly externalAddress?: string;
  /** Refuse leases other than 0 with 725. */
  readonly permanentOnly?: boolean;
  /** Refuse external ≠ internal port with 724. */
  readonly samePortRequired?: boolean;
  /** Advertise IGD:2 but answer AddAnyPortMapping with 401. */
  readonly noAddAny?: boolean;
  /** Replaces the description document. */
  readonly description?: (base: string) => string;
  /** Host put into LOCATION. @default '127.0.0.1' */
  readonly locationHost?: string;
  /** Takes over a request: write the raw answer to `socket` and return true. */
  readonly hook?: (request: FakeRequest, socket: Socket) => boolean;
}

const CONTROL_PATH = '/ctl/IPConn';

export function soapEnvelope(inner: string): string {
  return `<?xml version="1.0"?>\r\n<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" s:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/"><s:Body>${inner}</s:Body></s:Envelope>\r\n`;
}

/** A UPnPError fault as miniupnpd sends it (HTTP 500). */
export function faultBody(code: number, description: string): string {
  return soapEnvelope(`<s:Fault><faultcode>s:Client</faultcode><faultstring>UPnPError</faultstring><detail><UPnPError xmlns="urn:schemas-upnp-org:control-1-0"><errorCode>${code}</errorCode><errorDescription>${description}</errorDescription></UPnPError></detail></s:Fault>`);
}

export function httpResponse(status: number, body: string, extra = ''): string {
  return `HTTP/1.1 ${status} ${status === 200 ? 'OK' : 'Error'}\r\nContent-Type: text/xml; charset="utf-8"\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n${extra}\r\n${body}`;
}

export class FakeIgd implements AsyncDisposable {
  readonly requests: FakeRequest[] = [];
  readonly mappings = new Map<string, FakeMapping>();
  readonly ssdp: Endpoint;
  readonly http: Endpoint;
  readonly serviceType: string;
  private readonly udp: UdpSocket;
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  private readonly options: FakeIgdOptions;

  private constructor(udp: UdpSocket, server: Server, options: FakeIgdOptions) {
    this.udp = udp;
    this.server = server;
    this.options = options;
    this.serviceType = `urn:schemas-upnp-org:service:WANIPConnection:${options.version ?? 1}`;
    this.ssdp = endpoint('127.0.0.1', udp.address().port);
    const a = server.address();
    if (a === null || typeof a === 'string') throw new Error('no TCP address');
    this.http = endpoint('127.0.0.1', a.port);
  }

  static async start(options: FakeIgdOptions = {}): Promise<FakeIgd> {
    const udp = createSocket('udp4');
    await new Promise<void>((resolve) => udp.bind(0, '127.0.0.1', () => resolve()));
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    const igd = new FakeIgd(udp, server, options);
    udp.on('message', (msg, rinfo) => igd.onSearch(msg.toString('latin1'), rinfo.address, rinfo.port));
    server.on('connection', (s) => igd.onConnection(s));
    return igd;
  }

  get location(): string {
    return `http://${this.options.locationHost ?? '127.0.0.1'}:${this.http.port}/rootDesc.xml`;
  }

  /** The description this fake serves by default. */
  baseDescription(): string {
    const v = this.options.version ?? 1;
    return `<?xml version="1.0"?>\n<root xmlns="urn:schemas-upnp-org:device-1-0"><specVersion><major>1</major><minor>1</minor></specVersion><device><deviceType>urn:schemas-upnp-org:device:InternetGatewayDevice:${v}</deviceType><friendlyName>natkit fake IGD</friendlyName><manufacturer>natkit</manufacturer><modelName>fake</modelName><UDN>uuid:00000000-0000-4000-8000-000000000001</UDN><deviceList><device><deviceType>urn:schemas-upnp-org:device:WANDevice:${v}</deviceType><deviceList><device><deviceType>urn:schemas-upnp-org:device:WANConnectionDevice:${v}</deviceType><serviceList><service><serviceType>${this.serviceType}</serviceType><serviceId>urn:upnp-org:serviceId:WANIPConn1</serviceId><controlURL>${CONTROL_PATH}</controlURL><eventSubURL>/evt/IPConn</eventSubURL><SCPDURL>/WANIPCn.xml</SCPDURL></service></serviceList></device></deviceList></device></deviceList></device></root>\n`;
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await Promise.all([
      new Promise<void>((resolve) => this.server.close(() => resolve())),
      new Promise<void>((resolve) => this.udp.close(() => resolve())),
    ]);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  private onSearch(text: string, address: string, port: number): void {
    if (!text.startsWith('M-SEARCH * HTTP/1.1')) return;
    const st = /\r\nST: *(\S+)/i.exec(text)?.[1] ?? '';
    if (!st.startsWith('urn:schemas-upnp-org:') && st !== 'ssdp:all') return;
    const answer = `HTTP/1.1 200 OK\r\nCACHE-CONTROL: max-age=120\r\nST: ${st}\r\nUSN: uuid:00000000-0000-4000-8000-000000000001::${st}\r\nEXT:\r\nSERVER: natkit-test UPnP/1.1 FakeIGD/1\r\nLOCATION: ${this.location}\r\nBOOTID.UPNP.ORG: 7\r\nCONFIGID.UPNP.ORG: 1\r\n\r\n`;
    this.udp.send(Buffer.from(answer, 'latin1'), port, address);
  }

  private onConnection(socket: Socket): void {
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => undefined);
    let buf = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = buf.subarray(0, end).toString('latin1').split('\r\n');
      const headers = new Map(head.slice(1).map((l) => [l.slice(0, l.indexOf(':')).trim().toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]));
      const length = Number(headers.get('content-length') ?? 0);
      if (buf.length < end + 4 + length) return;
      socket.removeAllListeners('data');
      const [method = '', path = ''] = head[0]!.split(' ');
      this.handle(this.request(method, path, headers, buf.subarray(end + 4, end + 4 + length).toString('utf8')), socket);
    });
  }

  private request(method: string, path: string, headers: Map<string, string>, body: string): FakeRequest {
    let action: string | undefined;
    const args = new Map<string, string>();
    if (method === 'POST') {
      try {
        const call = child(parseXml(body), 'Body')?.children[0];
        action = call?.name;
        for (const a of call?.children ?? []) args.set(a.name, a.text);
      } catch {
        // not SOAP: the handler answers 400
      }
    }
    const r = { method, path, headers, body, action, args };
    this.requests.push(r);
    return r;
  }

  private handle(r: FakeRequest, socket: Socket): void {
    if (this.options.hook?.(r, socket) === true) return;
    if (r.method === 'GET' && r.path === '/rootDesc.xml') {
      const base = this.baseDescription();
      socket.end(httpResponse(200, this.options.description?.(base) ?? base));
      return;
    }
    if (r.method !== 'POST' || r.path !== CONTROL_PATH || r.action === undefined) {
      socket.end('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
      return;
    }
    const [status, body] = this.soap(r.action, r.args);
    socket.end(httpResponse(status, body));
  }

  private soap(action: string, a: ReadonlyMap<string, string>): [number, string] {
    const ok = (inner = ''): [number, string] => [200, soapEnvelope(`<u:${action}Response xmlns:u="${this.serviceType}">${inner}</u:${action}Response>`)];
    const fault = (code: number, text: string): [number, string] => [500, faultBody(code, text)];
    const key = (port: string | undefined, proto: string | undefined): string => `${proto ?? ''}/${port ?? ''}`;
    switch (action) {
      case 'GetExternalIPAddress':
        return ok(`<NewExternalIPAddress>${this.options.externalAddress ?? '203.0.113.7'}</NewExternalIPAddress>`);
      case 'AddPortMapping':
      case 'AddAnyPortMapping': {
        if (action === 'AddAnyPortMapping' && ((this.options.version ?? 1) !== 2 || this.options.noAddAny === true)) return fault(401, 'Invalid Action');
        const lease = Number(a.get('NewLeaseDuration'));
        if (this.options.permanentOnly === true && lease !== 0) return fault(725, 'OnlyPermanentLeasesSupported');
        if (this.options.samePortRequired === true && a.get('NewExternalPort') !== a.get('NewInternalPort')) return fault(724, 'SamePortValuesRequired');
        let port = Number(a.get('NewExternalPort'));
        const proto = a.get('NewProtocol') ?? '';
        const mine = (m: FakeMapping | undefined): boolean => m === undefined || (m.internalClient === a.get('NewInternalClient') && String(m.internalPort) === a.get('NewInternalPort'));
        if (!mine(this.mappings.get(key(String(port), proto)))) {
          if (action === 'AddPortMapping') return fault(718, 'ConflictInMappingEntry');
          while (!mine(this.mappings.get(key(String(port), proto)))) port = port >= 65535 ? 1024 : port + 1;
        }
        this.mappings.set(key(String(port), proto), {
          externalPort: port, protocol: proto, internalPort: Number(a.get('NewInternalPort')), internalClient: a.get('NewInternalClient') ?? '',
          description: a.get('NewPortMappingDescription') ?? '', leaseS: lease,
        });
        return action === 'AddAnyPortMapping' ? ok(`<NewReservedPort>${port}</NewReservedPort>`) : ok();
      }
      case 'DeletePortMapping':
        return this.mappings.delete(key(a.get('NewExternalPort'), a.get('NewProtocol'))) ? ok() : fault(714, 'NoSuchEntryInArray');
      case 'GetSpecificPortMappingEntry': {
        const m = this.mappings.get(key(a.get('NewExternalPort'), a.get('NewProtocol')));
        return m === undefined ? fault(714, 'NoSuchEntryInArray') : ok(entryXml(m, false));
      }
      case 'GetGenericPortMappingEntry': {
        const m = [...this.mappings.values()][Number(a.get('NewPortMappingIndex'))];
        return m === undefined ? fault(713, 'SpecifiedArrayIndexInvalid') : ok(entryXml(m, true));
      }
      default:
        return fault(401, 'Invalid Action');
    }
  }
}

function entryXml(m: FakeMapping, generic: boolean): string {
  const key = generic ? `<NewRemoteHost></NewRemoteHost><NewExternalPort>${m.externalPort}</NewExternalPort><NewProtocol>${m.protocol}</NewProtocol>` : '';
  return `${key}<NewInternalPort>${m.internalPort}</NewInternalPort><NewInternalClient>${m.internalClient}</NewInternalClient><NewEnabled>1</NewEnabled><NewPortMappingDescription>${m.description.replaceAll('&', '&amp;').replaceAll('<', '&lt;')}</NewPortMappingDescription><NewLeaseDuration>${m.leaseS}</NewLeaseDuration>`;
}
