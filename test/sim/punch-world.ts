// The punch tests' simulated world: an RFC 5780 STUN server (two addresses × two ports),
// a TURN server allow-listing the sim's 198.18.0.0/15, and peers behind each NAT preset
// that gather their offer as a real peer would: checkNat on the socket that will punch,
// then a TURN allocation from that same socket (TCP when UDP is blocked), whose
// XOR-MAPPED-ADDRESS is the freshest reflexive address (what lockstep prediction needs).
import { checkNat } from '../../src/nat/index.ts';
import { FedSocket, endpoint, type Endpoint, type PacketSocket } from '../../src/net/index.ts';
import type { SimHost, SimRouter, World } from '../../src/net/sim/index.ts';
import type { PunchOffer } from '../../src/punch/index.ts';
import { natSummary, type Candidate } from '../../src/rendezvous/index.ts';
import { StunServer } from '../../src/stun/index.ts';
import { TurnClient, TurnServer, type RelayedSocket } from '../../src/turn/index.ts';

export const STUN_ADDRESSES = ['198.18.0.10', '198.18.0.11'] as const;
export const TURN_ADDRESS = '198.18.0.20';
const REALM = 'punch.natkit.test';

// The presets, their routers and the expected outcome table live in src/punch/presets.ts (the demo reads them too).
export { EXPECTED_TABLE, PRESETS, parseTable, presetHost as addPeer, type Preset } from '../../src/punch/index.ts';

/** The servers every punch test needs. */
export interface Servers extends AsyncDisposable {
  readonly stun: Endpoint;
  readonly turn: TurnServer;
  close(): Promise<void>;
}

export async function startServers(world: World): Promise<Servers> {
  const stunHost = world.addHost({ name: 'stun', addresses: [...STUN_ADDRESSES], ipv6: false });
  const turnHost = world.addHost({ name: 'turn', addresses: [TURN_ADDRESS], ipv6: false });
  const stun = await world.run(StunServer.create({ env: stunHost.env, addresses: [...STUN_ADDRESSES], ports: [3478, 3479], tcp: false, rateLimit: false }));
  const turn = await world.run(TurnServer.start({
    env: turnHost.env, listen: [{ address: TURN_ADDRESS }], relayAddresses: [TURN_ADDRESS], realm: REALM,
    users: { a: 'a-password', b: 'b-password' }, allowPeers: ['198.18.0.0/15'],
  }));
  const close = async (): Promise<void> => {
    await Promise.all([stun.close(), turn.close()]);
  };
  return { stun: endpoint(STUN_ADDRESSES[0], 3478), turn, close, [Symbol.asyncDispose]: close };
}

/** A peer ready to punch: its socket (a view when TURN shares it), relay and offer. */
export interface Peer {
  readonly host: SimHost;
  readonly socket: PacketSocket;
  readonly relay: RelayedSocket | undefined;
  readonly offer: PunchOffer;
  /** Deletes the allocation and closes the socket. */
  close(): Promise<void>;
}

/** How gather() lists the reflexive candidates. */
export interface GatherOptions {
  /** Allocate a TURN relay (its XOR-MAPPED-ADDRESS is the freshest mapping). @default true */
  readonly relay?: boolean;
  /**
   * 'freshest': TURN's mapped address only. 'oldest-first': checkNat's first mapping, then
   * TURN's; 'oldest-last': the other way round. 'oldest-first' is what the lab's peers
   * advertised (the rendezvous server lists the address it saw first, checkNat's first
   * mapping, while checkNat's later tests took more ports). @default 'freshest'
   */
  readonly reflexives?: 'freshest' | 'oldest-first' | 'oldest-last';
}

/** Gathers a peer's candidates: host, server-reflexive (checkNat, then TURN's mapped address), relayed. */
export async function gather(world: World, host: SimHost, servers: Servers, user: 'a' | 'b', options: GatherOptions = {}): Promise<Peer> {
  const raw = await world.run(host.env.network.bindUdp({ address: host.address() }));
  const report = await world.run(checkNat({ env: host.env, server: servers.stun, socket: raw }));
  const view = new FedSocket(raw);
  const relay = options.relay === false ? undefined : await world.run(TurnClient.allocate({
    env: host.env, server: endpoint(TURN_ADDRESS, 3478), username: user, password: `${user}-password`,
    ...(report.udp ? { socket: raw, passthrough: view.deliver } : { transport: 'tcp' as const }),
  }));
  const reflexive = relay?.transport === 'udp' ? relay.allocation.mapped : report.mapped;
  const candidates: Candidate[] = [{ kind: 'host', transport: 'udp', endpoint: raw.local }];
  if (report.udp && reflexive !== undefined) {
    const oldest = report.mapped;
    const order = oldest === undefined || oldest.port === reflexive.port ? [reflexive]
      : options.reflexives === 'oldest-first' ? [oldest, reflexive] : options.reflexives === 'oldest-last' ? [reflexive, oldest] : [reflexive];
    for (const endpoint of order) candidates.push({ kind: 'server-reflexive', transport: 'udp', endpoint });
  }
  if (relay !== undefined) candidates.push({ kind: 'relayed', transport: 'udp', endpoint: relay.local });
  return {
    host,
    socket: relay?.transport === 'udp' ? view : raw,
    relay,
    offer: { candidates, nat: natSummary(report) },
    close: async () => {
      await relay?.close();
      await raw.close();
    },
  };
}

/** Removes every UDP mapping of `router`, as a router reload would (SimRouter.unforwardPort removes any). */
export function flushMappings(router: SimRouter): void {
  for (const m of router.mappings()) router.unforwardPort({ externalPort: m.external.port });
}
