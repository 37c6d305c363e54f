// `npm run bench -- --only turn`: TURN relay throughput and memory per allocation, natkit's
// TurnServer next to coturn's turnserver and node-turn (npm, pure JavaScript) on UDP
// loopback, with one load tool for all (bench/native/turn-load.c: an allocation, a
// permission, then a window of datagrams to a peer socket of its own that echoes back
// through the relay: ChannelData on channel 0x4000 in mode `channel`, Send indications out
// and Data indications back in mode `send`). Each server is a child on one CPU (taskset when
// possible), the tool on another. Per run and server: throughput in both modes with 100- and
// 1000-byte payloads, then memory: the server's RSS before and while the tool holds
// ALLOCATIONS allocations (one UDP socket each), divided by their number. A mode in which
// nothing at all comes back (node-turn drops ChannelData) is reported as unsupported.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { processCpuSeconds, waitForLine, type Child, type ChildRegistry } from './children.ts';
import { alignColumns, median, ratio } from './report.ts';
import { coturnPackageVersion } from './servers.ts';
import { freeUdpPort, waitForStun } from './stun-probe.ts';

const SOURCE = fileURLToPath(new URL('../native/turn-load.c', import.meta.url));
const BINARY = fileURLToPath(new URL('../native/build/turn-load', import.meta.url));
const NATKIT_SERVER = fileURLToPath(new URL('../servers/natkit-turn.ts', import.meta.url));
const NODE_TURN_SERVER = fileURLToPath(new URL('../servers/node-turn.ts', import.meta.url));
const READY_MS = 15_000;
/** Payload sizes measured, bytes. */
export const TURN_SIZES = [100, 1000] as const;
/** How data crosses the relay: ChannelData both ways, or Send indications out and Data indications back. */
export type TurnMode = 'channel' | 'send';
/** Modes measured, in order. */
export const TURN_MODES: readonly TurnMode[] = ['channel', 'send'];
const MODE_TEXT: Readonly<Record<TurnMode, string>> = { channel: 'ChannelData', send: 'Send/Data indications' };
/** Allocations held for the memory figure (one socket each in the tool and in the server). */
export const TURN_ALLOCATIONS = 1000;
const USER = ['--user', 'bench', '--pass', 'benchpass'] as const;
const int = (n: number): string => Math.round(n).toLocaleString('en-US');
const fix = (n: number | undefined, d: number): string => (n === undefined || Number.isNaN(n) ? '—' : n.toFixed(d));

/** The servers compared. */
export type TurnServerId = 'natkit' | 'coturn' | 'node-turn';
const SERVER_IDS: readonly TurnServerId[] = ['natkit', 'coturn', 'node-turn'];
const LABELS: Readonly<Record<TurnServerId, string>> = { natkit: 'natkit TurnServer', coturn: 'coturn turnserver', 'node-turn': 'node-turn' };
/** What the table says when a server relays nothing at all in a mode. */
const UNSUPPORTED: Readonly<Record<TurnMode, string>> = { channel: 'no ChannelData', send: 'no Send/Data indications' };

/** The installed node-turn's version, or undefined when it is not installed. */
export function nodeTurnVersion(): string | undefined {
  try {
    const pkg = createRequire(import.meta.url).resolve('node-turn/package.json');
    return (JSON.parse(readFileSync(pkg, 'utf8')) as { version?: string }).version ?? '?';
  } catch {
    return undefined;
  }
}

/** What the tool prints for one throughput run (bench/native/turn-load.c). */
export interface TurnLoad {
  readonly mode: TurnMode;
  readonly size: number;
  readonly sent: number;
  readonly received: number;
  readonly lost: number;
  /** Echoes back per second: each is two datagrams through the server. */
  readonly round_trips_per_s: number;
  /** Datagrams the server relayed per second, both directions. */
  readonly relayed_pps: number;
  /** Payload through the server, both directions, Mbit/s. */
  readonly relayed_mbps: number;
  readonly loss_pct: number;
  readonly p50_us: number;
  readonly p99_us: number;
  readonly generator_cpu_pct: number;
}

/** One server, one run. */
export interface TurnRun {
  readonly run: number;
  readonly loads: readonly { readonly load: TurnLoad; readonly serverCpuPct: number | undefined }[];
  /** RSS growth per allocation, KiB; undefined when not all were granted. */
  readonly kibPerAllocation: number | undefined;
}

/** Medians of one server in one mode at one payload size. */
export interface TurnMedian {
  readonly mode: TurnMode;
  readonly size: number;
  readonly pps: number;
  readonly mbps: number;
  readonly lossPct: number;
  readonly p50Us: number;
  readonly p99Us: number;
  readonly serverCpuPct: number | undefined;
}

/** Everything about one server. */
export interface TurnServerResult {
  readonly id: TurnServerId;
  readonly label: string;
  status: 'ok' | 'not installed' | 'failed';
  error?: string;
  readonly runs: TurnRun[];
  medians?: TurnMedian[];
  /** Modes in which nothing came back in any run, with the datagrams sent (measured interval). */
  unsupported?: { readonly mode: TurnMode; readonly sent: number }[];
  kibPerAllocation?: number;
}

/** natkit's figures over another server's. */
export interface TurnRatios {
  /** Relayed datagrams/s per mode and payload size (higher is better). */
  readonly pps: readonly { readonly mode: TurnMode; readonly size: number; readonly ratio: number }[];
  /** Memory per allocation (lower is better). */
  readonly memory: number | undefined;
}

export interface TurnBenchResult {
  readonly config: { readonly durationS: number; readonly warmupS: number; readonly window: number; readonly timeoutMs: number; readonly runs: number; readonly allocations: number; readonly pinning: string };
  readonly servers: TurnServerResult[];
  readonly natkitVsCoturn: TurnRatios | undefined;
  readonly natkitVsNodeTurn: TurnRatios | undefined;
}

export interface TurnBenchOptions {
  readonly durationS: number;
  readonly warmupS: number;
  readonly window: number;
  readonly timeoutMs: number;
  readonly runs: number;
  /** CPUs for the server and the tool (taskset lists), and what that means for people. */
  readonly pinning: { readonly server: string | undefined; readonly generator: string | undefined; readonly description: string };
  readonly children: ChildRegistry;
  readonly signal: AbortSignal;
  readonly progress: (msg: string) => void;
}

/** Builds the load tool when it is older than its source; undefined when ready, else why not. */
export function prepareTurnLoad(progress: (msg: string) => void): string | undefined {
  if (existsSync(BINARY) && statSync(BINARY).mtimeMs >= statSync(SOURCE).mtimeMs) return undefined;
  const compiler = process.env.CC ?? 'cc';
  progress(`compiling ${SOURCE} → ${BINARY}`);
  mkdirSync(join(BINARY, '..'), { recursive: true });
  const r = spawnSync(compiler, ['-O2', '-Wall', '-Wextra', '-o', BINARY, SOURCE, '-lcrypto'], { encoding: 'utf8' });
  if (r.error !== undefined) return `${compiler} not found`;
  return r.status === 0 ? undefined : `${compiler} failed (needs OpenSSL's libcrypto headers, e.g. libssl-dev): ${r.stderr.trim().split('\n')[0] ?? ''}`;
}

/** A server child listening on 127.0.0.1:port. */
interface Started {
  readonly child: Child;
  readonly port: number;
  readonly cleanup?: () => void;
}

const pinned = (cpu: string | undefined, command: string, args: readonly string[]): [string, string[]] =>
  cpu === undefined ? [command, [...args]] : ['taskset', ['-c', cpu, command, ...args]];

async function startServer(id: TurnServerId, o: TurnBenchOptions): Promise<Started> {
  if (id === 'natkit') {
    const child = o.children.spawn('natkit TurnServer', ...pinned(o.pinning.server, process.execPath, [NATKIT_SERVER, '--port', '0']));
    const port = await waitForLine(child, (l) => (/^\{"ready":true,"port":(\d+)\}$/.exec(l)?.[1]), READY_MS, o.signal).catch(async (err: unknown) => {
      await o.children.stop(child, 1000);
      throw err;
    });
    return { child, port: Number(port) };
  }
  if (id === 'node-turn') {
    const child = o.children.spawn('node-turn', ...pinned(o.pinning.server, process.execPath, [NODE_TURN_SERVER, '--port', '0']));
    const port = await waitForLine(child, (l) => (/^\{"ready":true,"port":(\d+)\}$/.exec(l)?.[1]), READY_MS, o.signal).catch(async (err: unknown) => {
      await o.children.stop(child, 1000);
      throw err;
    });
    return { child, port: Number(port) };
  }
  const dir = mkdtempSync(join(tmpdir(), 'natkit-bench-coturn-turn-'));
  const port = await freeUdpPort();
  const child = o.children.spawn('coturn', ...pinned(o.pinning.server, 'turnserver', [
    '-n', '--listening-ip=127.0.0.1', `--listening-port=${port}`, '--relay-ip=127.0.0.1', '--min-port=49152', '--max-port=65535',
    '--lt-cred-mech', '--user=bench:benchpass', '--realm=bench', '--allow-loopback-peers',
    '--no-tls', '--no-dtls', '--no-tcp', '--no-cli', `--pidfile=${join(dir, 'turnserver.pid')}`, `--db=${join(dir, 'turndb')}`,
    '--log-file=stdout', '--simple-log', '--no-stdout-log',
  ]));
  const cleanup = (): void => rmSync(dir, { recursive: true, force: true });
  try {
    await waitForStun(port, { timeoutMs: 10_000, intervalMs: 50, signal: o.signal, isDead: child.hasExited });
  } catch (err) {
    await o.children.stop(child, 1000);
    cleanup();
    throw err;
  }
  return { child, port, cleanup };
}

/** Runs the tool once; resolves with its JSON line. */
async function runTool<T>(args: readonly string[], o: TurnBenchOptions, limitMs: number): Promise<T> {
  const child = o.children.spawn('turn-load', ...pinned(o.pinning.generator, BINARY, args));
  const timer = setTimeout(() => void o.children.stop(child, 500), limitMs);
  try {
    const code = await child.exited;
    o.signal.throwIfAborted();
    if (code !== 0) throw new Error(`turn-load exited with ${code}: ${child.stderrTail().trim()}`);
    const line = child.lines.find((l) => l.startsWith('{'));
    if (line === undefined) throw new Error(`turn-load printed nothing: ${child.stderrTail().trim()}`);
    return JSON.parse(line) as T;
  } finally {
    clearTimeout(timer);
  }
}

/** Resident set size of a process, KiB (VmRSS), or undefined. */
function rssKib(pid: number): number | undefined {
  try {
    const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m === null ? undefined : Number(m[1]);
  } catch {
    return undefined;
  }
}

/** The server's RSS growth while the tool holds TURN_ALLOCATIONS allocations, KiB each. */
async function memoryPerAllocation(server: Started, o: TurnBenchOptions): Promise<number | undefined> {
  const before = rssKib(server.child.pid);
  const holder = o.children.spawn('turn-load', ...pinned(o.pinning.generator, BINARY, ['--port', String(server.port), ...USER, '--allocations', String(TURN_ALLOCATIONS)]));
  try {
    const held = await waitForLine(holder, (l) => (l.startsWith('{"allocated"') ? JSON.parse(l) as { allocated: number; failed: number; last_error: number } : undefined), 120_000, o.signal);
    if (held.failed > 0) o.progress(`turn: ${held.failed} of ${TURN_ALLOCATIONS} allocations refused (last error ${held.last_error})`);
    // Let the server settle (natkit refills its spare relay sockets after the burst).
    await new Promise((resolve) => setTimeout(resolve, 500));
    const after = rssKib(server.child.pid);
    return before === undefined || after === undefined || held.failed > 0 ? undefined : (after - before) / held.allocated;
  } finally {
    holder.process.stdin?.end();
    await o.children.stop(holder, 2000);
  }
}

/** Nothing came back at all: the server does not relay this mode (it is not just slow). */
const relayedNothing = (load: TurnLoad): boolean => load.received === 0 && load.sent > 0;

/**
 * One server, one run: throughput in each mode at each size on one server process, then
 * memory on the same. A mode in which nothing comes back is not tried at the other sizes.
 */
async function measureRun(id: TurnServerId, run: number, o: TurnBenchOptions): Promise<TurnRun> {
  const server = await startServer(id, o);
  try {
    const loads: TurnRun['loads'][number][] = [];
    for (const mode of TURN_MODES) {
      for (const size of TURN_SIZES) {
        o.signal.throwIfAborted();
        const cpu0 = processCpuSeconds(server.child.pid);
        const t0 = performance.now();
        const load = await runTool<TurnLoad>([
          '--port', String(server.port), ...USER, '--size', String(size), '--window', String(o.window),
          '--duration-s', String(o.durationS), '--warmup-s', String(o.warmupS), '--timeout-ms', String(o.timeoutMs),
          ...(mode === 'send' ? ['--send'] : []),
        ], o, (o.warmupS + o.durationS) * 1000 + 20_000);
        const cpu1 = processCpuSeconds(server.child.pid);
        const serverCpuPct = cpu0 === undefined || cpu1 === undefined ? undefined : (100 * (cpu1 - cpu0)) / ((performance.now() - t0) / 1000);
        loads.push({ load, serverCpuPct });
        if (relayedNothing(load)) {
          o.progress(`turn: run ${run}/${o.runs} ${id} ${mode} ${size} B: none of ${int(load.sent)} datagrams came back: ${UNSUPPORTED[mode]}, skipping the other sizes`);
          break;
        }
        o.progress(
          `turn: run ${run}/${o.runs} ${id} ${mode} ${size} B: ${int(load.relayed_pps)} datagrams/s relayed, ` +
          `${load.relayed_mbps.toFixed(1)} Mbit/s, loss ${load.loss_pct.toFixed(2)} %, p50 ${load.p50_us} µs, server CPU ${serverCpuPct?.toFixed(0) ?? '?'} %`,
        );
      }
    }
    const kibPerAllocation = await memoryPerAllocation(server, o);
    o.progress(`turn: run ${run}/${o.runs} ${id}: ${kibPerAllocation?.toFixed(1) ?? '?'} KiB RSS per allocation (${TURN_ALLOCATIONS} held)`);
    return { run, loads, kibPerAllocation };
  } finally {
    await o.children.stop(server.child, 5000);
    server.cleanup?.();
  }
}

/**
 * Medians of each figure over the runs, per mode and size (those measured); a mode in which
 * nothing came back in any run is unsupported instead. Undefined without runs.
 */
export function summariseTurn(runs: readonly TurnRun[]): {
  medians: TurnMedian[]; unsupported: { mode: TurnMode; sent: number }[]; kibPerAllocation: number | undefined;
} | undefined {
  if (runs.length === 0) return undefined;
  const all = runs.flatMap((r) => r.loads);
  const unsupported = TURN_MODES.flatMap((mode) => {
    const inMode = all.filter((l) => l.load.mode === mode).map((l) => l.load);
    return inMode.length > 0 && inMode.every(relayedNothing) ? [{ mode, sent: inMode.reduce((n, l) => n + l.sent, 0) }] : [];
  });
  const medians = TURN_MODES.filter((mode) => !unsupported.some((u) => u.mode === mode)).flatMap((mode) => TURN_SIZES.flatMap((size): TurnMedian[] => {
    const at = all.filter((l) => l.load.mode === mode && l.load.size === size);
    if (at.length === 0) return [];
    const cpu = at.flatMap((l) => (l.serverCpuPct === undefined ? [] : [l.serverCpuPct]));
    return [{
      mode,
      size,
      pps: median(at.map((l) => l.load.relayed_pps)),
      mbps: median(at.map((l) => l.load.relayed_mbps)),
      lossPct: median(at.map((l) => l.load.loss_pct)),
      p50Us: median(at.map((l) => l.load.p50_us)),
      p99Us: median(at.map((l) => l.load.p99_us)),
      serverCpuPct: cpu.length === 0 ? undefined : median(cpu),
    }];
  }));
  const memory = runs.flatMap((r) => (r.kibPerAllocation === undefined ? [] : [r.kibPerAllocation]));
  return { medians, unsupported, kibPerAllocation: memory.length === 0 ? undefined : median(memory) };
}

/** natkit over `other` (coturn unless told), per mode and size where both have figures. */
export function turnRatios(servers: readonly TurnServerResult[], other: Exclude<TurnServerId, 'natkit'> = 'coturn'): TurnRatios | undefined {
  const natkit = servers.find((s) => s.id === 'natkit');
  const them = servers.find((s) => s.id === other);
  const at = (s: TurnServerResult | undefined, mode: TurnMode, size: number): number | undefined => s?.medians?.find((m) => m.mode === mode && m.size === size)?.pps;
  const pps = TURN_MODES.flatMap((mode) => TURN_SIZES.flatMap((size) => {
    const r = ratio(at(natkit, mode, size), at(them, mode, size));
    return r === undefined ? [] : [{ mode, size, ratio: r }];
  }));
  const memory = ratio(natkit?.kibPerAllocation, them?.kibPerAllocation);
  return pps.length === 0 && memory === undefined ? undefined : { pps, memory };
}

/** Runs every server `runs` times (interleaved) and summarises. */
export async function runTurnBench(o: TurnBenchOptions): Promise<TurnBenchResult> {
  const hasCoturn = spawnSync('sh', ['-c', 'command -v turnserver']).status === 0;
  const nodeTurn = nodeTurnVersion();
  const version: Readonly<Record<TurnServerId, string | undefined>> = { natkit: undefined, coturn: coturnPackageVersion(), 'node-turn': nodeTurn };
  const installed: Readonly<Record<TurnServerId, boolean>> = { natkit: true, coturn: hasCoturn, 'node-turn': nodeTurn !== undefined };
  const servers: TurnServerResult[] = SERVER_IDS.map((id) => ({
    id, label: version[id] === undefined ? LABELS[id] : `${LABELS[id]} ${version[id]}`, status: installed[id] ? 'ok' : 'not installed', runs: [],
  }));
  for (let run = 1; run <= o.runs; run++) {
    for (const s of servers.filter((x) => x.status === 'ok')) {
      try {
        s.runs.push(await measureRun(s.id, run, o));
      } catch (err) {
        if (o.signal.aborted) throw err;
        s.status = 'failed';
        s.error = (err instanceof Error ? err.message : String(err)).split('\n')[0] ?? '';
        o.progress(`turn: ${s.id}: FAILED: ${s.error}`);
      }
    }
  }
  for (const s of servers) {
    const summary = s.status === 'ok' ? summariseTurn(s.runs) : undefined;
    if (summary === undefined) continue;
    s.medians = summary.medians;
    if (summary.unsupported.length > 0) s.unsupported = summary.unsupported;
    if (summary.kibPerAllocation !== undefined) s.kibPerAllocation = summary.kibPerAllocation;
  }
  const { durationS, warmupS, window, timeoutMs, runs } = o;
  return {
    config: { durationS, warmupS, window, timeoutMs, runs, allocations: TURN_ALLOCATIONS, pinning: o.pinning.description }, servers,
    natkitVsCoturn: turnRatios(servers, 'coturn'), natkitVsNodeTurn: turnRatios(servers, 'node-turn'),
  };
}


/** natkit over one other server, per mode: the ratios, or why there are none. */
function ratioLine(r: TurnBenchResult, other: Exclude<TurnServerId, 'natkit'>, x: TurnRatios | undefined): string | undefined {
  if (x === undefined) return undefined;
  const parts = TURN_MODES.flatMap((mode) => {
    const at = x.pps.filter((p) => p.mode === mode);
    if (at.length > 0) return [`${at.map((p, i) => `${p.ratio.toFixed(2)}× ${i === 0 ? 'datagrams/s ' : ''}at ${p.size} B`).join(', ')} with ${MODE_TEXT[mode]}`];
    const lacking = r.servers.filter((s) => (s.id === 'natkit' || s.id === other) && s.unsupported?.some((u) => u.mode === mode));
    return lacking.length === 0 ? [] : [`${MODE_TEXT[mode]}: none (${lacking.map((s) => s.id).join(', ')} unsupported)`];
  });
  if (x.memory !== undefined) parts.push(`${x.memory.toFixed(2)}× memory per allocation`);
  return `natkit / ${other}: ${parts.join('; ')}`;
}

/** The section people read. */
export function formatTurnBench(r: TurnBenchResult): string {
  const c = r.config;
  const lines = [
    'TURN relay over UDP loopback: one load tool (bench/native/turn-load.c) for all servers, one server at a time',
    `load: 1 allocation, a permission, ${c.window} datagrams in flight to a peer socket that echoes through the relay — ` +
    'mode channel: ChannelData on channel 0x4000 both ways; mode send: Send indications out, Data indications back',
    `${c.durationS} s measured after ${c.warmupS} s warm-up, timeout ${c.timeoutMs} ms; ${c.runs} run${c.runs > 1 ? 's' : ''} per server, medians; ` +
    'unsupported = not one datagram came back in that mode',
    `datagrams/s and Mbit/s count both directions through the server (payload bytes); memory = RSS growth for ${c.allocations} allocations held`,
    `pinning: ${c.pinning}`,
    '',
  ];
  const head = ['server', 'mode', 'payload B', 'datagrams/s', 'Mbit/s', 'loss %', 'p50 µs', 'p99 µs', 'server CPU %', 'KiB/allocation'];
  const modeWidth = Math.max(head[1]!.length, ...TURN_MODES.map((m) => m.length));
  const table: string[][] = [head];
  for (const s of r.servers) {
    if (s.status !== 'ok' || s.medians === undefined) {
      table.push([s.label, s.status === 'failed' ? `failed: ${s.error ?? '?'}` : s.status]);
      continue;
    }
    for (const mode of TURN_MODES) {
      const gap = s.unsupported?.find((u) => u.mode === mode);
      if (gap !== undefined) {
        table.push([s.label, `${mode.padEnd(modeWidth)}  unsupported: ${UNSUPPORTED[mode]} (0 of ${int(gap.sent)} datagrams came back)`]);
        continue;
      }
      for (const m of s.medians.filter((x) => x.mode === mode)) {
        table.push([s.label, mode, String(m.size), int(m.pps), fix(m.mbps, 1), fix(m.lossPct, 2), int(m.p50Us), int(m.p99Us), fix(m.serverCpuPct, 0), fix(s.kibPerAllocation, 1)]);
      }
    }
  }
  lines.push(alignColumns(table, [0, 1]));
  const ratios = [ratioLine(r, 'coturn', r.natkitVsCoturn), ratioLine(r, 'node-turn', r.natkitVsNodeTurn)].filter((l) => l !== undefined);
  if (ratios.length > 0) lines.push('', ...ratios);
  return lines.join('\n');
}
