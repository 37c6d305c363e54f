// The real NAT lab (DESIGN.md §3.3): network namespaces joined by veth pairs and bridges,
// kernel NAT in router namespaces, and child processes running inside them.
//
// Layout (shared/lab/NAT-RECIPES.md "Topology that worked"):
//   <id>-internet   bridge br0, 198.18.0.0/24: the public internet
//   public hosts    eth0 on br0 (198.18.0.10, .11, …), no default route
//   routers         wan on br0 (198.18.0.101, …) or on another router's LAN (NAT behind NAT),
//                   bridge `lan` with x.y.N.1/24, ip_forward on, nftables `table ip lab`
//   clients         eth0 on a router's lan (x.y.N.2, …), default route via the router
// LANs are 100.64.N.0/24; a router without NAT gets a public LAN 198.19.N.0/24 that every
// public host routes to it. Every veth is created with one end in each namespace, so
// nothing ever appears in the host's own namespace; interface names (wan, lan, eth0, vN)
// only have to be unique inside their namespace.
//
// Names are `nkl-<pid>-<random>-<role>`, unique to the run. The lab remembers every
// namespace (before creating it) and every child process, and removes exactly those on
// close(), and synchronously at process exit and on SIGINT, SIGTERM and SIGHUP.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ChildRegistry, type Child } from '../../../bench/lib/children.ts';
import { assertLabAvailable, run, type RunOptions } from './command.ts';
import { hasPublicLan, routerRuleset, type NatPreset } from './nat-rules.ts';

/** Prefix of every namespace a lab creates. */
export const LAB_PREFIX = 'nkl-';

/** Options of Lab.create(). */
export interface LabOptions {
  /** Aborting kills the system command in flight. */
  readonly signal?: AbortSignal;
  /** Most time one system command may take. @default 10000 */
  readonly commandTimeoutMs?: number;
}

/** A network namespace of the lab. */
export class Namespace {
  /** The namespace's name (`ip netns list`). */
  readonly name: string;
  /** The short name the test gave it. */
  readonly role: string;
  private readonly lab: Lab;

  constructor(lab: Lab, name: string, role: string) {
    this.lab = lab;
    this.name = name;
    this.role = role;
  }

  /** Runs `ip -n NAME ARGS…` (one command) or `ip -n NAME -batch -` (several). */
  async ip(...commands: readonly string[]): Promise<void> {
    if (commands.length === 1) await this.lab.command('ip', ['-n', this.name, ...commands[0]!.split(' ')]);
    else if (commands.length > 1) await this.lab.command('ip', ['-n', this.name, '-batch', '-'], { input: `${commands.join('\n')}\n` });
  }

  /** Runs a command inside the namespace and resolves with its stdout. */
  exec(command: string, args: readonly string[], options: Omit<RunOptions, 'signal'> = {}): Promise<string> {
    return this.lab.command('ip', ['netns', 'exec', this.name, command, ...args], options);
  }

  /** Sets sysctls inside the namespace (network sysctls are per namespace); unknown keys are skipped. */
  async sysctl(settings: Readonly<Record<string, string | number>>): Promise<void> {
    await this.exec('sysctl', ['-q', '-e', '-w', ...Object.entries(settings).map(([k, v]) => `${k}=${v}`)]);
  }
}

/** A host on a segment: its namespace and addresses (the first is its main one). */
export interface Host {
  readonly ns: Namespace;
  readonly addresses: readonly string[];
  readonly address: string;
}

/** A router: NAT (or firewall) between its `wan` and its LAN. */
export interface Router extends Host {
  readonly preset: NatPreset;
  readonly hairpinning: boolean;
  /** The address the rest of the internet sees for this router's LAN (the CGN's for a router behind one). */
  readonly publicAddress: string;
  /** The LAN, as CIDR. */
  readonly lanCidr: string;
  /** The upstream router, for NAT behind NAT. */
  readonly behind: Router | undefined;
}

/** A LAN host and the routers in front of it, outermost first (a CGN, then a home router). */
export interface Site {
  readonly routers: readonly Router[];
  readonly client: Host;
}

/** A bridge in some namespace, with the /24 around it. */
class Segment {
  readonly ns: Namespace;
  readonly bridge: string;
  /** First three octets: '198.18.0'. */
  readonly prefix: string;
  /** The router's address on the segment, for a LAN. */
  readonly gateway: string | undefined;
  private ports = 0;
  /** Per kind of address ('host', 'router'): the next free last octet, and the last one of its range. */
  private readonly pools: Map<string, { next: number; last: number }>;

  constructor(ns: Namespace, bridge: string, prefix: string, gateway: string | undefined, ranges: Readonly<Record<string, readonly [number, number]>>) {
    this.ns = ns;
    this.bridge = bridge;
    this.prefix = prefix;
    this.gateway = gateway;
    this.pools = new Map(Object.entries(ranges).map(([kind, [next, last]]) => [kind, { next, last }]));
  }

  /** The next free address of a kind. */
  allocate(kind: string): string {
    const pool = this.pools.get(kind);
    if (pool === undefined || pool.next > pool.last) throw new Error(`segment ${this.prefix}.0/24 has no ${kind} addresses left`);
    return `${this.prefix}.${pool.next++}`;
  }

  /** A veth from the bridge to `host` named `ifname` there, holding `addresses`/24, up. */
  async attach(host: Namespace, ifname: string, addresses: readonly string[]): Promise<void> {
    const port = `v${++this.ports}`;
    await this.ns.ip(`link add ${port} type veth peer name ${ifname} netns ${host.name}`, `link set ${port} master ${this.bridge} up`);
    await host.ip(...addresses.map((a) => `addr add ${a}/24 dev ${ifname}`), `link set ${ifname} up`);
  }
}

/** Every lab not yet closed, for the synchronous cleanup at exit and on signals. */
const live = new Set<Lab>();
const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

function onSignal(signal: NodeJS.Signals): void {
  // Nobody else handles it: die of it after cleaning up, as without our handler.
  const alone = process.listenerCount(signal) === 1;
  for (const lab of live) lab.destroySync(); // the last one removes our handlers
  if (alone) process.kill(process.pid, signal);
}

function onExit(): void {
  for (const lab of live) lab.destroySync();
}

function track(lab: Lab): void {
  if (live.size === 0) {
    process.on('exit', onExit);
    for (const s of SIGNALS) process.on(s, onSignal);
  }
  live.add(lab);
}

function untrack(lab: Lab): void {
  if (!live.delete(lab) || live.size > 0) return;
  process.removeListener('exit', onExit);
  for (const s of SIGNALS) process.removeListener(s, onSignal);
}

const sigkill = (pid: number): void => {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // already gone
  }
};

/** A lab: the internet segment, and whatever hosts, routers and processes are added to it. */
export class Lab implements AsyncDisposable {
  /** `nkl-<pid>-<random>`: prefix of every namespace of this lab. */
  readonly id: string;
  /** The internet namespace, holding bridge br0. */
  readonly internet: Namespace;
  /** Child processes started in the lab's namespaces. */
  readonly children = new ChildRegistry();
  private readonly options: LabOptions;
  private readonly namespaces: Namespace[] = [];
  private readonly started = new Set<Child>();
  private readonly publicHosts: Host[] = [];
  private readonly publicLans: { cidr: string; via: string }[] = [];
  /** LAN segments by router namespace name. */
  private readonly lans = new Map<string, Segment>();
  private readonly wanSegment: Segment;
  private lanCount = 0;
  private dir: string | undefined;
  private closing: Promise<void> | undefined;

  private constructor(id: string, options: LabOptions) {
    this.id = id;
    this.options = options;
    this.internet = this.record('internet');
    this.wanSegment = new Segment(this.internet, 'br0', '198.18.0', undefined, { host: [10, 100], router: [101, 254] });
  }

  /** Checks that the lab can run here (throws why not), then creates the internet. */
  static async create(options: LabOptions = {}): Promise<Lab> {
    assertLabAvailable();
    const lab = new Lab(`${LAB_PREFIX}${process.pid}-${randomBytes(3).toString('hex')}`, options);
    track(lab);
    try {
      await lab.setUp(lab.internet, { bridge: true });
      await lab.internet.ip('link add br0 type bridge', 'link set br0 up');
    } catch (err) {
      await lab.close();
      throw err;
    }
    return lab;
  }

  /** Every namespace name of this lab, in creation order. */
  get namespaceNames(): readonly string[] {
    return this.namespaces.map((n) => n.name);
  }

  /** A public host on the internet with `addresses` of its own (198.18.0.10, .11, … unless named). */
  async publicHost(role: string, options: { readonly addresses?: readonly string[] | number } = {}): Promise<Host> {
    const want = options.addresses ?? 1;
    const addresses = typeof want === 'number' ? Array.from({ length: want }, () => this.wanSegment.allocate('host')) : want;
    const ns = await this.namespace(role);
    await this.wanSegment.attach(ns, 'eth0', addresses);
    await Promise.all(this.publicLans.map((l) => ns.ip(`route add ${l.cidr} via ${l.via}`)));
    const host = { ns, addresses, address: addresses[0]! };
    this.publicHosts.push(host);
    return host;
  }

  /**
   * A router on the internet, or behind another router (`behind`: NAT behind NAT), with
   * its LAN and the rules of `preset`.
   */
  async router(role: string, options: { readonly preset: NatPreset; readonly behind?: Router; readonly hairpinning?: boolean }): Promise<Router> {
    const { preset, behind } = options;
    const publicLan = hasPublicLan(preset);
    if (publicLan && behind !== undefined) throw new Error(`a ${preset} router has a public LAN: it cannot sit behind ${behind.ns.role}`);
    const upstream = behind === undefined ? this.wanSegment : this.lanOf(behind);
    const wanAddress = upstream.allocate(behind === undefined ? 'router' : 'host');
    const n = ++this.lanCount;
    if (n > 99) throw new Error('a lab has at most 99 LANs');
    const prefix = publicLan ? `198.19.${n}` : `100.64.${n}`;
    const lanCidr = `${prefix}.0/24`;
    const ns = await this.namespace(role, { forwarding: true, bridge: true });
    await upstream.attach(ns, 'wan', [wanAddress]);
    await ns.ip('link add lan type bridge', `addr add ${prefix}.1/24 dev lan`, 'link set lan up',
      ...(upstream.gateway === undefined ? [] : [`route add default via ${upstream.gateway}`]));
    const router: Router = {
      ns, addresses: [wanAddress], address: wanAddress, preset, hairpinning: options.hairpinning ?? false, lanCidr, behind,
      publicAddress: behind?.publicAddress ?? wanAddress,
    };
    this.lans.set(ns.name, new Segment(ns, 'lan', prefix, `${prefix}.1`, { host: [2, 254] }));
    await this.loadRules(router);
    if (publicLan) {
      this.publicLans.push({ cidr: lanCidr, via: wanAddress });
      await Promise.all(this.publicHosts.map((h) => h.ns.ip(`route add ${lanCidr} via ${wanAddress}`)));
    }
    return router;
  }

  /** A host on `router`'s LAN (x.y.N.2, .3, …) with its default route via the router. */
  async client(role: string, router: Router): Promise<Host> {
    const lan = this.lanOf(router);
    const address = lan.allocate('host');
    const ns = await this.namespace(role);
    await lan.attach(ns, 'eth0', [address]);
    await ns.ip(`route add default via ${lan.gateway!}`);
    return { ns, addresses: [address], address };
  }

  /**
   * Loads `router`'s rules again (the same preset and hairpinning, or new ones) in one
   * nftables transaction, then flushes its conntrack table so no old mapping survives.
   * Resolves with the router as now configured (the old object names the same namespace).
   */
  async loadRules(router: Router, change: { readonly preset?: NatPreset; readonly hairpinning?: boolean } = {}): Promise<Router> {
    const preset = change.preset ?? router.preset;
    if (hasPublicLan(preset) !== hasPublicLan(router.preset)) throw new Error(`${router.preset} and ${preset} need different LAN address plans`);
    const hairpinning = change.hairpinning ?? router.hairpinning;
    const rules = routerRuleset({ preset, wanAddress: router.address, lanCidr: router.lanCidr, hairpinning });
    await router.ns.exec('nft', ['-f', '-'], { input: rules });
    await router.ns.exec('conntrack', ['-F']);
    return { ...router, preset, hairpinning };
  }

  /** A fresh namespace of this lab: loopback up, IPv6 off; forwarding only when asked. */
  async namespace(role: string, options: { readonly forwarding?: boolean; readonly bridge?: boolean } = {}): Promise<Namespace> {
    if (!/^[a-z0-9][a-z0-9-]{0,31}$/.test(role)) throw new Error(`namespace role: expected 1–32 of [a-z0-9-], got ${JSON.stringify(role)}`);
    if (this.namespaces.some((n) => n.role === role)) throw new Error(`namespace role ${role} is taken in lab ${this.id}`);
    const ns = this.record(role);
    await this.setUp(ns, options);
    return ns;
  }

  /**
   * Starts `command` inside `ns` as a tracked child (stopped on close(), killed at exit;
   * with setpriv it also dies with this process). The PID is the command's own: neither
   * setpriv nor `ip netns exec` forks.
   */
  spawn(ns: Namespace, name: string, command: string, args: readonly string[]): Child {
    this.throwIfClosed();
    const child = this.children.spawn(`${name} in ${ns.role}`, 'ip', ['netns', 'exec', ns.name, command, ...args]);
    this.started.add(child);
    void child.exited.then(() => this.started.delete(child));
    return child;
  }

  /** Stops a child by its PID: SIGTERM, then SIGKILL after `graceMs`. */
  async stop(child: Child, graceMs = 2000): Promise<void> {
    await this.children.stop(child, graceMs);
  }

  /** A temporary directory of this lab (pid files, databases), removed on close. */
  tempDir(): string {
    this.throwIfClosed();
    this.dir ??= mkdtempSync(join(tmpdir(), `${this.id}-`));
    return this.dir;
  }

  /** Runs a system command with the lab's timeout and signal. */
  command(command: string, args: readonly string[], options: Omit<RunOptions, 'signal'> = {}): Promise<string> {
    return run(command, args, {
      timeoutMs: this.options.commandTimeoutMs ?? 10_000,
      ...options,
      ...(this.options.signal && { signal: this.options.signal }),
    });
  }

  /**
   * Stops every child (SIGTERM, then SIGKILL), kills whatever else still runs in the
   * lab's namespaces, deletes the namespaces (their veths go with them) and the temp
   * directory. Idempotent; rejects with every failure after trying everything.
   */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** close() for an exiting process: synchronous, SIGKILL only. */
  destroySync(): void {
    this.children.killAll();
    for (const ns of [...this.namespaces].reverse()) {
      for (const pid of this.pidsSync(ns)) sigkill(pid);
      if (existsSync(`/run/netns/${ns.name}`)) spawnSync('ip', ['netns', 'del', ns.name], { timeout: 5000 });
    }
    this.namespaces.length = 0;
    if (this.dir !== undefined) rmSync(this.dir, { recursive: true, force: true });
    this.dir = undefined;
    untrack(this);
  }

  private async shutdown(): Promise<void> {
    const errors: unknown[] = [];
    await Promise.all([...this.started].map((c) => this.stop(c).catch((e: unknown) => void errors.push(e))));
    for (const ns of [...this.namespaces].reverse()) {
      // Namespaces are this lab's alone: whatever still runs in one was started through it.
      for (const pid of this.pidsSync(ns)) sigkill(pid);
      if (!existsSync(`/run/netns/${ns.name}`)) continue; // its creation failed
      await run('ip', ['netns', 'del', ns.name]).catch((e: unknown) => void errors.push(e));
    }
    this.namespaces.length = 0;
    if (this.dir !== undefined) rmSync(this.dir, { recursive: true, force: true });
    this.dir = undefined;
    untrack(this);
    if (errors.length > 0) throw new AggregateError(errors, `lab ${this.id}: ${errors.length} cleanup step(s) failed`);
  }

  private pidsSync(ns: Namespace): number[] {
    if (!existsSync(`/run/netns/${ns.name}`)) return [];
    const r = spawnSync('ip', ['netns', 'pids', ns.name], { encoding: 'utf8', timeout: 5000 });
    return (r.stdout ?? '').split('\n').filter((l) => /^\d+$/.test(l)).map(Number);
  }

  /** Remembers a namespace name before it exists, so cleanup covers a half-done creation. */
  private record(role: string): Namespace {
    const ns = new Namespace(this, `${this.id}-${role}`, role);
    this.namespaces.push(ns);
    return ns;
  }

  private async setUp(ns: Namespace, options: { readonly forwarding?: boolean; readonly bridge?: boolean }): Promise<void> {
    this.throwIfClosed();
    await this.command('ip', ['netns', 'add', ns.name]);
    await ns.ip('link set lo up');
    await ns.sysctl({
      'net.ipv6.conf.all.disable_ipv6': 1,
      'net.ipv6.conf.default.disable_ipv6': 1,
      // Forwarding in router namespaces only; the host's own setting is never touched.
      'net.ipv4.ip_forward': options.forwarding === true ? 1 : 0,
      // Each new namespace starts with 1 when br_netfilter is loaded: bridged frames would
      // then traverse the router's IP rules a second time.
      ...(options.bridge === true && {
        'net.bridge.bridge-nf-call-iptables': 0, 'net.bridge.bridge-nf-call-ip6tables': 0, 'net.bridge.bridge-nf-call-arptables': 0,
      }),
    });
  }

  private lanOf(router: Router): Segment {
    const lan = this.lans.get(router.ns.name);
    if (lan === undefined) throw new Error(`router ${router.ns.role} is not of lab ${this.id}`);
    return lan;
  }

  private throwIfClosed(): void {
    if (this.closing !== undefined || !live.has(this)) throw new Error(`lab ${this.id} is closed`);
  }
}
