// `natkit chat` in-process against `natkit serve` on loopback: two members of a room in
// --json mode talk (spaces, Unicode, several lines, private messages, delivery marks, /who),
// quit cleanly, find their history on the next start; a member that comes back with
// another key is refused (its first key is pinned); plain-lines mode; usage errors exit 2.
import assert from 'node:assert/strict';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { feed, lines, start, waitFor, withServe } from '../helpers/cli-peers.ts';
import { noLeaks } from '../helpers/leaks.ts';

interface Event {
  readonly event: string;
  readonly [key: string]: unknown;
}

const events = (out: string): Event[] => out.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Event);
const find = (out: string, event: string, match: (e: Event) => boolean = () => true): Event | undefined => events(out).find((e) => e.event === event && match(e));

/** A chat member in --json mode, commands written to its stdin. */
function member(name: string, server: readonly string[], extra: readonly string[] = []) {
  const stdin = feed();
  const run = start(['chat', 'lobby', '--name', name, '--json', '--state', join(dir, `state-${name}`), ...server, ...extra], stdin.input);
  return { ...run, send: (command: Record<string, unknown>) => stdin.write(JSON.stringify(command)), quit: () => stdin.write('{"type":"quit"}') };
}

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'natkit-chat-cli-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

const HELLO = 'héllo wörld 👋 with spaces\nand a second line';

test('natkit chat --json: a room of two talks, privately too, with delivery marks; history on the next start; a changed key is refused', noLeaks(async () => {
  await withServe(async (server) => {
    const alice = member('alice', server);
    const bob = member('bob', server);
    try {
      await waitFor(() => alice.io.out, /"event":"joined".*"name":"bob"/);
      await waitFor(() => bob.io.out, /"event":"joined".*"name":"alice"/);
      const joined = find(alice.io.out, 'joined') as { peer: { path: { kind: string } }; note: string } & Event;
      assert.equal(joined.peer.path.kind, 'direct', 'two peers with no NAT between them go direct');
      assert.match(joined.note, /^pinned bob key [0-9a-f:]{19} \(first use\)$/);

      alice.send({ type: 'send', text: HELLO });
      await waitFor(() => bob.io.out, /"event":"message"/);
      const heard = find(bob.io.out, 'message')!;
      assert.deepEqual([heard['from'], heard['text'], heard['room']], ['alice', HELLO, 'lobby']);
      const sent = find(alice.io.out, 'sent')!;
      assert.deepEqual(sent['recipients'], ['bob']);
      await waitFor(() => alice.io.out, new RegExp(`"event":"delivered","atMs":\\d+,"id":"${String(sent['id'])}","by":"bob","waiting":0`));

      bob.send({ type: 'send', to: 'alice', text: 'just us' });
      await waitFor(() => alice.io.out, /"text":"just us"/);
      assert.equal(find(alice.io.out, 'message', (e) => e['text'] === 'just us')!['room'], null, 'private');
      alice.send({ type: 'who' });
      alice.send({ type: 'nonsense' });
      await waitFor(() => alice.io.out, /"event":"who"/);
      assert.deepEqual((find(alice.io.out, 'who')!['peers'] as { name: string }[]).map((p) => p.name), ['bob']);
      await waitFor(() => alice.io.out, /"event":"notice".*line 3: expected \\"type\\"/);

      bob.quit();
      assert.equal(await bob.exit, 0, bob.io.err);
      await waitFor(() => alice.io.out, /"event":"left".*"peer":"bob"/);
      assert.equal((await stat(join(dir, 'state-bob', 'chat', 'bob.jsonl'))).mode & 0o777, 0o600, 'history is private');
      assert.equal((await stat(join(dir, 'state-bob', 'keys', 'bob.pem'))).mode & 0o777, 0o600, 'the key is private');

      // bob again, same state: his history comes back in "ready", and alice knows his key.
      const again = member('bob', server);
      try {
        await waitFor(() => again.io.out, /"event":"ready"/);
        const history = find(again.io.out, 'ready')!['history'] as { from: string; text: string; to?: string }[];
        assert.deepEqual(history.map((h) => [h.from, h.text, h.to]), [['alice', HELLO, undefined], ['bob', 'just us', 'alice']]);
        await waitFor(() => alice.io.out, /"event":"joined".*"note":"known bob key/);
      } finally {
        again.quit();
        assert.equal(await again.exit, 0, again.io.err);
      }

      // A third bob, with another key: alice refuses him before any session.
      const impostor = member('bob', server, ['--key', join(dir, 'other-bob.pem'), '--history', '0']);
      try {
        await waitFor(() => alice.io.out, /"event":"refused".*"peer":"bob"/);
        assert.match(String(find(alice.io.out, 'refused')!['reason']), /is pinned for it/);
        impostor.send({ type: 'send', text: 'trust me' });
        await waitFor(() => impostor.io.out, /"event":"sent"/);
        assert.deepEqual(find(impostor.io.out, 'sent')!['recipients'], [], 'no session: nobody to send to');
      } finally {
        impostor.quit();
        assert.equal(await impostor.exit, 0, impostor.io.err);
      }
    } finally {
      alice.quit();
      bob.quit();
      assert.equal(await alice.exit, 0, alice.io.err);
      await bob.exit;
    }
    assert.doesNotMatch(alice.io.out, /trust me/);
  });
}));

test('natkit chat without a terminal and without --json: plain lines in, messages out', noLeaks(async () => {
  await withServe(async (server) => {
    const carol = member('carol', server);
    try {
      await waitFor(() => carol.io.out, /"event":"ready"/);
      const stdin = feed();
      const dave = start(['chat', 'lobby', '--name', 'dave', '--state', join(dir, 'state-dave'), ...server], stdin.input);
      await waitFor(() => dave.io.err, /carol joined \(direct; pinned carol key/);
      await waitFor(() => carol.io.out, /"event":"joined".*"name":"dave"/);
      carol.send({ type: 'send', text: 'two\nlines' });
      await waitFor(() => dave.io.out, /carol: two\n {7}lines\n/);
      stdin.write('hi carol');
      stdin.write('/who');
      await waitFor(() => carol.io.out, /"text":"hi carol"/);
      await waitFor(() => dave.io.out, /carol +direct +key/);
      stdin.end();
      assert.equal(await dave.exit, 0, dave.io.err);
    } finally {
      carol.quit();
      assert.equal(await carol.exit, 0, carol.io.err);
    }
  });
}));

test('natkit chat: usage errors exit 2', async () => {
  for (const argv of [['chat', 'lobby'], ['chat', 'a', 'b', '--name', 'x', '--server', '127.0.0.1'], ['chat', '--name', 'x'], ['chat', '--name', 'x', '--server', '127.0.0.1', '--history', 'lots']]) {
    const run = start(argv, lines());
    assert.equal(await run.exit, 2, `${argv.join(' ')}: ${run.io.err}`);
    assert.match(run.io.err, /natkit chat: .*\nRun `natkit chat --help` for usage\.\n$/);
  }
});
