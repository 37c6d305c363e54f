// How to punch, chosen from both peers' NAT behaviour (RFC 4787 §4.1 mapping, §4.2.1
// port assignment, §5 filtering) and their candidates (RFC 8445 §5.1.1, plus port
// mappings), the techniques of RFC 5128 §3 (relaying §3.2, connection reversal §3.3,
// UDP hole punching §3.4), port prediction for sequential allocators (§3.4, "port
// prediction" of §5.1) and the birthday-paradox method for random ones. Pure: the
// engine (engine.ts) carries the plan out; docs/punch.md has the reasoning per pair.
import type { Endpoint } from '../net/index.ts';
import type { Candidate, NatSummary } from '../rendezvous/index.ts';

/** How a path was found. */
export type PathMethod = 'host' | 'reflexive' | 'mapped' | 'predicted' | 'birthday' | 'relay';

/** What the plan expects to end on. */
export type PunchOutcome = 'direct' | 'direct-predicted' | 'direct-birthday' | 'relay';

/** What one side tells the other before punching: where it may be reached and what its NAT does. */
export interface PunchOffer {
  readonly candidates: readonly Candidate[];
  /** From checkNat on the very socket that punches; undefined when not measured (treated as unknown). */
  readonly nat: NatSummary | undefined;
}

/** Packet and time budgets of a plan; every field has a default (DEFAULT_BUDGET). */
export interface PunchBudget {
  /** Transmissions of an ordinary check (RFC 5128 §3.4: both sides keep sending until the holes meet). @default 10 */
  readonly checkTries: number;
  /** Between transmissions of one check, ms (the seeds punched every 500 ms). @default 200 */
  readonly checkIntervalMs: number;
  /** Ports probed ahead of a sequential allocator's last port. @default 32 */
  readonly predictionWindow: number;
  /** Transmissions of each predicted probe. @default 4 */
  readonly predictionTries: number;
  /** Extra sockets the random-port side opens for the birthday method. @default 256 */
  readonly birthdaySockets: number;
  /** Random probes the other side sends for the birthday method. @default 2048 */
  readonly birthdayProbes: number;
  /** Ports a random allocator draws from (RFC 6335 §6: 1024–65535 for dynamic use by NATs). @default [1024, 65535] */
  readonly portRange: readonly [number, number];
  /** Time the direct checks get before a relay pair is nominated, ms. @default 4000 (plain), × 1.5 with prediction, × 2 with birthday */
  readonly directMs: number;
  /** Time the host checks get when the plan is the relay, ms (same-LAN peers). @default 1000 */
  readonly relayHostMs: number;
}

export const DEFAULT_BUDGET: PunchBudget = Object.freeze({
  checkTries: 10,
  checkIntervalMs: 200,
  predictionWindow: 32,
  predictionTries: 4,
  birthdaySockets: 256,
  birthdayProbes: 2048,
  portRange: Object.freeze<[number, number]>([1024, 65535]),
  directMs: 4000,
  relayHostMs: 1000,
});

/** Checks from each birthday socket: the first opens its mapping, the second covers a loss. */
const BIRTHDAY_SOCKET_TRIES = 2;

/** One remote endpoint to check from the main socket. */
export interface Target {
  readonly endpoint: Endpoint;
  readonly method: PathMethod;
  /** Transmissions of its check. */
  readonly tries: number;
}

/** What one side does. */
export interface PunchPlan {
  readonly outcome: PunchOutcome;
  /** One line: why, with the RFC 4787 terms that decided it. */
  readonly reason: string;
  /** Checked from the main socket, first transmissions in this order (lockstep prediction depends on it). */
  readonly targets: readonly Target[];
  /** Birthday method, random-port side: `count` extra sockets, each checking `target` (the remote's reflexive endpoint) `tries` times. */
  readonly birthdaySockets: { readonly count: number; readonly target: Endpoint; readonly tries: number } | undefined;
  /** Birthday method, other side: probes to random ports of this address. */
  readonly birthdayProbes: { readonly address: string; readonly count: number; readonly portRange: readonly [number, number] } | undefined;
  /** Chance the birthday method finds a port pair, 1 − (1 − N/R)^M; undefined without it. */
  readonly birthdayProbability: number | undefined;
  /** Upper bound of the check datagrams this side sends before a path is nominated. */
  readonly packetBudget: number;
  /** Time the direct checks get before the relay is nominated, ms. */
  readonly directMs: number;
}

/** One side as the strategy sees it. */
interface Side {
  /** It has a UDP reflexive or port-mapped candidate (UDP gets out). */
  readonly udp: boolean;
  /** RFC 4787 §4.1 endpoint-independent mapping: one external endpoint for every destination. */
  readonly eim: boolean;
  /** Anyone may send to it: EIF (RFC 4787 §5) with EIM, or a port mapping. */
  readonly reachable: boolean;
  /** RFC 4787 §5 filtering; 'unknown' reads as the strictest. */
  readonly apdf: boolean;
  /** The step of a sequential allocator (RFC 4787 §4.2.1), when the mapping depends on the destination. */
  readonly step: number | undefined;
  readonly reflexive: Endpoint | undefined;
}

function side(offer: PunchOffer, range: readonly [number, number]): Side {
  const udp = offer.candidates.filter((c) => c.transport === 'udp');
  const reflexives = udp.filter((c) => c.kind === 'server-reflexive').map((c) => c.endpoint);
  const mapped = udp.some((c) => c.kind === 'port-mapped');
  const nat = offer.nat;
  const eim = nat?.mapping === 'endpoint-independent';
  const eif = nat?.filtering === 'endpoint-independent';
  const alloc = nat?.allocation;
  const step = !eim && alloc?.kind === 'sequential' ? alloc.step : undefined;
  return {
    udp: reflexives.length > 0 || mapped,
    eim,
    reachable: mapped || (eim && eif),
    apdf: !eif && nat?.filtering !== 'address-dependent',
    step,
    reflexive: step === undefined ? reflexives[0] : freshestMapping(reflexives, step, range),
  };
}

/**
 * The mapping a sequential allocator (RFC 4787 §4.2.1) handed out last: the one furthest
 * along in allocation order, `step` at a time and wrapping within `range`. Offers list
 * several reflexive candidates in no promised order (the rendezvous server puts the one it
 * saw first, often the socket's oldest mapping), and prediction must count from the last
 * port: lockstep fails on any other base (the lab's sequential × sequential row did). Of
 * mappings spread over a short arc, the last is the one the others lie shortest behind.
 */
function freshestMapping(mappings: readonly Endpoint[], step: number, range: readonly [number, number]): Endpoint | undefined {
  const [lo, hi] = range;
  const size = hi - lo + 1;
  // Position along the allocation order: ports count down when the step is negative.
  const position = (e: Endpoint): number => ((((e.port - lo) * Math.sign(step || 1)) % size) + size) % size;
  let best: Endpoint | undefined;
  let bestLag = Infinity;
  for (const m of mappings) {
    // How far the oldest of the others lies behind m, going backwards with wrap.
    let lag = 0;
    for (const o of mappings) lag = Math.max(lag, (((position(m) - position(o)) % size) + size) % size);
    if (lag < bestLag) [best, bestLag] = [m, lag];
  }
  return best;
}

/** The outcome for a pair and which side does what; the same answer from either side's view. */
interface Decision {
  readonly outcome: PunchOutcome;
  readonly reason: string;
  /** Local side probes a window of the remote's ports (prediction). */
  readonly predict: boolean;
  /** Both sides predict, in lockstep. */
  readonly lockstep: boolean;
  /** Local side opens birthday sockets. */
  readonly openSockets: boolean;
  /** Local side sends birthday probes. */
  readonly sendProbes: boolean;
}

const NONE = { predict: false, lockstep: false, openSockets: false, sendProbes: false } as const;

function decide(l: Side, r: Side): Decision {
  if (!l.udp || !r.udp) return { ...NONE, outcome: 'relay', reason: 'UDP does not get out on one side: TURN (RFC 5128 §3.2)' };
  if (l.reachable || r.reachable) {
    return { ...NONE, outcome: 'direct', reason: 'one side is reachable (EIM + EIF, or a port mapping): the other sends first (RFC 5128 §3.3)' };
  }
  if (l.eim && r.eim) return { ...NONE, outcome: 'direct', reason: 'both mappings endpoint-independent (RFC 4787 §4.1): simultaneous punching (RFC 5128 §3.4)' };
  if (l.eim || r.eim) {
    const [easy, hard, localIsEasy] = l.eim ? [l, r, true] : [r, l, false];
    if (!easy.apdf) {
      return { ...NONE, outcome: 'direct', reason: 'address-dependent filtering lets the dependent mapping\'s new port in once the address was sent to (RFC 4787 §5)' };
    }
    if (hard.step !== undefined) {
      return { ...NONE, predict: localIsEasy, outcome: 'direct-predicted', reason: `address-and-port-dependent filtering against a sequential allocator (step ${hard.step}): the filtering side opens a window of predicted ports` };
    }
    return {
      ...NONE, openSockets: !localIsEasy, sendProbes: localIsEasy, outcome: 'direct-birthday',
      reason: 'address-and-port-dependent filtering against random ports: many sockets on the random side, random probes from the other (birthday paradox)',
    };
  }
  if (l.step !== undefined && r.step !== undefined) {
    return { ...NONE, predict: true, lockstep: true, outcome: 'direct-predicted', reason: 'both allocators sequential: each side probes the other\'s next ports in the same order (lockstep prediction)' };
  }
  return { ...NONE, outcome: 'relay', reason: 'both mappings destination-dependent and at least one allocator random: no port can be predicted, TURN (RFC 5128 §3.2)' };
}

/** Ports `step`, 2·`step`, … `window`·`step` after `base`, wrapped into `range`. */
export function predictPorts(base: number, step: number, window: number, range: readonly [number, number]): number[] {
  const [lo, hi] = range;
  const size = hi - lo + 1;
  const out: number[] = [];
  for (let k = 1; k <= window; k++) out.push(lo + ((((base + k * step - lo) % size) + size) % size));
  return out;
}

/** 1 − (1 − n/r)^m: some of `m` uniform probes lands on one of `n` open ports out of `r`. */
export function birthdayProbability(n: number, m: number, r: number): number {
  return 1 - (1 - Math.min(n, r) / r) ** m;
}

/** The plan of the local side against the remote one. */
export function planPunch(local: PunchOffer, remote: PunchOffer, budget: Partial<PunchBudget> = {}): PunchPlan {
  const b: PunchBudget = { ...DEFAULT_BUDGET, ...budget };
  const l = side(local, b.portRange);
  const r = side(remote, b.portRange);
  const d = decide(l, r);
  const plain = (c: Candidate, method: PathMethod): Target => ({ endpoint: c.endpoint, method, tries: b.checkTries });
  const udp = remote.candidates.filter((c) => c.transport === 'udp');
  const hosts = udp.filter((c) => c.kind === 'host').map((c) => plain(c, 'host'));
  const mapped = udp.filter((c) => c.kind === 'port-mapped').map((c) => plain(c, 'mapped'));
  const reflexive = udp.filter((c) => c.kind === 'server-reflexive').map((c) => plain(c, 'reflexive'));
  const predicted: Target[] = [];
  if (d.predict && r.reflexive !== undefined && r.step !== undefined) {
    for (const port of predictPorts(r.reflexive.port, r.step, b.predictionWindow, b.portRange)) {
      predicted.push({ endpoint: { ...r.reflexive, port }, method: 'predicted', tries: b.predictionTries });
    }
  }
  // Under lockstep the k-th new destination of each side must be the other's k-th
  // predicted port: anything sent to a new destination before them takes a port
  // (RFC 4787 §4.2.1), so host and reflexive checks go after the window.
  const targets = d.outcome === 'relay' ? hosts
    : d.lockstep ? [...predicted, ...hosts, ...mapped, ...reflexive]
    : [...hosts, ...mapped, ...reflexive, ...predicted];
  const sockets = d.openSockets && r.reflexive !== undefined ? b.birthdaySockets : 0;
  const probes = d.sendProbes && r.reflexive !== undefined ? b.birthdayProbes : 0;
  const portCount = b.portRange[1] - b.portRange[0] + 1;
  const birthday = d.outcome === 'direct-birthday';
  const directMs = d.outcome === 'relay' ? b.relayHostMs : b.directMs * (birthday ? 2 : d.outcome === 'direct-predicted' ? 1.5 : 1);
  return {
    outcome: d.outcome,
    reason: d.reason,
    targets,
    birthdaySockets: sockets > 0 && r.reflexive !== undefined ? { count: sockets, target: r.reflexive, tries: BIRTHDAY_SOCKET_TRIES } : undefined,
    birthdayProbes: probes > 0 && r.reflexive !== undefined ? { address: r.reflexive.address, count: probes, portRange: b.portRange } : undefined,
    birthdayProbability: birthday ? birthdayProbability(b.birthdaySockets, b.birthdayProbes, portCount) : undefined,
    // Each probe goes once: it only has to open our filter for its port (RFC 4787 §5).
    packetBudget: targets.reduce((n, t) => n + t.tries, 0) + sockets * BIRTHDAY_SOCKET_TRIES + probes,
    directMs,
  };
}
