// `npm run bench -- --only turn`: TURN relay throughput and memory per allocation, natkit's
// TurnServer next to coturn's turnserver on UDP loopback, with one load tool for both
// (bench/native/turn-load.c: an allocation, a permission, channel 0x4000 and a window of
// ChannelData to a peer socket of its own that echoes back through the relay). Each server
// is a child on one CPU (taskset when possible), the tool on another. Per run and server:
// throughput with 100- and 1000-byte payloads, then memory: the server's RSS before and
// while the tool holds ALLOCATIONS allocations (one UDP socket each), divided by their number.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
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
const READY_MS = 15_000;
/** Payload sizes measured, bytes. */
export const TURN_SIZES = [100, 1000] as const;
/** Allocations held for the memory figure (one socket each in the tool and in the server). */
export const TURN_ALLOCATIONS = 1000;
const USER = ['--user', 'bench', '--pass', 'benchpass'] as const;

/** The servers compared. */
export type TurnServerId = 'natkit' | 'coturn';
const SERVER_IDS: readonly TurnServerId[] = ['natkit', 'coturn'];
const LABELS: Readonly<Record<TurnServerId, string>> = { natkit: 'natkit TurnServer', coturn: 'coturn turnserver' };

/** What the tool prints for one throughput run (bench/native/turn-load.c). */
export interface TurnLoad {
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

/** Medians of one server at one payload size. */
export interface TurnMedian {
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
  kibPerAllocation?: number;
}

/** natkit's figures over coturn's. */
export interface TurnRatios {
  /** Relayed datagrams/s per payload size (higher is better). */
  readonly pps: readonly { readonly size: number; readonly ratio: number }[];
  /** Memory per allocation (lower is better). */
  readonly memory: number | undefined;
}

export interface TurnBenchResult {
  readonly config: { readonly durationS: number; readonly warmupS: number; readonly window: number; readonly timeoutMs: number; readonly runs: number; readonly allocations: number; readonly pinning: string };
  readonly servers: TurnServerResult[];
  readonly natkitVsCoturn: TurnRatios | undefined;
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

/** One server, one run: throughput at each size on one server process, then memory on the same. */
async function measureRun(id: TurnServerId, run: number, o: TurnBenchOptions): Promise<TurnRun> {
  const server = await startServer(id, o);
  try {
    const loads: TurnRun['loads'][number][] = [];
    for (const size of TURN_SIZES) {
      o.signal.throwIfAborted();
      const cpu0 = processCpuSeconds(server.child.pid);
      const t0 = performance.now();
      const load = await runTool<TurnLoad>([
        '--port', String(server.port), ...USER, '--size', String(size), '--window', String(o.window),
        '--duration-s', String(o.durationS), '--warmup-s', String(o.warmupS), '--timeout-ms', String(o.timeoutMs),
      ], o, (o.warmupS + o.durationS) * 1000 + 20_000);
      const cpu1 = processCpuSeconds(server.child.pid);
      const serverCpuPct = cpu0 === undefined || cpu1 === undefined ? undefined : (100 * (cpu1 - cpu0)) / ((performance.now() - t0) / 1000);
      loads.push({ load, serverCpuPct });
      o.progress(
        `turn: run ${run}/${o.runs} ${id} ${size} B: ${Math.round(load.relayed_pps).toLocaleString('en-US')} datagrams/s relayed, ` +
        `${load.relayed_mbps.toFixed(1)} Mbit/s, loss ${load.loss_pct.toFixed(2)} %, p50 ${load.p50_us} µs, server CPU ${serverCpuPct?.toFixed(0) ?? '?'} %`,
      );
    }
    const kibPerAllocation = await memoryPerAllocation(server, o);
    o.progress(`turn: run ${run}/${o.runs} ${id}: ${kibPerAllocation?.toFixed(1) ?? '?'} KiB RSS per allocation (${TURN_ALLOCATIONS} held)`);
    return { run, loads, kibPerAllocation };
  } finally {
    await o.children.stop(server.child, 5000);
    server.cleanup?.();
  }
}

/** Medians of each figure over the runs, per size; undefined without runs. */
export function summariseTurn(runs: readonly TurnRun[]): { medians: TurnMedian[]; kibPerAllocation: number | undefined } | undefined {
  if (runs.length === 0) return undefined;
  const medians = TURN_SIZES.map((size): TurnMedian => {
    const at = runs.flatMap((r) => r.loads.filter((l) => l.load.size === size));
    const cpu = at.flatMap((l) => (l.serverCpuPct === undefined ? [] : [l.serverCpuPct]));
    return {
      size,
      pps: median(at.map((l) => l.load.relayed_pps)),
      mbps: median(at.map((l) => l.load.relayed_mbps)),
      lossPct: median(at.map((l) => l.load.loss_pct)),
      p50Us: median(at.map((l) => l.load.p50_us)),
      p99Us: median(at.map((l) => l.load.p99_us)),
      serverCpuPct: cpu.length === 0 ? undefined : median(cpu),
    };
  });
  const memory = runs.flatMap((r) => (r.kibPerAllocation === undefined ? [] : [r.kibPerAllocation]));
  return { medians, kibPerAllocation: memory.length === 0 ? undefined : median(memory) };
}

/** natkit over coturn, where both have figures. */
export function turnRatios(servers: readonly TurnServerResult[]): TurnRatios | undefined {
  const natkit = servers.find((s) => s.id === 'natkit');
  const coturn = servers.find((s) => s.id === 'coturn');
  const pps = TURN_SIZES.flatMap((size) => {
    const r = ratio(natkit?.medians?.find((m) => m.size === size)?.pps, coturn?.medians?.find((m) => m.size === size)?.pps);
    return r === undefined ? [] : [{ size, ratio: r }];
  });
  const memory = ratio(natkit?.kibPerAllocation, coturn?.kibPerAllocation);
  return pps.length === 0 && memory === undefined ? undefined : { pps, memory };
}

/** Runs both servers `runs` times (interleaved) and summarises. */
export async function runTurnBench(o: TurnBenchOptions): Promise<TurnBenchResult> {
  const hasCoturn = spawnSync('sh', ['-c', 'command -v turnserver']).status === 0;
  const servers: TurnServerResult[] = SERVER_IDS.map((id) => ({
    id, label: id === 'coturn' && coturnPackageVersion() !== undefined ? `${LABELS[id]} ${coturnPackageVersion()!}` : LABELS[id],
    status: id === 'coturn' && !hasCoturn ? 'not installed' : 'ok', runs: [],
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
    if (summary.kibPerAllocation !== undefined) s.kibPerAllocation = summary.kibPerAllocation;
  }
  const { durationS, warmupS, window, timeoutMs, runs } = o;
  return { config: { durationS, warmupS, window, timeoutMs, runs, allocations: TURN_ALLOCATIONS, pinning: o.pinning.description }, servers, natkitVsCoturn: turnRatios(servers) };
}

const int = (n: number): string => Math.round(n).toLocaleString('en-US');
const fix = (n: number | undefined, d: number): string => (n === undefined || Number.isNaN(n) ? '—' : n.toFixed(d));

/** The section people read. */
export function formatTurnBench(r: TurnBenchResult): string {
  const c = r.config;
  const lines = [
    'TURN relay over UDP loopback: one load tool (bench/native/turn-load.c) for both servers, one server at a time',
    `load: 1 allocation, channel 0x4000, ${c.window} ChannelData datagrams in flight to a peer socket that echoes through the relay; ` +
    `${c.durationS} s measured after ${c.warmupS} s warm-up, timeout ${c.timeoutMs} ms; ${c.runs} run${c.runs > 1 ? 's' : ''} per server, medians`,
    `datagrams/s and Mbit/s count both directions through the server (payload bytes); memory = RSS growth for ${c.allocations} allocations held`,
    `pinning: ${c.pinning}`,
    '',
  ];
  const table: string[][] = [['server', 'payload B', 'datagrams/s', 'Mbit/s', 'loss %', 'p50 µs', 'p99 µs', 'server CPU %', 'KiB/allocation']];
  for (const s of r.servers) {
    if (s.status !== 'ok' || s.medians === undefined) {
      table.push([s.label, s.status === 'failed' ? `failed: ${s.error ?? '?'}` : s.status]);
      continue;
    }
    for (const m of s.medians) {
      table.push([s.label, String(m.size), int(m.pps), fix(m.mbps, 1), fix(m.lossPct, 2), int(m.p50Us), int(m.p99Us), fix(m.serverCpuPct, 0), fix(s.kibPerAllocation, 1)]);
    }
  }
  lines.push(alignColumns(table));
  const x = r.natkitVsCoturn;
  if (x !== undefined) {
    lines.push('');
    const pps = x.pps.map((p) => `${p.ratio.toFixed(2)}× datagrams/s at ${p.size} B`).join(', ');
    lines.push(`natkit / coturn: ${pps}${x.memory === undefined ? '' : `; ${x.memory.toFixed(2)}× memory per allocation`}`);
  }
  return lines.join('\n');
}
