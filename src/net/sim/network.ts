// SimNetwork: the Network (src/net/types.ts) of one simulated host — UDP sockets, stream
// listeners and connections on the host's addresses, and the dispatch of packets that
// arrive for them. Errors match net/node's: ERR_INVALID_ARGUMENT for what is no address,
// ERR_SOCKET with the errno code as cause for what a socket call would refuse.
import { NatkitError, throwIfAborted, type IpFamily } from '../../util/index.ts';
import { endpoint, endpointKey, formatEndpoint } from '../endpoint.ts';
import type {
  BindOptions, ConnectOptions, Endpoint, ListenOptions, Network, PacketSocket, StreamListener, StreamSocket,
} from '../types.ts';
import type { SimPacket, SimProto, TcpSegment } from './packet.ts';
import { PortTable, anyAddress, socketError } from './ports.ts';
import type { SimRandom } from './random.ts';
import { SimStream, type StreamAcceptor, type StreamHost } from './stream.ts';
import type { DropReason, TraceEvent } from './trace.ts';
import { SimUdpSocket, type UdpHost } from './udp.ts';
import type { SimClock } from './clock.ts';

/** Default of ConnectOptions.timeoutMs, as in net/node. */
const CONNECT_TIMEOUT_MS = 10_000;

/** What a host's network needs from the host. */
export interface StackHost {
  readonly name: string;
  readonly clock: SimClock;
  /** Draws ephemeral ports. */
  readonly ports: SimRandom;
  readonly mssBytes: number;
  readonly highWaterBytes: number;
  /** The host's own addresses (loopback not included). */
  readonly addresses: readonly string[];
  /** Sends a packet from this host. */
  emit(proto: SimProto, src: Endpoint, dst: Endpoint, data: Uint8Array, tcp?: TcpSegment): void;
  /** Records what happened to an arriving packet. */
  note(packet: SimPacket, event: TraceEvent, reason?: DropReason, detail?: string): void;
}

/** True for 127.0.0.0/8 and ::1. */
export function isLoopback(address: string): boolean {
  return address === '::1' || address.startsWith('127.');
}

/** Sockets a network holds open. */
export interface OpenSockets {
  readonly udp: number;
  readonly listeners: number;
  readonly streams: number;
}

/** The sockets of one simulated host. */
export class SimNetwork implements Network {
  private readonly host: StackHost;
  private readonly udp = new PortTable<SimUdpSocket>();
  /** Listeners and the local ports of outgoing streams. */
  private readonly tcp = new PortTable<SimListener | SimStream>();
  /** Streams by `local|remote`. */
  private readonly streams = new Map<string, SimStream>();
  private readonly listeners = new Set<SimListener>();
  private readonly udpHost: UdpHost;
  /** @internal the streams' view of this host. */
  readonly streamHost: StreamHost;

  constructor(host: StackHost) {
    this.host = host;
    this.udpHost = {
      sourceAddress: (local, to) => this.sourceAddress(local, to),
      emit: (proto, src, dst, data) => host.emit(proto, src, dst, data),
      release: (socket) => this.udp.remove(socket.local.family, socket.local.address, socket.local.port, socket),
    };
    this.streamHost = {
      clock: host.clock,
      mssBytes: host.mssBytes,
      highWaterBytes: host.highWaterBytes,
      emitTcp: (src, dst, tcp, data) => host.emit('tcp', src, dst, data ?? new Uint8Array(0), tcp),
      forget: (stream) => this.forget(stream),
    };
  }

  bindUdp(options: BindOptions = {}): Promise<PacketSocket> {
    return attempt(() => {
      throwIfAborted(options.signal, 'bindUdp');
      const local = this.claim(this.udp, 'bind udp', options);
      const socket = new SimUdpSocket(this.udpHost, local);
      this.udp.add(local.family, local.address, local.port, socket);
      return socket;
    });
  }

  listenStream(options: ListenOptions, onConnection: (stream: StreamSocket) => void): Promise<StreamListener> {
    return attempt(() => {
      throwIfAborted(options.signal, 'listenStream');
      const local = this.claim(this.tcp, 'listen', options);
      const cert = options.tls === undefined ? undefined : typeof options.tls.cert === 'string' ? options.tls.cert : new TextDecoder().decode(options.tls.cert);
      const listener = new SimListener(this, local, cert, onConnection);
      this.tcp.add(local.family, local.address, local.port, listener);
      this.listeners.add(listener);
      return listener;
    });
  }

  connectStream(to: Endpoint, options: ConnectOptions = {}): Promise<StreamSocket> {
    let stream: SimStream;
    try {
      stream = this.openStream(to, options);
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
    return stream.connect({
      timeoutMs: options.timeoutMs ?? CONNECT_TIMEOUT_MS,
      ...(options.tls !== undefined && { tls: options.tls }),
      ...(options.signal !== undefined && { signal: options.signal }),
    });
  }

  /** True when `address` is one of the host's or a loopback address. */
  hasAddress(address: string): boolean {
    return isLoopback(address) || this.host.addresses.includes(address);
  }

  /** True when something here would take `packet`: a bound UDP socket, a stream, or a listener for a SYN. */
  accepts(packet: SimPacket): boolean {
    const { dst, src } = packet;
    if (packet.proto === 'udp') return this.udp.lookup(dst.family, dst.address, dst.port) !== undefined;
    return this.streams.has(connectionKey(dst, src)) || (packet.tcp?.flag === 'SYN' && this.tcp.lookup(dst.family, dst.address, dst.port) instanceof SimListener);
  }

  /** A packet addressed to this host arrives. */
  receive(packet: SimPacket): void {
    const { dst, src } = packet;
    if (packet.proto === 'udp') {
      const socket = this.udp.lookup(dst.family, dst.address, dst.port);
      if (socket === undefined) {
        this.host.note(packet, 'drop', 'port-unreachable', 'no UDP socket');
        return;
      }
      this.host.note(packet, 'deliver');
      socket.deliver(Uint8Array.from(packet.data), src);
      return;
    }
    const stream = this.streams.get(connectionKey(dst, src));
    if (stream !== undefined) {
      this.host.note(packet, 'deliver');
      stream.receive(packet);
      return;
    }
    const flag = packet.tcp?.flag;
    const bound = this.tcp.lookup(dst.family, dst.address, dst.port);
    if (flag === 'SYN' && bound instanceof SimListener) {
      this.host.note(packet, 'deliver');
      bound.accept(packet);
      return;
    }
    this.host.note(packet, 'drop', 'port-unreachable', flag === 'SYN' ? 'no listener, answered RST' : 'no connection');
    // A real TCP answers anything but RST for an unknown connection with RST.
    if (flag !== 'RST') this.host.emit('tcp', dst, src, new Uint8Array(0), { flag: 'RST', seq: -1 });
  }

  /** Sockets still open. */
  openSockets(): OpenSockets {
    return { udp: this.udp.items().length, listeners: this.listeners.size, streams: this.streams.size };
  }

  /** Closes everything at once, telling no peer (the world is closing). */
  destroyAll(): void {
    for (const s of this.udp.items()) void s.close();
    for (const l of [...this.listeners]) void l.close();
    for (const s of [...this.streams.values()]) s.destroy();
  }

  /** @internal a listener accepted a stream. */
  track(stream: SimStream): void {
    this.streams.set(connectionKey(stream.local, stream.remote), stream);
  }

  /** @internal a listener closed. */
  release(listener: SimListener): void {
    this.listeners.delete(listener);
    this.tcp.remove(listener.local.family, listener.local.address, listener.local.port, listener);
  }

  /** A client stream with its local endpoint chosen, not yet connecting. */
  private openStream(to: Endpoint, options: ConnectOptions): SimStream {
    throwIfAborted(options.signal, 'connectStream');
    if (to.port === 0) throw new NatkitError('ERR_INVALID_ARGUMENT', `connect to ${formatEndpoint(to)}: port 0 is no destination`);
    const from = options.localAddress === undefined ? undefined : endpoint(options.localAddress, 0);
    if (from !== undefined && !this.hasAddress(from.address)) {
      throw socketError(`connect to ${formatEndpoint(to)} failed: local address ${from.address} not available`, 'EADDRNOTAVAIL');
    }
    const address = this.sourceAddress(from ?? { address: anyAddress(to.family), port: 0, family: to.family }, to);
    if (address === undefined || (from !== undefined && from.family !== to.family)) {
      throw socketError(`connect to ${formatEndpoint(to)} failed: network unreachable`, 'ENETUNREACH');
    }
    const port = this.tcp.ephemeral(to.family, address, this.host.ports);
    if (port === undefined) throw socketError(`connect to ${formatEndpoint(to)} failed: no local port left`, 'EADDRINUSE');
    const stream = new SimStream(this.streamHost, { address, port, family: to.family }, to);
    this.tcp.add(to.family, address, port, stream);
    this.streams.set(connectionKey(stream.local, stream.remote), stream);
    return stream;
  }

  private forget(stream: SimStream): void {
    const key = connectionKey(stream.local, stream.remote);
    if (this.streams.get(key) === stream) this.streams.delete(key);
    this.tcp.remove(stream.local.family, stream.local.address, stream.local.port, stream);
  }

  /** The local endpoint a bind or listen asks for, checked and with a port chosen. */
  private claim<T>(table: PortTable<T>, what: string, options: BindOptions): Endpoint {
    const want = endpoint(options.address ?? '0.0.0.0', options.port ?? 0);
    const family: IpFamily = want.family;
    if (want.address !== anyAddress(family) && !this.hasAddress(want.address)) {
      throw socketError(`${what} ${formatEndpoint(want)} failed: address not available`, 'EADDRNOTAVAIL');
    }
    if (want.port !== 0) {
      if (!table.isFree(family, want.address, want.port)) throw socketError(`${what} ${formatEndpoint(want)} failed: address in use`, 'EADDRINUSE');
      return want;
    }
    const port = table.ephemeral(family, want.address, this.host.ports);
    if (port === undefined) throw socketError(`${what} ${formatEndpoint(want)} failed: no port left`, 'EADDRINUSE');
    return { ...want, port };
  }

  /** Source address for `local` sending to `to`: its own, or the host's first of the family; loopback stays local. */
  private sourceAddress(local: Endpoint, to: Endpoint): string | undefined {
    if (local.address !== anyAddress(local.family)) {
      return isLoopback(local.address) && !this.hasAddress(to.address) ? undefined : local.address;
    }
    if (isLoopback(to.address) || to.address === anyAddress(to.family)) return to.family === 4 ? '127.0.0.1' : '::1';
    return this.host.addresses.find((a) => endpoint(a, 0).family === to.family);
  }
}

/** A stream listener of a simulated host. */
class SimListener implements StreamListener, StreamAcceptor {
  readonly local: Endpoint;
  readonly cert: string | undefined;
  private readonly network: SimNetwork;
  private readonly onConnection: (stream: StreamSocket) => void;
  private readonly streams = new Set<SimStream>();
  private closing: Promise<void> | undefined;

  constructor(network: SimNetwork, local: Endpoint, cert: string | undefined, onConnection: (stream: StreamSocket) => void) {
    this.network = network;
    this.local = local;
    this.cert = cert;
    this.onConnection = onConnection;
  }

  /** A SYN for the listening port: a new server-side stream, handed over now (TCP) or after the handshake (TLS). */
  accept(syn: SimPacket): void {
    const stream = new SimStream(this.network.streamHost, syn.dst, syn.src, { acceptor: this, peer: syn.tcp?.end });
    this.streams.add(stream);
    this.network.track(stream);
    stream.acceptSyn();
    if (this.cert === undefined) this.ready(stream);
  }

  ready(stream: SimStream): void {
    if (this.closing === undefined) this.onConnection(stream);
  }

  gone(stream: SimStream): void {
    this.streams.delete(stream);
  }

  close(): Promise<void> {
    if (this.closing === undefined) {
      this.closing = Promise.resolve();
      this.network.release(this);
      for (const s of [...this.streams]) void s.close();
    }
    return this.closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/** The map key of a connection. */
function connectionKey(local: Endpoint, remote: Endpoint): string {
  return `${endpointKey(local)}|${endpointKey(remote)}`;
}

/** Runs a synchronous socket call as a promise: a throw becomes a rejection. */
function attempt<T>(fn: () => T): Promise<T> {
  try {
    return Promise.resolve(fn());
  } catch (err) {
    return Promise.reject(err instanceof Error ? err : new Error(String(err)));
  }
}
