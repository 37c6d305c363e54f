// Running peer commands (`natkit connect`, `pipe`, `chat`) in-process against an in-process
// `natkit serve` on loopback: their output so far, standard input fed by the test, and
// waits bounded in time.
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { commands } from '../../src/cli/commands/index.ts';
import { runCli } from '../../src/cli/run.ts';
import { parseEndpoint } from '../../src/net/index.ts';
import { nodeEnv } from '../../src/net/node/index.ts';
import { startServerCommand } from './server-command.ts';

export const env = nodeEnv();
export const HOST = '127.0.0.1';

interface Announced {
  readonly listening: readonly { transport: string; address: string; serves: string[] }[];
}

/** A command run in-process: its output so far, its exit, and an abort standing for Ctrl-C. */
export function start(argv: readonly string[], stdin: AsyncIterable<Uint8Array>) {
  const stop = new AbortController();
  const io = { out: '', err: '' };
  const exit = runCli(commands, argv, { io: { out: (t) => void (io.out += t), err: (t) => void (io.err += t) }, env, signal: stop.signal, stdin });
  return { io, exit, stop: () => stop.abort() };
}

/** Standard input that stays open until `signal` aborts, sending nothing. */
export function silentUntil(signal: AbortSignal): AsyncIterable<Uint8Array> {
  const end = new Promise<IteratorResult<Uint8Array>>((resolve) => signal.addEventListener('abort', () => resolve({ done: true, value: undefined }), { once: true }));
  return { [Symbol.asyncIterator]: () => ({ next: () => end }) };
}

/** Standard input with `text`, then its end. */
export function lines(...text: string[]): AsyncIterable<Uint8Array> {
  return Readable.from(text.map((t) => new TextEncoder().encode(t)));
}

/** Resolves once `read()` matches `pattern`; polls on a short real timer, bounded by `timeoutMs`. */
export async function waitFor(read: () => string, pattern: RegExp, timeoutMs = 15_000): Promise<void> {
  for (const deadline = Date.now() + timeoutMs; !pattern.test(read()); ) {
    if (Date.now() > deadline) assert.fail(`expected ${pattern} within ${timeoutMs} ms, got:\n${read()}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** An in-process `natkit serve` (no TURN) on loopback for `body`, given the arguments that point a peer at its rendezvous server. */
export async function withServe(body: (server: readonly string[]) => Promise<void>): Promise<void> {
  const serve = await startServerCommand<Announced>(env, 'serve', ['-l', HOST, '-l', '127.0.0.2', '-p', '0', '--alt-port', '0', '--rendezvous-port', '0', '--no-turn']);
  try {
    const rendezvous = (transport: string): string => serve.info.listening.find((l) => l.transport === transport && l.serves.includes('rendezvous') && l.address.startsWith(`${HOST}:`))!.address;
    await body(['--server', rendezvous('udp'), '--rendezvous-port', String(parseEndpoint(rendezvous('tcp')).port), '--local', HOST]);
  } finally {
    await serve.stop();
  }
}

/** Standard input the test writes to line by line, until end(). */
export function feed(): { readonly input: AsyncIterable<Uint8Array>; write(line: string): void; end(): void } {
  const queue: Uint8Array[] = [];
  let ended = false;
  let wake: (() => void) | undefined;
  const input: AsyncIterable<Uint8Array> = {
    async *[Symbol.asyncIterator]() {
      for (;;) {
        const next = queue.shift();
        if (next !== undefined) yield next;
        else if (ended) return;
        else await new Promise<void>((resolve) => (wake = resolve));
      }
    },
  };
  return {
    input,
    write: (line) => {
      queue.push(new TextEncoder().encode(`${line}\n`));
      wake?.();
    },
    end: () => {
      ended = true;
      wake?.();
    },
  };
}
