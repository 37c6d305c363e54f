// How a benchmark server child talks to bench/run.ts: one JSON line `{"ready":true,"port":N}`
// on stdout once it serves, one `{"stats":{…}}` line when told to stop. It stops on
// SIGTERM or SIGINT, and also when its stdin ends (the orchestrator died), so no
// server outlives the run even if the parent is killed with SIGKILL.
import { parseArgs } from 'node:util';

/** Options every server child takes. */
export interface ChildOptions {
  /** UDP port on 127.0.0.1; 0 lets the system choose. */
  readonly port: number;
  /** Free-form mode string, server-specific. */
  readonly mode: string;
}

/** Parses `--port N --mode X`; exits with code 2 on a usage error. */
export function childOptions(argv: readonly string[] = process.argv.slice(2)): ChildOptions {
  try {
    const { values } = parseArgs({
      args: [...argv],
      options: { port: { type: 'string', default: '0' }, mode: { type: 'string', default: '' } },
      strict: true,
    });
    const port = Number(values.port);
    if (!Number.isInteger(port) || port < 0 || port > 0xffff) throw new Error(`--port: expected 0–65535, got ${values.port}`);
    return { port, mode: values.mode };
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`);
    process.exit(2);
  }
}

/** Announces the bound port. */
export function announceReady(port: number): void {
  process.stdout.write(`${JSON.stringify({ ready: true, port })}\n`);
}

/**
 * Runs `stop` once on SIGTERM, SIGINT or end of stdin, prints its stats line and exits 0
 * (a normal exit, so `--cpu-prof` writes its profile). A stop that hangs is cut after 3 s.
 */
export function onStop(stop: () => Promise<unknown>): void {
  let stopping = false;
  const run = (): void => {
    if (stopping) return;
    stopping = true;
    const guard = setTimeout(() => process.exit(1), 3000);
    stop().then(
      (stats) => {
        clearTimeout(guard);
        process.stdout.write(`${JSON.stringify({ stats })}\n`, () => process.exit(0));
      },
      (err: unknown) => {
        clearTimeout(guard);
        process.stderr.write(`stop failed: ${String(err)}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', run);
  process.on('SIGINT', run);
  process.stdin.on('end', run);
  process.stdin.on('error', run);
  process.stdin.resume();
}
