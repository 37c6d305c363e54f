// connect(): from nothing to a connection with a named peer, or to every member of a room,
// on one UDP socket (docs/punch.md, "connect()"). The socket is split by first byte (RFC
// 7983 §7, PacketMux): STUN and TURN ChannelData to NAT discovery and then the TURN
// client, 0xD0 to the rendezvous client, 0xD1–0xD2 (punch frames) and the STUN the TURN
// client passes on to the punches. The steps: checkNat on that socket (so the verdict holds
// for the mapping that punches), a TURN allocation from it, an optional port mapping,
// REGISTER with the candidates (host, server-reflexive, port-mapped, relayed) and the NAT
// summary, then CONNECT or JOIN and punch() for each PUNCH order.
import { EventEmitter, on } from 'node:events';
import { FedSocket, PacketMux, MUX_STUN, MUX_TURN_CHANNEL, formatEndpoint, sameEndpoint, type Endpoint, type Env, type MuxRange, type PacketSocket, type TlsClientOptions } from '../net/index.ts';
import { FailureCounter } from '../net/index.ts';
import { checkNat, type NatReport } from '../nat/index.ts';
import type { Mapping, PortMapper } from '../portmap/index.ts';
import { MUX_RENDEZVOUS, RendezvousClient, natSummary, type Candidate, type PunchOrder, type RendezvousIdentity } from '../rendezvous/index.ts';
import { TurnClient, type RelayedSocket, type TurnClientTransport } from '../turn/index.ts';
import { StunClient } from '../stun/index.ts';
import { NatkitError, isNatkitError, throwIfAborted } from '../util/index.ts';
import { FRAME_DATA, FRAME_UPGRADE, pairCredentials } from './checks.ts';
import { punch, type PunchOptions, type PunchedPath } from './engine.ts';
import { CheckHub } from './hub.ts';
import { PeerConnection, keyFingerprint } from './peer-connection.ts';
import { planPunch, type PunchOffer } from './strategy.ts';

/** The first bytes of punch frames on a PacketMux (RFC 7983 §7 leaves 192–255 unassigned). */
export const MUX_PUNCH: MuxRange = Object.freeze({ first: FRAME_DATA, last: FRAME_UPGRADE, name: 'punch' });

/** A TURN server to allocate a relay from. */
export interface ConnectTurn {
  readonly server: Endpoint;
  readonly username: string;
  readonly password: string;
  /** @default 'udp', or 'tcp' when checkNat finds UDP blocked */
  readonly transport?: TurnClientTransport;
  /** With transport 'tls'. @default verify against the system CAs */
  readonly tls?: TlsClientOptions;
}

/** Timers and budgets handed to each punch(). */
export type ConnectPunchOptions = Pick<PunchOptions, 'budget' | 'timeoutMs' | 'keepaliveMs' | 'deadAfterMs' | 'upgradeIntervalMs'>;

/** A step of connect(), for progress display. */
export interface ConnectProgress {
  readonly step: 'socket' | 'nat' | 'relay' | 'mapping' | 'registered' | 'connect' | 'order' | 'connected' | 'retry' | 'failed';
  /** One line a person can read. */
  readonly detail: string;
  /** env.clock.now() when it happened. */
  readonly atMs: number;
  /** The peer it is about, from 'connect' on. */
  readonly peer?: string;
}

/** Options of connect() and ConnectAgent.start(). */
export interface ConnectOptions {
  /** Network, clock, randomness and logger: nodeEnv() or a simulated host's env. */
  readonly env: Env;
  /** Our Ed25519 identity (identityFromSeed, identityFromKey): it owns `name` on the server. */
  readonly identity: RendezvousIdentity;
  /** The name to register. */
  readonly name: string;
  /** connect(): resolve with a connection to this peer (CONNECT by name). */
  readonly peer?: string;
  /** connect(): join this room; the agent yields a connection per member introduced. */
  readonly room?: string;
  /** The rendezvous server's UDP address (`natkit serve`'s shared port). */
  readonly rendezvous: Endpoint;
  /** Its TCP fallback; false for none. @default `rendezvous` (natkit serve: port 3480, see docs/serve.md) */
  readonly rendezvousTcp?: Endpoint | false;
  /** The STUN server checkNat measures with. @default `rendezvous` (natkit serve answers STUN on the same port) */
  readonly stun?: Endpoint;
  /** A TURN server: the relay candidate and the fallback path. @default none (pairs that need a relay fail) */
  readonly turn?: ConnectTurn;
  /** Ask the router for a port mapping of the socket (a port-mapped candidate). @default false */
  readonly portMapper?: PortMapper | false;
  /** The UDP socket to use; its receiver is taken, it is not closed. @default one bound on `localAddress`, closed by close() */
  readonly socket?: PacketSocket;
  /** Address to bind when no socket is given; an unspecified address gives no host candidate. @default '0.0.0.0' */
  readonly localAddress?: string;
  /** Handed to every punch(). @default punch()'s */
  readonly punch?: ConnectPunchOptions;
  /** CONNECTs to a peer whose punch times out (PUNCH orders are not acknowledged: the peer may have missed one). @default 3 */
  readonly connectTries?: number;
  /** Answer PUNCH orders we did not ask for (someone's CONNECT, a room). @default true; connect({ peer }) sets false */
  readonly accept?: boolean;
  readonly onProgress?: (progress: ConnectProgress) => void;
  /** Receives failures of punches we answered (also counted in stats.failed). @default env.logger.warn */
  readonly onError?: (error: Error) => void;
  /** Aborts the start (and connect()'s CONNECT or JOIN); once started, close the agent. */
  readonly signal?: AbortSignal;
}

/** Counters of an agent. */
export interface ConnectAgentStats {
  /** Punches started (ours and the ones we answered). */
  punches: number;
  connected: number;
  failed: number;
  /** Orders not answered: `accept` off, or a duplicate. */
  ignoredOrders: number;
}

/** Most pair ids remembered, to tell a repeated PUNCH order from a new one. */
const MAX_SEEN_PAIRS = 1024;

/**
 * Connects to `peer` (resolving with the connection, whose close() closes everything),
 * or joins `room` / listens (resolving with the agent, which yields connections).
 */
export function connect(options: ConnectOptions & { readonly peer: string }): Promise<PeerConnection>;
export function connect(options: ConnectOptions): Promise<ConnectAgent>;
export async function connect(options: ConnectOptions): Promise<PeerConnection | ConnectAgent> {
  const { peer, room, signal } = options;
  if (peer !== undefined && room !== undefined) throw new NatkitError('ERR_INVALID_ARGUMENT', 'connect: expected peer or room, got both');
  const agent = await ConnectAgent.start({ ...options, accept: options.accept ?? peer === undefined });
  try {
    if (peer !== undefined) {
      const conn = await agent.dial(peer, { ...(signal && { signal }) });
      conn.own(agent);
      return conn;
    }
    if (room !== undefined) await agent.join(room, { ...(signal && { signal }) });
    return agent;
  } catch (err) {
    await agent.close();
    throw err;
  }
}

/** What one side of the shared socket is wired to. */
interface Wiring {
  readonly raw: PacketSocket;
  readonly owned: boolean;
  readonly mux: PacketMux;
  /** STUN and ChannelData: checkNat, then the TURN client (or the punches without one). */
  readonly stun: FedSocket;
  readonly rendezvous: PacketSocket;
  readonly hub: CheckHub;
}

/** A registered peer: dials, joins rooms, answers PUNCH orders, and owns the socket, relay, mapping and registration. */
export class ConnectAgent implements AsyncDisposable {
  readonly name: string;
  readonly stats: ConnectAgentStats = { punches: 0, connected: 0, failed: 0, ignoredOrders: 0 };
  /** What checkNat found on the socket. */
  readonly report: NatReport;
  /** Our offer as registered: candidates and NAT summary. */
  readonly offer: PunchOffer;
  readonly rendezvous: RendezvousClient;
  readonly relay: RelayedSocket | undefined;
  readonly mapping: Mapping | undefined;
  private readonly o: ConnectOptions;
  private readonly w: Wiring;
  private readonly relayHub: CheckHub | undefined;
  private readonly events = new EventEmitter<{ connection: [PeerConnection]; close: [] }>();
  private readonly open = new Set<PeerConnection>();
  /** Punches in progress by pair id: the peer's name, whether we answered its order (not dialed), how to stop it. */
  private readonly attempts = new Map<string, { readonly peer: string; readonly answered: boolean; readonly stop: AbortController }>();
  private readonly seen = new Set<string>();
  private readonly failures: FailureCounter;
  private readonly shutdown = new AbortController();
  private closing: Promise<void> | undefined;

  private constructor(o: ConnectOptions, w: Wiring, parts: { report: NatReport; offer: PunchOffer; rendezvous: RendezvousClient; relay: RelayedSocket | undefined; mapping: Mapping | undefined }) {
    this.o = o;
    this.w = w;
    this.name = o.name;
    this.report = parts.report;
    this.offer = parts.offer;
    this.rendezvous = parts.rendezvous;
    this.relay = parts.relay;
    this.mapping = parts.mapping;
    this.failures = new FailureCounter('connect', o.env.logger, o.onError);
    if (parts.relay !== undefined) {
      this.relayHub = new CheckHub(parts.relay);
      parts.relay.onPacket(this.relayHub.deliver);
    }
    parts.rendezvous.onPunch((order) => this.onOrder(order));
  }

  /** Measures, allocates, maps and registers; rejects (closing what it opened) on failure or abort. */
  static async start(o: ConnectOptions): Promise<ConnectAgent> {
    throwIfAborted(o.signal, 'connect');
    const { env, signal } = o;
    const raw = o.socket ?? await env.network.bindUdp({ address: o.localAddress ?? '0.0.0.0', ...(signal && { signal }) });
    const mux = new PacketMux(raw);
    const w: Wiring = { raw, owned: o.socket === undefined, mux, stun: new FedSocket(raw), rendezvous: mux.route(MUX_RENDEZVOUS), hub: new CheckHub(raw) };
    mux.route(MUX_STUN, { onPacket: w.stun.deliver });
    mux.route(MUX_TURN_CHANNEL, { onPacket: w.stun.deliver });
    mux.route(MUX_PUNCH, { onPacket: w.hub.deliver });
    const progress = (step: ConnectProgress['step'], detail: string): void => o.onProgress?.({ step, detail, atMs: env.clock.now() });
    progress('socket', `UDP socket ${formatEndpoint(raw.local)}`);
    let relay: RelayedSocket | undefined;
    let mapping: Mapping | undefined;
    let rendezvous: RendezvousClient | undefined;
    try {
      const stun = o.stun ?? o.rendezvous;
      const report = await checkNat({ env, server: stun, socket: w.stun, ...(signal && { signal }), onProgress: (p) => p.step !== 'done' && progress('nat', p.detail) });
      progress('nat', `${report.classic}: mapping ${report.mapping}, filtering ${report.filtering}, ports ${report.portAllocation.kind}, mapped ${report.mapped === undefined ? 'none (no UDP answer)' : formatEndpoint(report.mapped)}`);
      // Before TURN: once the TURN client holds the socket's receiver, no other client may.
      const fresh = await freshMapping(env, w.stun, stun, report, signal);
      if (fresh !== undefined) progress('nat', `newest mapping ${formatEndpoint(fresh)} (the base of port prediction)`);
      if (o.turn !== undefined) {
        const { server, username, password, tls } = o.turn;
        const transport = o.turn.transport ?? (report.udp ? 'udp' : 'tcp');
        relay = await TurnClient.allocate({
          env, server, username, password, transport, ...(tls && { tls }), ...(signal && { signal }),
          ...(transport === 'udp' && { socket: w.stun, passthrough: w.hub.deliver }),
        });
        progress('relay', `TURN relay ${formatEndpoint(relay.local)} over ${transport}`);
      }
      if (relay?.transport !== 'udp') w.stun.onPacket(w.hub.deliver);
      if (o.portMapper) mapping = await mapPort(o.portMapper, raw, signal, progress);
      const candidates = gatherCandidates(raw, report, fresh, relay, mapping);
      const nat = natSummary(report);
      rendezvous = await RendezvousClient.register({
        env, server: o.rendezvous, socket: w.rendezvous, name: o.name, identity: o.identity, candidates, nat,
        ...(o.rendezvousTcp !== undefined && { tcpServer: o.rendezvousTcp }), ...(signal && { signal }),
      });
      progress('registered', `registered "${o.name}" (key ${keyFingerprint(o.identity.publicKey)}) over ${rendezvous.transport}; the server sees ${formatEndpoint(rendezvous.reflexive)}; `
        + `candidates ${candidates.map((c) => `${c.kind} ${formatEndpoint(c.endpoint)}`).join(', ')}`);
      return new ConnectAgent(o, w, { report, offer: { candidates, nat }, rendezvous, relay, mapping });
    } catch (err) {
      await rendezvous?.close();
      // The failure that stopped the start is the one to report; a failed clean-up is counted and logged.
      await releaseShared({ w, relay, mapping, mapper: o.portMapper }).catch((cleanup: unknown) => new FailureCounter('connect clean-up', env.logger, o.onError).fail(cleanup));
      throw err;
    }
  }

  /** Asks the server to introduce us to `peer` and punches; CONNECTs again (up to connectTries) when a punch times out. */
  async dial(peer: string, options: { readonly signal?: AbortSignal } = {}): Promise<PeerConnection> {
    const tries = this.o.connectTries ?? 3;
    let last: unknown;
    for (let attempt = 1; attempt <= tries; attempt++) {
      this.progress('connect', `CONNECT ${peer}${tries > 1 ? ` (try ${attempt} of ${tries})` : ''}`, peer);
      const order = await this.rendezvous.connect(peer, options);
      this.remember(order.pairId);
      try {
        return await this.punchOrder(order, false, options.signal);
      } catch (err) {
        if (!isNatkitError(err, 'ERR_TIMEOUT')) throw err;
        last = err;
        this.progress('retry', `${peer}: ${err.message}`, peer);
      }
    }
    throw new NatkitError('ERR_TIMEOUT', `connect to ${peer}: no path after ${tries} introduction(s)`, { cause: last });
  }

  /** Joins `room`: the server introduces us to every member; their connections come through onConnection() and connections(). */
  async join(room: string, options: { readonly signal?: AbortSignal } = {}): Promise<void> {
    await this.rendezvous.join(room, options);
    this.progress('connect', `joined room "${room}"`);
  }

  /** Calls `handler` with each connection made from an order we did not ask for (a room, someone's CONNECT); returns the unsubscribe. */
  onConnection(handler: (conn: PeerConnection) => void): () => void {
    this.events.on('connection', handler);
    return () => this.events.off('connection', handler);
  }

  /** The same connections as an async iterator; ends when the agent closes or `signal` aborts. */
  async *connections(options: { readonly signal?: AbortSignal } = {}): AsyncGenerator<PeerConnection, void, undefined> {
    if (this.closing !== undefined) return;
    const stream = on(this.events, 'connection', { close: ['close'], ...(options.signal && { signal: options.signal }) });
    try {
      for await (const [conn] of stream as AsyncIterable<[PeerConnection]>) yield conn;
    } catch (err) {
      if (!(err instanceof Error && err.name === 'AbortError')) throw err;
    }
  }

  [Symbol.asyncIterator](): AsyncIterator<PeerConnection> {
    return this.connections();
  }

  /** Closes every connection, the registration, the relay, the port mapping and the socket (when it opened it). Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.shutdown.abort();
      this.events.emit('close');
      await Promise.all([...this.open].map((c) => c.detach()));
      // Before the socket closes: it resolves once the server has answered UNREGISTER (a
      // datagram still queued on a closing socket is lost), so the name is free at once.
      await this.rendezvous.close();
      await releaseShared({ w: this.w, relay: this.relay, mapping: this.mapping, mapper: this.o.portMapper });
    })();
    return this.closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  private progress(step: ConnectProgress['step'], detail: string, peer?: string): void {
    this.o.onProgress?.({ step, detail, atMs: this.o.env.clock.now(), ...(peer !== undefined && { peer }) });
  }

  private remember(pairId: string): void {
    if (this.seen.size >= MAX_SEEN_PAIRS) this.seen.delete(this.seen.values().next().value!);
    this.seen.add(pairId);
  }

  /** A PUNCH order from the server: ours (dial() has it already), a repeat, or one to answer. */
  private onOrder(order: PunchOrder): void {
    // The answer to our own CONNECT (or its retransmission): dial() takes it from connect().
    if (order.controlling && order.room === undefined) return;
    if (this.seen.has(order.pairId) || this.o.accept === false || this.closing !== undefined) {
      this.stats.ignoredOrders++;
      return;
    }
    this.remember(order.pairId);
    // A new introduction from a peer we are still answering replaces that attempt: the peer gave it up and asked again.
    for (const a of this.attempts.values()) if (a.answered && a.peer === order.peer.name) a.stop.abort();
    this.punchOrder(order, true, undefined).then(
      (conn) => this.events.emit('connection', conn),
      (err: unknown) => {
        if (isNatkitError(err, 'ERR_ABORTED')) return;
        this.progress('failed', `${order.peer.name}: ${err instanceof Error ? err.message : String(err)}`, order.peer.name);
        this.failures.fail(err);
      },
    );
  }

  /** Punches for one order (`answered`: someone else's introduction, not our dial) on views of the shared socket and relay. */
  private async punchOrder(order: PunchOrder, answered: boolean, signal: AbortSignal | undefined): Promise<PeerConnection> {
    const peer = order.peer.name;
    const credentials = pairCredentials({ pairId: Buffer.from(order.pairId, 'hex'), localKey: this.o.identity.publicKey, remoteKey: order.peer.publicKey });
    const remote: PunchOffer = { candidates: order.peer.candidates, nat: order.peer.nat };
    const plan = planPunch(this.offer, remote, this.o.punch?.budget);
    this.progress('order', `PUNCH with ${peer} (key ${keyFingerprint(order.peer.publicKey)})${order.room === undefined ? '' : ` in room "${order.room}"`}, `
      + `${order.controlling ? 'controlling' : 'controlled'}; candidates ${order.peer.candidates.map((c) => `${c.kind} ${formatEndpoint(c.endpoint)}`).join(', ')}; `
      + `plan ${plan.outcome}: ${plan.reason}`, peer);
    const stop = new AbortController();
    this.attempts.set(order.pairId, { peer, answered, stop });
    const socket = this.w.hub.view(credentials.local.ufrag);
    const relay = this.relayHub?.view(credentials.local.ufrag);
    const release = async (): Promise<void> => {
      await Promise.all([socket.close(), relay?.close()]);
    };
    this.stats.punches++;
    try {
      const conn = await punch({
        ...this.o.punch, env: this.o.env, socket, ...(relay && { relay }), local: this.offer, remote, controlling: order.controlling, startAtMs: order.startAtMs, credentials,
        signal: AbortSignal.any([stop.signal, this.shutdown.signal, ...(signal ? [signal] : [])]),
      });
      const pc = new PeerConnection(conn, order, async () => {
        this.open.delete(pc);
        await release();
      });
      this.open.add(pc);
      this.stats.connected++;
      this.progress('connected', `${peer}: ${describePath(pc.path)} after ${Math.round(conn.stats.connectMs ?? 0)} ms (${conn.stats.checksSent} checks sent)`, peer);
      return pc;
    } catch (err) {
      this.stats.failed++;
      await release();
      throw err;
    } finally {
      this.attempts.delete(order.pairId);
    }
  }
}

/** "direct (predicted) 198.18.0.101:4000 → 198.18.0.102:5002", "relay via 198.18.0.20:50000 → …". */
export function describePath(path: PunchedPath): string {
  return `${path.kind === 'relay' ? 'relay' : `direct (${path.method})`} ${formatEndpoint(path.local)} → ${formatEndpoint(path.remote)}`;
}

/**
 * The NAT's newest mapping, for lockstep port prediction (docs/punch.md): one Binding to
 * a destination checkNat never used from this socket — the server's primary address at
 * its other port (RFC 5780 §7.4 OTHER-ADDRESS) — so a sequential allocator hands out its
 * next port. Only where the mapping depends on address and port (RFC 4787 §4.1: elsewhere
 * no new port would come); undefined then, with a one-address server, or on silence.
 */
async function freshMapping(env: Env, socket: PacketSocket, stun: Endpoint, report: NatReport, signal: AbortSignal | undefined): Promise<Endpoint | undefined> {
  if (!report.udp || report.mapping !== 'address-and-port-dependent' || report.otherAddress === undefined || report.otherAddress.port === stun.port) return undefined;
  const client = await StunClient.create({ env, server: { ...stun, port: report.otherAddress.port }, socket });
  try {
    // Short, like checkNat's probes: 4 × the measured round trip, two sends (RFC 8489 §6.2.1 Rc, Rm).
    const rtoMs = Math.max(50, 4 * (report.rttMs ?? 50));
    const r = await client.binding({ timers: { rtoMs, maxTransmissions: 2, lastWaitMultiplier: 2 }, ...(signal && { signal }) });
    return r.ok ? r.mapped : undefined;
  } catch (err) {
    if (isNatkitError(err, 'ERR_TIMEOUT')) return undefined;
    throw err;
  } finally {
    await client.close();
  }
}

/**
 * Host (when the socket has a concrete address), server-reflexive (every mapping worth
 * knowing: the strategy predicts from the newest, whatever the order), port-mapped, relayed.
 */
function gatherCandidates(raw: PacketSocket, report: NatReport, fresh: Endpoint | undefined, relay: RelayedSocket | undefined, mapping: Mapping | undefined): Candidate[] {
  const out: Candidate[] = [];
  if (raw.local.address !== '0.0.0.0' && raw.local.address !== '::') out.push({ kind: 'host', transport: 'udp', endpoint: raw.local });
  // TURN's XOR-MAPPED-ADDRESS is newer than checkNat's when the TURN server is a new destination.
  const reflexive = relay?.transport === 'udp' ? relay.allocation.mapped ?? report.mapped : report.mapped;
  if (report.udp && reflexive !== undefined) out.push({ kind: 'server-reflexive', transport: 'udp', endpoint: reflexive });
  if (fresh !== undefined && (reflexive === undefined || !sameEndpoint(fresh, reflexive))) out.push({ kind: 'server-reflexive', transport: 'udp', endpoint: fresh });
  if (mapping !== undefined) {
    out.push({ kind: 'port-mapped', transport: 'udp', endpoint: { address: mapping.externalAddress, port: mapping.externalPort, family: raw.local.family } });
  }
  if (relay !== undefined) out.push({ kind: 'relayed', transport: 'udp', endpoint: relay.local });
  return out;
}

/** A port mapping of the socket, or undefined when no gateway grants one (reported, not thrown: most routers have none). */
async function mapPort(mapper: PortMapper, raw: PacketSocket, signal: AbortSignal | undefined, progress: (step: 'mapping', detail: string) => void): Promise<Mapping | undefined> {
  try {
    const m = await mapper.map({ protocol: 'udp', internalPort: raw.local.port, ...(signal && { signal }) });
    progress('mapping', `port mapping ${m.externalAddress}:${m.externalPort} via ${m.via}`);
    return m;
  } catch (err) {
    if (!isNatkitError(err, 'ERR_PORTMAP_UNAVAILABLE')) throw err;
    progress('mapping', `no port mapping: ${err.message}`);
    return undefined;
  }
}

/** Deletes the mapping and the allocation, detaches the views and closes the socket when ours; then rejects with the first failure. */
async function releaseShared(r: { readonly w: Wiring; readonly relay: RelayedSocket | undefined; readonly mapping: Mapping | undefined; readonly mapper: PortMapper | false | undefined }): Promise<void> {
  const { w } = r;
  const results = await Promise.allSettled([r.relay?.close(), r.mapping !== undefined && r.mapper ? r.mapper.unmap(r.mapping) : undefined]);
  await w.stun.close();
  if (w.owned) await w.mux.close();
  else w.raw.onPacket(undefined);
  for (const result of results) if (result.status === 'rejected') throw result.reason;
}
