// `natkit connect` and `natkit pipe` in-process against `natkit serve` on loopback: a line
// piped into one peer comes out of the other, --json reports the connection, a missing
// --key file is created with mode 0600, usage errors exit 2; a peer's key is pinned on
// first use and another key under its name refused until --forget-peer.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { noLeaks } from '../helpers/leaks.ts';
import { HOST, lines, silentUntil, start, waitFor, withServe } from '../helpers/cli-peers.ts';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'natkit-connect-cli-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

test('natkit pipe: a line from alice\'s stdin comes out of bob\'s stdout; connect --json reports the path', noLeaks(async () => {
  await withServe(async (server) => {
    const common = [...server, '--state', join(dir, 'state-1')];
    const bobKey = join(dir, 'bob.pem');
    const idle = new AbortController();
    const bob = start(['pipe', 'bob', '--listen', '--key', bobKey, ...common], silentUntil(idle.signal));
    try {
      await waitFor(() => bob.io.err, /registered "bob"/);
      assert.equal((await stat(bobKey)).mode & 0o777, 0o600, 'the new key file is private');

      const alice = start(['pipe', 'alice', '--to', 'bob', ...common], lines('hello over the punch\n'));
      assert.equal(await alice.exit, 0, alice.io.err);
      await waitFor(() => bob.io.out, /hello over the punch\n/);
      assert.match(alice.io.err, /order +PUNCH with bob \(key [0-9a-f:]{19}\), controlling/);
      assert.match(alice.io.err, /connected +bob: direct/);

      // Connect (not pipe) with --json: one JSON line per event on stdout.
      const carol = start(['connect', 'carol', '--to', 'bob', '--json', ...common], lines());
      try {
        await waitFor(() => carol.io.out, /"event":"connected"/);
        const events = carol.io.out.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { event: string; peer?: { name: string }; path?: { kind: string } });
        const connected = events.find((e) => e.event === 'connected');
        assert.deepEqual([connected?.peer?.name, connected?.path?.kind], ['bob', 'direct']);
      } finally {
        carol.stop();
        assert.equal(await carol.exit, 0, carol.io.err);
      }
    } finally {
      bob.stop();
      idle.abort();
      assert.equal(await bob.exit, 0, bob.io.err);
    }
  });
}));

test('natkit pipe: a peer\'s key is pinned on first use; another key under its name is refused until --forget-peer', noLeaks(async () => {
  const aliceState = join(dir, 'state-alice');
  /** Bob listening on the server `common` points at with `keyFile`, while `body` runs with alice's arguments; stopping bob unregisters his name. */
  const withBob = async (common: readonly string[], keyFile: string, body: (aliceArgs: readonly string[], bobOut: () => string) => Promise<void>): Promise<void> => {
    const idle = new AbortController();
    const bob = start(['pipe', 'bob', '--listen', '--key', join(dir, keyFile), '--state', join(dir, 'state-bob'), ...common], silentUntil(idle.signal));
    try {
      await waitFor(() => bob.io.err, /registered "bob"/);
      await body(['pipe', 'alice', '--to', 'bob', '--key', join(dir, 'pin-alice.pem'), '--state', aliceState, ...common], () => bob.io.out);
    } finally {
      bob.stop();
      idle.abort();
      assert.equal(await bob.exit, 0, bob.io.err);
    }
  };
  const fingerprint = /[0-9a-f]{4}(?::[0-9a-f]{4}){3}/.source;

  // One server for both phases: bob restarts under his name with a new key as soon as the first bob has stopped.
  await withServe(async (common) => {
    await withBob(common, 'pin-bob.pem', async (aliceArgs) => {
      const first = start(aliceArgs, lines('first\n'));
      assert.equal(await first.exit, 0, first.io.err);
      assert.match(first.io.err, new RegExp(`pinned bob key ${fingerprint} \\(first use\\)`));
      const again = start(aliceArgs, lines('again\n'));
      assert.equal(await again.exit, 0, again.io.err);
      assert.match(again.io.err, new RegExp(`known bob key ${fingerprint}`));
    });
    const known = JSON.parse(await readFile(join(aliceState, 'known-peers.json'), 'utf8')) as { peers: Record<string, { publicKey: string }> };
    assert.match(known.peers['bob']?.publicKey ?? '', /^[0-9a-f]{64}$/);
    assert.equal((await stat(join(aliceState, 'known-peers.json'))).mode & 0o777, 0o600);

    await withBob(common, 'pin-bob-new.pem', async (aliceArgs, bobOut) => {
      const refused = start(aliceArgs, lines('must not arrive\n'));
      assert.equal(await refused.exit, 1, refused.io.err);
      assert.match(refused.io.err, new RegExp(`bob presented key (${fingerprint}), but key (?!\\1)${fingerprint} is pinned for it.*--forget-peer bob`));

      const forgot = start([...aliceArgs, '--forget-peer', 'bob'], lines('after forget\n'));
      assert.equal(await forgot.exit, 0, forgot.io.err);
      assert.match(forgot.io.err, new RegExp(`forgot bob key ${fingerprint}`));
      assert.match(forgot.io.err, new RegExp(`pinned bob key ${fingerprint} \\(first use\\)`));
      await waitFor(bobOut, /after forget\n/);
      assert.doesNotMatch(bobOut(), /must not arrive/, 'nothing is sent to a refused peer');
    });
  });
}));

test('natkit connect and pipe: usage errors exit 2', async () => {
  const cases: [string[], RegExp][] = [
    [['connect', 'alice', '--server', HOST], /exactly one of --to PEER, --room ROOM and --listen/],
    [['connect', 'alice', '--to', 'bob', '--listen', '--server', HOST], /exactly one of/],
    [['pipe', '--to', 'bob', '--server', HOST], /expected one NAME, got 0/],
    [['connect', 'alice', '--to', 'bob'], /--server: expected the HOST\[:PORT\] of a natkit serve/],
    [['pipe', 'alice', '--to', 'bob', '--server', HOST, '--turn-user', 'u'], /--turn-user and --turn-pass: expected both or neither/],
  ];
  for (const [argv, expected] of cases) {
    const run = start(argv, lines());
    assert.equal(await run.exit, 2, `${argv.join(' ')}: ${run.io.err}`);
    assert.match(run.io.err, expected);
  }
});
