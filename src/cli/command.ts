// The shape of a `natkit` command: one file per command in commands/, each runnable
// in-process by tests with its own io, env and signal (shared/STYLE.md, CLI).
import { readFile } from 'node:fs/promises';
import type { Env } from '../net/index.ts';
import { NatkitError } from '../util/index.ts';

/** Where a command writes: data and results to `out`, progress and diagnostics to `err`. */
export interface CommandIo {
  out(text: string): void;
  err(text: string): void;
}

/** One option of a command; the same schema serves flags, environment and config file. */
export interface OptionSpec {
  readonly type: 'string' | 'boolean';
  readonly short?: string;
  readonly multiple?: boolean;
  /** Shown in --help. */
  readonly description: string;
  /** Placeholder in --help, e.g. 'HOST:PORT'. */
  readonly valueName?: string;
  /** Environment variable that sets it (server commands). */
  readonly env?: string;
  /** Key in the config file; `section.key` for a key inside a section object, e.g. 'turn.realm'. @default the option name */
  readonly config?: string;
  /** Default, as shown in --help. */
  readonly default?: string | boolean;
}

/** Parsed invocation handed to a command. */
export interface CommandContext {
  readonly values: Readonly<Record<string, string | boolean | string[] | undefined>>;
  readonly positionals: readonly string[];
  readonly io: CommandIo;
  readonly env: Env;
  /** Environment variables (process.env in the binary; a plain object in tests). */
  readonly vars: Readonly<Record<string, string | undefined>>;
  /** Fires on SIGINT/SIGTERM (or when a test aborts). */
  readonly signal: AbortSignal;
  /** Subscribes to reload requests (SIGHUP in the binary) until the returned function is called; absent where nothing asks. */
  readonly onReload?: ReloadSource;
  /** Standard input (process.stdin in the binary), for commands that read it (`natkit pipe`); absent: none. */
  readonly stdin?: AsyncIterable<Uint8Array>;
  /** The terminal when standard input and output both are one (process.stdin/stdout in the binary); absent or undefined: none. */
  readonly terminal?: () => Terminal | undefined;
}

/** An interactive terminal: keys in (raw mode), screen out. */
export interface Terminal {
  readonly input: NodeJS.ReadStream;
  readonly output: NodeJS.WriteStream;
}

/** Subscribes `handler` to reload requests; returns the unsubscribe. */
export type ReloadSource = (handler: () => void) => () => void;

/** A `natkit` subcommand. `run` resolves to the exit code: 0 ok, 1 failure. */
export interface Command {
  readonly name: string;
  readonly summary: string;
  /** Usage line after `natkit NAME`, e.g. '[options] SERVER'. */
  readonly usage: string;
  readonly options: Readonly<Record<string, OptionSpec>>;
  /** Extra --help text: examples, notes. */
  readonly details?: string;
  run(ctx: CommandContext): Promise<number>;
}

/** A command known by name and summary until it runs: `load()` imports it. */
export interface LazyCommand {
  readonly name: string;
  readonly summary: string;
  load(): Promise<Command>;
}

/** What runCli() takes: commands, or lazy ones. */
export type CommandSource = Command | LazyCommand;

/** Wrong invocation: exits 2 with the message and a pointer to --help. */
export class UsageError extends NatkitError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_INVALID_ARGUMENT', message, options);
    this.name = 'UsageError';
  }
}

/** Exit codes of every command. */
export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

/** A string option's value, or undefined. */
export function stringOption(ctx: CommandContext, name: string): string | undefined {
  const v = ctx.values[name];
  return typeof v === 'string' ? v : undefined;
}

/** A boolean option's value (false when absent). */
export function flag(ctx: CommandContext, name: string): boolean {
  return ctx.values[name] === true;
}

/** Parses a whole number option within bounds, or throws UsageError naming the option. */
export function intOption(ctx: CommandContext, name: string, min: number, max: number): number | undefined {
  const v = stringOption(ctx, name);
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!/^\d+$/.test(v) || n < min || n > max) throw new UsageError(`--${name}: expected a whole number in ${min}–${max}, got "${v}"`);
  return n;
}

/** Reads the file a string option names (certificates, keys), or throws UsageError naming the option. */
export async function fileOption(ctx: CommandContext, name: string): Promise<string | undefined> {
  const path = stringOption(ctx, name);
  return path === undefined ? undefined : readOptionFile(name, path);
}

/** Reads `path`, given by option `name`, or throws UsageError naming both. */
export async function readOptionFile(name: string, path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (cause) {
    throw new UsageError(`--${name}: cannot read ${path} (${cause instanceof Error ? cause.message : String(cause)})`);
  }
}
