// The state file of `natkit map`: the mappings natkit made and left running (`map add`
// without --keep), so that `map remove` in a later process can delete them — PCP only
// with the nonce the mapping was made with (RFC 6887 §15), UPnP by its external port.
// JSON, replaced atomically (write a temporary file, then rename over the old one).
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { MappingRecord } from '../portmap/index.ts';
import { NatkitError } from '../util/index.ts';

/** One mapping natkit made, and where. */
export interface StoredMapping extends MappingRecord {
  /** The NAT-PMP/PCP server asked, `address:port`; undefined when only UPnP was reachable. */
  readonly gateway: string | undefined;
  /** Wall-clock time the lease ends, ISO 8601; undefined for a permanent UPnP lease. */
  readonly expires: string | undefined;
  /** The process that made it (`natkit map add --keep` removes its own on exit). */
  readonly pid: number;
}

interface StateFile {
  readonly version: 1;
  readonly mappings: readonly StoredMapping[];
}

/** Most entries kept: a runaway loop of `map add` cannot grow the file without bound. */
const MAX_ENTRIES = 1024;

/** The directory: NATKIT_STATE_DIR (--state), else $XDG_STATE_HOME/natkit, else ~/.local/state/natkit. */
export function stateDir(explicit: string | undefined, vars: Readonly<Record<string, string | undefined>>): string {
  if (explicit !== undefined) return explicit;
  if (vars.XDG_STATE_HOME !== undefined && vars.XDG_STATE_HOME !== '') return join(vars.XDG_STATE_HOME, 'natkit');
  if (vars.HOME === undefined || vars.HOME === '') throw new NatkitError('ERR_CONFIG', 'no state directory: set --state, NATKIT_STATE_DIR, XDG_STATE_HOME or HOME');
  return join(vars.HOME, '.local', 'state', 'natkit');
}

/** The mappings file in `dir`. */
export class MappingStateFile {
  readonly path: string;
  private readonly dir: string;

  constructor(dir: string) {
    this.dir = dir;
    this.path = join(dir, 'mappings.json');
  }

  /** The entries whose lease has not ended at `nowMs` (wall clock); a missing file is empty. */
  async read(nowMs: number): Promise<StoredMapping[]> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw new NatkitError('ERR_CONFIG', `reading ${this.path}: ${(err as Error).message}`, { cause: err });
    }
    let data: unknown;
    try {
      data = JSON.parse(text);
    } catch (err) {
      throw new NatkitError('ERR_CONFIG', `${this.path}: expected JSON, got ${JSON.stringify(text.slice(0, 40))}`, { cause: err });
    }
    if (typeof data !== 'object' || data === null || (data as Partial<StateFile>).version !== 1 || !Array.isArray((data as Partial<StateFile>).mappings)) {
      throw new NatkitError('ERR_CONFIG', `${this.path}: expected {"version": 1, "mappings": […]}`);
    }
    return (data as StateFile).mappings.filter((m) => m.expires === undefined || Date.parse(m.expires) > nowMs);
  }

  /** Replaces the entries that `drop` selects by `add`, dropping expired ones, atomically. */
  async update(nowMs: number, change: { readonly add?: readonly StoredMapping[]; readonly drop?: (m: StoredMapping) => boolean }): Promise<void> {
    const kept = (await this.read(nowMs)).filter((m) => change.drop?.(m) !== true);
    const file: StateFile = { version: 1, mappings: [...kept, ...(change.add ?? [])].slice(-MAX_ENTRIES) };
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    const tmp = `${this.path}.${process.pid}.tmp`;
    await writeFile(tmp, `${JSON.stringify(file, null, 2)}\n`, { mode: 0o600 });
    await rename(tmp, this.path);
  }
}

/** Same mapping: the protocol, internal port and external port it lives on, through the same protocol. */
export function sameMapping(a: MappingRecord, b: MappingRecord): boolean {
  return a.via === b.via && a.protocol === b.protocol && a.internalPort === b.internalPort && a.externalPort === b.externalPort;
}
