// The load generator: bench/native/stun-load.c compiled with `cc -O2` ($CC if set) into
// bench/native/build/ (gitignored) when cc works, else bench/node-load.ts (labelled as
// such: Node cannot saturate a Node server, so its figures understate every server).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { ChildRegistry } from './children.ts';

const SOURCE = fileURLToPath(new URL('../native/stun-load.c', import.meta.url));
const BUILD_DIR = fileURLToPath(new URL('../native/build/', import.meta.url));
const BINARY = `${BUILD_DIR}stun-load`;
const NODE_GENERATOR = fileURLToPath(new URL('../node-load.ts', import.meta.url));

/** What one generator run reports (the JSON line both generators print). */
export interface LoadResult {
  readonly generator: 'c' | 'node';
  readonly window: number;
  readonly duration_s: number;
  /** Requests sent inside the measured interval. */
  readonly sent: number;
  /** Of those, answered with a valid success response before the timeout. */
  readonly received: number;
  /** Of those, unanswered at the timeout (or at the end of the drain). */
  readonly lost: number;
  /** Answers that came after their request was declared lost. */
  readonly late: number;
  /** Answers that matched no request or carried a wrong XOR-MAPPED-ADDRESS. */
  readonly invalid: number;
  readonly error_responses: number;
  readonly send_errors: number;
  readonly rps: number;
  readonly loss_pct: number;
  readonly p50_us: number;
  readonly p90_us: number;
  readonly p99_us: number;
  readonly p999_us: number;
  readonly max_us: number;
  readonly mean_us: number;
  readonly generator_cpu_pct: number;
}

/** The generator chosen for this run. */
export interface Generator {
  readonly kind: 'c' | 'node';
  /** For people: what it is and why it was chosen. */
  readonly label: string;
  readonly command: string;
  readonly baseArgs: readonly string[];
}

/** Compiles the native generator if needed; falls back to the Node one (with the reason). */
export function prepareGenerator(forceNode: boolean, progress: (msg: string) => void): Generator {
  const node: Generator = {
    kind: 'node',
    label: 'Node fallback (bench/node-load.ts) — NOT the native generator; figures are generator-bound',
    command: process.execPath,
    baseArgs: [NODE_GENERATOR],
  };
  if (forceNode) return { ...node, label: 'Node (bench/node-load.ts, --node-generator) — figures are generator-bound' };
  const compiler = process.env.CC ?? 'cc';
  const cc = spawnSync(compiler, ['--version'], { encoding: 'utf8' });
  if (cc.error !== undefined || cc.status !== 0) {
    progress(`${compiler} not found: using the Node load generator`);
    return { ...node, label: `${node.label} (${compiler} not found)` };
  }
  const fresh = existsSync(BINARY) && statSync(BINARY).mtimeMs >= statSync(SOURCE).mtimeMs;
  if (!fresh) {
    progress(`compiling ${SOURCE} → ${BINARY}`);
    mkdirSync(BUILD_DIR, { recursive: true });
    const r = spawnSync(compiler, ['-O2', '-Wall', '-Wextra', '-o', BINARY, SOURCE], { encoding: 'utf8' });
    if (r.status !== 0) {
      progress(`${compiler} failed, using the Node load generator:\n${r.stderr}`);
      return { ...node, label: `${node.label} (${compiler} failed)` };
    }
  }
  return {
    kind: 'c',
    label: 'native C (bench/native/stun-load.c: 1 connected UDP socket, sendmmsg/recvmmsg)',
    command: BINARY,
    baseArgs: [],
  };
}

/** Settings of one generator run. */
export interface LoadSettings {
  readonly port: number;
  readonly durationS: number;
  readonly warmupS: number;
  readonly window: number;
  readonly timeoutMs: number;
  readonly fingerprint: boolean;
  readonly spinUs: number;
  /** CPU list for taskset, or undefined for no pinning. */
  readonly cpu: string | undefined;
}

/** Runs the generator once against 127.0.0.1:port; rejects on failure, timeout or abort. */
export async function runLoad(gen: Generator, s: LoadSettings, children: ChildRegistry, signal: AbortSignal): Promise<LoadResult> {
  const args = [
    ...gen.baseArgs,
    '--host', '127.0.0.1', '--port', String(s.port),
    '--duration-s', String(s.durationS), '--warmup-s', String(s.warmupS),
    '--window', String(s.window), '--timeout-ms', String(s.timeoutMs),
    ...(s.fingerprint ? ['--fingerprint'] : []),
    ...(gen.kind === 'c' ? ['--spin-us', String(s.cpu === undefined ? 0 : s.spinUs)] : []),
  ];
  const [command, argv] = s.cpu === undefined ? [gen.command, args] : ['taskset', ['-c', s.cpu, gen.command, ...args]];
  const child = children.spawn('load generator', command, argv);
  const limitMs = (s.warmupS + s.durationS) * 1000 + s.timeoutMs + 15_000;
  const timer = setTimeout(() => void children.stop(child, 500), limitMs);
  const onAbort = (): void => void children.stop(child, 500);
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    const code = await child.exited;
    signal.throwIfAborted();
    if (code !== 0) throw new Error(`load generator exited with ${code}: ${child.stderrTail().trim()}`);
    const line = child.lines.find((l) => l.startsWith('{'));
    if (line === undefined) throw new Error(`load generator printed no result: ${child.stderrTail().trim()}`);
    return JSON.parse(line) as LoadResult;
  } finally {
    clearTimeout(timer);
    signal.removeEventListener('abort', onAbort);
  }
}
