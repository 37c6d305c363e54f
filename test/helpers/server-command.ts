// A server command (`natkit turn-server`, `natkit serve`, …) run in-process with --json:
// resolves once its first line announced where it listens; stop() aborts it, checks exit
// code 0 and returns the counters of its last line.
import assert from 'node:assert/strict';
import { commands } from '../../src/cli/commands/index.ts';
import { runCli } from '../../src/cli/run.ts';
import type { Env } from '../../src/net/index.ts';

/** A running server command. */
export interface RunningCommand<A, S> {
  /** The first line it printed: `{"listening": …}`. */
  readonly info: A;
  /** Aborts it (as SIGTERM would), asserts exit 0 and returns the `stats` of its last line. */
  stop(): Promise<S>;
}

/** Runs `natkit NAME --json ARGV…` with environment `vars`. */
export async function startServerCommand<A, S = Record<string, unknown>>(
  env: Env, name: string, argv: readonly string[], vars: Record<string, string> = {},
): Promise<RunningCommand<A, S>> {
  const controller = new AbortController();
  let out = '';
  let err = '';
  let announced: (value: A) => void = () => {};
  const listening = new Promise<A>((resolve) => (announced = resolve));
  const done = runCli(commands, [name, '--json', ...argv], {
    io: {
      out: (s) => {
        out += s;
        if (out.includes('\n') && out.startsWith('{"listening"')) announced(JSON.parse(out.split('\n')[0]!) as A);
      },
      err: (s) => void (err += s),
    },
    env,
    signal: controller.signal,
    vars,
  });
  const info = await Promise.race([listening, done.then((code) => assert.fail(`${name} exited ${code} before listening: ${err}`))]);
  return {
    info,
    async stop() {
      controller.abort();
      assert.equal(await done, 0, err);
      return (JSON.parse(out.trim().split('\n').at(-1)!) as { stats: S }).stats;
    },
  };
}
