// Third-party programs in tests (coturn's turnserver and turnutils_*): started through
// bench/lib's ChildRegistry, which remembers every PID it started and signals only those
// (SIGTERM, then SIGKILL; never by name), with PR_SET_PDEATHSIG where setpriv exists and
// a SIGKILL to the survivors when this process exits. Output is captured for failure
// messages; every wait has a deadline.
import { spawnSync } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { ChildRegistry, type Child } from '../../bench/lib/children.ts';

const registry = new ChildRegistry();
// A test file that ends (or crashes) with a program still running must not leave it behind.
process.once('exit', () => registry.killAll());

/** How a program ended: its exit code, or the signal that ended it. */
export interface ExitStatus {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/** Options of TestProgram.start(). */
export interface StartOptions {
  /** Name in messages. @default the command */
  readonly name?: string;
  /** Characters of stdout and of stderr kept, the latest. @default 65536 */
  readonly keepChars?: number;
}

/** Options of the waits. */
export interface WaitOptions {
  /** Give up after this long. */
  readonly timeoutMs: number;
  /** What is awaited, for the timeout message. @default 'the condition' */
  readonly what?: string;
}

/** Options of runProgram(). */
export interface RunOptions extends StartOptions {
  /** The program is stopped (SIGTERM, then SIGKILL) and the call rejects after this long. @default 10000 */
  readonly timeoutMs?: number;
}

/** What a program that ran to its end left. */
export interface RunResult {
  readonly status: ExitStatus;
  readonly stdout: string;
  readonly stderr: string;
}

/** A running child program; see the file header. */
export class TestProgram implements AsyncDisposable {
  readonly name: string;
  readonly pid: number;
  private readonly child: Child;
  private readonly keepChars: number;
  private out = '';
  private err = '';
  private status: ExitStatus | undefined;
  /** Resolves once the program exited and its stdout and stderr are read to the end ('close'). */
  private readonly closed: Promise<ExitStatus>;

  private constructor(child: Child, name: string, keepChars: number) {
    this.child = child;
    this.name = name;
    this.pid = child.pid;
    this.keepChars = keepChars;
    const proc = child.process;
    // The registry already set utf8 on both streams; these listeners add full capture.
    proc.stdout?.on('data', (chunk: string) => {
      this.out = (this.out + chunk).slice(-this.keepChars);
    });
    proc.stderr?.on('data', (chunk: string) => {
      this.err = (this.err + chunk).slice(-this.keepChars);
    });
    this.closed = new Promise((resolve) => {
      proc.once('close', (code: number | null, signal: NodeJS.Signals | null) => {
        this.status = { code, signal };
        resolve(this.status);
      });
    });
  }

  /** Spawns `command`; throws when it cannot be started. */
  static start(command: string, args: readonly string[], options: StartOptions = {}): TestProgram {
    const name = options.name ?? command;
    return new TestProgram(registry.spawn(name, command, args), name, options.keepChars ?? 65_536);
  }

  /** What the program wrote to stdout (the latest `keepChars`). */
  get stdout(): string {
    return this.out;
  }

  get stderr(): string {
    return this.err;
  }

  /** How it ended, once it has and its output is read; undefined while it runs. */
  get exitStatus(): ExitStatus | undefined {
    return this.status;
  }

  /**
   * Polls `check` every 20 ms until it returns something other than undefined; rejects
   * with the program's output when the program ends first or `timeoutMs` passes.
   */
  async waitFor<T>(check: () => T | undefined | Promise<T | undefined>, options: WaitOptions): Promise<T> {
    const deadline = performance.now() + options.timeoutMs;
    for (;;) {
      const found = await check();
      if (found !== undefined) return found;
      if (this.child.hasExited()) throw new Error(`${this.name} ended while waiting for ${options.what ?? 'the condition'}: ${this.describe()}`);
      if (performance.now() >= deadline) {
        throw new Error(`${this.name}: no ${options.what ?? 'condition'} within ${options.timeoutMs} ms: ${this.describe()}`);
      }
      await sleep(20);
    }
  }

  /** Waits for stdout to match `pattern`. */
  waitForOutput(pattern: RegExp, options: WaitOptions): Promise<RegExpMatchArray> {
    return this.waitFor(() => this.out.match(pattern) ?? undefined, { what: `output matching ${String(pattern)}`, ...options });
  }

  /** Waits for the program to end on its own; rejects (leaving it running) after `timeoutMs`. */
  async waitForExit(timeoutMs: number): Promise<ExitStatus> {
    const controller = new AbortController();
    const timeout = sleep(timeoutMs, undefined, { signal: controller.signal }).then((): never => {
      throw new Error(`${this.name} still running after ${timeoutMs} ms: ${this.describe()}`);
    });
    try {
      // race() handles the timer's AbortError when finally cancels it.
      return await Promise.race([this.finished(), timeout]);
    } finally {
      controller.abort();
    }
  }

  /** Stops the program by its PID: SIGTERM, then SIGKILL after `graceMs`. Idempotent. */
  async stop(graceMs = 3000): Promise<ExitStatus> {
    await registry.stop(this.child, graceMs);
    return this.finished();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.stop().then(() => undefined);
  }

  /**
   * Once the program exited: its status with the output read to the end, or cut off after
   * a second when something it left behind still holds the pipes.
   */
  private async finished(): Promise<ExitStatus> {
    await this.child.exited;
    const proc = this.child.process;
    const cut = setTimeout(() => {
      proc.stdout?.destroy();
      proc.stderr?.destroy();
    }, 1000);
    try {
      return await this.closed;
    } finally {
      clearTimeout(cut);
    }
  }

  /** State and the tails of stdout and stderr, for failure messages. */
  describe(): string {
    const state = this.status === undefined
      ? (this.child.hasExited() ? 'exited' : 'running')
      : this.status.signal !== null ? `ended by ${this.status.signal}` : `exited with ${this.status.code}`;
    const tail = (s: string): string => s.trim().split('\n').slice(-40).join('\n') || '(nothing)';
    return `${this.name} (pid ${this.pid}) ${state}\n--- stdout ---\n${tail(this.out)}\n--- stderr ---\n${tail(this.err)}`;
  }
}

/** Runs a program to its end; on timeout it is stopped and the call rejects with its output. */
export async function runProgram(command: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  const program = TestProgram.start(command, args, options);
  try {
    const status = await program.waitForExit(options.timeoutMs ?? 10_000);
    return { status, stdout: program.stdout, stderr: program.stderr };
  } finally {
    await program.stop();
  }
}

/** Throws, naming the package to install, when `command` is not on PATH: a missing program fails a test, never skips it. */
export function requireProgram(command: string, install: string): void {
  if (!hasProgram(command)) throw new Error(`${command} is not on PATH: ${install}`);
}

/** True when `command` is on PATH. */
export function hasProgram(command: string): boolean {
  return spawnSync('sh', ['-c', 'command -v "$1"', 'sh', command]).status === 0;
}
