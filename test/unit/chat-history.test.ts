// `natkit chat`'s history file: appends in order, loads the newest entries of a room and of
// private talk, skips lines that do not parse, keeps the newest maxEntries once it holds
// twice as many, and is private (mode 0600).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFile, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ChatHistory } from '../../src/cli/chat-history.ts';

test('history: appends, loads per room and private, skips junk, trims to the newest, mode 0600', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'natkit-history-'));
  try {
    const errors: Error[] = [];
    const h = new ChatHistory(dir, 'al/ice', (e) => errors.push(e), 5);
    assert.deepEqual(await h.load('lobby', 10), [], 'no file yet');
    const at = (n: number): string => new Date(Date.UTC(2026, 0, 1, 0, n)).toISOString();
    for (let n = 0; n < 4; n++) h.append({ at: at(n), id: `r${n}`, from: 'bob', room: n % 2 === 0 ? 'lobby' : 'other', text: `room ${n}` });
    h.append({ at: at(4), id: 'p0', from: 'bob', to: 'al/ice', text: 'private' });
    await h.flush();
    assert.equal(h.path, join(dir, 'chat', 'al%2Fice.jsonl'), 'the name cannot leave the directory');
    assert.equal((await stat(h.path)).mode & 0o777, 0o600);
    await appendFile(h.path, 'not json\n{"at":1}\n');
    const lobby = await h.load('lobby', 10);
    assert.deepEqual(lobby.map((e) => e.id), ['r0', 'r2', 'p0'], 'this room and private talk, oldest first');
    assert.deepEqual((await h.load('lobby', 2)).map((e) => e.id), ['r2', 'p0'], 'the newest N');
    assert.deepEqual(await h.load('lobby', 0), []);
    for (let n = 5; n < 12; n++) h.append({ at: at(n), id: `x${n}`, from: 'al/ice', room: 'lobby', text: `${n}` });
    await h.flush();
    const lines = (await readFile(h.path, 'utf8')).split('\n').filter(Boolean);
    // The 11th valid entry (x10) passed twice maxEntries: the newest 5 were kept, then x11 came.
    assert.deepEqual(lines.map((l) => (JSON.parse(l) as { id: string }).id), ['x6', 'x7', 'x8', 'x9', 'x10', 'x11']);
    assert.deepEqual(errors, []);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
