// A fake UPnP Internet Gateway Device on loopback for e2e tests: natkit's own IGD core
// (src/portmap/server) answering unicast M-SEARCH on a real UDP socket and HTTP on a real
// TCP server (node:net), so that `hook` can take over any request with the raw socket to
// play a hostile gateway. The quirks (725, 724, IGD:2 without AddAnyPortMapping) are the
// core's own; every request is recorded.
import { createServer, type Server, type Socket } from 'node:net';
import { endpoint, type Endpoint, type PacketSocket } from '../../src/net/index.ts';
import { nodeEnv } from '../../src/net/node/index.ts';
import {
  HttpRequestParser, MappingTable, UPNP_DESCRIPTION_PATH, UpnpIgdResponder, buildSoapFault, formatHttpResponse, parseSoapRequest,
  type HttpMessage,
} from '../../src/portmap/index.ts';

export { soapEnvelope } from '../../src/portmap/index.ts';

/** One HTTP request the fake received. */
export interface FakeRequest {
  readonly method: string;
  readonly path: string;
  /** Lower-case names, first value. */
  readonly headers: ReadonlyMap<string, string>;
  readonly body: string;
  /** SOAP action name, when the body is one. */
  readonly action: string | undefined;
  /** SOAP in arguments. */
  readonly args: ReadonlyMap<string, string>;
}

/** A mapping in the fake's table, as the tests look at it. */
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
  /** Host put into LOCATION. @default '127.0.0.1' */
  readonly locationHost?: string;
  /** Takes over a request: write the raw answer to `socket` and return true. */
  readonly hook?: (request: FakeRequest, socket: Socket) => boolean;
}

const env = nodeEnv();

/** A UPnPError fault as miniupnpd sends it (HTTP 500). */
export const faultBody = buildSoapFault;

export function httpResponse(status: number, body: string): string {
  return formatHttpResponse(status, body);
}

export class FakeIgd implements AsyncDisposable {
  readonly requests: FakeRequest[] = [];
  readonly table: MappingTable;
  readonly core: UpnpIgdResponder;
  readonly ssdp: Endpoint;
  readonly http: Endpoint;
  private readonly udp: PacketSocket;
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  private readonly options: FakeIgdOptions;

  private constructor(udp: PacketSocket, server: Server, options: FakeIgdOptions) {
    this.udp = udp;
    this.server = server;
    this.options = options;
    this.table = new MappingTable({ nowMs: env.clock.now(), limits: { portRange: [1, 65535] } });
    this.core = new UpnpIgdResponder(this.table, {
      externalAddress: options.externalAddress ?? '203.0.113.7', friendlyName: 'natkit fake IGD', bootId: 7,
      ...(options.version !== undefined && { version: options.version }), ...(options.permanentOnly !== undefined && { permanentOnly: options.permanentOnly }),
      ...(options.samePortRequired !== undefined && { samePortRequired: options.samePortRequired }), ...(options.noAddAny !== undefined && { noAddAny: options.noAddAny }),
    });
    this.ssdp = udp.local;
    const a = server.address();
    if (a === null || typeof a === 'string') throw new Error('no TCP address');
    this.http = endpoint('127.0.0.1', a.port);
  }

  static async start(options: FakeIgdOptions = {}): Promise<FakeIgd> {
    const udp = await env.network.bindUdp({ address: '127.0.0.1' });
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    const igd = new FakeIgd(udp, server, options);
    udp.onPacket((data, from) => {
      const reply = igd.core.search(data, igd.location);
      if (reply !== undefined) udp.send(reply, from);
    });
    server.on('connection', (s) => igd.onConnection(s));
    return igd;
  }

  get serviceType(): string {
    return this.core.serviceType;
  }

  get location(): string {
    return `http://${this.options.locationHost ?? '127.0.0.1'}:${this.http.port}${UPNP_DESCRIPTION_PATH}`;
  }

  /** The table by `${protocol}/${externalPort}` ('UDP/5000'). */
  get mappings(): Map<string, FakeMapping> {
    return new Map(this.table.list().map((m) => {
      const protocol = m.protocol.toUpperCase();
      return [`${protocol}/${m.externalPort}`, {
        externalPort: m.externalPort, protocol, internalPort: m.internal.port, internalClient: m.internal.address, description: m.description, leaseS: m.lifetimeS,
      }];
    }));
  }

  /** Puts a mapping into the table as if another host had made it. */
  addMapping(m: FakeMapping): void {
    this.table.put({
      origin: 'upnp', protocol: m.protocol === 'TCP' ? 'tcp' : 'udp', internal: endpoint(m.internalClient, m.internalPort),
      externalPort: m.externalPort, lifetimeS: m.leaseS, nonce: undefined, description: m.description,
    }, env.clock.now());
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await Promise.all([new Promise<void>((resolve) => this.server.close(() => resolve())), this.udp.close()]);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  private onConnection(socket: Socket): void {
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => undefined);
    const parser = new HttpRequestParser();
    const onData = (chunk: Buffer): void => {
      let message: HttpMessage | undefined;
      try {
        message = parser.push(chunk);
      } catch {
        socket.end(httpResponse(400, ''));
        return;
      }
      if (message === undefined) return;
      socket.off('data', onData);
      const request = this.record(message);
      if (this.options.hook?.(request, socket) === true) return;
      socket.end(this.core.respond(message, endpoint(socket.remoteAddress ?? '127.0.0.1', socket.remotePort ?? 0), env.clock.now()));
    };
    socket.on('data', onData);
  }

  private record(message: HttpMessage): FakeRequest {
    const { head } = message;
    const body = new TextDecoder().decode(message.body);
    let soap: ReturnType<typeof parseSoapRequest> | undefined;
    try {
      soap = head.reason === 'POST' ? parseSoapRequest(body) : undefined;
    } catch {
      // not SOAP: the core answers 400
    }
    const r: FakeRequest = {
      method: head.reason, path: head.target, headers: new Map([...head.fields].map(([k, v]) => [k, v[0] ?? ''])), body,
      action: soap?.action, args: soap?.args ?? new Map(),
    };
    this.requests.push(r);
    return r;
  }
}
