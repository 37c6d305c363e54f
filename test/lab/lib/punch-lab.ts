// The NAT matrix in the real lab: `natkit serve` (STUN on two addresses × two ports, TURN,
// rendezvous) on a public host, two sites each with a reloadable NAT router and an open
// router (a public LAN: its preset cannot be loaded into a NAT router), a second host
// behind site a's NAT ("two peers behind the same NAT"), and two peers
// (test/lab/bin/punch-peer.ts) that connect by name and report how. The expected outcome
// of a pair is the punch matrix's (src/punch/presets.ts, the table the simulated matrix
// runs), read for the simulated presets that behave as the lab routers do by their truth
// (NAT_TRUTH against PRESET_ROUTERS), never copied. Shared by test/lab/punch.test.ts and
// `npm run bench -- --only punch`.
import { fileURLToPath } from 'node:url';
import { waitForLine, type Child } from '../../../bench/lib/children.ts';
import type { Endpoint } from '../../../src/net/index.ts';
import { resolveBehaviour, type NatOptions } from '../../../src/net/sim/index.ts';
import { PRESETS, PRESET_ROUTERS, expectedOutcome, type PathMethod, type Preset, type PunchOutcome } from '../../../src/punch/index.ts';
import { NAT_TRUTH, hasPublicLan, type NatPreset, type NatTruth } from './nat-rules.ts';
import { parseJson } from './probes.ts';
import type { Host, Lab, Router } from './topology.ts';

const CLI = fileURLToPath(new URL('../../../src/cli/main.ts', import.meta.url));
const PEER = fileURLToPath(new URL('../bin/punch-peer.ts', import.meta.url));
/** waitForLine wants a signal; its own timeout bounds every wait. */
const NEVER = new AbortController().signal;
const READY_MS = 15_000;

/** The presets of the lab matrix: every kind of NAT the issue names, both symmetric allocators. */
export const PUNCH_PRESETS = ['open', 'full-cone', 'restricted-cone', 'port-restricted-cone', 'symmetric-sequential', 'symmetric'] as const satisfies readonly NatPreset[];
export type PunchPreset = (typeof PUNCH_PRESETS)[number];

/** The TURN user the server knows and the peers use. */
export const PUNCH_TURN_USER = 'lab:labpass';
/** Application messages each peer sends and wants answered over the path. */
export const PUNCH_MESSAGES = 5;

/** One matrix row: a at the first preset (controlling), b at the second; or both behind one NAT. */
export interface PunchPair {
  readonly a: PunchPreset;
  readonly b: PunchPreset;
  /** Both peers on the LAN of one router with preset `a` (= `b`), hairpinning off. */
  readonly sameNat: boolean;
}

/** What a pair should end on. */
export interface PunchExpectation {
  /** The matrix table's outcome: the plan both sides must derive. */
  readonly outcome: PunchOutcome;
  /** The path kind the pair must end on. */
  readonly kind: 'direct' | 'relay';
  /** The path's method when only one is right (host checks on a shared LAN). */
  readonly method: PathMethod | undefined;
}

/** NATs with two peers behind each: one that keeps ports, one that does not (hairpinning off: the host candidates must meet). */
const SAME_NAT: readonly PunchPreset[] = ['port-restricted-cone', 'symmetric'];

/** Every unordered pair of PUNCH_PRESETS (the stricter NAT second), then two peers behind one NAT of SAME_NAT. */
export function punchPairs(): PunchPair[] {
  const pairs: PunchPair[] = PUNCH_PRESETS.flatMap((a, i) => PUNCH_PRESETS.slice(i).map((b) => ({ a, b, sameNat: false })));
  return [...pairs, ...SAME_NAT.map((p) => ({ a: p, b: p, sameNat: true }))];
}

/** The pair's display name. */
export function pairName(p: PunchPair): string {
  return p.sameNat ? `${p.a} (both behind it)` : `${p.a} × ${p.b}`;
}

/** Whether a simulated router does to UDP what a lab router does according to its truth (RFC 4787 mapping, filtering, port allocation). */
function behavesAs(truth: NatTruth, options: NatOptions): boolean {
  const r = resolveBehaviour(options);
  if (!truth.udp || r.blockUdp) return !truth.udp && r.blockUdp;
  if (!truth.natted) return r.kind === 'open' ? truth.filtering === undefined : r.kind === 'firewall' && r.filtering === truth.filtering;
  return r.kind === 'nat' && r.mapping === truth.mapping && r.filtering === truth.filtering && r.portAllocation.kind === truth.ports;
}

/** The punch matrix's preset (one simulated router, PRESET_ROUTERS) that behaves as the lab preset does (NAT_TRUTH); undefined when none does. */
export function simPresetOf(preset: NatPreset): Preset | undefined {
  return PRESETS.find((s) => PRESET_ROUTERS[s].length === 1 && behavesAs(NAT_TRUTH[preset], PRESET_ROUTERS[s][0]!));
}

/** The pair's expected outcome: the matrix table's (expectedOutcome) for the presets that behave alike; behind one NAT, the host candidates meet on the LAN. */
export function expectPair(p: PunchPair): PunchExpectation {
  const [a, b] = [simPresetOf(p.a), simPresetOf(p.b)];
  if (a === undefined || b === undefined) throw new Error(`${pairName(p)}: no preset of the punch matrix behaves as this lab router`);
  const outcome = expectedOutcome(a, b);
  if (p.sameNat) return { outcome, kind: 'direct', method: 'host' };
  return { outcome, kind: outcome === 'relay' ? 'relay' : 'direct', method: undefined };
}

/** What test/lab/bin/punch-peer.ts prints once its messages were answered. */
export interface PeerReport {
  readonly name: string;
  /** The plan's outcome and why. */
  readonly outcome: PunchOutcome;
  readonly reason: string;
  readonly path: { readonly kind: 'direct' | 'relay'; readonly method: PathMethod; readonly local: string; readonly remote: string };
  /** From the PUNCH order's start moment to the nomination (the engine's stats.connectMs). */
  readonly punchMs: number;
  /**
   * From the call to connect() to the connection: registration, gathering and the punch
   * for the dialer (a); the listener (b) also waited for the dialer to start.
   */
  readonly totalMs: number;
  /** Datagrams the punch engine sent up to the report (checks, answers, frames). */
  readonly packetsSent: number;
  readonly checksSent: number;
  readonly birthdaySockets: number;
  /** Messages sent, answered by the peer, and the peer's messages this side answered. */
  readonly messages: { readonly sent: number; readonly answered: number; readonly received: number };
  /** Median round trip of the answered messages over the path, ms; -1 when none was answered. */
  readonly rttMs: number;
}

/** The matrix lab: the server and the hosts every row uses. */
export interface PunchLab {
  readonly lab: Lab;
  readonly server: Host;
  /** `natkit serve`'s shared UDP endpoint (A1:3478). */
  readonly serve: Endpoint;
  /** Reloads the NAT routers for `pair` and returns the two hosts that punch (a first). */
  configure(pair: PunchPair): Promise<readonly [Host, Host]>;
}

interface Site {
  nat: Router;
  readonly natHosts: readonly Host[];
  readonly openRouter: Router;
  readonly open: Host;
}

/**
 * Builds the matrix lab in `lab` and starts `natkit serve` on the server host: two
 * addresses (RFC 5780), the TURN user, relaying to the lab internet (198.18.0.0/15, which
 * the default peer policy denies as a benchmarking range), rendezvous.
 */
export async function buildPunchLab(lab: Lab): Promise<PunchLab> {
  const server = await lab.publicHost('server', { addresses: 2 });
  const site = async (name: 'a' | 'b'): Promise<Site> => {
    const nat = await lab.router(`nat-${name}`, { preset: 'port-restricted-cone' });
    const natHosts = name === 'a' ? [await lab.client('a', nat), await lab.client('a2', nat)] : [await lab.client('b', nat)];
    const openRouter = await lab.router(`open-${name}`, { preset: 'open' });
    return { nat, natHosts, openRouter, open: await lab.client(`open-${name}-c`, openRouter) };
  };
  const sites = [await site('a'), await site('b')] as const;
  // The lab routes public LANs from public hosts only: the peers' routers need them too.
  const routers = sites.flatMap((s) => [s.nat, s.openRouter]);
  for (const r of routers) {
    for (const { openRouter: o } of sites) if (o !== r) await r.ns.ip(`route add ${o.lanCidr} via ${o.address}`);
  }
  const [a1, a2] = server.addresses;
  const child = lab.spawn(server.ns, 'natkit-serve', process.execPath, [
    CLI, 'serve', '-l', a1!, '-l', a2!, '--user', PUNCH_TURN_USER, '--realm', 'lab', '--allow-peer', '198.18.0.0/15', '--json',
  ]);
  await waitForLine(child, (line) => parseJson<{ listening: unknown[] }>(line, (v) => Array.isArray(v.listening)), READY_MS, NEVER);
  const host = async (s: Site, preset: PunchPreset, hostIndex: number): Promise<Host> => {
    if (hasPublicLan(preset)) return s.open;
    s.nat = await lab.loadRules(s.nat, { preset, hairpinning: false });
    return s.natHosts[hostIndex]!;
  };
  return {
    lab, server, serve: { address: a1!, port: 3478, family: 4 },
    async configure(pair) {
      const [sa, sb] = sites;
      if (pair.sameNat) return [await host(sa, pair.a, 0), await host(sa, pair.a, 1)];
      return [await host(sa, pair.a, 0), await host(sb, pair.b, 0)];
    },
  };
}

/** Limits of one pair's run. */
export interface PairRunOptions {
  /** The whole run (start-up, registration, punch, messages), ms. @default 40000 */
  readonly limitMs?: number;
}

/** Both peers' reports, a (controlling) first. */
export type PairReports = readonly [PeerReport, PeerReport];

/**
 * Runs one pair: b registers and waits, a connects to it by name; each sends
 * PUNCH_MESSAGES messages over the path and reports once all were answered. Both are
 * stopped (stdin closed, then killed) before this returns; a peer that fails or is late rejects.
 */
export async function runPair(pl: PunchLab, hosts: readonly [Host, Host], tag: string, options: PairRunOptions = {}): Promise<PairReports> {
  const limitMs = options.limitMs ?? 40_000;
  const deadline = Date.now() + limitMs;
  const spawnPeer = (host: Host, name: string, peer: string | undefined): Child => pl.lab.spawn(host.ns, `punch-peer ${name}`, process.execPath, [
    PEER, '--server', `${pl.serve.address}:${pl.serve.port}`, '--bind', host.address, '--user', PUNCH_TURN_USER, '--name', name,
    '--messages', String(PUNCH_MESSAGES), ...(peer === undefined ? [] : ['--peer', peer]),
  ]);
  const nameA = `a-${tag}`;
  const nameB = `b-${tag}`;
  const b = spawnPeer(hosts[1], nameB, undefined);
  const children: Child[] = [b];
  try {
    await waitForLine(b, (line) => parseJson<{ registered: string }>(line, (v) => typeof v.registered === 'string'), READY_MS, NEVER);
    const a = spawnPeer(hosts[0], nameA, nameB);
    children.push(a);
    const report = (c: Child): Promise<PeerReport> =>
      waitForLine(c, (line) => parseJson<PeerReport>(line, (v) => typeof v.punchMs === 'number'), Math.max(0, deadline - Date.now()), NEVER);
    const [ra, rb] = await Promise.all([report(a), report(b)]);
    return [ra, rb];
  } finally {
    for (const c of children) c.process.stdin?.end();
    await Promise.all(children.map((c) => pl.lab.stop(c, 3000)));
  }
}

/** What is wrong with a pair's reports, per side (a, b): the plan, the kind of path (and method), unanswered messages; empty when right. */
export function judgePair(e: PunchExpectation, reports: PairReports): string[] {
  const wrong: string[] = [];
  for (const [i, r] of reports.entries()) {
    const side = i === 0 ? 'a' : 'b';
    if (r.outcome !== e.outcome) wrong.push(`${side} planned ${r.outcome}, expected ${e.outcome} (${r.reason})`);
    if (r.path.kind !== e.kind) wrong.push(`${side} ended on ${r.path.kind} (${r.path.method}), expected ${e.kind}`);
    if (e.method !== undefined && r.path.method !== e.method) wrong.push(`${side} found its path by ${r.path.method}, expected ${e.method}`);
    if (r.messages.answered !== r.messages.sent) wrong.push(`${side}: ${r.messages.answered} of ${r.messages.sent} messages answered`);
  }
  return wrong;
}
