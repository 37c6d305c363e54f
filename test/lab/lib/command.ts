// Running the lab's system tools (ip, nft, sysctl, conntrack): every call bounded by a
// timeout, failures thrown with the command line and its stderr; plus the check that
// this machine can run the lab at all (root and the tools), which fails loudly.
import { execFile, spawnSync } from 'node:child_process';

/** Options of run(). */
export interface RunOptions {
  /** Written to the command's stdin, which is then closed. @default nothing */
  readonly input?: string;
  /** The command is killed (SIGKILL) after this long. @default 10000 */
  readonly timeoutMs?: number;
  /** Aborting kills the command. */
  readonly signal?: AbortSignal;
}

/** Runs a command and resolves with its stdout; rejects with its stderr when it fails or times out. */
export function run(command: string, args: readonly string[], options: RunOptions = {}): Promise<string> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  return new Promise((resolve, reject) => {
    const child = execFile(
      command, args,
      { timeout: timeoutMs, killSignal: 'SIGKILL', encoding: 'utf8', maxBuffer: 16 * 1024 * 1024, ...(options.signal && { signal: options.signal }) },
      (err, stdout, stderr) => {
        if (err === null) {
          resolve(stdout);
          return;
        }
        const how = err.killed ? `killed after ${timeoutMs} ms` : `exit ${String(err.code ?? err.signal)}`;
        reject(new Error(`\`${[command, ...args].join(' ')}\` failed (${how}): ${stderr.trim() || err.message}`, { cause: err }));
      },
    );
    child.stdin?.on('error', () => undefined); // a command that exits before reading its input
    child.stdin?.end(options.input ?? '');
  });
}

/** Tools the lab runs, with the Debian package that brings each. */
const TOOLS: readonly (readonly [string, string])[] = [
  ['ip', 'iproute2'], ['nft', 'nftables'], ['conntrack', 'conntrack'], ['sysctl', 'procps'], ['setpriv', 'util-linux'],
];

/** What labUnavailable() checks beyond the fixed list. */
export interface LabRequirements {
  /** More [tool, Debian package] pairs. @default none */
  readonly tools?: readonly (readonly [string, string])[];
  /** The user ID to judge. @default process.getuid() */
  readonly uid?: number;
}

/**
 * Why the lab cannot run here, or undefined when it can. The lab needs root (network
 * namespaces and netfilter need CAP_NET_ADMIN and CAP_SYS_ADMIN) and the tools above.
 */
export function labUnavailable(req: LabRequirements = {}): string | undefined {
  if (process.platform !== 'linux') return `the namespace lab needs Linux, this is ${process.platform}`;
  if ((req.uid ?? process.getuid?.()) !== 0) {
    return 'the namespace lab needs root (network namespaces and nftables need CAP_NET_ADMIN); CI runs it as root: run the tests as root, e.g. `sudo npm test`';
  }
  const missing = [...TOOLS, ...(req.tools ?? [])].filter(([tool]) => spawnSync('sh', ['-c', 'command -v "$1"', 'sh', tool]).status !== 0);
  if (missing.length > 0) {
    return `the namespace lab needs ${missing.map(([t]) => t).join(', ')}: apt-get install ${[...new Set(missing.map(([, p]) => p))].join(' ')} (.ci/run installs them)`;
  }
  return undefined;
}

/** Throws labUnavailable()'s reason: a lab test must fail, never skip, where the lab cannot run. */
export function assertLabAvailable(req: LabRequirements = {}): void {
  const why = labUnavailable(req);
  if (why !== undefined) throw new Error(why);
}
