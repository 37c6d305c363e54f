// A simulated host: addresses, a SimNetwork of sockets on them, and the Env a protocol
// runs in (network, the world's virtual clock, a seeded random stream of its own, a
// logger). Packets to its own or loopback addresses stay inside; the rest leave through
// its route (its segment for a plain host, the router's logic for a router's own stack).
import { NatkitError, ipFamily, type IpFamily } from '../../util/index.ts';
import type { Endpoint, Env, Logger } from '../types.ts';
import type { Attachment, Fabric } from './fabric.ts';
import type { Link } from './link.ts';
import { INITIAL_TTL, type SimPacket, type SimProto, type TcpSegment } from './packet.ts';
import { SimNetwork, type OpenSockets } from './network.ts';
import type { SimRandom } from './random.ts';
import type { DropReason, TraceEvent } from './trace.ts';

/** How a host is built (by its segment or router). */
export interface HostInit {
  readonly name: string;
  readonly addresses: readonly string[];
  /** Its access link; undefined for a router's own stack. */
  readonly link: Link | undefined;
  /** Sends a packet for another node on its way. */
  readonly route: (packet: SimPacket, host: SimHost) => void;
}

/** A node with sockets. */
export class SimHost {
  readonly name: string;
  /** The host's addresses, in the order given (the first of a family is its default source). */
  readonly addresses: readonly string[];
  /** Its sockets: the Network protocol code is given. */
  readonly network: SimNetwork;
  /** network, the world's clock, the host's random stream and logger. */
  readonly env: Env;
  /** Its access link (change impairments with `link.set()`); undefined for a router's own stack. */
  readonly link: Link | undefined;
  /** @internal its connection to its segment. */
  readonly attachment: Attachment;
  /** The host's random stream (also env.random). */
  readonly random: SimRandom;
  private readonly fabric: Fabric;
  private readonly route: (packet: SimPacket, host: SimHost) => void;

  constructor(fabric: Fabric, init: HostInit) {
    this.fabric = fabric;
    this.name = init.name;
    this.addresses = init.addresses;
    this.link = init.link;
    this.route = init.route;
    this.random = fabric.random.fork(`host:${init.name}`);
    this.network = new SimNetwork({
      name: init.name,
      clock: fabric.clock,
      ports: fabric.random.fork(`ports:${init.name}`),
      mssBytes: fabric.tcpMssBytes,
      highWaterBytes: fabric.tcpHighWaterBytes,
      addresses: init.addresses,
      emit: (proto, src, dst, data, tcp) => this.emit(proto, src, dst, data, tcp),
      note: (packet, event, reason, detail) => this.note(packet, event, reason, detail),
    });
    this.env = { network: this.network, clock: fabric.clock, random: this.random, logger: hostLogger(fabric, init.name) };
    this.attachment = { name: init.name, link: init.link, node: this, arrive: (packet) => this.network.receive(packet) };
  }

  /** The host's first address of `family`; throws ERR_CONFIG when it has none. */
  address(family: IpFamily = 4): string {
    const found = this.addresses.find((a) => ipFamily(a) === family);
    if (found === undefined) throw new NatkitError('ERR_CONFIG', `host ${this.name} has no IPv${family} address`);
    return found;
  }

  /** Sockets still open. */
  openSockets(): OpenSockets {
    return this.network.openSockets();
  }

  /** Closes every socket without telling peers. */
  destroy(): void {
    this.network.destroyAll();
  }

  /** @internal sends a packet made by one of the host's sockets. */
  emit(proto: SimProto, src: Endpoint, dst: Endpoint, data: Uint8Array, tcp?: TcpSegment): void {
    const packet: SimPacket = { id: this.fabric.nextPacketId(), proto, src, dst, data, ttl: INITIAL_TTL, ...(tcp !== undefined && { tcp }) };
    this.fabric.trace.record(packet, this.name, 'send');
    // Like Linux, the unspecified address as a destination means this host.
    if (this.network.hasAddress(dst.address) || dst.address === '0.0.0.0' || dst.address === '::') {
      this.fabric.clock.setTimer(0, () => this.network.receive(packet));
      return;
    }
    this.route(packet, this);
  }

  /** @internal records what happened to a packet here. */
  note(packet: SimPacket, event: TraceEvent, reason?: DropReason, detail?: string): void {
    this.fabric.trace.record(packet, this.name, event, { ...(reason && { reason }), ...(detail !== undefined && { detail }) });
  }
}

/** The world's logger with the host's name and the virtual time added to every record. */
function hostLogger(fabric: Fabric, name: string): Logger {
  const base = fabric.logger;
  const fields = (extra?: Readonly<Record<string, unknown>>): Record<string, unknown> => ({ host: name, timeMs: fabric.clock.now(), ...extra });
  return {
    debug: (msg, extra) => base.debug(msg, fields(extra)),
    info: (msg, extra) => base.info(msg, fields(extra)),
    warn: (msg, extra) => base.warn(msg, fields(extra)),
  };
}
