// A fake NAT-PMP (RFC 6886) and PCP (RFC 6887) gateway for tests: natkit's own answering
// core (src/portmap/server) on a table that forwards nothing, plus test knobs — requests
// recorded, dropped (lost on the way) or refused, reboots, ports already taken — and a
// real UDP socket running it.
import type { Endpoint, PacketSocket } from '../../src/net/index.ts';
import { nodeEnv } from '../../src/net/node/index.ts';
import { MappingTable, PCP_PROTOCOL, PortControlResponder } from '../../src/portmap/index.ts';

/** Options of the fake gateway. */
export interface FakeGatewayOptions {
  /** @default true */
  readonly natpmp?: boolean;
  /** @default true */
  readonly pcp?: boolean;
  /** @default '203.0.113.7' */
  readonly externalAddress?: string;
  /** Longest lifetime granted, seconds. @default 86400 */
  readonly maxLifetimeS?: number;
  /** PCP: accept THIRD_PARTY. @default false (NOT_AUTHORIZED) */
  readonly allowThirdParty?: boolean;
}

/** A mapping the gateway holds, as the tests look at it. */
export interface FakeMapping {
  readonly protocol: number;
  readonly internalAddress: string;
  readonly internalPort: number;
  readonly externalPort: number;
  readonly lifetimeS: number;
  readonly nonce: Uint8Array | undefined;
}

/** The answering core with test knobs, fed datagrams and the time. */
export class FakePortmapGateway {
  readonly table: MappingTable;
  /** Every datagram received, in order. */
  readonly received: { readonly data: Uint8Array; readonly from: Endpoint }[] = [];
  /** Requests still to ignore (lost on the way). */
  dropNext = 0;
  /** False: every request is answered NOT_AUTHORIZED (mapping turned off by the user, RFC 6886 §3.5). */
  authorized = true;
  private readonly responder: PortControlResponder;

  constructor(options: FakeGatewayOptions = {}, nowMs = 0) {
    // Any port may be asked for; ports chosen for clients start at 40000.
    this.table = new MappingTable({ nowMs, limits: { maxLifetimeS: options.maxLifetimeS ?? 86_400, portRange: [1, 65535], allocationStart: 40_000 } });
    this.responder = new PortControlResponder(this.table, {
      externalAddress: options.externalAddress ?? '203.0.113.7', authorize: () => this.authorized,
      ...(options.natpmp !== undefined && { natpmp: options.natpmp }), ...(options.pcp !== undefined && { pcp: options.pcp }),
      ...(options.allowThirdParty !== undefined && { allowThirdParty: options.allowThirdParty }),
    });
  }

  /** External ports already in use by something else. */
  get takenPorts(): Set<number> {
    return this.table.refusedPorts;
  }

  /** The table by `${internalAddress}/${protocol number}/${internalPort}`. */
  get mappings(): Map<string, FakeMapping> {
    return new Map(this.table.list().map((m) => {
      const protocol = PCP_PROTOCOL[m.protocol];
      return [`${m.internal.address}/${protocol}/${m.internal.port}`, {
        protocol, internalAddress: m.internal.address, internalPort: m.internal.port, externalPort: m.externalPort, lifetimeS: m.lifetimeS, nonce: m.nonce,
      }];
    }));
  }

  /** A reboot: the epoch starts over and every mapping is gone (RFC 6886 §3.6, RFC 6887 §8.5). */
  reboot(nowMs: number): void {
    this.table.restart(nowMs);
  }

  /** The answer to one datagram, or undefined to stay silent. */
  handle(data: Uint8Array, from: Endpoint, nowMs: number): Uint8Array | undefined {
    this.received.push({ data: Uint8Array.from(data), from });
    if (this.dropNext > 0) {
      this.dropNext -= 1;
      return undefined;
    }
    return this.responder.handle(data, from, nowMs);
  }
}

/** The fake gateway on a real UDP socket. */
export interface RunningFakeGateway extends AsyncDisposable {
  readonly core: FakePortmapGateway;
  readonly endpoint: Endpoint;
  readonly socket: PacketSocket;
  close(): Promise<void>;
}

/** Starts the fake gateway on `address` (a system-chosen port). */
export async function startFakeGateway(options: FakeGatewayOptions & { readonly address?: string } = {}): Promise<RunningFakeGateway> {
  const env = nodeEnv();
  const socket = await env.network.bindUdp({ address: options.address ?? '127.0.0.1', port: 0 });
  const core = new FakePortmapGateway(options, env.clock.now());
  socket.onPacket((data, from) => {
    const reply = core.handle(data, from, env.clock.now());
    if (reply !== undefined) socket.send(reply, from);
  });
  const close = (): Promise<void> => socket.close();
  return { core, endpoint: socket.local, socket, close, [Symbol.asyncDispose]: close };
}
