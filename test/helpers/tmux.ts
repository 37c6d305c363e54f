// A program run on a terminal, driven as a person would: a detached tmux session on a
// server of its own (a socket in the test's directory, no user configuration), a fixed
// size, keys sent with send-keys and the screen read with capture-pane. The program runs
// under `sh -c`, which prints its exit status when it ends and then waits, so the screen
// and the terminal's modes it left behind can be checked as a person would see them back
// at the shell. Every tmux call and every wait is bounded; kill() (and the process's exit)
// ends the server we started, which hangs up on the program, then SIGKILLs the pane's
// process group if it is still there.
import { execFile, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { requireProgram } from './process.ts';

const run = promisify(execFile);
const TMUX_TIMEOUT_MS = 5000;
/** What the shell prints when the program ended, with its exit status (128 + N: signal N). */
const EXITED = /\[natkit-test: exited with (\d+)\]/;
const WRAPPER = '"$@"; echo "[natkit-test: exited with $?]"; exec sleep 3600';

/** Options of TmuxSession.start(). */
export interface TmuxStartOptions {
  /** A directory of the test's own: the server's socket goes there. */
  readonly dir: string;
  readonly cols: number;
  readonly rows: number;
  /** The program and its arguments (not parsed by a shell). */
  readonly command: readonly string[];
  readonly cwd?: string;
  /** Variables added to the program's environment. */
  readonly env?: Readonly<Record<string, string>>;
}

/** The terminal's state: its size, whether it is on the alternate screen, whether the cursor shows. */
export interface PaneState {
  /** The shell that runs the program: the leader of the pane's process group. */
  readonly pid: number;
  /** The shell itself ended (not just the program). */
  readonly dead: boolean;
  readonly alternateScreen: boolean;
  readonly cursorVisible: boolean;
  readonly cols: number;
  readonly rows: number;
}

const live = new Set<TmuxSession>();
// A test that ends (or crashes) with a session open must not leave its server behind.
process.once('exit', () => {
  for (const s of live) s.killNow();
});

/** One tmux session on a server of its own; see the file header. */
export class TmuxSession implements AsyncDisposable {
  readonly name: string;
  private readonly socket: string;
  /** The pane's shell, leader of its process group (whose ID is not reused while a member is left). */
  private leader: { pid: number } | undefined;

  private constructor(name: string, socket: string) {
    this.name = name;
    this.socket = socket;
  }

  /** Starts `command` in a new detached session of `cols` × `rows`; throws when tmux is missing. */
  static async start(options: TmuxStartOptions): Promise<TmuxSession> {
    requireProgram('tmux', 'apt-get install tmux');
    const id = randomBytes(4).toString('hex');
    const name = `natkit-test-${process.pid}-${id}`;
    // Short: a socket's path has at most 107 bytes.
    const session = new TmuxSession(name, join(options.dir, `tmux-${id}.sock`));
    live.add(session);
    const vars = Object.entries(options.env ?? {}).flatMap(([k, v]) => ['-e', `${k}=${v}`]);
    // One tmux command line: the option is set before the program can end.
    await session.tmux(
      'start-server', ';',
      'set-option', '-g', 'remain-on-exit', 'on', ';',
      'new-session', '-d', '-s', name, '-x', String(options.cols), '-y', String(options.rows),
      ...(options.cwd !== undefined ? ['-c', options.cwd] : []), ...vars, '--', 'sh', '-c', WRAPPER, 'sh', ...options.command,
    );
    session.leader = { pid: (await session.state()).pid };
    return session;
  }

  /** Runs `tmux ARGS…` on this session's server; resolves to its stdout. */
  async tmux(...args: string[]): Promise<string> {
    const { stdout } = await run('tmux', ['-u', '-f', '/dev/null', '-S', this.socket, ...args], { timeout: TMUX_TIMEOUT_MS, encoding: 'utf8' });
    return stdout;
  }

  /** The screen as text, a line per row (without trailing spaces; a wide character once). */
  async screen(): Promise<string> {
    return this.tmux('capture-pane', '-p', '-t', this.name);
  }

  /** The screen with its colours and attributes as escape sequences (capture-pane -e). */
  async screenWithAttributes(): Promise<string> {
    return this.tmux('capture-pane', '-p', '-e', '-t', this.name);
  }

  /** Types `text` literally. */
  async type(text: string): Promise<void> {
    await this.tmux('send-keys', '-t', this.name, '-l', '--', text);
  }

  /** Presses keys by tmux's names: Enter, C-j, C-c, BSpace, Left, Up, PPage… */
  async press(...keys: string[]): Promise<void> {
    await this.tmux('send-keys', '-t', this.name, ...keys);
  }

  /** Makes the terminal `cols` × `rows` (the program gets SIGWINCH). */
  async resize(cols: number, rows: number): Promise<void> {
    await this.tmux('resize-window', '-t', this.name, '-x', String(cols), '-y', String(rows));
  }

  async state(): Promise<PaneState> {
    const f = ['pane_pid', 'pane_dead', 'alternate_on', 'cursor_flag', 'pane_width', 'pane_height'];
    const out = await this.tmux('display-message', '-p', '-t', this.name, f.map((k) => `#{${k}}`).join(' '));
    const [pid, dead, alternate, cursor, cols, rows] = out.trim().split(' ');
    return { pid: Number(pid), dead: dead === '1', alternateScreen: alternate === '1', cursorVisible: cursor === '1', cols: Number(cols), rows: Number(rows) };
  }

  /**
   * Polls the screen every 50 ms until `check` returns something other than undefined;
   * rejects with the last screen when the program ends first or `timeoutMs` passes.
   */
  async waitFor<T>(check: (screen: string) => T | undefined, what: string, timeoutMs = 15_000): Promise<T> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const screen = await this.screen();
      const found = check(screen);
      if (found !== undefined) return found;
      if (EXITED.test(screen) || (await this.state()).dead) throw new Error(`the program ended while waiting for ${what}; the screen:\n${screen}`);
      if (performance.now() >= deadline) throw new Error(`no ${what} within ${timeoutMs} ms; the screen:\n${screen}`);
      await sleep(50);
    }
  }

  /** Waits for the screen to match `pattern`; resolves to the screen. */
  waitForScreen(pattern: RegExp, what = `a screen matching ${String(pattern)}`, timeoutMs?: number): Promise<string> {
    return this.waitFor((s) => (pattern.test(s) ? s : undefined), what, timeoutMs);
  }

  /** Waits for the program to end; resolves to its exit status, the screen it left and the terminal's state then. */
  async waitForExit(timeoutMs = 10_000): Promise<{ status: number; screen: string; state: PaneState }> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const screen = await this.screen();
      const exited = EXITED.exec(screen);
      if (exited !== null) return { status: Number(exited[1]), screen, state: await this.state() };
      if (performance.now() >= deadline) throw new Error(`the program still runs after ${timeoutMs} ms; the screen:\n${screen}`);
      await sleep(50);
    }
  }

  /** Ends the server (hanging up on the program), then SIGKILLs the pane's process group if it is still there. Idempotent. */
  async kill(): Promise<void> {
    if (!live.delete(this)) return;
    await this.tmux('kill-server').catch(() => undefined);
    for (const deadline = performance.now() + 3000; this.groupRuns() && performance.now() < deadline; ) await sleep(50);
    this.killGroup();
  }

  /** kill(), synchronously (for the process's 'exit'). */
  killNow(): void {
    live.delete(this);
    spawnSync('tmux', ['-S', this.socket, 'kill-server'], { timeout: TMUX_TIMEOUT_MS });
    this.killGroup();
  }

  /** True while a process of the pane's group runs (zombies, left for init to reap, do not count). */
  private groupRuns(): boolean {
    return this.leader !== undefined && groupRuns(this.leader.pid);
  }

  private killGroup(): void {
    if (!this.groupRuns()) return;
    try {
      process.kill(-this.leader!.pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.kill();
  }
}

/** True while a process of group `pgid` runs, not counting zombies (from /proc; where there is none, any member). */
function groupRuns(pgid: number): boolean {
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((d) => /^\d+$/.test(d));
  } catch {
    try {
      process.kill(-pgid, 0);
      return true;
    } catch {
      return false;
    }
  }
  return pids.some((pid) => {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      // After the command name, which may hold spaces and parentheses: state, parent, group.
      const [state, , group] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      return Number(group) === pgid && state !== 'Z' && state !== 'X';
    } catch {
      return false; // gone meanwhile
    }
  });
}
