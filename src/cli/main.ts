#!/usr/bin/env node
// The `natkit` binary: real sockets and clock (nodeEnv), process I/O, and SIGINT/SIGTERM
// turned into an abort of the running command. A second signal exits at once. SIGHUP is a
// reload request, caught only while a command listens for it (otherwise it ends the process).
import { isatty } from 'node:tty';
import { nodeEnv } from '../net/node/index.ts';
import { NatkitError } from '../util/index.ts';
import { commands } from './commands/index.ts';
import { runCli } from './run.ts';

const controller = new AbortController();
const onSignal = (signal: NodeJS.Signals): void => {
  if (controller.signal.aborted) process.exit(130);
  controller.abort(new NatkitError('ERR_ABORTED', `interrupted by ${signal}`));
};
process.on('SIGINT', onSignal);
process.on('SIGTERM', onSignal);

let stdinUsed = false;
process.exitCode = await runCli(commands, process.argv.slice(2), {
  io: { out: (text) => void process.stdout.write(text), err: (text) => void process.stderr.write(text) },
  env: nodeEnv(),
  signal: controller.signal,
  vars: process.env,
  // Lazily: touching process.stdin sets up a stream, which only `natkit pipe` needs.
  stdin: {
    [Symbol.asyncIterator]: () => {
      stdinUsed = true;
      return process.stdin[Symbol.asyncIterator]();
    },
  },
  terminal: () => {
    if (!isatty(0) || !isatty(1)) return undefined;
    stdinUsed = true;
    return { input: process.stdin, output: process.stdout };
  },
  onReload: (handler) => {
    process.on('SIGHUP', handler);
    return () => void process.off('SIGHUP', handler);
  },
});
process.off('SIGINT', onSignal);
process.off('SIGTERM', onSignal);
// A read of standard input may still be pending (the command ended on a signal): let it go, or it holds the process.
if (stdinUsed) process.stdin.destroy();
