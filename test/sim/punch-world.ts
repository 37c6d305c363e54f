// The punch tests' simulated world: an RFC 5780 STUN server (two addresses × two ports),
// a TURN server allow-listing the sim's 198.18.0.0/15, and peers behind each NAT preset
// that gather their offer as a real peer would: checkNat on the socket that will punch,
// then a TURN allocation from that same socket (TCP when UDP is blocked), whose
// XOR-MAPPED-ADDRESS is the freshest reflexive address (what lockstep prediction needs).
import assert from 'node:assert/strict';
import { checkNat } from '../../src/nat/index.ts';
import { endpoint, type Endpoint, type PacketHandler, type PacketSocket, type SocketStats } from '../../src/net/index.ts';
import { NAT_PRESETS, type NatOptions, type SimHost, type World } from '../../src/net/sim/index.ts';
import type { PunchOffer, PunchOutcome } from '../../src/punch/index.ts';
import { natSummary, type Candidate } from '../../src/rendezvous/index.ts';
import { StunServer } from '../../src/stun/index.ts';
import { TurnClient, TurnServer, type RelayedSocket } from '../../src/turn/index.ts';

export const STUN_ADDRESSES = ['198.18.0.10', '198.18.0.11'] as const;
export const TURN_ADDRESS = '198.18.0.20';
const REALM = 'punch.natkit.test';

/** The presets of the matrix (issue: "every pair of presets"). */
export const PRESETS = ['open', 'full-cone', 'restricted', 'port-restricted', 'symmetric-seq', 'symmetric-random', 'double-nat', 'udp-blocked', 'firewall'] as const;
export type Preset = (typeof PRESETS)[number];

// D direct, P direct after port prediction, B direct by the birthday method, R relay.
// Rows and columns in PRESETS order; symmetric.
export const EXPECTED_TABLE = `
                  open full restr port seq rand double blocked firewall
  open             D    D    D     D    D   D    D      R       D
  full-cone        D    D    D     D    D   D    D      R       D
  restricted       D    D    D     D    D   D    D      R       D
  port-restricted  D    D    D     D    P   B    D      R       D
  symmetric-seq    D    D    D     P    P   R    P      R       P
  symmetric-random D    D    D     B    R   R    B      R       B
  double-nat       D    D    D     D    P   B    D      R       D
  udp-blocked      R    R    R     R    R   R    R      R       R
  firewall         D    D    D     D    P   B    D      R       D
`;

const LETTERS: Readonly<Record<string, PunchOutcome>> = { D: 'direct', P: 'direct-predicted', B: 'direct-birthday', R: 'relay' };

/** The table as "row|column" → outcome. */
export function parseTable(text: string): Map<string, PunchOutcome> {
  const rows = text.trim().split('\n').slice(1).map((line) => line.trim().split(/\s+/));
  const out = new Map<string, PunchOutcome>();
  assert.equal(rows.length, PRESETS.length);
  for (const [i, [name, ...cells]] of rows.entries()) {
    assert.equal(name, PRESETS[i]);
    for (const [j, cell] of cells.entries()) out.set(`${PRESETS[i]}|${PRESETS[j]}`, LETTERS[cell ?? ''] ?? assert.fail(`bad cell ${cell}`));
  }
  return out;
}

const EI = 'endpoint-independent';
const APD = 'address-and-port-dependent';

/** Routers from the internet inward for each preset. */
const ROUTERS: Readonly<Record<Preset, readonly NatOptions[]>> = {
  'open': [NAT_PRESETS['open-internet']],
  'full-cone': [NAT_PRESETS['full-cone']],
  'restricted': [NAT_PRESETS['restricted-cone']],
  'port-restricted': [NAT_PRESETS['port-restricted-cone']],
  'symmetric-seq': [{ ...NAT_PRESETS.symmetric, portAllocation: { kind: 'sequential', step: 1 } }],
  'symmetric-random': [NAT_PRESETS.symmetric],
  // A carrier-grade NAT (RFC 6888: EIM, random ports, hairpinning) before a home router.
  'double-nat': [{ kind: 'nat', mapping: EI, filtering: APD, portAllocation: { kind: 'random' }, hairpinning: true }, NAT_PRESETS['port-restricted-cone']],
  'udp-blocked': [NAT_PRESETS['udp-blocked']],
  'firewall': [NAT_PRESETS['symmetric-udp-firewall']],
};

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

/** A host behind `preset`'s routers. */
export function addPeer(world: World, name: string, preset: Preset): SimHost {
  let site: World | ReturnType<World['addRouter']> = world;
  // 10 ms each way on the outermost router's WAN link: 40 ms between two peers and back.
  for (const [i, nat] of ROUTERS[preset].entries()) site = site.addRouter({ name: `${name}-r${i}`, nat, ipv6: 'off', ...(i === 0 && { link: { delayMs: 10 } }) });
  return site.addHost({ name, ipv6: false });
}

/**
 * A PacketSocket view of a socket whose receiver is someone else (the TURN client): it
 * sends through the socket and receives what that owner passes through `feed`.
 */
class PassThrough implements PacketSocket {
  private handler: PacketHandler | undefined;
  private readonly raw: PacketSocket;
  readonly feed: PacketHandler = (data, from) => this.handler?.(data, from);

  constructor(raw: PacketSocket) {
    this.raw = raw;
  }

  get local(): Endpoint {
    return this.raw.local;
  }

  get closed(): boolean {
    return this.raw.closed;
  }

  get stats(): SocketStats {
    return this.raw.stats;
  }

  send(data: Uint8Array, to: Endpoint): void {
    this.raw.send(data, to);
  }

  onPacket(handler: PacketHandler | undefined): void {
    this.handler = handler;
  }

  /** The raw socket belongs to the peer, which closes it. */
  close(): Promise<void> {
    return Promise.resolve();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
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

/** Gathers a peer's candidates: host, server-reflexive (checkNat, then TURN's mapped address), relayed. */
export async function gather(world: World, host: SimHost, servers: Servers, user: 'a' | 'b', options: { readonly relay?: boolean } = {}): Promise<Peer> {
  const raw = await world.run(host.env.network.bindUdp({ address: host.address() }));
  const report = await world.run(checkNat({ env: host.env, server: servers.stun, socket: raw }));
  const view = new PassThrough(raw);
  const relay = options.relay === false ? undefined : await world.run(TurnClient.allocate({
    env: host.env, server: endpoint(TURN_ADDRESS, 3478), username: user, password: `${user}-password`,
    ...(report.udp ? { socket: raw, passthrough: view.feed } : { transport: 'tcp' as const }),
  }));
  const reflexive = relay?.transport === 'udp' ? relay.allocation.mapped : report.mapped;
  const candidates: Candidate[] = [{ kind: 'host', transport: 'udp', endpoint: raw.local }];
  if (report.udp && reflexive !== undefined) candidates.push({ kind: 'server-reflexive', transport: 'udp', endpoint: reflexive });
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
