// Parses argv, merges config file < environment < flags (one schema: OptionSpec; the
// file may group keys in sections, OptionSpec.config),
// runs the command and maps failures to exit codes 1 (failure) and 2 (usage).
import { readFile } from 'node:fs/promises';
import { parseArgs, type ParseArgsOptionsConfig } from 'node:util';
import type { Env } from '../net/index.ts';
import { isNatkitError } from '../util/index.ts';
import { EXIT_FAILURE, EXIT_OK, EXIT_USAGE, UsageError, type Command, type CommandIo, type CommandSource, type OptionSpec, type ReloadSource, type Terminal } from './command.ts';
import { commandHelp, programHelp } from './help.ts';

export interface RunOptions {
  readonly io: CommandIo;
  readonly env: Env;
  readonly signal: AbortSignal;
  /** Environment variables (process.env in the binary; a plain object in tests). */
  readonly vars?: Readonly<Record<string, string | undefined>>;
  /** Reload requests (SIGHUP in the binary), for server commands that reload files. @default none */
  readonly onReload?: ReloadSource;
  /** Standard input, for commands that read it. @default none */
  readonly stdin?: AsyncIterable<Uint8Array>;
  /** The terminal, when standard input and output are one (`natkit chat`'s interface). @default none */
  readonly terminal?: () => Terminal | undefined;
}

type Value = string | boolean | string[];

/** Runs `natkit ARGS…` and resolves to the exit code. Never throws. */
export async function runCli(commands: readonly CommandSource[], argv: readonly string[], options: RunOptions): Promise<number> {
  const { io } = options;
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    io.out(programHelp(commands));
    return name === undefined ? EXIT_USAGE : EXIT_OK;
  }
  const found = commands.find((c) => c.name === name);
  if (found === undefined) {
    io.err(`natkit: unknown command "${name}"; expected one of ${commands.map((c) => c.name).join(', ')}\n`);
    return EXIT_USAGE;
  }
  const command = 'load' in found ? await found.load() : found;
  try {
    const parsed = parseArgs({
      args: [...rest],
      options: { ...toParseArgs(command.options), help: { type: 'boolean', short: 'h' } },
      allowPositionals: true,
      // --no-NAME turns off a boolean option whose default is on.
      allowNegative: true,
      strict: true,
    });
    if (parsed.values.help === true) {
      io.out(commandHelp(command));
      return EXIT_OK;
    }
    const values = await mergeSources(command, parsed.values, options.vars ?? {});
    return await command.run({
      values, positionals: parsed.positionals, io, env: options.env, vars: options.vars ?? {}, signal: options.signal,
      ...(options.onReload !== undefined && { onReload: options.onReload }),
      ...(options.stdin !== undefined && { stdin: options.stdin }),
      ...(options.terminal !== undefined && { terminal: options.terminal }),
    });
  } catch (err) {
    if (err instanceof UsageError || (err instanceof TypeError && 'code' in err && String(err.code).startsWith('ERR_PARSE_ARGS'))) {
      io.err(`natkit ${command.name}: ${err.message}\nRun \`natkit ${command.name} --help\` for usage.\n`);
      return EXIT_USAGE;
    }
    if (isNatkitError(err, 'ERR_ABORTED')) return EXIT_FAILURE;
    const code = isNatkitError(err) ? ` [${err.code}]` : '';
    io.err(`natkit ${command.name}: ${err instanceof Error ? err.message : String(err)}${code}\n`);
    return EXIT_FAILURE;
  }
}

function toParseArgs(options: Readonly<Record<string, OptionSpec>>): ParseArgsOptionsConfig {
  const out: ParseArgsOptionsConfig = {};
  for (const [name, o] of Object.entries(options)) {
    out[name] = { type: o.type, ...(o.short !== undefined ? { short: o.short } : {}), ...(o.multiple === true ? { multiple: true } : {}) };
  }
  return out;
}

/** defaults < config file (--config, JSON keyed by option name) < environment < flags. */
async function mergeSources(
  command: Command,
  flags: Readonly<Record<string, Value | undefined>>,
  vars: Readonly<Record<string, string | undefined>>,
): Promise<Record<string, Value | undefined>> {
  const out: Record<string, Value | undefined> = {};
  for (const [name, o] of Object.entries(command.options)) if (o.default !== undefined) out[name] = o.default;
  const configPath = typeof flags.config === 'string' ? flags.config : command.options.config?.env !== undefined ? vars[command.options.config.env] : undefined;
  if (configPath !== undefined) Object.assign(out, await readConfig(command, configPath));
  for (const [name, o] of Object.entries(command.options)) {
    const v = o.env !== undefined ? vars[o.env] : undefined;
    if (v !== undefined && v !== '') out[name] = coerce(name, o, v, `environment ${o.env}`);
  }
  for (const [name, v] of Object.entries(flags)) if (v !== undefined) out[name] = v;
  return out;
}

async function readConfig(command: Command, path: string): Promise<Record<string, Value>> {
  let data: unknown;
  try {
    data = JSON.parse(await readFile(path, 'utf8'));
  } catch (cause) {
    throw new UsageError(`config file ${path}: expected readable JSON (${cause instanceof Error ? cause.message : String(cause)})`);
  }
  if (!isObject(data)) throw new UsageError(`config file ${path}: expected a JSON object`);
  // Config key (option name, or `section.key`) → option name.
  const byKey = new Map(Object.entries(command.options).filter(([name]) => name !== 'config').map(([name, o]) => [o.config ?? name, name]));
  const sections = new Set([...byKey.keys()].filter((k) => k.includes('.')).map((k) => k.slice(0, k.indexOf('.'))));
  // One level of sections: a section's keys are read as `section.key`.
  const entries = Object.entries(data).flatMap(([key, v]) =>
    sections.has(key) && isObject(v) ? Object.entries(v).map(([inner, w]) => [`${key}.${inner}`, w] as const) : [[key, v] as const]);
  const out: Record<string, Value> = {};
  for (const [key, v] of entries) {
    const name = byKey.get(key);
    const o = name === undefined ? undefined : command.options[name];
    if (name === undefined || o === undefined) throw new UsageError(`config file ${path}: unknown key "${key}"`);
    if (o.type === 'boolean' && typeof v === 'boolean') out[name] = v;
    else if (o.multiple === true && Array.isArray(v) && v.every((x) => typeof x === 'string' || typeof x === 'number')) out[name] = v.map(String);
    else if (o.type === 'string' && (typeof v === 'string' || typeof v === 'number')) out[name] = o.multiple === true ? [String(v)] : String(v);
    else throw new UsageError(`config file ${path}: "${key}" expected ${o.type === 'boolean' ? 'true or false' : 'a string or number'}`);
  }
  return out;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function coerce(name: string, o: OptionSpec, v: string, where: string): Value {
  if (o.type === 'string') return o.multiple === true ? v.split(',').map((s) => s.trim()) : v;
  if (/^(1|true|yes|on)$/i.test(v)) return true;
  if (/^(0|false|no|off)$/i.test(v)) return false;
  throw new UsageError(`${where} (--${name}): expected true or false, got "${v}"`);
}
