// Child processes of the benchmark: spawned through one registry that remembers every
// PID it started and kills exactly those (never by name) on stop, on error, on Ctrl-C
// and at exit. Where util-linux setpriv exists, children also get PR_SET_PDEATHSIG
// (SIGKILL when the orchestrator dies, even by SIGKILL); setpriv and taskset exec, so
// the PID we hold is the server's own. CPU time of a child is read from /proc/<pid>/stat.
import { spawn, spawnSync, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** A spawned child with its output collected line by line. */
export interface Child {
  readonly name: string;
  readonly process: ChildProcess;
  readonly pid: number;
  /** Complete stdout lines so far. */
  readonly lines: string[];
  /** Last few KiB of stderr, for error messages. */
  stderrTail(): string;
  /** Resolves with the exit code (or signal name) once the child is gone. */
  readonly exited: Promise<number | string>;
  readonly hasExited: () => boolean;
}

const STDERR_KEEP = 4096;

/** Every child this process started and that has not exited yet. */
export class ChildRegistry {
  private readonly live = new Map<number, Child>();

  /** Spawns with piped stdio; the child is tracked until it exits. Throws when spawn fails. */
  spawn(name: string, command: string, args: readonly string[], options: SpawnOptions = {}): Child {
    const [cmd, argv] = hasPdeathsig() ? ['setpriv', ['--pdeathsig', 'KILL', command, ...args]] : [command, [...args]];
    const proc = spawn(cmd, argv, { ...options, stdio: ['pipe', 'pipe', 'pipe'] });
    const pid = proc.pid;
    if (pid === undefined) {
      proc.on('error', () => undefined); // ENOENT and the like arrive as an event too
      throw new Error(`could not start ${name}: ${command} not found or not executable`);
    }
    const lines: string[] = [];
    let partial = '';
    let stderr = '';
    let done = false;
    proc.stdout?.setEncoding('utf8');
    proc.stdout?.on('data', (chunk: string) => {
      const parts = (partial + chunk).split('\n');
      partial = parts.pop() ?? '';
      for (const line of parts) lines.push(line);
    });
    proc.stderr?.setEncoding('utf8');
    proc.stderr?.on('data', (chunk: string) => {
      stderr = (stderr + chunk).slice(-STDERR_KEEP);
    });
    // stdin stays open: node children stop when it ends (the orchestrator died).
    proc.stdin?.on('error', () => undefined);
    const exited = new Promise<number | string>((resolve) => {
      proc.on('exit', (code, signal) => {
        done = true;
        this.live.delete(pid);
        if (partial !== '') lines.push(partial);
        resolve(code ?? signal ?? 'unknown');
      });
      proc.on('error', () => {
        done = true;
        this.live.delete(pid);
        resolve('spawn-error');
      });
    });
    const child: Child = { name, process: proc, pid, lines, stderrTail: () => stderr, exited, hasExited: () => done };
    this.live.set(pid, child);
    return child;
  }

  /** SIGTERM, then SIGKILL after `graceMs`; resolves when the child is gone. */
  async stop(child: Child, graceMs = 3000): Promise<void> {
    if (child.hasExited()) return;
    signal(child.pid, 'SIGTERM');
    const timer = setTimeout(() => signal(child.pid, 'SIGKILL'), graceMs);
    try {
      await child.exited;
    } finally {
      clearTimeout(timer);
    }
  }

  /** SIGKILL to every live child, synchronously (safe in an 'exit' handler). */
  killAll(): void {
    for (const child of this.live.values()) signal(child.pid, 'SIGKILL');
  }

  get size(): number {
    return this.live.size;
  }
}

let pdeathsig: boolean | undefined;

/** True when `setpriv --pdeathsig` works here. */
export function hasPdeathsig(): boolean {
  pdeathsig ??= spawnSync('setpriv', ['--pdeathsig', 'KILL', 'true']).status === 0;
  return pdeathsig;
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // Already gone.
  }
}

/** Waits for a stdout line that `match` accepts; rejects on exit, timeout or abort. */
export async function waitForLine<T>(
  child: Child, match: (line: string) => T | undefined, timeoutMs: number, signal: AbortSignal,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let seen = 0;
  // Bounded: one check every 20 ms until the deadline.
  while (Date.now() < deadline) {
    signal.throwIfAborted();
    for (; seen < child.lines.length; seen++) {
      const found = match(child.lines[seen]!);
      if (found !== undefined) return found;
    }
    if (child.hasExited()) {
      throw new Error(`${child.name} exited before it was ready: ${child.stderrTail().trim() || 'no stderr'}`);
    }
    await sleep(20, signal);
  }
  throw new Error(`${child.name} not ready after ${timeoutMs} ms: ${child.stderrTail().trim() || 'no stderr'}`);
}

/** Resolves after `ms`, rejects when `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted === true) {
      reject(signal.reason as Error);
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason as Error);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

let clockTicks: number | undefined;

/** USER_HZ for /proc times (getconf CLK_TCK; 100 on every common Linux). */
function ticksPerSecond(): number {
  if (clockTicks === undefined) {
    const r = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
    const n = Number(r.stdout?.trim());
    clockTicks = r.status === 0 && Number.isInteger(n) && n > 0 ? n : 100;
  }
  return clockTicks;
}

/** CPU seconds (user + system, all threads) a process has used, or undefined without /proc. */
export function processCpuSeconds(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Field 2 (comm) is parenthesised and may hold spaces: count from the last ')'.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const utime = Number(rest[11]);
    const stime = Number(rest[12]);
    if (!Number.isFinite(utime) || !Number.isFinite(stime)) return undefined;
    return (utime + stime) / ticksPerSecond();
  } catch {
    return undefined;
  }
}
