// `natkit chat` in the real lab: `natkit serve` (STUN on two addresses, TURN, rendezvous)
// on a public host, and one chat member per kernel NAT router, each running
// `natkit chat ROOM --json` in its LAN host's namespace with a state directory of its own.
// The JSON lines a member prints are parsed into events; commands go to its stdin. Every
// wait is bounded, and a failure names the member, its exit status, its stderr and its
// last events. What a pair of members should end on is the punch matrix's (expectPair in
// punch-lab.ts: src/punch/presets.ts read through the routers' truth), never copied.
import { mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sleep, waitForLine, type Child } from '../../../bench/lib/children.ts';
import { classicType } from '../../../src/nat/index.ts';
import { parseEndpoint, type Endpoint } from '../../../src/net/index.ts';
import { NAT_TRUTH, hasPublicLan, type NatPreset } from './nat-rules.ts';
import { parseJson } from './probes.ts';
import { PUNCH_PRESETS, PUNCH_TURN_USER, expectPair, type PunchExpectation, type PunchPreset } from './punch-lab.ts';
import type { Host, Lab, Router } from './topology.ts';

const CLI = fileURLToPath(new URL('../../../src/cli/main.ts', import.meta.url));
/** waitForLine wants a signal; its own timeout bounds every wait. */
const NEVER = new AbortController().signal;
const SERVE_READY_MS = 30_000;
/** How often a wait looks at the events again, ms. */
const POLL_MS = 20;
/** Events a failure message shows per member. */
const TAIL_EVENTS = 12;

/** A path as `natkit chat --json` reports it. */
export interface ChatPathJson {
  readonly kind: 'direct' | 'relay';
  readonly method: string;
  readonly local: string;
  readonly remote: string;
}

/** A peer as `natkit chat --json` reports it (joined, who). */
export interface ChatPeerJson {
  readonly name: string;
  readonly fingerprint: string;
  readonly inRoom: boolean;
  readonly path: ChatPathJson;
}

/** The events of `natkit chat --json` this lab reads; every one has "event" and "atMs". */
export type ChatEventJson = { readonly atMs: number } & (
  | { readonly event: 'ready'; readonly name: string; readonly room: string | null; readonly fingerprint: string; readonly nat: string; readonly history: readonly unknown[] }
  | { readonly event: 'progress'; readonly step: string; readonly detail: string; readonly peer?: string }
  | { readonly event: 'joined'; readonly peer: ChatPeerJson; readonly note: string }
  | { readonly event: 'left'; readonly peer: string; readonly reason?: string }
  | { readonly event: 'refused'; readonly peer: string; readonly fingerprint: string; readonly reason: string }
  | { readonly event: 'path'; readonly peer: string; readonly path: ChatPathJson }
  | { readonly event: 'message'; readonly id: string; readonly from: string; readonly room: string | null; readonly text: string; readonly sentAt: number }
  | { readonly event: 'sent'; readonly id: string; readonly room: string | null; readonly to: string | null; readonly text: string; readonly recipients: readonly string[] }
  | { readonly event: 'delivered'; readonly id: string; readonly by: string; readonly waiting: number }
  | { readonly event: 'undelivered'; readonly id: string; readonly to: string; readonly reason: string }
  | { readonly event: 'who'; readonly peers: readonly ChatPeerJson[] }
  | { readonly event: 'notice'; readonly text: string }
  | { readonly event: 'error'; readonly message: string; readonly code?: string }
);

/** The event named `E`. */
export type ChatEventOf<E extends ChatEventJson['event']> = Extract<ChatEventJson, { readonly event: E }>;

/** A command `natkit chat --json` reads on stdin. */
export type ChatCommand =
  | { readonly type: 'send'; readonly text: string; readonly to?: string }
  | { readonly type: 'who' }
  | { readonly type: 'path'; readonly peer?: string }
  | { readonly type: 'quit' };

/** One chat member's place in the lab: its NAT router and the LAN host behind it. */
export interface ChatSite {
  readonly name: string;
  readonly preset: NatPreset;
  readonly router: Router;
  readonly host: Host;
}

/** The chat lab: the server host, `natkit serve` on it, and one site per member. */
export interface ChatLab {
  readonly lab: Lab;
  readonly server: Host;
  /** `natkit serve`'s shared UDP endpoint (A1:3478). */
  readonly serve: Endpoint;
  readonly serveChild: Child;
  readonly sites: readonly ChatSite[];
}

/**
 * Builds the lab: a public server host with two addresses running `natkit serve` (the TURN
 * user of the punch matrix, relaying to the lab internet 198.18.0.0/15, which the default
 * peer policy denies as a benchmarking range), and for each member a NAT router with its
 * preset (hairpinning off) and one host on its LAN. Presets with a public LAN are refused:
 * this lab gives every member a NAT.
 */
export async function buildChatLab(lab: Lab, members: readonly { readonly name: string; readonly preset: NatPreset }[]): Promise<ChatLab> {
  const server = await lab.publicHost('server', { addresses: 2 });
  const sites: ChatSite[] = [];
  for (const { name, preset } of members) {
    if (hasPublicLan(preset)) throw new Error(`${name}: the chat lab puts every member behind a NAT, ${preset} has none`);
    const router = await lab.router(`nat-${name}`, { preset, hairpinning: false });
    sites.push({ name, preset, router, host: await lab.client(name, router) });
  }
  const [a1, a2] = server.addresses;
  const serveChild = lab.spawn(server.ns, 'natkit-serve', process.execPath, [
    CLI, 'serve', '-l', a1!, '-l', a2!, '--user', PUNCH_TURN_USER, '--realm', 'lab', '--allow-peer', '198.18.0.0/15', '--json',
  ]);
  await waitForLine(serveChild, (line) => parseJson<{ listening: unknown[] }>(line, (v) => Array.isArray(v.listening)), SERVE_READY_MS, NEVER);
  return { lab, server, serve: { address: a1!, port: 3478, family: 4 }, serveChild, sites };
}

/** What a member's process is started with besides its site. */
export interface ChatStartOptions {
  /** The room to join; absent: private messages only. */
  readonly room?: string;
}

/** A running `natkit chat --json`: its events so far, its stdin, bounded waits. */
export class ChatProcess {
  readonly name: string;
  readonly site: ChatSite;
  readonly child: Child;
  /** A directory of this member alone (its key, known-peers.json, history), inside the lab's temporary directory. */
  readonly stateDir: string;
  /** Date.now() when the process was spawned. */
  readonly startedAt: number;
  private readonly parsed: ChatEventJson[] = [];
  /** Stdout lines that are no event (there should be none). */
  private readonly stray: string[] = [];
  private seen = 0;

  constructor(site: ChatSite, child: Child, stateDir: string, startedAt: number) {
    this.name = site.name;
    this.site = site;
    this.child = child;
    this.stateDir = stateDir;
    this.startedAt = startedAt;
  }

  /** Every event printed so far, in order. */
  events(): readonly ChatEventJson[] {
    for (; this.seen < this.child.lines.length; this.seen++) {
      const line = this.child.lines[this.seen]!;
      const event = parseJson<ChatEventJson>(line, (v) => typeof v.event === 'string' && typeof v.atMs === 'number');
      if (event === undefined) this.stray.push(line);
      else this.parsed.push(event);
    }
    return this.parsed;
  }

  /** The events named `name`, in order. */
  eventsOf<E extends ChatEventJson['event']>(name: E): ChatEventOf<E>[] {
    return this.events().filter((e): e is ChatEventOf<E> => e.event === name);
  }

  /** Stdout lines that did not parse as events. */
  strayLines(): readonly string[] {
    this.events();
    return this.stray;
  }

  /** Writes one command line to the process's stdin. */
  command(c: ChatCommand): void {
    if (this.child.hasExited()) throw new Error(`${this.name}: cannot send ${JSON.stringify(c)}, the process exited`);
    this.child.process.stdin!.write(`${JSON.stringify(c)}\n`);
  }

  /**
   * Polls the events (every POLL_MS, at most `timeoutMs`) until `pick` returns something;
   * rejects naming `what` on timeout or when the process exits first (describe() tells the rest).
   */
  async waitFor<T>(what: string, pick: (events: readonly ChatEventJson[]) => T | undefined, timeoutMs: number): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    // Bounded twice: by the deadline, and by the number of polls it allows.
    for (let polls = Math.ceil(timeoutMs / POLL_MS) + 1; polls > 0; polls--) {
      const found = pick(this.events());
      if (found !== undefined) return found;
      if (this.child.hasExited()) throw new Error(`${this.name} exited while waiting for ${what}`);
      if (Date.now() >= deadline) break;
      await sleep(Math.min(POLL_MS, Math.max(1, deadline - Date.now())));
    }
    const last = pick(this.events());
    if (last !== undefined) return last;
    throw new Error(`${this.name}: no ${what} within ${timeoutMs} ms`);
  }

  /** Resolves with the exit code (or signal) within `timeoutMs`, else rejects (the process is left to the lab's cleanup). */
  async exitWithin(timeoutMs: number): Promise<number | string> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => reject(new Error(`${this.name} still running ${timeoutMs} ms after it was told to quit`)), timeoutMs);
    });
    try {
      return await Promise.race([this.child.exited, late]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** The member for a failure message: where it runs, its exit status, its stderr, its last events. */
  describe(): string {
    const events = this.events();
    const status = this.child.hasExited() ? 'exited' : 'running';
    const stray = this.stray.length === 0 ? '' : `\n  stray stdout: ${this.stray.slice(-5).map((l) => JSON.stringify(l)).join(' ')}`;
    return [
      `--- ${this.name} (${this.site.preset}, ${this.site.host.address}; ${status}; ${events.length} events)`,
      `  stderr: ${this.child.stderrTail().trim().split('\n').join('\n          ') || '(none)'}`,
      `  last events:`,
      ...events.slice(-TAIL_EVENTS).map((e) => `    ${JSON.stringify(e)}`),
    ].join('\n') + stray;
  }
}

/** Starts `natkit chat [ROOM] --name NAME --json` on `site`'s host, with the lab's TURN user and a fresh state directory. */
export function startChat(cl: ChatLab, site: ChatSite, options: ChatStartOptions = {}): ChatProcess {
  const stateDir = mkdtempSync(join(cl.lab.tempDir(), `chat-${site.name}-`));
  const [user, pass] = PUNCH_TURN_USER.split(':') as [string, string];
  const startedAt = Date.now();
  const child = cl.lab.spawn(site.host.ns, `natkit chat ${site.name}`, process.execPath, [
    CLI, 'chat', ...(options.room === undefined ? [] : [options.room]), '--name', site.name,
    '--server', `${cl.serve.address}:${cl.serve.port}`, '--turn-user', user, '--turn-pass', pass,
    '--local', site.host.address, '--state', stateDir, '--json',
  ]);
  return new ChatProcess(site, child, stateDir, startedAt);
}

/** Every member's description, for an assertion message. */
export function describeAll(members: readonly ChatProcess[]): string {
  return members.map((m) => m.describe()).join('\n');
}

/** The punch matrix's expectation for two members' NATs (the pair ordered as the matrix orders its rows). */
export function expectChatPair(a: NatPreset, b: NatPreset): PunchExpectation {
  const index = (p: NatPreset): number => PUNCH_PRESETS.indexOf(p as PunchPreset);
  if (index(a) < 0 || index(b) < 0) throw new Error(`${a} × ${b}: the punch matrix has no row for this pair`);
  const [x, y] = index(a) <= index(b) ? [a, b] : [b, a];
  return expectPair({ a: x as PunchPreset, b: y as PunchPreset, sameNat: false });
}

/**
 * What `ready.nat` (free text) must name behind `preset`: the classic type of the router's
 * truth as a word of its own, and its RFC 4787 mapping and filtering ("mapping …", "filtering …").
 */
export function expectedNatFacts(preset: NatPreset): string[] {
  const t = NAT_TRUTH[preset];
  const mapping = t.mapping ?? 'unknown';
  const filtering = t.filtering ?? 'endpoint-independent';
  return [classicType({ udp: t.udp, natted: t.natted, mapping, filtering }), `mapping ${mapping}`, `filtering ${filtering}`];
}

/** The facts of expectedNatFacts() that `line` does not state, each as whole words (the facts are [a-z -] only). */
export function missingNatFacts(line: string, preset: NatPreset): string[] {
  return expectedNatFacts(preset).filter((fact) => !new RegExp(`(^|[^\\w-])${fact}($|[^\\w-])`).test(line));
}

/**
 * What is wrong with the path `self` reports toward `peer`, judged by the lab's addresses;
 * empty when right. Direct: our end is our own LAN address, the far end is the peer's NAT's
 * public address. Relayed: one end is an address of the server (the relay).
 */
export function judgePathEnds(path: ChatPathJson, self: ChatSite, peer: ChatSite, server: Host): string[] {
  const wrong: string[] = [];
  const local = parseEndpoint(path.local, 0);
  const remote = parseEndpoint(path.remote, 0);
  if (path.kind === 'direct') {
    if (local.address !== self.host.address) wrong.push(`${self.name}→${peer.name}: direct path from ${path.local}, expected ${self.name}'s own address ${self.host.address}`);
    if (remote.address !== peer.router.publicAddress) wrong.push(`${self.name}→${peer.name}: direct path to ${path.remote}, expected ${peer.name}'s NAT ${peer.router.publicAddress}`);
  } else if (!server.addresses.includes(local.address) && !server.addresses.includes(remote.address)) {
    wrong.push(`${self.name}→${peer.name}: relayed path ${path.local} → ${path.remote} has no end at the server (${server.addresses.join(', ')})`);
  }
  return wrong;
}

/** A UDP flow through a NAT router as its conntrack table holds it, seen from the LAN host's side. */
export interface NatFlow {
  /** The LAN host's socket. */
  readonly internal: string;
  /** The far end on the internet. */
  readonly peer: string;
  /** The router's public endpoint for `internal` toward `peer` (what the far end sees). */
  readonly external: string;
  /** Packets went both ways (no [UNREPLIED]). */
  readonly replied: boolean;
}

/**
 * The router's UDP flows between its LAN and the internet (`conntrack -L -p udp`), whoever
 * sent first: a LAN host's (SNAT: the reply tuple's destination is the external endpoint) or
 * an outside one's through a port forward or full-cone DNAT (the original destination is).
 */
export async function natFlows(router: Router): Promise<NatFlow[]> {
  const out = await router.ns.exec('conntrack', ['-L', '-p', 'udp']);
  const lanPrefix = router.lanCidr.split('.').slice(0, 3).join('.') + '.';
  const flows: NatFlow[] = [];
  for (const line of out.split('\n')) {
    const src = [...line.matchAll(/\bsrc=(\S+)/g)].map((m) => m[1]!);
    const dst = [...line.matchAll(/\bdst=(\S+)/g)].map((m) => m[1]!);
    const sport = [...line.matchAll(/\bsport=(\d+)/g)].map((m) => m[1]!);
    const dport = [...line.matchAll(/\bdport=(\d+)/g)].map((m) => m[1]!);
    if (src.length < 2 || dst.length < 2 || sport.length < 2 || dport.length < 2) continue;
    const origSrc = `${src[0]!}:${sport[0]!}`;
    const origDst = `${dst[0]!}:${dport[0]!}`;
    const replyDst = `${dst[1]!}:${dport[1]!}`;
    const replySrc = `${src[1]!}:${sport[1]!}`;
    const replied = !line.includes('[UNREPLIED]');
    if (src[0]!.startsWith(lanPrefix)) flows.push({ internal: origSrc, peer: origDst, external: replyDst, replied });
    else if (src[1]!.startsWith(lanPrefix)) flows.push({ internal: replySrc, peer: origSrc, external: origDst, replied });
  }
  return flows;
}
