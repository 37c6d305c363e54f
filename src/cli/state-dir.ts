// Where natkit keeps state between runs (mappings.json, known-peers.json) and how a state
// file is read and replaced: JSON, written to a temporary file (mode 0600) and renamed over
// the old one, so a reader never sees half a file.
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { NatkitError } from '../util/index.ts';

/** The directory: NATKIT_STATE_DIR (--state), else $XDG_STATE_HOME/natkit, else ~/.local/state/natkit. */
export function stateDir(explicit: string | undefined, vars: Readonly<Record<string, string | undefined>>): string {
  if (explicit !== undefined) return explicit;
  if (vars.XDG_STATE_HOME !== undefined && vars.XDG_STATE_HOME !== '') return join(vars.XDG_STATE_HOME, 'natkit');
  if (vars.HOME === undefined || vars.HOME === '') throw new NatkitError('ERR_CONFIG', 'no state directory: set --state, NATKIT_STATE_DIR, XDG_STATE_HOME or HOME');
  return join(vars.HOME, '.local', 'state', 'natkit');
}

/** The parsed JSON in `path`; undefined when the file is missing. */
export async function readStateJson(path: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new NatkitError('ERR_CONFIG', `reading ${path}: ${(err as Error).message}`, { cause: err });
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new NatkitError('ERR_CONFIG', `${path}: expected JSON, got ${JSON.stringify(text.slice(0, 40))}`, { cause: err });
  }
}

/** Replaces `path` by `data` as JSON, atomically; creates its directory (mode 0700). */
export function writeStateJson(path: string, data: unknown): Promise<void> {
  return writeStateText(path, `${JSON.stringify(data, null, 2)}\n`);
}

/** Replaces `path` by `text`, atomically (a temporary file renamed over it, mode 0600); creates its directory (mode 0700). */
export async function writeStateText(path: string, text: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  // Unique per write: two writers in one process (tests run commands in-process) never share it.
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  await writeFile(tmp, text, { mode: 0o600 });
  await rename(tmp, path);
}
