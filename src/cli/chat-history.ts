// `natkit chat`'s local history: what was said and heard, one JSON object per line in
// chat/NAME.jsonl in the state directory (mode 0600), appended as it happens. The file
// keeps the newest MAX_ENTRIES entries: once it holds twice that many (found on load or
// counted while appending) it is rewritten with the newest MAX_ENTRIES.
import { appendFile, mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ChatMessage } from '../chat/index.ts';
import { writeStateText } from './state-dir.ts';

/** Entries the file keeps by default. */
const MAX_ENTRIES = 10_000;

/** One message in the history. */
export interface HistoryEntry {
  /** When it was said or heard, ISO 8601 (our clock). */
  readonly at: string;
  readonly id: string;
  readonly from: string;
  /** The room; absent for a private message. */
  readonly room?: string;
  /** A private message's receiver. */
  readonly to?: string;
  readonly text: string;
}

/** The entry of a message said or heard now: a private one names its receiver (us, when heard). */
export function historyEntry(m: ChatMessage, self: string): HistoryEntry {
  return { at: new Date().toISOString(), id: m.id, from: m.from, text: m.text, ...(m.room !== undefined ? { room: m.room } : { to: m.to ?? self }) };
}

/** The history of one chat name. Appends are serialised; failures are reported, never thrown. */
export class ChatHistory {
  readonly path: string;
  private queue: Promise<void> = Promise.resolve();
  /** Entries in the file as far as we know (what load() found, plus appends). */
  private entries = 0;
  private readonly onError: (error: Error) => void;
  private readonly maxEntries: number;

  constructor(stateDir: string, name: string, onError: (error: Error) => void, maxEntries = MAX_ENTRIES) {
    this.path = join(stateDir, 'chat', `${encodeURIComponent(name)}.jsonl`);
    this.onError = onError;
    this.maxEntries = maxEntries;
  }

  /** The newest `limit` entries of `room` and of private talk, oldest first. Lines that do not parse are skipped. */
  async load(room: string | undefined, limit: number): Promise<HistoryEntry[]> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    const all = parseEntries(text);
    this.entries = all.length;
    if (all.length > 2 * this.maxEntries) this.serial(() => this.keepNewest(all));
    return limit === 0 ? [] : all.filter((e) => e.room === undefined || e.room === room).slice(-limit);
  }

  append(entry: HistoryEntry): void {
    this.serial(async () => {
      await mkdir(join(this.path, '..'), { recursive: true, mode: 0o700 });
      await appendFile(this.path, `${JSON.stringify(entry)}\n`, { mode: 0o600 });
      if (++this.entries > 2 * this.maxEntries) await this.keepNewest(parseEntries(await readFile(this.path, 'utf8')));
    });
  }

  private async keepNewest(all: readonly HistoryEntry[]): Promise<void> {
    const kept = all.slice(-this.maxEntries);
    await writeStateText(this.path, kept.map((e) => `${JSON.stringify(e)}\n`).join(''));
    this.entries = kept.length;
  }

  /** Resolves once every append so far is on disk (or failed). */
  flush(): Promise<void> {
    return this.queue;
  }

  private serial(task: () => Promise<void>): void {
    this.queue = this.queue.then(task).catch((err: unknown) => this.onError(err instanceof Error ? err : new Error(String(err))));
  }
}

function parseEntries(text: string): HistoryEntry[] {
  return text.split('\n').flatMap((line) => {
    const entry = parseEntry(line);
    return entry === undefined ? [] : [entry];
  });
}

function parseEntry(line: string): HistoryEntry | undefined {
  if (line === '') return undefined;
  try {
    const v = JSON.parse(line) as Partial<HistoryEntry>;
    const ok = typeof v.at === 'string' && typeof v.id === 'string' && typeof v.from === 'string' && typeof v.text === 'string'
      && (v.room === undefined || typeof v.room === 'string') && (v.to === undefined || typeof v.to === 'string');
    return ok ? v as HistoryEntry : undefined;
  } catch {
    return undefined;
  }
}
