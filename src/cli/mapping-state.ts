// The state file of `natkit map`: the mappings natkit made and left running (`map add`
// without --keep), so that `map remove` in a later process can delete them — PCP only
// with the nonce the mapping was made with (RFC 6887 §15), UPnP by its external port.
// JSON, replaced atomically (write a temporary file, then rename over the old one).
import { join } from 'node:path';
import type { MappingRecord } from '../portmap/index.ts';
import { NatkitError } from '../util/index.ts';
import { readStateJson, writeStateJson } from './state-dir.ts';

export { stateDir } from './state-dir.ts';

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

/** The mappings file in `dir`. */
export class MappingStateFile {
  readonly path: string;

  constructor(dir: string) {
    this.path = join(dir, 'mappings.json');
  }

  /** The entries whose lease has not ended at `nowMs` (wall clock); a missing file is empty. */
  async read(nowMs: number): Promise<StoredMapping[]> {
    const data = await readStateJson(this.path);
    if (data === undefined) return [];
    if (typeof data !== 'object' || data === null || (data as Partial<StateFile>).version !== 1 || !Array.isArray((data as Partial<StateFile>).mappings)) {
      throw new NatkitError('ERR_CONFIG', `${this.path}: expected {"version": 1, "mappings": […]}`);
    }
    return (data as StateFile).mappings.filter((m) => m.expires === undefined || Date.parse(m.expires) > nowMs);
  }

  /** Replaces the entries that `drop` selects by `add`, dropping expired ones, atomically. */
  async update(nowMs: number, change: { readonly add?: readonly StoredMapping[]; readonly drop?: (m: StoredMapping) => boolean }): Promise<void> {
    const kept = (await this.read(nowMs)).filter((m) => change.drop?.(m) !== true);
    const file: StateFile = { version: 1, mappings: [...kept, ...(change.add ?? [])].slice(-MAX_ENTRIES) };
    await writeStateJson(this.path, file);
  }
}

/** Same mapping: the protocol, internal port and external port it lives on, through the same protocol. */
export function sameMapping(a: MappingRecord, b: MappingRecord): boolean {
  return a.via === b.via && a.protocol === b.protocol && a.internalPort === b.internalPort && a.externalPort === b.externalPort;
}
