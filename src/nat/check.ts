// NAT behaviour discovery on the socket the application will use: RFC 5780 §4.3
// (mapping), §4.4 (filtering), §4.5 (hairpinning), §4.6 (binding lifetime) and the
// RFC 3489 §10.1 outcomes derived from them, plus what a hole-puncher needs: the
// port-allocation pattern and the public addresses. A driver over StunClient: every
// packet goes through env.network, every wait through env.clock.
import { endpoint, endpointKey, sameEndpoint, type Endpoint, type Env, type PacketSocket } from '../net/index.ts';
import {
  BINDING, StunClass, StunClient, decodeMessage, encodeMessage, looksLikeStun, transactionKey,
  type BindingOptions, type BindingResult, type TransactionTimers,
} from '../stun/index.ts';
import { NatkitError, isNatkitError, throwIfAborted } from '../util/index.ts';
import {
  advice, classicType, portAllocation,
  type Behaviour, type ClassicType, type PortAllocation, type PortSample,
} from './behaviour.ts';

/** A step of the check, for progress display. */
export interface CheckProgress {
  readonly step: 'binding' | 'filtering' | 'allocation' | 'mapping' | 'hairpinning' | 'lifetime' | 'ipv6' | 'done';
  /** One line a person can read. */
  readonly detail: string;
}

/** Options of checkNat. */
export interface NatCheckOptions {
  readonly env: Env;
  /** The STUN server. One with two addresses (RFC 5780 OTHER-ADDRESS) lets every test run; a plain one gives what it can. */
  readonly server: Endpoint;
  /** An IPv6 STUN server, to learn the public IPv6 address too. @default none */
  readonly server6?: Endpoint;
  /**
   * The socket to measure: the application's own, or a PacketMux route, so that the
   * result holds for the socket that will punch. Its receiver is taken for the check
   * and cleared after; it is not closed. @default a new socket, closed after
   */
  readonly socket?: PacketSocket;
  /** Local address of the sockets the check binds. @default any address of the server's family */
  readonly localAddress?: string;
  readonly signal?: AbortSignal;
  /** Called as the check moves on. */
  readonly onProgress?: (progress: CheckProgress) => void;
  /**
   * Timers of the first request, whose silence means "UDP blocked"; fields not given keep
   * their default. @default { rtoMs: 250, maxTransmissions: 4, lastWaitMultiplier: 4 } (2.75 s)
   */
  readonly firstTimers?: TransactionTimers;
  /**
   * Transmissions of a probe that may rightly go unanswered (filtering, hairpinning): a
   * lost pair errs toward the stricter verdict, which hole punching survives. @default 2
   */
  readonly probeTransmissions?: number;
  /** Lowest RTO of such probes; 4 × the first RTT when larger. @default 50 */
  readonly probeMinRtoMs?: number;
  /** Fresh sockets whose mappings show the port-allocation pattern; 0 skips the test. @default 3 */
  readonly allocationSamples?: number;
  /** Test hairpinning (RFC 5780 §4.5). @default true */
  readonly hairpinning?: boolean;
  /**
   * Binding lifetime (RFC 5780 §4.6): ages in seconds at which idle mappings are checked,
   * all in parallel, so the check lasts as long as the largest. @default [] (not measured)
   */
  readonly lifetimeS?: readonly number[];
}

/** Why a part of the report is missing. */
export interface NotMeasured {
  readonly what: 'mapping' | 'filtering' | 'hairpinning' | 'allocation' | 'lifetime' | 'ipv6' | 'nat';
  readonly why: string;
}

/** What checkNat found; `natkit check --json` prints exactly this. */
export interface NatReport {
  readonly server: Endpoint;
  /** The server's alternate address (OTHER-ADDRESS or CHANGED-ADDRESS). */
  readonly otherAddress: Endpoint | undefined;
  readonly serverSoftware: string | undefined;
  /** The socket measured. */
  readonly local: Endpoint;
  /** Any answer came back over UDP. */
  readonly udp: boolean;
  /** Our address as the server saw it. */
  readonly mapped: Endpoint | undefined;
  readonly publicIPv4: string | undefined;
  readonly publicIPv6: string | undefined;
  /** A NAT changes our address or port; undefined when it could not be told. */
  readonly natted: boolean | undefined;
  /** RFC 4787 §4.1. */
  readonly mapping: Behaviour;
  /** RFC 4787 §5. */
  readonly filtering: Behaviour;
  /** The RFC 3489 outcome, derived from the above. */
  readonly classic: ClassicType;
  /** Whether a packet to our own mapped address comes back (RFC 4787 §6). */
  readonly hairpinning: boolean | undefined;
  /** The mapping depends on the destination: peers must learn our port per destination. */
  readonly mappingVariesByDestination: boolean | undefined;
  readonly portAllocation: PortAllocation;
  /** Longest idle age a mapping was seen alive at, and shortest it was seen gone at (seconds). */
  readonly bindingLifetime: { readonly aliveS: number | undefined; readonly expiredS: number | undefined } | undefined;
  /** Round trip of the first request, when it was answered at once. */
  readonly rttMs: number | undefined;
  readonly advice: readonly string[];
  readonly notMeasured: readonly NotMeasured[];
  /** Datagrams the check sent and received. */
  readonly packets: { readonly sent: number; readonly received: number };
  readonly durationMs: number;
}

const DEFAULT_FIRST_TIMERS: TransactionTimers = { rtoMs: 250, maxTransmissions: 4, lastWaitMultiplier: 4 };
/** Requests that should be answered, after the first: a short RFC 8489 schedule. */
const ANSWERED_TIMERS: TransactionTimers = { maxTransmissions: 4, lastWaitMultiplier: 4 };

/** Runs the check; rejects only for local failures (bad options, abort, sockets), never for what the network does. */
export async function checkNat(options: NatCheckOptions): Promise<NatReport> {
  const run = new CheckRun(options);
  try {
    return await run.execute();
  } finally {
    await run.release();
  }
}

/** The state of one check: its sockets, clients and counters. */
class CheckRun {
  private readonly env: Env;
  private readonly o: NatCheckOptions;
  private readonly startedAt: number;
  private readonly owned: (PacketSocket | StunClient)[] = [];
  private readonly notMeasured: NotMeasured[] = [];
  private readonly clients: StunClient[] = [];
  private main: PacketSocket | undefined;
  private mainClient: StunClient | undefined;
  private received = 0;
  private extraSent = 0;
  /** The transaction key of the hairpin probe in flight, and what to call when it arrives on the main socket. */
  private hairpinId: string | undefined;
  private hairpinArrived: (() => void) | undefined;

  constructor(o: NatCheckOptions) {
    this.o = o;
    this.env = o.env;
    this.startedAt = o.env.clock.now();
    for (const s of o.lifetimeS ?? []) {
      if (!(s > 0 && s <= 3600)) throw new NatkitError('ERR_INVALID_ARGUMENT', `lifetimeS: expected ages in 0–3600 s, got ${s}`);
    }
    const samples = o.allocationSamples ?? 3;
    if (!Number.isInteger(samples) || samples < 0 || samples > 16) throw new NatkitError('ERR_INVALID_ARGUMENT', `allocationSamples: expected 0–16, got ${samples}`);
  }

  private progress(step: CheckProgress['step'], detail: string): void {
    this.o.onProgress?.({ step, detail });
  }

  private get signal(): AbortSignal | undefined {
    return this.o.signal;
  }

  private get firstTimers(): TransactionTimers {
    return { ...DEFAULT_FIRST_TIMERS, ...this.o.firstTimers };
  }

  async execute(): Promise<NatReport> {
    const { server } = this.o;
    throwIfAborted(this.signal, 'NAT check');
    const main = this.o.socket ?? (await this.bind());
    this.main = main;
    const mc = await StunClient.create({ env: this.env, server, socket: main, attachHandler: false });
    this.mainClient = mc;
    this.clients.push(mc);
    main.onPacket((data, from) => this.onMainPacket(data, from));

    // RFC 5780 §4.3 test I / RFC 3489 test I: do we get through at all?
    this.progress('binding', `asking ${endpointKey(server)} for our mapped address`);
    const first = await this.ask(mc, { timers: this.firstTimers });
    if (first === undefined || !first.ok) {
      if (first !== undefined) this.skip('nat', `the server answered ${first.error.code} ${first.error.reason}`);
      return this.report({ udp: first !== undefined, local: main.local });
    }
    const mapped = first.mapped;
    const other = first.otherAddress;
    const rttMs = first.transmissions === 1 ? first.rttMs : undefined;
    const natted = await this.isNatted(main.local, mapped);
    this.progress('binding', `mapped to ${endpointKey(mapped)}${natted === false ? ' (no NAT)' : ''}`);
    const probeTimers: TransactionTimers = {
      rtoMs: Math.max(this.o.probeMinRtoMs ?? 50, 4 * (rttMs ?? first.rttMs / Math.max(1, first.transmissions))),
      maxTransmissions: this.o.probeTransmissions ?? 2,
      lastWaitMultiplier: 2,
    };

    // Filtering first: once the socket has sent to the alternate address, address-
    // dependent filtering would let the changed answers in (RFC 5780 §4.4). What runs
    // meanwhile sends nothing from this socket, so it cannot open the filter: the
    // allocation samples, each on its own socket, then the hairpin probe (§4.5) from yet
    // another one. The probe waits for the samples: on a sequential NAT its own mapping
    // would fall between theirs (in NAT behind NAT it leaves through the inner router).
    // Both silent waits, filtering's and hairpinning's, so overlap instead of adding up.
    const [filtering, [allocation, hairpinning]] = await Promise.all([
      this.filtering(mc, other, probeTimers),
      this.allocation(mapped, main.local).then(async (a) => [a, await this.hairpin(mapped, probeTimers)] as const),
    ]);
    // Mapping: RFC 5780 §4.3 tests II and III.
    const mapping = await this.mapping(mc, other, mapped, natted);
    const [lifetime, publicIPv6] = await Promise.all([this.lifetime(probeTimers), this.ipv6()]);
    return this.report({
      udp: true, local: main.local, mapped, other, software: first.software, natted, rttMs, filtering, mapping,
      hairpinning, allocation, lifetime, publicIPv6,
    });
  }

  async release(): Promise<void> {
    if (this.main !== undefined && this.o.socket !== undefined) this.main.onPacket(undefined);
    await Promise.allSettled([...this.clients, ...this.owned].map((c) => c.close()));
  }

  private async bind(address?: string): Promise<PacketSocket> {
    const family = this.o.server.family;
    const socket = await this.env.network.bindUdp({
      address: address ?? this.o.localAddress ?? (family === 6 ? '::' : '0.0.0.0'),
      ...(this.signal && { signal: this.signal }),
    });
    this.owned.push(socket);
    return socket;
  }

  private onMainPacket(data: Uint8Array, from: Endpoint): void {
    this.received += 1;
    if (this.hairpinId !== undefined && data.length >= 20 && looksLikeStun(data) && ((data[0]! << 8) | data[1]!) === BINDING) {
      try {
        const msg = decodeMessage(data);
        if (msg.cls === StunClass.REQUEST && transactionKey(msg.transactionId) === this.hairpinId) {
          this.hairpinArrived?.();
          return;
        }
      } catch {
        // Not our probe: fall through to the client, which counts it.
      }
    }
    this.mainClient?.receive(data, from);
  }

  /** A Binding transaction; undefined when nothing came back in time (ERR_TIMEOUT). */
  private async ask(client: StunClient, options: BindingOptions): Promise<BindingResult | undefined> {
    try {
      return await client.binding({ ...options, ...(this.signal && { signal: this.signal }) });
    } catch (err) {
      if (isNatkitError(err, 'ERR_TIMEOUT')) return undefined;
      throw err;
    }
  }

  /**
   * Open internet is told without the user's help: the mapped address is ours when the
   * socket could bind it, i.e. it belongs to this host (RFC 3489 §10.1 compares it with
   * the local address; a socket bound to the wildcard does not know its own).
   */
  private async isNatted(local: Endpoint, mapped: Endpoint): Promise<boolean | undefined> {
    if (mapped.port !== local.port || mapped.family !== local.family) return true;
    if (!isWildcard(local.address)) return mapped.address !== local.address;
    try {
      const probe = await this.env.network.bindUdp({ address: mapped.address, port: 0, ...(this.signal && { signal: this.signal }) });
      await probe.close();
      return false;
    } catch (err) {
      if (isNatkitError(err, 'ERR_SOCKET') || isNatkitError(err, 'ERR_INVALID_ARGUMENT')) return true;
      throw err;
    }
  }

  /** RFC 5780 §4.4: change IP and port, and change port only, both asked of the primary address. */
  private async filtering(mc: StunClient, other: Endpoint | undefined, timers: TransactionTimers): Promise<Behaviour> {
    if (other === undefined) {
      this.skip('filtering', 'the server has no alternate address (no OTHER-ADDRESS): it cannot answer CHANGE-REQUEST');
      return 'unknown';
    }
    this.progress('filtering', 'asking for answers from the other address and port');
    const server = this.o.server;
    const [both, port] = await Promise.all([
      this.ask(mc, { changeRequest: { changeIp: true, changePort: true }, timers }),
      this.ask(mc, { changeRequest: { changeIp: false, changePort: true }, timers }),
    ]);
    for (const [r, expect] of [[both, other], [port, endpoint(server.address, other.port)]] as const) {
      if (r === undefined) continue;
      if (!r.ok) {
        this.skip('filtering', `the server refused CHANGE-REQUEST: ${r.error.code} ${r.error.reason}`);
        return 'unknown';
      }
      // A server that ignores CHANGE-REQUEST answers from where it was asked: that would
      // read as "endpoint-independent" without this check.
      if (!sameEndpoint(r.from, expect)) {
        this.skip('filtering', `the server answered a CHANGE-REQUEST from ${endpointKey(r.from)}, not ${endpointKey(expect)}`);
        return 'unknown';
      }
    }
    if (both !== undefined) return 'endpoint-independent';
    if (port !== undefined) return 'address-dependent';
    return 'address-and-port-dependent';
  }

  /** RFC 5780 §4.3: the same socket to A2:P1 (test II), then A2:P2 (test III) when II's mapping differs from I's. */
  private async mapping(mc: StunClient, other: Endpoint | undefined, mapped: Endpoint, natted: boolean | undefined): Promise<Behaviour> {
    if (other === undefined && natted === false) {
      // Nothing translates: every destination sees the socket's own address (RFC 4787 §4.1's
      // endpoint-independence holds trivially), so two un-NATed peers can still go direct.
      this.progress('mapping', 'no NAT: every destination sees the socket\'s own address (endpoint-independent)');
      return 'endpoint-independent';
    }
    if (other === undefined) {
      this.skip('mapping', 'the server has no alternate address (no OTHER-ADDRESS) to compare mappings with');
      return 'unknown';
    }
    this.progress('mapping', 'comparing mappings toward the other address and port');
    const toAltAddress = endpoint(other.address, this.o.server.port);
    const two = await this.ask(mc, { to: toAltAddress, timers: ANSWERED_TIMERS });
    if (two === undefined || !two.ok) {
      this.skip('mapping', `no answer from the alternate address ${endpointKey(toAltAddress)}`);
      return 'unknown';
    }
    // RFC 5780 §4.3: the same mapping toward A2 is endpoint-independent mapping, and test
    // III is only run when it is not: on the commonest NATs it would cost two packets and
    // tell nothing. Otherwise it costs a round trip more than sending both at once.
    if (sameEndpoint(two.mapped, mapped)) return 'endpoint-independent';
    const three = await this.ask(mc, { to: other, timers: ANSWERED_TIMERS });
    if (three === undefined || !three.ok) {
      this.skip('mapping', `no answer from the alternate address and port ${endpointKey(other)}`);
      return 'unknown';
    }
    return sameEndpoint(three.mapped, two.mapped) ? 'address-dependent' : 'address-and-port-dependent';
  }

  /** Mappings of fresh sockets made one after another, after the main socket's own. */
  private async allocation(mapped: Endpoint, local: Endpoint): Promise<PortAllocation> {
    const n = this.o.allocationSamples ?? 3;
    if (n === 0) return { kind: 'unknown' };
    this.progress('allocation', `opening ${n} more mappings to see how ports are chosen`);
    const samples: PortSample[] = [{ localPort: local.port, mappedPort: mapped.port }];
    for (let i = 0; i < n; i++) {
      const socket = await this.bind();
      const client = await StunClient.create({ env: this.env, server: this.o.server, socket });
      this.clients.push(client);
      const r = await this.ask(client, { timers: ANSWERED_TIMERS });
      if (r === undefined || !r.ok) {
        this.skip('allocation', 'a sample socket got no answer');
        return { kind: 'unknown' };
      }
      samples.push({ localPort: socket.local.port, mappedPort: r.mapped.port });
    }
    return portAllocation(samples);
  }

  /** RFC 5780 §4.5: a request from another socket to our mapped address; hairpinning if it arrives. */
  private async hairpin(mapped: Endpoint, timers: TransactionTimers): Promise<boolean | undefined> {
    if (this.o.hairpinning === false) return undefined;
    this.progress('hairpinning', `sending to our own mapped address ${endpointKey(mapped)}`);
    const socket = await this.bind();
    const id = this.env.random.bytes(12);
    this.hairpinId = transactionKey(id);
    const request = encodeMessage({ method: BINDING, cls: StunClass.REQUEST, transactionId: id, attributes: [] });
    const arrived = new Promise<true>((resolve) => (this.hairpinArrived = () => resolve(true)));
    const rto = timers.rtoMs ?? 50;
    const tries = timers.maxTransmissions ?? 3;
    const lastWaitMs = (timers.lastWaitMultiplier ?? 2) * rto;
    try {
      for (let i = 0; i < tries; i++) {
        socket.send(request, mapped);
        this.extraSent += 1;
        // The schedule of the filtering probes, which is RFC 8489 §6.2.1's: the interval
        // doubles after each transmission (RTO, 2·RTO, …), and after the last one the
        // wait is Rm × the initial RTO, not a doubled interval again.
        const wait = i === tries - 1 ? lastWaitMs : rto * 2 ** i;
        if (await this.raceTimer(arrived, wait)) return true;
      }
      return false;
    } finally {
      this.hairpinId = undefined;
      this.hairpinArrived = undefined;
    }
  }

  /** RFC 5780 §4.6: idle mappings of their own sockets, checked at each age through RESPONSE-PORT from another socket. */
  private async lifetime(timers: TransactionTimers): Promise<{ aliveS: number | undefined; expiredS: number | undefined } | undefined> {
    const ages = [...new Set(this.o.lifetimeS ?? [])].sort((a, b) => a - b);
    if (ages.length === 0) return undefined;
    this.progress('lifetime', `watching idle mappings for up to ${ages.at(-1)} s`);
    const asker = await this.bind();
    const askClient = await StunClient.create({ env: this.env, server: this.o.server, socket: asker, attachHandler: false });
    this.clients.push(askClient);
    asker.onPacket((d, f) => void askClient.receive(d, f));
    const idle = await Promise.all(ages.map(async (age) => {
      const socket = await this.bind();
      const client = await StunClient.create({ env: this.env, server: this.o.server, socket, attachHandler: false });
      this.clients.push(client);
      socket.onPacket((d, f) => {
        // The RESPONSE-PORT answer to the asker's request lands here when the mapping lives.
        if (!askClient.receive(d, f)) client.receive(d, f);
      });
      const r = await this.ask(client, { timers: ANSWERED_TIMERS });
      return r?.ok === true ? { age, port: r.mapped.port, startedAt: this.env.clock.now() } : undefined;
    }));
    const results = await Promise.all(idle.map(async (m) => {
      if (m === undefined) return undefined;
      await this.sleep(m.startedAt + m.age * 1000 - this.env.clock.now());
      const r = await this.ask(askClient, { responsePort: m.port, timers });
      if (r !== undefined && !r.ok) {
        this.skip('lifetime', `the server refused RESPONSE-PORT: ${r.error.code} ${r.error.reason}`);
        return undefined;
      }
      return { age: m.age, alive: r !== undefined };
    }));
    const done = results.filter((r) => r !== undefined);
    if (done.length === 0) return undefined;
    const alive = done.filter((r) => r.alive).map((r) => r.age);
    const dead = done.filter((r) => !r.alive).map((r) => r.age);
    return { aliveS: alive.length > 0 ? Math.max(...alive) : undefined, expiredS: dead.length > 0 ? Math.min(...dead) : undefined };
  }

  /** The public IPv6 address, from a Binding to the IPv6 server. */
  private async ipv6(): Promise<string | undefined> {
    const server6 = this.o.server6;
    if (server6 === undefined) return undefined;
    this.progress('ipv6', `asking ${endpointKey(server6)} over IPv6`);
    try {
      const socket = await this.env.network.bindUdp({ address: '::', ...(this.signal && { signal: this.signal }) });
      this.owned.push(socket);
      const client = await StunClient.create({ env: this.env, server: server6, socket });
      this.clients.push(client);
      const r = await this.ask(client, { timers: this.firstTimers });
      if (r?.ok === true) return r.mapped.address;
      this.skip('ipv6', r === undefined ? 'no answer over IPv6' : `the IPv6 server answered ${r.error.code}`);
    } catch (err) {
      if (!isNatkitError(err, 'ERR_SOCKET')) throw err;
      this.skip('ipv6', `no IPv6 here: ${err.message}`);
    }
    return undefined;
  }

  /** Waits `ms` on env.clock; aborts with the check. */
  private async sleep(ms: number): Promise<void> {
    await this.raceTimer(new Promise<never>(() => {}), ms);
  }

  /** Waits `ms` on env.clock or until `p` settles; true when `p` won. Aborts with the check. */
  private raceTimer(p: Promise<unknown>, ms: number): Promise<boolean> {
    return new Promise<boolean>((resolve, reject) => {
      const signal = this.signal;
      const timer = this.env.clock.setTimer(Math.max(0, ms), () => finish(false));
      const onAbort = (): void => {
        timer.cancel();
        reject(new NatkitError('ERR_ABORTED', 'NAT check aborted', { cause: signal?.reason }));
      };
      const finish = (won: boolean): void => {
        timer.cancel();
        signal?.removeEventListener('abort', onAbort);
        resolve(won);
      };
      if (signal?.aborted === true) return onAbort();
      signal?.addEventListener('abort', onAbort, { once: true });
      p.then(() => finish(true), () => finish(false));
    });
  }

  private skip(what: NotMeasured['what'], why: string): void {
    if (!this.notMeasured.some((n) => n.what === what)) this.notMeasured.push({ what, why });
  }

  private report(r: {
    udp: boolean; local: Endpoint; mapped?: Endpoint; other?: Endpoint | undefined; software?: string | undefined;
    natted?: boolean | undefined; rttMs?: number | undefined; filtering?: Behaviour; mapping?: Behaviour;
    hairpinning?: boolean | undefined; allocation?: PortAllocation; publicIPv6?: string | undefined;
    lifetime?: { aliveS: number | undefined; expiredS: number | undefined } | undefined;
  }): NatReport {
    const mapping = r.mapping ?? 'unknown';
    const filtering = r.filtering ?? 'unknown';
    const allocation = r.allocation ?? { kind: 'unknown' };
    const inputs = { udp: r.udp, natted: r.natted, mapping, filtering };
    if (!r.udp) this.skip('nat', 'no answer over UDP');
    const sent = this.clients.reduce((n, c) => n + c.stats.transmissions, 0) + this.extraSent;
    const received = this.received + this.clients.filter((c) => c !== this.mainClient).reduce((n, c) => n + c.stats.responses, 0);
    const report: NatReport = {
      server: this.o.server,
      otherAddress: r.other,
      serverSoftware: r.software,
      local: r.local,
      udp: r.udp,
      mapped: r.mapped,
      publicIPv4: r.mapped?.family === 4 ? r.mapped.address : undefined,
      publicIPv6: r.mapped?.family === 6 ? r.mapped.address : r.publicIPv6,
      natted: r.natted,
      mapping,
      filtering,
      classic: classicType(inputs),
      hairpinning: r.hairpinning,
      mappingVariesByDestination: mapping === 'unknown' ? undefined : mapping !== 'endpoint-independent',
      portAllocation: allocation,
      bindingLifetime: r.lifetime,
      rttMs: r.rttMs === undefined ? undefined : Math.round(r.rttMs * 100) / 100,
      advice: advice({ ...inputs, hairpinning: r.hairpinning, allocation, bindingAliveS: r.lifetime?.aliveS, bindingExpiredS: r.lifetime?.expiredS }),
      notMeasured: [...this.notMeasured],
      packets: { sent, received },
      durationMs: Math.round(this.env.clock.now() - this.startedAt),
    };
    this.progress('done', report.classic);
    return report;
  }
}

function isWildcard(address: string): boolean {
  return address === '0.0.0.0' || address === '::';
}
