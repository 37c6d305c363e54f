// A port-mapping gateway on any Env: NAT-PMP and PCP on UDP 5351 (RFC 6886 §3, RFC 6887
// §19.1), UPnP IGD by SSDP on UDP 1900 (UDA 1.1 §1.3) and HTTP on a stream listener, all
// answering from one mapping table whose mappings a backend installs — in the simulated
// world, the router's own NAT (`backend: router`, `env: router.host.env`). Every input is
// bounded: datagram sizes by the decoders, HTTP head and body sizes, connections, and the
// time a connection may take.
import { endpointKey, type Endpoint, type Env, type PacketSocket, type StreamListener, type StreamSocket, type Timer } from '../../net/index.ts';
import { NatkitError, isNatkitError } from '../../util/index.ts';
import { PORT_CONTROL_PORT } from '../channel.ts';
import { HttpRequestParser } from '../upnp-http-parse.ts';
import { SSDP_PORT } from '../upnp-ssdp.ts';
import { PortControlResponder } from './port-control.ts';
import { MappingTable, type GatewayLimits, type GatewayMapping, type MappingTableStats, type PortForwardBackend } from './table.ts';
import { UPNP_DESCRIPTION_PATH, UpnpIgdResponder, formatHttpResponse, type UpnpServerOptions } from './upnp-igd.ts';

/** Bounds of the HTTP side. */
export interface GatewayHttpLimits {
  /** Connections served at once; more are closed at once. @default 16 */
  readonly maxConnections?: number;
  /** A connection must deliver its whole request within this, ms (slow-loris bound). @default 5000 */
  readonly requestTimeoutMs?: number;
  /** Largest request line plus fields. @default 8192 */
  readonly maxHeadBytes?: number;
  /** Largest request body. @default 16384 */
  readonly maxBodyBytes?: number;
}

/** Options of PortMapGatewayServer.start(). */
export interface PortMapGatewayOptions {
  /** Sockets, clock (lifetimes, epoch), logger. */
  readonly env: Env;
  /** Installs and removes the mappings: the NAT (a SimRouter satisfies it). */
  readonly backend: PortForwardBackend;
  /** The address mappings are reachable at, reported to clients. */
  readonly externalAddress: string;
  /** The LAN address the gateway serves on (also the host of the UPnP LOCATION). */
  readonly lanAddress: string;
  /** Serve NAT-PMP. @default true */
  readonly natpmp?: boolean;
  /** Serve PCP. @default true */
  readonly pcp?: boolean;
  /** Serve UPnP IGD, with these options and quirks. @default { version: 1 } */
  readonly upnp?: false | UpnpServerOptions;
  /** PCP THIRD_PARTY and UPnP mappings for other hosts than the requester. @default false */
  readonly allowThirdParty?: boolean;
  /** Whether `client` may map at all. @default everyone may */
  readonly authorize?: (client: Endpoint) => boolean;
  readonly limits?: GatewayLimits;
  readonly http?: GatewayHttpLimits;
  /** NAT-PMP/PCP port. @default 5351 */
  readonly portControlPort?: number;
  /** SSDP port. @default 1900 */
  readonly ssdpPort?: number;
  /** HTTP port. @default 0 (any) */
  readonly httpPort?: number;
}

/** Counters of the server. */
export interface GatewayServerStats extends MappingTableStats {
  /** Datagrams or HTTP requests that made a handler fail (answered 500 or not at all). */
  errors: number;
  /** HTTP connections closed at once because maxConnections were open. */
  refusedConnections: number;
  /** HTTP requests cut off: malformed, too large or too slow. */
  badRequests: number;
}

/** A NAT-PMP, PCP and UPnP IGD gateway server. */
export class PortMapGatewayServer implements AsyncDisposable {
  readonly table: MappingTable;
  readonly stats: GatewayServerStats;
  /** Where NAT-PMP and PCP are served, when they are. */
  readonly portControl: Endpoint | undefined;
  /** Where SSDP searches are answered, when UPnP is served. */
  readonly ssdp: Endpoint | undefined;
  /** Where HTTP (description and control) is served, when UPnP is served. */
  readonly http: Endpoint | undefined;
  readonly upnp: UpnpIgdResponder | undefined;
  private readonly env: Env;
  private readonly sockets: PacketSocket[];
  private readonly listener: StreamListener | undefined;
  private readonly streams = new Set<StreamSocket>();
  private readonly httpLimits: Required<GatewayHttpLimits>;
  private expiry: Timer | undefined;
  private closing: Promise<void> | undefined;

  private constructor(init: {
    env: Env; table: MappingTable; upnp: UpnpIgdResponder | undefined; sockets: PacketSocket[]; listener: StreamListener | undefined;
    portControl: Endpoint | undefined; ssdp: Endpoint | undefined; httpLimits: Required<GatewayHttpLimits>;
  }) {
    this.env = init.env;
    this.table = init.table;
    this.stats = Object.assign(init.table.stats, { errors: 0, refusedConnections: 0, badRequests: 0 });
    this.upnp = init.upnp;
    this.sockets = init.sockets;
    this.listener = init.listener;
    this.portControl = init.portControl;
    this.ssdp = init.ssdp;
    this.http = init.listener?.local;
    this.httpLimits = init.httpLimits;
  }

  /** Binds the sockets and starts answering. Rejects with the sockets' errors (ERR_SOCKET) or ERR_INVALID_ARGUMENT. */
  static async start(options: PortMapGatewayOptions): Promise<PortMapGatewayServer> {
    const { env, lanAddress } = options;
    const table = new MappingTable({ backend: options.backend, nowMs: env.clock.now(), ...(options.limits && { limits: options.limits }) });
    const common = {
      externalAddress: options.externalAddress,
      ...(options.allowThirdParty !== undefined && { allowThirdParty: options.allowThirdParty }),
      ...(options.authorize && { authorize: options.authorize }),
    };
    const natpmp = options.natpmp ?? true;
    const pcp = options.pcp ?? true;
    const upnpOptions = options.upnp ?? {};
    const upnp = upnpOptions === false ? undefined : new UpnpIgdResponder(table, { ...upnpOptions, ...common });
    const h = options.http ?? {};
    const httpLimits = { maxConnections: h.maxConnections ?? 16, requestTimeoutMs: h.requestTimeoutMs ?? 5000, maxHeadBytes: h.maxHeadBytes ?? 8192, maxBodyBytes: h.maxBodyBytes ?? 16_384 };
    const sockets: PacketSocket[] = [];
    let listener: StreamListener | undefined;
    let server: PortMapGatewayServer | undefined;
    try {
      const control = natpmp || pcp ? await env.network.bindUdp({ address: lanAddress, port: options.portControlPort ?? PORT_CONTROL_PORT }) : undefined;
      if (control !== undefined) sockets.push(control);
      const ssdp = upnp === undefined ? undefined : await env.network.bindUdp({ address: lanAddress, port: options.ssdpPort ?? SSDP_PORT });
      if (ssdp !== undefined) sockets.push(ssdp);
      // The listener's callback runs only once `server` is set: connections arrive after this await.
      listener = upnp === undefined ? undefined : await env.network.listenStream({ address: lanAddress, port: options.httpPort ?? 0 }, (s) => server?.accept(s));
      server = new PortMapGatewayServer({ env, table, upnp, sockets, listener, portControl: control?.local, ssdp: ssdp?.local, httpLimits });
      const s = server;
      const responder = control === undefined ? undefined : new PortControlResponder(table, { ...common, natpmp, pcp });
      control?.onPacket((data, from) => s.guard(() => responder?.handle(data, from, env.clock.now()), control, from));
      ssdp?.onPacket((data, from) => s.guard(() => s.location === undefined ? undefined : upnp?.search(data, s.location), ssdp, from));
      return server;
    } catch (err) {
      await Promise.all([...sockets.map((x) => x.close()), listener?.close()]);
      throw err;
    }
  }

  /** The URL of the root description, when UPnP is served. */
  get location(): string | undefined {
    return this.http === undefined ? undefined : `http://${endpointKey(this.http)}${UPNP_DESCRIPTION_PATH}`;
  }

  /** Live mappings, oldest first. */
  mappings(): GatewayMapping[] {
    this.table.sweep(this.env.clock.now());
    return this.table.list();
  }

  /** A gateway reboot: every mapping removed, the epoch restarts, BOOTID.UPNP.ORG moves on. */
  restart(): void {
    this.table.restart(this.env.clock.now());
    if (this.upnp !== undefined) this.upnp.bootId++;
    this.schedule();
  }

  /** Stops serving; mappings stay installed (a gateway process ending, not the NAT). Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.expiry?.cancel();
      const streams = [...this.streams];
      this.streams.clear();
      await Promise.all([...this.sockets.map((s) => s.close()), this.listener?.close(), ...streams.map((s) => s.close())]);
    })();
    return this.closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /** Runs a datagram handler, sends its answer, counts its failure, re-arms the expiry timer. */
  private guard(answer: () => Uint8Array | undefined, socket: PacketSocket, to: Endpoint): void {
    try {
      const reply = answer();
      if (reply !== undefined) socket.send(reply, to);
    } catch (err) {
      // An answer that cannot be encoded (an IPv6 external address asked for by NAT-PMP): no answer.
      if (!isNatkitError(err)) throw err;
      this.stats.errors++;
    }
    this.schedule();
  }

  /** One timer at the next expiry (lifetimes end on time even when nobody asks). */
  private schedule(): void {
    this.expiry?.cancel();
    this.expiry = undefined;
    if (this.closing !== undefined) return;
    const next = this.table.sweep(this.env.clock.now());
    if (next !== undefined) this.expiry = this.env.clock.setTimer(Math.max(0, next - this.env.clock.now()), () => this.schedule());
  }

  /** One HTTP exchange per connection, under the size, count and time bounds. */
  private accept(stream: StreamSocket): void {
    const upnp = this.upnp;
    if (upnp === undefined || this.closing !== undefined || this.streams.size >= this.httpLimits.maxConnections) {
      this.stats.refusedConnections++;
      this.release(stream);
      return;
    }
    this.streams.add(stream);
    const parser = new HttpRequestParser({ maxHeadBytes: this.httpLimits.maxHeadBytes, maxBodyBytes: this.httpLimits.maxBodyBytes });
    const finish = (answer: string | undefined): void => {
      timer.cancel();
      stream.onData(undefined);
      stream.onClose(undefined);
      if (answer !== undefined) stream.write(new TextEncoder().encode(answer));
      this.streams.delete(stream);
      this.release(stream);
      this.schedule();
    };
    const timer = this.env.clock.setTimer(this.httpLimits.requestTimeoutMs, () => {
      this.stats.badRequests++;
      finish(undefined);
    });
    stream.onClose(() => finish(undefined));
    stream.onData((chunk) => {
      let answer: string | undefined;
      try {
        const request = parser.push(chunk);
        if (request === undefined) return;
        answer = upnp.respond(request, stream.remote, this.env.clock.now());
      } catch (err) {
        if (isNatkitError(err, 'ERR_HTTP_DECODE')) this.stats.badRequests++;
        else this.stats.errors++;
        answer = formatHttpResponse(isNatkitError(err, 'ERR_HTTP_DECODE') ? 400 : 500, '');
      }
      finish(answer);
    });
  }

  /** Closes a stream; a failure to close is counted (the stream is gone either way). */
  private release(stream: StreamSocket): void {
    stream.close().catch((err: unknown) => {
      this.stats.errors++;
      this.env.logger.debug('gateway: closing an HTTP stream failed', { error: err instanceof NatkitError ? err.code : String(err) });
    });
  }
}
