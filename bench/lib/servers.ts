// The servers under test, each started as a child process on 127.0.0.1 (pinned to the
// server CPU when pinning is on), probed until it answers STUN, and stopped by PID.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { waitForLine, type Child, type ChildRegistry } from './children.ts';
import type { ServerId } from './options.ts';
import { freeUdpPort, waitForStun } from './stun-probe.ts';

/** A server that answers on `port` until stop(). */
export interface RunningServer {
  readonly pid: number;
  readonly port: number;
  /** Stops it; resolves with the stats it printed, if any. */
  stop(): Promise<unknown>;
}

/** How to start one server, and what to call it. */
export interface ServerSpec {
  readonly id: ServerId;
  /** Row name in the table. */
  readonly label: string;
  /** One line on its configuration. */
  readonly note: string;
  /** Undefined when it can run here; otherwise why not ('not installed'). */
  unavailable(): string | undefined;
  start(ctx: StartContext): Promise<RunningServer>;
}

/** What start() gets. */
export interface StartContext {
  readonly children: ChildRegistry;
  /** taskset CPU list for the server, or undefined. */
  readonly cpu: string | undefined;
  /** Extra node flags for Node servers (e.g. --cpu-prof). */
  readonly nodeFlags: readonly string[];
  readonly signal: AbortSignal;
}

const SERVERS_DIR = fileURLToPath(new URL('../servers/', import.meta.url));
const READY_MS = 15_000;

function pinned(cpu: string | undefined, command: string, args: readonly string[]): [string, string[]] {
  return cpu === undefined ? [command, [...args]] : ['taskset', ['-c', cpu, command, ...args]];
}

function readyPort(line: string): number | undefined {
  try {
    const v = JSON.parse(line) as { ready?: boolean; port?: number };
    return v.ready === true && typeof v.port === 'number' ? v.port : undefined;
  } catch {
    return undefined;
  }
}

function statsOf(child: Child): unknown {
  for (const line of child.lines) {
    try {
      const v = JSON.parse(line) as { stats?: unknown };
      if (v.stats !== undefined) return v.stats;
    } catch {
      // not JSON
    }
  }
  return undefined;
}

/** A Node server from bench/servers/, speaking the lifecycle.ts protocol. */
function nodeServer(id: ServerId, label: string, note: string, file: string, mode: string): ServerSpec {
  return {
    id, label, note,
    unavailable: () => undefined,
    async start(ctx) {
      const [cmd, args] = pinned(ctx.cpu, process.execPath, [...ctx.nodeFlags, join(SERVERS_DIR, file), '--port', '0', '--mode', mode]);
      const child = ctx.children.spawn(id, cmd, args);
      try {
        const port = await waitForLine(child, readyPort, READY_MS, ctx.signal);
        await waitForStun(port, { timeoutMs: 5000, intervalMs: 50, signal: ctx.signal, isDead: child.hasExited });
        return {
          pid: child.pid, port,
          async stop() {
            await ctx.children.stop(child, 5000);
            return statsOf(child);
          },
        };
      } catch (err) {
        await ctx.children.stop(child, 1000);
        throw err;
      }
    },
  };
}

let coturnVersion: string | undefined;

/** The coturn binary ($TURNSERVER, else turnserver on PATH), or undefined when not installed. */
function turnserverPath(): string | undefined {
  const wanted = process.env.TURNSERVER ?? 'turnserver';
  const r = spawnSync('sh', ['-c', 'command -v "$1"', 'sh', wanted], { encoding: 'utf8' });
  const path = r.stdout?.trim();
  return r.status === 0 && path !== undefined && path !== '' ? path : undefined;
}

/** coturn's version from the package manager, if it knows. */
export function coturnPackageVersion(): string | undefined {
  if (coturnVersion === undefined) {
    const r = spawnSync('dpkg-query', ['-W', '-f=${Version}', 'coturn'], { encoding: 'utf8' });
    coturnVersion = r.status === 0 ? r.stdout.trim() : '';
  }
  return coturnVersion === '' ? undefined : coturnVersion;
}

/** Flags of the minimal STUN-only coturn (no TURN, TLS, DTLS, TCP, CLI; own pid file and db). */
export function coturnArgs(port: number, dir: string): string[] {
  return [
    '-n', // no configuration file
    '--listening-ip=127.0.0.1', `--listening-port=${port}`,
    '--stun-only', '--no-tls', '--no-dtls', '--no-tcp', '--no-cli',
    `--pidfile=${join(dir, 'turnserver.pid')}`, `--db=${join(dir, 'turndb')}`,
    '--log-file=stdout', '--simple-log',
  ];
}

const coturn: ServerSpec = {
  id: 'coturn',
  label: 'coturn turnserver --stun-only',
  note: 'coturn: -n --stun-only on 127.0.0.1, UDP only (no TCP/TLS/DTLS/CLI), its own pid file and sqlite db in a temp dir, other settings default',
  unavailable: () => (turnserverPath() === undefined ? 'not installed' : undefined),
  async start(ctx) {
    const bin = turnserverPath();
    if (bin === undefined) throw new Error('turnserver not installed');
    const dir = mkdtempSync(join(tmpdir(), 'natkit-bench-coturn-'));
    let lastError: unknown;
    // A port found free may be taken before coturn binds it: try a few.
    for (let attempt = 0; attempt < 3; attempt++) {
      const port = await freeUdpPort();
      const [cmd, args] = pinned(ctx.cpu, bin, coturnArgs(port, dir));
      const child = ctx.children.spawn('coturn', cmd, args);
      try {
        await waitForStun(port, { timeoutMs: 10_000, intervalMs: 50, signal: ctx.signal, isDead: child.hasExited });
        checkPidFile(join(dir, 'turnserver.pid'), child.pid);
        return {
          pid: child.pid, port,
          async stop() {
            await ctx.children.stop(child, 5000);
            rmSync(dir, { recursive: true, force: true });
            return undefined;
          },
        };
      } catch (err) {
        lastError = err;
        await ctx.children.stop(child, 1000);
        if (ctx.signal.aborted) break;
      }
    }
    rmSync(dir, { recursive: true, force: true });
    throw lastError instanceof Error ? lastError : new Error(String(lastError));
  },
};

/** coturn must run as the process we started (no daemonising, no fork). */
function checkPidFile(file: string, pid: number): void {
  let text = '';
  try {
    text = readFileSync(file, 'utf8').trim();
  } catch {
    return; // written a little later; nothing to check
  }
  if (text !== '' && Number(text) !== pid) {
    throw new Error(`coturn pid file says ${text}, but the child is ${pid}: it forked, refusing to go on`);
  }
}

/** Every server the benchmark can run. */
export const SERVERS: Readonly<Record<ServerId, ServerSpec>> = {
  bare: nodeServer(
    'bare', 'bare Node dgram responder', 'bare: bench/servers/bare-dgram.ts — node:dgram, copies the transaction ID into a preallocated 32-byte response',
    'bare-dgram.ts', '',
  ),
  natkit: nodeServer(
    'natkit', 'natkit StunServer', 'natkit: StunServer.create defaults (SOFTWARE, RFC 3489, TCP listener, 4 MiB buffers), rate limit RAISED to 1e9/s (limiter still runs per packet)',
    'natkit-stun.ts', 'raised',
  ),
  'natkit-nolimit': nodeServer(
    'natkit-nolimit', 'natkit StunServer, no limiter', 'natkit-nolimit: as natkit, but rateLimit: false (the limiter is skipped)',
    'natkit-stun.ts', 'off',
  ),
  coturn,
};
