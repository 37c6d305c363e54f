// The connect engine: carries out a PunchPlan (strategy.ts) on the application's socket,
// an optional TURN relayed socket and, for the birthday method, extra sockets; checks
// every pair ICE-style (RFC 8445 §6.1.4 paced checks, §7.2.5.3 valid pairs, §7.3.1.4
// triggered checks, §8.1.1 nomination by the controlling side with USE-CANDIDATE); then
// holds the nominated path with keepalives (RFC 8445 §11, RFC 7675 consent freshness),
// falls back to the relay when the path goes silent and tries to go direct again
// periodically. One Clock timer drives it; every loop and every retry is bounded.
import { endpointKey, sameEndpoint, type Endpoint, type Env, type PacketSocket, type Timer } from '../net/index.ts';
import { transactionKey } from '../stun/index.ts';
import { NatkitError, abortError, throwIfAborted } from '../util/index.ts';
import { UPGRADE_FRAME, dataFrame, encodeCheck, readInbound, type PairCredentials } from './checks.ts';
import { CheckList, type CheckPair, type ScheduleOptions } from './checklist.ts';
import { DEFAULT_BUDGET, planPunch, type PathMethod, type PunchBudget, type PunchOffer, type PunchPlan } from './strategy.ts';

/** Options of punch(). */
export interface PunchOptions {
  /** Network (birthday sockets), clock and randomness (transaction ids, birthday ports). */
  readonly env: Env;
  /** The socket whose candidates `local` lists (the one checkNat measured); the engine takes its receiver, never closes it. */
  readonly socket: PacketSocket;
  /** Our offer, as sent to the peer. */
  readonly local: PunchOffer;
  /** The peer's offer. */
  readonly remote: PunchOffer;
  /** Short-term credentials of the checks (pairCredentials() derives them from a PUNCH order). */
  readonly credentials: PairCredentials;
  /** This side nominates the path (RFC 8445 §7.1.1); the rendezvous server picks one side of each pair. */
  readonly controlling: boolean;
  /** When the first check leaves, on env.clock (the PUNCH order's start moment). @default at once */
  readonly startAtMs?: number;
  /**
   * Our TURN relayed socket (TurnClient.allocate), whose address `local.candidates` lists
   * as 'relayed': it must be allocated before the offer goes out, so the peer can send to
   * it. The engine takes its receiver, never closes it. @default no relay of our own
   */
  readonly relay?: PacketSocket;
  /** Budgets of the plan. @default DEFAULT_BUDGET */
  readonly budget?: Partial<PunchBudget>;
  /** Give up when no path is nominated after this long from the start, ms. @default 20000 */
  readonly timeoutMs?: number;
  /** Keepalive check on the path every, ms (RFC 8445 §11 asks for ≤ 15 s). @default 15000 */
  readonly keepaliveMs?: number;
  /** The path is dead after this long without an authenticated packet on it, ms (RFC 7675 §5.1: 30 s). @default 30000 */
  readonly deadAfterMs?: number;
  /** While on the relay, the controlling side tries to go direct every, ms. @default 60000 */
  readonly upgradeIntervalMs?: number;
  /** Cancels the punch while it runs. */
  readonly signal?: AbortSignal;
}

/** The path data takes. */
export interface PunchedPath {
  readonly kind: 'direct' | 'relay';
  /** How it was found. */
  readonly method: PathMethod;
  /** Our end: the socket's address, or the relayed address when we send through our relay. */
  readonly local: Endpoint;
  readonly remote: Endpoint;
}

/** Counters of one connection. */
export interface PunchStats {
  /** Check requests: probes, nominations and keepalives. */
  checksSent: number;
  /** Every datagram sent: checks, responses, frames. */
  packetsSent: number;
  /** Authenticated checks and responses, and frames from validated pairs. */
  packetsReceived: number;
  /** Datagrams that failed authentication or came from no validated pair. */
  dropped: number;
  /** Birthday sockets opened. */
  birthdaySockets: number;
  /** Birthday probes and socket checks dropped unsent once a birthday pair worked. */
  probesCancelled: number;
  /** From the start moment to the nomination, ms; undefined until then. */
  connectMs: number | undefined;
  /** Path changes after the first nomination. */
  pathChanges: number;
}

/** Where checks leave from. */
interface Base {
  readonly id: number;
  readonly socket: PacketSocket;
  readonly kind: 'main' | 'relay' | 'birthday';
}

type Pair = CheckPair<Base>;

type Phase = 'checking' | 'connected' | 'closed';

/** Nomination rank: a host pair beats a mapped one, …, the relay comes last. */
const RANK: Readonly<Record<PathMethod, number>> = { host: 5, mapped: 4, reflexive: 3, predicted: 2, birthday: 1, relay: 0 };
/** Scheduler granularity and the most first-or-re-transmissions per tick (RFC 8445 §14.2 pacing: Ta). */
const TICK_MS = 10;
const SENDS_PER_TICK = 32;
/** After the first direct success, how long better pairs may still succeed before nomination, ms. */
const NOMINATION_GRACE_MS = 150;
/** Transmissions of a nomination or a relay-fallback check. */
const NOMINATION_TRIES = 8;
/** Birthday probes start after the other side's sockets opened their mappings, ms. */
const BIRTHDAY_DELAY_MS = 200;
/** Spacing of a birthday socket's checks, ms. */
const BIRTHDAY_SOCKET_INTERVAL_MS = 1000;
/** Open transactions remembered; the oldest go first. */
const MAX_TRANSACTIONS = 8192;
/** Remote endpoints learnt from authenticated packets, for later upgrade rounds. */
const MAX_LEARNED = 8;

/** Establishes a path to the peer; resolves with the connection once a pair is nominated. */
export function punch(options: PunchOptions): Promise<PunchConnection> {
  return PunchConnection.open(options);
}

/** A punched path: send, receive, watch it change, close. */
export class PunchConnection implements AsyncDisposable {
  readonly plan: PunchPlan;
  readonly stats: PunchStats = { checksSent: 0, packetsSent: 0, packetsReceived: 0, dropped: 0, birthdaySockets: 0, probesCancelled: 0, connectMs: undefined, pathChanges: 0 };
  private readonly o: PunchOptions;
  private readonly env: Env;
  private readonly budget: PunchBudget;
  private readonly timeoutMs: number;
  private readonly keepaliveMs: number;
  private readonly deadAfterMs: number;
  private readonly upgradeIntervalMs: number;
  private closing: Promise<void> | undefined;
  private readonly bases: Base[] = [];
  private readonly checks = new CheckList<Base>();
  private readonly transactions = new Map<string, { readonly pair: Pair; readonly keepalive: boolean }>();
  /** Pairs authenticated in either direction: data from them is accepted. */
  private readonly validated = new Set<string>();
  private readonly learned = new Map<string, Endpoint>();
  private readonly tieBreaker: bigint;
  private phase: Phase = 'checking';
  private current: Pair | undefined;
  private timer: Timer | undefined;
  private startAt = 0;
  private firstDirectAt: number | undefined;
  private lastHeard = 0;
  private keepaliveAt = 0;
  private upgradeAt: number | undefined;
  /** Set while a dead path is being replaced: give up at this time. */
  private recoverBy: number | undefined;
  private settle: { readonly resolve: () => void; readonly reject: (err: Error) => void } | undefined;
  private messageHandler: ((data: Uint8Array) => void) | undefined;
  private pathHandler: ((path: PunchedPath) => void) | undefined;
  private closeHandler: ((error?: Error) => void) | undefined;
  private readonly onAbort = (): void => this.fail(abortError(this.o.signal, 'punch'));

  /** See punch(). */
  static async open(options: PunchOptions): Promise<PunchConnection> {
    throwIfAborted(options.signal, 'punch');
    const conn = new PunchConnection(options);
    await conn.start();
    return conn;
  }

  private constructor(options: PunchOptions) {
    this.o = options;
    this.env = options.env;
    this.budget = { ...DEFAULT_BUDGET, ...options.budget };
    this.timeoutMs = options.timeoutMs ?? 20_000;
    this.keepaliveMs = options.keepaliveMs ?? 15_000;
    this.deadAfterMs = options.deadAfterMs ?? 30_000;
    this.upgradeIntervalMs = options.upgradeIntervalMs ?? 60_000;
    this.plan = planPunch(options.local, options.remote, this.budget);
    this.tieBreaker = new DataView(this.env.random.bytes(8).buffer).getBigUint64(0);
  }

  /** The path data takes now. */
  get path(): PunchedPath {
    const p = this.current;
    if (p === undefined) throw new NatkitError('ERR_CLOSED', 'no path: the punch has not succeeded');
    return describe(p);
  }

  get closed(): boolean {
    return this.phase === 'closed';
  }

  /** Sends an application datagram on the path; never throws (dropped when closed, like a socket). */
  send(data: Uint8Array): void {
    const p = this.current;
    if (p !== undefined && this.phase === 'connected') this.transmit(p.base, dataFrame(data), p.remote);
  }

  /** Sets the receiver of the peer's datagrams. */
  onMessage(handler: ((data: Uint8Array) => void) | undefined): void {
    this.messageHandler = handler;
  }

  /** Called when the path changes: fallback to the relay, upgrade to direct. */
  onPathChange(handler: ((path: PunchedPath) => void) | undefined): void {
    this.pathHandler = handler;
  }

  /** Called once when the connection ends: after close(), or with the error when no path could be kept. */
  onClose(handler: ((error?: Error) => void) | undefined): void {
    this.closeHandler = handler;
  }

  /** Stops timers, closes the birthday sockets and releases the socket and relay (not closed). Idempotent. */
  async close(): Promise<void> {
    await this.end(undefined);
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /** Opens the bases, schedules the plan and waits for the nomination. */
  private async start(): Promise<void> {
    const { socket, relay, signal } = this.o;
    const now = this.env.clock.now();
    this.startAt = Math.max(now, this.o.startAtMs ?? now);
    this.addBase(socket, 'main');
    const relayBase = relay !== undefined && !relay.closed ? this.addBase(relay, 'relay') : undefined;
    const done = new Promise<void>((resolve, reject) => {
      this.settle = { resolve, reject };
    });
    signal?.addEventListener('abort', this.onAbort, { once: true });
    try {
      await this.openBirthdaySockets();
      this.schedulePlan(this.startAt);
      this.scheduleBirthdayProbes();
      this.scheduleRelay(relayBase, this.startAt, this.budget.checkTries);
      this.arm();
      await done;
    } catch (err) {
      await this.end(err instanceof Error ? err : new Error(String(err)));
      throw err;
    } finally {
      signal?.removeEventListener('abort', this.onAbort);
      this.settle = undefined;
    }
  }

  /** Birthday method, random-port side: each extra socket's first check opens a mapping at a random port. */
  private async openBirthdaySockets(): Promise<void> {
    const plan = this.plan.birthdaySockets;
    if (plan === undefined) return;
    for (let i = 0; i < plan.count && this.phase === 'checking'; i++) {
      const extra = await this.env.network.bindUdp({ address: this.o.socket.local.address });
      this.stats.birthdaySockets++;
      if (this.phase !== 'checking') {
        await extra.close();
        return;
      }
      this.schedule(this.addBase(extra, 'birthday'), plan.target, 'birthday', plan.tries, this.startAt, BIRTHDAY_SOCKET_INTERVAL_MS);
    }
  }

  /** Birthday method, other side: one check to each of `count` uniformly drawn ports, after the sockets opened their mappings. */
  private scheduleBirthdayProbes(): void {
    const probes = this.plan.birthdayProbes;
    if (probes === undefined) return;
    const [lo, hi] = probes.portRange;
    for (let i = 0; i < probes.count; i++) {
      const port = lo + (new DataView(this.env.random.bytes(4).buffer).getUint32(0) % (hi - lo + 1));
      this.schedule(this.bases[0]!, { address: probes.address, port, family: this.o.socket.local.family }, 'birthday', 1, this.startAt + BIRTHDAY_DELAY_MS);
    }
  }

  private addBase(socket: PacketSocket, kind: Base['kind']): Base {
    const base: Base = { id: this.bases.length, socket, kind };
    this.bases.push(base);
    socket.onPacket((data, from) => this.receive(base, data, from));
    return base;
  }

  /** The plan's targets from the main socket. */
  private schedulePlan(at: number): void {
    for (const t of this.plan.targets) this.schedule(this.bases[0]!, t.endpoint, t.method, t.tries, at);
  }

  /** Relay pairs: our socket to the peer's relayed addresses, our relay to the peer's public ones and what we learnt. */
  private scheduleRelay(relay: Base | undefined, at: number, tries: number): void {
    const udp = this.o.remote.candidates.filter((c) => c.transport === 'udp');
    for (const c of udp) if (c.kind === 'relayed') this.schedule(this.bases[0]!, c.endpoint, 'relay', tries, at);
    if (relay === undefined || relay.socket.closed) return;
    for (const c of udp) if (c.kind !== 'host') this.schedule(relay, c.endpoint, 'relay', tries, at);
    for (const e of this.learned.values()) this.schedule(relay, e, 'relay', tries, at);
  }

  /** Adds a pair, or re-arms it with fresh tries; bounded by the caller's counts. */
  private schedule(base: Base, remote: Endpoint, method: PathMethod, tries: number, at: number, intervalMs = this.budget.checkIntervalMs, options: ScheduleOptions = {}): Pair {
    return this.checks.schedule(base, remote, method, tries, at, intervalMs, options);
  }

  /**
   * A birthday pair worked (an answer, or the peer's check through the filter our probe
   * opened): the probes and socket checks still queued only cost datagrams, so they are
   * dropped on whichever side sees it first; the other side stops at the nomination.
   */
  private birthdayHit(pair: Pair): void {
    if (pair.method !== 'birthday') return;
    this.stats.probesCancelled += this.checks.cancel('birthday', pair);
  }

  private transmit(base: Base, data: Uint8Array, to: Endpoint): void {
    if (base.socket.closed) return;
    base.socket.send(data, to);
    this.stats.packetsSent++;
  }

  private sendCheck(pair: Pair, keepalive: boolean): void {
    const id = this.env.random.bytes(12);
    if (this.transactions.size >= MAX_TRANSACTIONS) this.transactions.delete(this.transactions.keys().next().value!);
    this.transactions.set(transactionKey(id), { pair, keepalive });
    const useCandidate = pair.nominating && this.o.controlling;
    this.transmit(pair.base, encodeCheck({ transactionId: id, controlling: this.o.controlling, tieBreaker: this.tieBreaker, useCandidate }, this.o.credentials), pair.remote);
    this.stats.checksSent++;
  }

  private receive(base: Base, data: Uint8Array, from: Endpoint): void {
    if (this.phase === 'closed') return;
    const pairKey = CheckList.key(base, from);
    const inbound = readInbound(data, from, this.o.credentials);
    const isValidated = this.validated.has(pairKey);
    if (inbound.kind === 'drop' || ((inbound.kind === 'data' || inbound.kind === 'upgrade') && !isValidated)) {
      this.stats.dropped++;
      return;
    }
    this.stats.packetsReceived++;
    switch (inbound.kind) {
      case 'data':
        this.messageHandler?.(inbound.payload);
        return;
      case 'upgrade':
        if (!this.o.controlling && this.current?.method === 'relay') this.startUpgradeRound();
        return;
      case 'request':
        this.transmit(base, inbound.response, from);
        this.onAuthenticated(from, pairKey);
        this.onRequest(base, from, pairKey, inbound.useCandidate);
        break;
      case 'response': {
        const t = this.transactions.get(inbound.transactionKey);
        if (t === undefined || !sameEndpoint(t.pair.remote, from) || t.pair.base !== base) {
          this.stats.dropped++;
          return;
        }
        this.transactions.delete(inbound.transactionKey);
        this.onAuthenticated(from, pairKey);
        if (!t.keepalive) this.onSuccess(t.pair);
        break;
      }
    }
    this.arm();
  }

  /** An authenticated packet from `from` on the pair `pairKey`: it is valid, the path alive, the endpoint worth remembering. */
  private onAuthenticated(from: Endpoint, pairKey: string): void {
    this.validated.add(pairKey);
    if (this.current?.key === pairKey) this.lastHeard = this.env.clock.now();
    const isCandidate = this.o.remote.candidates.some((c) => sameEndpoint(c.endpoint, from));
    if (!isCandidate && !this.learned.has(endpointKey(from))) {
      if (this.learned.size >= MAX_LEARNED) this.learned.delete(this.learned.keys().next().value!);
      this.learned.set(endpointKey(from), from);
    }
  }

  /**
   * RFC 8445 §7.3.1.4: a triggered check on the pair the request came in on. §7.3.1.5 has
   * the controlled side select a nominated pair once its own check succeeded; here the
   * authenticated USE-CANDIDATE request itself proves the inbound direction and the
   * controlling side's answered check the outbound one, so it selects at once.
   */
  private onRequest(base: Base, from: Endpoint, pairKey: string, useCandidate: boolean): void {
    const now = this.env.clock.now();
    const known = this.checks.pairs.get(pairKey);
    // Triggered checks go ahead of queued probes (RFC 8445 §6.1.4.2).
    const ahead = { ahead: true } as const;
    const pair = known ?? this.schedule(base, from, this.inferMethod(base, from), this.budget.checkTries, now, undefined, ahead);
    this.birthdayHit(pair);
    if (known !== undefined && !known.succeeded) this.schedule(base, from, known.method, 1, now, undefined, ahead);
    if (useCandidate && !this.o.controlling) this.select(pair);
  }

  /** How a pair met first as an incoming check was found: through the relay, a birthday socket, a candidate, or peer-reflexive. */
  private inferMethod(base: Base, from: Endpoint): PathMethod {
    if (base.kind !== 'main') return base.kind === 'relay' ? 'relay' : 'birthday';
    const c = this.o.remote.candidates.find((x) => sameEndpoint(x.endpoint, from));
    if (c === undefined) return this.plan.outcome === 'direct-birthday' ? 'birthday' : this.plan.outcome === 'direct-predicted' ? 'predicted' : 'reflexive';
    return c.kind === 'relayed' ? 'relay' : c.kind === 'port-mapped' ? 'mapped' : c.kind === 'host' ? 'host' : 'reflexive';
  }

  /** A check of ours was answered (RFC 8445 §7.2.5.3): the pair is valid; a nomination's answer selects it. */
  private onSuccess(pair: Pair): void {
    const now = this.env.clock.now();
    if (pair.nominating) {
      this.select(pair);
      return;
    }
    pair.succeeded = true;
    pair.triesLeft = 0;
    this.birthdayHit(pair);
    if (pair.method !== 'relay') this.firstDirectAt ??= now;
    if (this.recoverBy !== undefined) {
      // Replacing a dead path: each side takes the first pair that works (data is accepted on any valid pair).
      this.recoverBy = undefined;
      this.switchTo(pair);
      return;
    }
    if (this.phase === 'connected' && this.o.controlling && pair.method !== 'relay' && this.current?.method === 'relay') this.nominate(pair);
  }

  /** Controlling side, while checking: the best direct pair after a short grace, else the relay once direct had its time. */
  private maybeNominate(now: number): void {
    if (!this.o.controlling || this.phase !== 'checking') return;
    if (this.checks.isNominating()) return;
    let best: Pair | undefined;
    for (const p of this.checks.pairs.values()) {
      if (p.succeeded && (best === undefined || RANK[p.method] > RANK[best.method])) best = p;
    }
    if (best === undefined) return;
    const isDirect = best.method !== 'relay';
    if (isDirect ? best.method === 'host' || now >= (this.firstDirectAt ?? now) + NOMINATION_GRACE_MS : now >= this.startAt + this.plan.directMs) {
      this.nominate(best);
    }
  }

  private nominate(pair: Pair): void {
    pair.nominating = true;
    pair.succeeded = false;
    this.schedule(pair.base, pair.remote, pair.method, NOMINATION_TRIES, this.env.clock.now());
  }

  /** The nominated pair becomes the path. */
  private select(pair: Pair): void {
    pair.nominating = false;
    pair.succeeded = true;
    if (this.phase === 'checking') {
      this.phase = 'connected';
      this.current = pair;
      const now = this.env.clock.now();
      this.stats.connectMs = now - this.startAt;
      this.lastHeard = now;
      this.keepaliveAt = now + this.keepaliveMs;
      this.afterPathChange(now);
      this.checks.stop();
      // The birthday sockets that did not win have done their work.
      for (const b of this.bases) if (b.kind === 'birthday' && b !== pair.base) void this.closeBase(b);
      this.settle?.resolve();
      return;
    }
    this.switchTo(pair);
  }

  private switchTo(pair: Pair): void {
    if (this.current === pair || this.phase !== 'connected') return;
    this.current = pair;
    this.stats.pathChanges++;
    const now = this.env.clock.now();
    this.lastHeard = now;
    this.checks.stop(true);
    this.afterPathChange(now);
    this.pathHandler?.(describe(pair));
  }

  private afterPathChange(now: number): void {
    this.upgradeAt = this.current?.method === 'relay' && this.o.controlling ? now + this.upgradeIntervalMs : undefined;
  }

  private async closeBase(base: Base): Promise<void> {
    base.socket.onPacket(undefined);
    await base.socket.close();
  }

  /** Checks to go direct again: the plan's targets and the endpoints learnt since (the peer's new mapping, seen through the relay). */
  private startUpgradeRound(): void {
    const now = this.env.clock.now();
    this.schedulePlan(now);
    for (const e of this.learned.values()) this.schedule(this.bases[0]!, e, 'reflexive', this.budget.checkTries, now);
    this.checks.resetQueued();
  }

  /** The path went silent (RFC 7675 §5.1): check the relay pairs and the direct ones, switch to the first that answers. */
  private pathDead(now: number): void {
    const relay = this.bases.find((b) => b.kind === 'relay');
    this.env.logger.info('punch: path dead, checking the relay and direct pairs', { remote: this.current === undefined ? undefined : endpointKey(this.current.remote) });
    this.recoverBy = now + this.timeoutMs;
    this.scheduleRelay(relay, now, NOMINATION_TRIES);
    this.schedulePlan(now);
    this.checks.resetQueued();
  }

  /** Runs what is due and re-arms the one timer for what comes next. */
  private arm(): void {
    if (this.phase === 'closed') return;
    const now = this.env.clock.now();
    this.timer?.cancel();
    this.timer = undefined;
    // Deadlines first: what they schedule (nominations, fallback and upgrade rounds) leaves in this run.
    const deadline = this.deadlines(now);
    if (this.closed) return;
    if (now >= this.startAt) for (const p of this.checks.due(now, SENDS_PER_TICK)) this.sendCheck(p, false);
    this.checks.prune(now);
    const next = Math.min(deadline, Math.max(this.checks.nextAt(), this.startAt));
    if (next === Infinity) return;
    this.timer = this.env.clock.setTimer(Math.max(TICK_MS, next - now), () => {
      this.timer = undefined;
      this.arm();
    });
  }

  /** Acts on the phase's deadlines; returns the next one. */
  private deadlines(now: number): number {
    if (this.phase === 'checking') {
      this.maybeNominate(now);
      const timeoutAt = this.startAt + this.timeoutMs;
      if (now >= timeoutAt) {
        this.fail(new NatkitError('ERR_TIMEOUT', `punch: no path after ${this.timeoutMs} ms (plan ${this.plan.outcome}: ${this.plan.reason})`));
        return Infinity;
      }
      const directAt = this.startAt + this.plan.directMs;
      const graceAt = this.firstDirectAt === undefined ? Infinity : this.firstDirectAt + NOMINATION_GRACE_MS;
      return Math.min(timeoutAt, now < directAt ? directAt : Infinity, now < graceAt ? graceAt : Infinity);
    }
    if (this.phase !== 'connected' || this.current === undefined) return Infinity;
    if (now >= this.keepaliveAt) {
      this.sendCheck(this.current, true);
      this.keepaliveAt = now + this.keepaliveMs;
    }
    if (this.recoverBy !== undefined && now >= this.recoverBy) {
      this.fail(new NatkitError('ERR_TIMEOUT', `punch: the path died and nothing answered within ${this.timeoutMs} ms`));
      return Infinity;
    }
    if (this.recoverBy === undefined && now >= this.lastHeard + this.deadAfterMs) this.pathDead(now);
    if (this.upgradeAt !== undefined && now >= this.upgradeAt && this.recoverBy === undefined) {
      this.transmit(this.current.base, UPGRADE_FRAME, this.current.remote);
      this.startUpgradeRound();
      this.upgradeAt = now + this.upgradeIntervalMs;
    }
    return Math.min(this.keepaliveAt, this.recoverBy ?? this.lastHeard + this.deadAfterMs, this.upgradeAt ?? Infinity);
  }

  /** Ends with an error: rejects punch() while checking, else reports it through onClose. */
  private fail(error: Error): void {
    void this.end(error);
  }

  /** Stops at once (no timer, no receiver, punch() rejected), then closes the birthday sockets. Idempotent. */
  private end(error: Error | undefined): Promise<void> {
    this.closing ??= this.shutdown(error);
    return this.closing;
  }

  /** Runs synchronously up to its first await, so nothing fires after end() returns. */
  private async shutdown(error: Error | undefined): Promise<void> {
    const wasConnected = this.phase === 'connected';
    this.phase = 'closed';
    this.timer?.cancel();
    this.timer = undefined;
    this.checks.stop();
    this.settle?.reject(error ?? new NatkitError('ERR_CLOSED', 'punch: closed before a path was found'));
    for (const b of this.bases) if (b.kind !== 'birthday') b.socket.onPacket(undefined);
    for (const b of this.bases) if (b.kind === 'birthday') await this.closeBase(b);
    if (wasConnected) this.closeHandler?.(error);
  }
}

function describe(p: Pair): PunchedPath {
  return { kind: p.method === 'relay' ? 'relay' : 'direct', method: p.method, local: p.base.socket.local, remote: p.remote };
}
