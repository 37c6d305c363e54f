// `npm run bench -- --only session`: the secure session (natkit/session: Noise XX, then
// ChaCha20-Poly1305 packets carrying the reliable, ordered channel) next to plain UDP on the
// same path — a NodeUdpSocket on 127.0.0.1 to another — in the same run. Each path's two
// ends are child processes (bench/servers/session-peer.ts; the receiver pinned to one CPU,
// the sender to the other when taskset can), so they do not share an event loop. Per run
// and path: the handshake (session only), the round trip of one small message bouncing
// back and forth (p50/p99), then a stream of messages at each size for --duration-s:
// messages/s, MB/s, loss, datagrams and CPU of both ends. Paths interleave within a run;
// the tables show medians over runs and the session/udp ratio.
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { waitForLine, type Child, type ChildRegistry } from './children.ts';
import { formatProfile, summariseProfile, type ProfileSummary } from './profile.ts';
import { alignColumns, median, ratio } from './report.ts';

const PEER = fileURLToPath(new URL('../servers/session-peer.ts', import.meta.url));
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const PROFILE_DIR = fileURLToPath(new URL('../native/build/profiles/', import.meta.url));
const READY_MS = 15_000;

/** Message sizes of the throughput cases, bytes (16 KiB: 15 session datagrams of ≤ 1200 B; one UDP datagram). */
export const SESSION_SIZES = [100, 1000, 16384] as const;
/** Size of the message that bounces in the latency case, bytes. */
export const LATENCY_SIZE = 100;
/** Plain UDP: datagrams the sender keeps beyond the receiver's last count (the session's default maxInFlight)… */
export const UDP_WINDOW = 256;
/**
 * … and at most this many bytes of them: 256 datagrams of 16 KiB (32 KiB of kernel memory
 * each) would overflow even a 4 MiB receive buffer whenever the receiver falls behind.
 */
export const UDP_WINDOW_BYTES = 1 << 20;

/** Plain UDP's window for messages of `size` bytes, datagrams (pure). */
export function udpWindow(size: number): number {
  return Math.max(1, Math.min(UDP_WINDOW, Math.floor(UDP_WINDOW_BYTES / Math.max(1, size))));
}
/** Plain UDP: the receiver sends its count every this many datagrams. */
export const UDP_ACK_EVERY = 16;
/** Session: the sender keeps this many fragments queued or in flight (twice its maxInFlight, so it never idles). */
export const SESSION_QUEUE_FRAGMENTS = 512;

/** The two paths compared: plain datagrams (the reference) and the secure session over the same socket pair. */
export type SessionPathKind = 'udp' | 'session';
export const SESSION_PATHS: readonly SessionPathKind[] = ['udp', 'session'];
const LABELS: Readonly<Record<SessionPathKind, string>> = { udp: 'plain UDP', session: 'secure session' };

/** Round trips of one message at a time (the sender child's figures). */
export interface LatencyCase {
  readonly size: number;
  readonly roundTrips: number;
  readonly roundTripsPerS: number;
  readonly p50Us: number;
  readonly p99Us: number;
  readonly meanUs: number;
  readonly maxUs: number;
  /** Pings unanswered within 200 ms (replaced by a new one). */
  readonly lost: number;
}

/** One stream of messages (the sender child's figures; `delivered` is the receiver's count). */
export interface ThroughputCase {
  readonly size: number;
  /** Messages the sender sent (session: handed to send()). */
  readonly sent: number;
  /** DATA messages the receiver counted. */
  readonly delivered: number;
  /** From the first send to the receiver's report of everything that arrived. */
  readonly seconds: number;
  readonly senderCpuPct: number;
  readonly receiverCpuPct: number;
  /** Datagrams the sender's socket sent (data, and for the session its acknowledgements' share too). */
  readonly datagramsOut: number;
  /** Datagrams that came back to the sender (udp: counts; session: acknowledgements). */
  readonly datagramsBack: number;
  /** Session only: fragments sent again. */
  readonly retransmissions?: number;
}

/** Everything the sender child prints for one run of one path. */
export interface PeerReport {
  readonly path: SessionPathKind;
  /** Session only: construction to opened(), ms. */
  readonly handshakeMs?: number;
  readonly latency: LatencyCase;
  readonly throughput: readonly ThroughputCase[];
  readonly socket: unknown;
  readonly session?: unknown;
}

/** p50, p99, mean and max of latency samples (µs), and round trips per second over `seconds` (pure). */
export function latencySummary(samples: ArrayLike<number>, seconds: number): Omit<LatencyCase, 'size' | 'lost'> {
  const v = Float64Array.from(samples).sort();
  const n = v.length;
  const at = (q: number): number => (n === 0 ? NaN : v[Math.min(n - 1, Math.ceil(q * n) - 1)]!);
  let sum = 0;
  for (const x of v) sum += x;
  return { roundTrips: n, roundTripsPerS: seconds > 0 ? n / seconds : NaN, p50Us: at(0.5), p99Us: at(0.99), meanUs: n === 0 ? NaN : sum / n, maxUs: n === 0 ? NaN : v[n - 1]! };
}

/** One run of one path. */
export interface SessionRun {
  readonly run: number;
  readonly report: PeerReport;
  /** What the receiver printed when stopped (socket and session counters). */
  readonly receiverStats: unknown;
}

/** Medians of one path at one message size. */
export interface ThroughputMedian {
  readonly size: number;
  readonly messagesPerS: number;
  readonly mbPerS: number;
  readonly lossPct: number;
  /** Datagrams per second, both directions. */
  readonly datagramsPerS: number;
  /** Datagrams (both directions) per message delivered. */
  readonly datagramsPerMessage: number;
  /** CPU time of both ends per message delivered, µs: steadier than messages/s on a shared machine. */
  readonly cpuUsPerMessage: number;
  readonly senderCpuPct: number;
  readonly receiverCpuPct: number;
  readonly retransmissions: number | undefined;
}

export interface LatencyMedian {
  readonly size: number;
  readonly roundTripsPerS: number;
  readonly p50Us: number;
  readonly p99Us: number;
  readonly lost: number;
}

/** Everything about one path. */
export interface SessionPathResult {
  readonly path: SessionPathKind;
  readonly label: string;
  status: 'ok' | 'failed';
  error?: string;
  readonly runs: SessionRun[];
  throughput?: ThroughputMedian[];
  latency?: LatencyMedian;
  handshakeMs?: number;
}

/** The session's figures over plain UDP's. */
export interface SessionRatios {
  /** Messages/s (= MB/s) per size; higher is better. */
  readonly throughput: readonly { readonly size: number; readonly ratio: number }[];
  /** CPU time (both ends) per message, per size; lower is better. */
  readonly cpuPerMessage: readonly { readonly size: number; readonly ratio: number }[];
  /** Round-trip latency; lower is better. */
  readonly p50: number | undefined;
  readonly p99: number | undefined;
}

export interface SessionBenchResult {
  readonly config: {
    readonly durationS: number; readonly warmupS: number; readonly runs: number; readonly sizes: readonly number[]; readonly latencySize: number;
    readonly udpWindow: number; readonly udpWindowBytes: number; readonly udpAckEvery: number; readonly sessionQueue: number; readonly pinning: string; readonly profiled: boolean;
  };
  readonly paths: SessionPathResult[];
  readonly sessionVsUdp: SessionRatios | undefined;
  readonly profiles: ProfileSummary[];
}

export interface SessionBenchOptions {
  /** Measured seconds per case. */
  readonly durationS: number;
  /** Unmeasured seconds before each case. */
  readonly warmupS: number;
  readonly runs: number;
  /** Receiver on `server`, sender on `generator` (taskset lists), and what that means. */
  readonly pinning: { readonly server: string | undefined; readonly generator: string | undefined; readonly description: string };
  /** Run the session path's children of run 1 under --cpu-prof and summarise. */
  readonly profile: boolean;
  readonly children: ChildRegistry;
  readonly signal: AbortSignal;
  readonly progress: (msg: string) => void;
}

const pinned = (cpu: string | undefined, command: string, args: readonly string[]): [string, string[]] =>
  cpu === undefined ? [command, [...args]] : ['taskset', ['-c', cpu, command, ...args]];
const int = (n: number): string => Math.round(n).toLocaleString('en-US');
const fix = (n: number | undefined, d: number): string => (n === undefined || Number.isNaN(n) ? '—' : n.toFixed(d));
/** A ratio: two decimals, or two significant digits below 0.1 (0.0042). */
const times = (n: number | undefined): string => (n === undefined || Number.isNaN(n) ? '—' : n > 0 && n < 0.1 ? n.toPrecision(2) : n.toFixed(2));
/** Below this CPU share on both ends a stream was not CPU-bound: the machine's other work or wake-ups held it back. */
const CPU_BOUND_PCT = 80;

function lineOf<T>(child: Child, key: string): T | undefined {
  for (const line of child.lines) {
    if (!line.startsWith(`{"${key}"`)) continue;
    try {
      return (JSON.parse(line) as Record<string, T>)[key];
    } catch {
      // not ours
    }
  }
  return undefined;
}

/** Waits until a child's stdout has closed (its last line may come after 'exit'). */
async function stdoutClosed(child: Child): Promise<void> {
  const out = child.process.stdout;
  if (out === null || out.closed) return;
  await new Promise((resolve) => {
    out.once('close', resolve);
    setTimeout(resolve, 1000);
  });
}

/** One run of one path: a receiver child, then a sender child that runs every case. */
async function runPath(path: SessionPathKind, run: number, o: SessionBenchOptions, profileDir: string | undefined): Promise<SessionRun> {
  const prof = (side: string): string[] => (profileDir === undefined ? [] : [
    '--cpu-prof', '--cpu-prof-interval=200', `--cpu-prof-dir=${profileDir}`, `--cpu-prof-name=session-${path}-${side}-run${run}.cpuprofile`,
  ]);
  const receiver = o.children.spawn(`session receiver (${path})`, ...pinned(o.pinning.server, process.execPath, [...prof('receiver'), PEER, '--side', 'b', '--path', path]));
  try {
    const port = await waitForLine(receiver, (l) => /^\{"ready":true,"port":(\d+)\}$/.exec(l)?.[1], READY_MS, o.signal);
    const sender = o.children.spawn(`session sender (${path})`, ...pinned(o.pinning.generator, process.execPath, [
      ...prof('sender'), PEER, '--side', 'a', '--path', path, '--peer-port', port, '--sizes', SESSION_SIZES.join(','),
      '--latency-size', String(LATENCY_SIZE), '--duration-s', String(o.durationS), '--warmup-s', String(o.warmupS),
    ]));
    // Latency and each size take warm-up + duration; the rest is start-up, handshake and drains.
    const limitMs = (1 + SESSION_SIZES.length) * (o.warmupS + o.durationS) * 1000 + 30_000;
    const limit = setTimeout(() => void o.children.stop(sender, 500), limitMs);
    const onAbort = (): void => void o.children.stop(sender, 500);
    o.signal.addEventListener('abort', onAbort, { once: true });
    let code: number | string;
    try {
      code = await sender.exited;
      await stdoutClosed(sender);
    } finally {
      clearTimeout(limit);
      o.signal.removeEventListener('abort', onAbort);
    }
    o.signal.throwIfAborted();
    const report = lineOf<PeerReport>(sender, 'report');
    if (code !== 0 || report === undefined) throw new Error(`sender exited with ${code}: ${sender.stderrTail().trim() || 'no report'}`);
    await o.children.stop(receiver, 3000);
    await stdoutClosed(receiver);
    return { run, report, receiverStats: lineOf<unknown>(receiver, 'stats') };
  } finally {
    await o.children.stop(receiver, 3000);
  }
}

/** Derived figures of one throughput case (pure). */
export function throughputFigures(c: ThroughputCase): Omit<ThroughputMedian, 'retransmissions'> & { retransmissions: number | undefined } {
  const s = c.seconds > 0 ? c.seconds : NaN;
  const datagrams = c.datagramsOut + c.datagramsBack;
  return {
    size: c.size,
    messagesPerS: c.delivered / s,
    mbPerS: (c.delivered * c.size) / s / 1e6,
    lossPct: c.sent > 0 ? (100 * Math.max(0, c.sent - c.delivered)) / c.sent : 0,
    datagramsPerS: datagrams / s,
    datagramsPerMessage: c.delivered > 0 ? datagrams / c.delivered : NaN,
    cpuUsPerMessage: c.delivered > 0 ? ((c.senderCpuPct + c.receiverCpuPct) * 1e4 * c.seconds) / c.delivered : NaN,
    senderCpuPct: c.senderCpuPct,
    receiverCpuPct: c.receiverCpuPct,
    retransmissions: c.retransmissions,
  };
}

/** Medians of each figure over the runs, per size, and of the latency and handshake (pure). */
export function summariseSession(runs: readonly SessionRun[]): Pick<SessionPathResult, 'throughput' | 'latency' | 'handshakeMs'> | undefined {
  if (runs.length === 0) return undefined;
  const sizes = [...new Set(runs.flatMap((r) => r.report.throughput.map((t) => t.size)))].sort((a, b) => a - b);
  const throughput = sizes.map((size): ThroughputMedian => {
    const f = runs.flatMap((r) => r.report.throughput.filter((t) => t.size === size)).map(throughputFigures);
    const m = (pick: (x: (typeof f)[number]) => number): number => median(f.map(pick));
    const retx = f.flatMap((x) => (x.retransmissions === undefined ? [] : [x.retransmissions]));
    return {
      size, messagesPerS: m((x) => x.messagesPerS), mbPerS: m((x) => x.mbPerS), lossPct: m((x) => x.lossPct), datagramsPerS: m((x) => x.datagramsPerS),
      datagramsPerMessage: m((x) => x.datagramsPerMessage), cpuUsPerMessage: m((x) => x.cpuUsPerMessage), senderCpuPct: m((x) => x.senderCpuPct), receiverCpuPct: m((x) => x.receiverCpuPct),
      retransmissions: retx.length === 0 ? undefined : median(retx),
    };
  });
  const lat = runs.map((r) => r.report.latency);
  const latency: LatencyMedian = {
    size: lat[0]!.size, roundTripsPerS: median(lat.map((l) => l.roundTripsPerS)), p50Us: median(lat.map((l) => l.p50Us)),
    p99Us: median(lat.map((l) => l.p99Us)), lost: median(lat.map((l) => l.lost)),
  };
  const hs = runs.flatMap((r) => (r.report.handshakeMs === undefined ? [] : [r.report.handshakeMs]));
  return { throughput, latency, ...(hs.length > 0 && { handshakeMs: median(hs) }) };
}

/** The session's medians over plain UDP's, where both have them (pure). */
export function sessionRatios(paths: readonly SessionPathResult[]): SessionRatios | undefined {
  const udp = paths.find((p) => p.path === 'udp');
  const session = paths.find((p) => p.path === 'session');
  if (udp?.status !== 'ok' || session?.status !== 'ok') return undefined;
  const per = (pick: (t: ThroughputMedian) => number): { size: number; ratio: number }[] => (session.throughput ?? []).flatMap((s) => {
    const u = udp.throughput?.find((x) => x.size === s.size);
    const r = ratio(pick(s), u === undefined ? undefined : pick(u));
    return r === undefined ? [] : [{ size: s.size, ratio: r }];
  });
  const throughput = per((t) => t.messagesPerS);
  const cpuPerMessage = per((t) => t.cpuUsPerMessage);
  const p50 = ratio(session.latency?.p50Us, udp.latency?.p50Us);
  const p99 = ratio(session.latency?.p99Us, udp.latency?.p99Us);
  return throughput.length === 0 && p50 === undefined ? undefined : { throughput, cpuPerMessage, p50, p99 };
}

/** Runs both paths `runs` times (interleaved) and summarises. */
export async function runSessionBench(o: SessionBenchOptions): Promise<SessionBenchResult> {
  const paths: SessionPathResult[] = SESSION_PATHS.map((path) => ({ path, label: LABELS[path], status: 'ok', runs: [] }));
  let profileDir: string | undefined;
  if (o.profile) {
    profileDir = join(PROFILE_DIR, `session-${new Date().toISOString().replace(/[:.]/g, '-')}`);
    mkdirSync(profileDir, { recursive: true });
  }
  for (let run = 1; run <= o.runs; run++) {
    for (const p of paths.filter((x) => x.status === 'ok')) {
      o.signal.throwIfAborted();
      const tag = `session: run ${run}/${o.runs} ${p.path}`;
      try {
        o.progress(`${tag}: latency and ${SESSION_SIZES.join(', ')} B streams, ${o.warmupS} s warm-up + ${o.durationS} s each`);
        const r = await runPath(p.path, run, o, run === 1 && p.path === 'session' ? profileDir : undefined);
        p.runs.push(r);
        const l = r.report.latency;
        o.progress(
          `${tag}: ${r.report.handshakeMs === undefined ? '' : `handshake ${r.report.handshakeMs.toFixed(1)} ms; `}` +
          `round trip p50 ${l.p50Us.toFixed(0)} µs, p99 ${l.p99Us.toFixed(0)} µs; ` +
          r.report.throughput.map((t) => {
            const f = throughputFigures(t);
            return `${t.size} B ${int(f.messagesPerS)} msg/s ${f.mbPerS.toFixed(1)} MB/s loss ${f.lossPct.toFixed(2)} %`;
          }).join('; '),
        );
      } catch (err) {
        if (o.signal.aborted) throw err;
        p.status = 'failed';
        p.error = (err instanceof Error ? err.message : String(err)).split('\n')[0] ?? '';
        o.progress(`${tag}: FAILED: ${p.error}`);
      }
    }
  }
  for (const p of paths) {
    const s = p.status === 'ok' ? summariseSession(p.runs) : undefined;
    if (s !== undefined) Object.assign(p, s);
  }
  const profiles: ProfileSummary[] = [];
  if (profileDir !== undefined && existsSync(profileDir)) {
    for (const f of readdirSync(profileDir).filter((x) => x.endsWith('.cpuprofile')).sort()) {
      try {
        profiles.push(summariseProfile(join(profileDir, f), ROOT, { top: 20, ...datagramsOf(paths, f) }));
      } catch (err) {
        o.progress(`session: could not read profile ${f}: ${String(err)}`);
      }
    }
  }
  return {
    config: {
      durationS: o.durationS, warmupS: o.warmupS, runs: o.runs, sizes: [...SESSION_SIZES], latencySize: LATENCY_SIZE,
      udpWindow: UDP_WINDOW, udpWindowBytes: UDP_WINDOW_BYTES, udpAckEvery: UDP_ACK_EVERY, sessionQueue: SESSION_QUEUE_FRAGMENTS, pinning: o.pinning.description, profiled: o.profile,
    },
    paths, sessionVsUdp: sessionRatios(paths), profiles,
  };
}

/** Datagrams a profiled child's socket handled (in + out), from its report or stats line. */
function datagramsOf(paths: readonly SessionPathResult[], file: string): { packets?: number } {
  const m = /^session-(udp|session)-(sender|receiver)-run(\d+)\.cpuprofile$/.exec(file);
  const run = paths.find((p) => p.path === m?.[1])?.runs.find((r) => r.run === Number(m?.[3]));
  const socket = (m?.[2] === 'sender' ? run?.report.socket : (run?.receiverStats as { socket?: unknown } | undefined)?.socket) as
    { packetsIn?: number; packetsOut?: number } | undefined;
  const n = (socket?.packetsIn ?? 0) + (socket?.packetsOut ?? 0);
  return n > 0 ? { packets: n } : {};
}

/** The section people read (pure). */
export function formatSessionBench(r: SessionBenchResult): string {
  const c = r.config;
  const lines = [
    'Secure session (Noise XX + ChaCha20-Poly1305 + reliable ordered delivery) vs plain UDP, one NodeUdpSocket on 127.0.0.1 to another',
    'sender and receiver are separate child processes (bench/servers/session-peer.ts); same sockets, same run, paths interleaved',
    `throughput: messages for ${c.durationS} s after ${c.warmupS} s warm-up per size, as fast as the window lets — udp: ≤ ${c.udpWindow} datagrams ` +
    `and ≤ ${c.udpWindowBytes / 1024} KiB beyond the receiver's count (it reports every ${c.udpAckEvery}); session: its own flow control, ${c.sessionQueue} fragments kept queued`,
    `latency: one ${c.latencySize}-byte message bouncing between the two for ${c.durationS} s after ${c.warmupS} s warm-up; ` +
    `${c.runs} run${c.runs > 1 ? 's' : ''} per path, medians; MB = 10^6 bytes of message payload; datagrams both directions; CPU µs/msg = both ends' CPU time per message`,
    `pinning: ${c.pinning}`,
    '',
  ];
  const tput: string[][] = [['path', 'size B', 'messages/s', 'MB/s', 'loss %', 'datagrams/s', 'datagrams/msg', 'sender CPU %', 'receiver CPU %', 'CPU µs/msg', 'retransmits', 'msg/s ×udp', 'CPU/msg ×udp']];
  const lat: string[][] = [['path', 'size B', 'round trips/s', 'p50 µs', 'p99 µs', 'lost', 'p50 ×udp', 'p99 ×udp', 'handshake ms']];
  const udp = r.paths.find((p) => p.path === 'udp');
  for (const p of r.paths) {
    if (p.status !== 'ok' || p.throughput === undefined || p.latency === undefined) {
      const why = p.status === 'failed' ? `failed: ${p.error ?? '?'}` : 'no runs';
      tput.push([p.label, why]);
      lat.push([p.label, why]);
      continue;
    }
    for (const t of p.throughput) {
      const u = udp?.throughput?.find((x) => x.size === t.size);
      tput.push([
        p.label, String(t.size), int(t.messagesPerS), fix(t.mbPerS, 1), fix(t.lossPct, 2), int(t.datagramsPerS), fix(t.datagramsPerMessage, 2),
        fix(t.senderCpuPct, 0), fix(t.receiverCpuPct, 0), fix(t.cpuUsPerMessage, 1), t.retransmissions === undefined ? '—' : int(t.retransmissions),
        times(ratio(t.messagesPerS, u?.messagesPerS)), times(ratio(t.cpuUsPerMessage, u?.cpuUsPerMessage)),
      ]);
    }
    const l = p.latency;
    lat.push([
      p.label, String(l.size), int(l.roundTripsPerS), int(l.p50Us), int(l.p99Us), int(l.lost),
      times(ratio(l.p50Us, udp?.latency?.p50Us)), times(ratio(l.p99Us, udp?.latency?.p99Us)), p.handshakeMs === undefined ? '—' : fix(p.handshakeMs, 1),
    ]);
  }
  lines.push(alignColumns(tput), '', alignColumns(lat));
  const x = r.sessionVsUdp;
  if (x !== undefined) {
    const list = (rs: SessionRatios['throughput'], what: string): string => rs.map((t, i) => `${times(t.ratio)}× ${i === 0 ? what : ''}at ${t.size} B`).join(', ');
    const parts = [list(x.throughput, 'messages/s '), list(x.cpuPerMessage, 'CPU time per message ')].filter((t) => t !== '');
    if (x.p50 !== undefined && x.p99 !== undefined) parts.push(`round trip p50 ${times(x.p50)}×, p99 ${times(x.p99)}×`);
    lines.push('', `session / udp: ${parts.join('; ')}`);
  }
  for (const p of r.paths) {
    for (const t of p.throughput ?? []) {
      if (t.lossPct > 0) lines.push(`note: ${p.label} lost ${t.lossPct.toFixed(2)} % of ${t.size}-byte messages (receiver buffer overflow: the window outran it).`);
      if (t.senderCpuPct < CPU_BOUND_PCT && t.receiverCpuPct < CPU_BOUND_PCT) {
        lines.push(
          `note: ${p.label} at ${t.size} B was not CPU-bound (sender ${t.senderCpuPct.toFixed(0)} %, receiver ${t.receiverCpuPct.toFixed(0)} %): ` +
          'other work on the machine or wake-ups between the ends held it back; CPU µs/msg is the steadier figure.',
        );
      }
    }
  }
  if (r.profiles.length > 0) {
    lines.push('', 'note: the profiled run (run 1, session) ran under --cpu-prof: its figures include the profiler\'s overhead.');
    for (const p of r.profiles) lines.push('', formatProfile(p));
  }
  return lines.join('\n');
}
