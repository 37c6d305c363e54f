// `natkit chat`'s terminal interface driven in tmux as a person would: the binary runs on a
// 100×30 terminal of its own (test/helpers/tmux.ts) against an in-process `natkit serve` on
// loopback, with bob — `natkit chat --json`, in-process — in the same room. What alice
// types reaches bob exactly (spaces, accents, emoji, a Ctrl-J newline, line editing) and
// gets ✓✓ once bob confirmed it; what bob says (in the room and privately) shows; /who,
// /path, /help and /msg answer; a peer's escape sequences are shown as �, not obeyed;
// PgUp/PgDn scroll; a narrow terminal lists the peers in the header; Ctrl-C leaves with
// exit 0 and the terminal as it was. Then alice comes back: her history is shown, bob's
// key is known, history times are local, a tab or a flag keeps to its row, and /quit leaves.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { commands } from '../../src/cli/commands/index.ts';
import { runCli } from '../../src/cli/run.ts';
import { parseEndpoint } from '../../src/net/index.ts';
import { nodeEnv } from '../../src/net/node/index.ts';
import { startServerCommand, type RunningCommand } from '../helpers/server-command.ts';
import { TmuxSession } from '../helpers/tmux.ts';

const env = nodeEnv();
const HOST = '127.0.0.1';
const ROOT = resolve(import.meta.dirname, '../..');
const COLS = 100;
const ROWS = 30;
/** The message list's width on a wide terminal: the peers' column (26) and its rule take the rest. */
const LIST_WIDTH = COLS - 27;
const FINGERPRINT = /[0-9a-f]{4}(?::[0-9a-f]{4}){3}/.source;
/** alice's time zone: not UTC, so that a time shown in UTC would show. */
const ALICE_TZ = 'Asia/Kolkata';

interface Announced {
  readonly listening: readonly { transport: string; address: string; serves: string[] }[];
}

/** One of bob's JSON events. */
interface BobEvent {
  readonly event: string;
  readonly [field: string]: unknown;
}

/** Standard input fed line by line from the test, until end(). */
class Feed implements AsyncIterable<Uint8Array> {
  private readonly queued: Uint8Array[] = [];
  private ended = false;
  private wake: (() => void) | undefined;

  push(line: string): void {
    this.queued.push(new TextEncoder().encode(`${line}\n`));
    this.wake?.();
  }

  end(): void {
    this.ended = true;
    this.wake?.();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Uint8Array> {
    for (;;) {
      const next = this.queued.shift();
      if (next !== undefined) yield next;
      else if (this.ended) return;
      else await new Promise<void>((resolve) => (this.wake = resolve));
    }
  }
}

/** `natkit chat ROOM --json` in-process: commands in, events out. */
class JsonPeer {
  private readonly stdin = new Feed();
  private readonly abort = new AbortController();
  private out = '';
  private err = '';
  readonly exit: Promise<number>;

  constructor(argv: readonly string[]) {
    this.exit = runCli(commands, ['chat', ...argv, '--json'], {
      io: { out: (t) => void (this.out += t), err: (t) => void (this.err += t) },
      env, signal: this.abort.signal, stdin: this.stdin,
    });
  }

  events(): BobEvent[] {
    return this.out.split('\n').filter(Boolean).map((l) => JSON.parse(l) as BobEvent);
  }

  send(command: Record<string, unknown>): void {
    this.stdin.push(JSON.stringify(command));
  }

  /** Waits for an event that `match` accepts; bounded. */
  async waitFor(match: (e: BobEvent) => boolean, what: string, timeoutMs = 15_000): Promise<BobEvent> {
    for (const deadline = performance.now() + timeoutMs; ; await sleep(20)) {
      const found = this.events().find(match);
      if (found !== undefined) return found;
      if (performance.now() > deadline) assert.fail(`bob: no ${what} within ${timeoutMs} ms; bob's output:\n${this.out}\n${this.err}`);
    }
  }

  /** {"type":"quit"}, and exit 0 (stopped by an abort, as Ctrl-C would, if it does not end). */
  async quit(): Promise<void> {
    this.send({ type: 'quit' });
    this.stdin.end();
    const timer = setTimeout(() => this.abort.abort(), 5000);
    try {
      assert.equal(await this.exit, 0, this.err);
    } finally {
      clearTimeout(timer);
    }
  }
}

/** Rows of a captured screen. */
const rowsOf = (screen: string): string[] => screen.replace(/\n$/, '').split('\n');

/** Terminal columns `text` takes, as tmux counts them (emoji two, the rest here one). */
const cells = (text: string): number => [...text].reduce((n, c) => n + (/\p{Extended_Pictographic}/u.test(c) ? 2 : 1), 0);

/** Minutes between two times of day "HH:MM", either way round midnight. */
const minutesApart = (a: string, b: string): number => {
  const m = (t: string): number => Number(t.slice(0, 2)) * 60 + Number(t.slice(3, 5));
  const d = Math.abs(m(a) - m(b));
  return Math.min(d, 24 * 60 - d);
};

/** A row of the message list that starts with a time and then `text`. */
const messageRow = (text: string): RegExp => new RegExp(`^\\d\\d:\\d\\d ${text}`, 'm');

describe('natkit chat on a terminal, driven in tmux', () => {
  let dir: string;
  let serve: RunningCommand<Announced, unknown>;
  let server: string[];
  let bob: JsonPeer;
  let alice: TmuxSession;
  /** When alice's first message showed (HH:MM, her local time). */
  let helloTime = '';

  /** alice's `natkit chat lobby` (the binary) on a `cols` × `rows` terminal. */
  const startAlice = (cols: number, rows: number): Promise<TmuxSession> => TmuxSession.start({
    dir, cols, rows, cwd: ROOT,
    command: [process.execPath, 'src/cli/main.ts', 'chat', 'lobby', '--name', 'alice', ...server, '--state', join(dir, 'alice')],
    env: { HOME: dir, XDG_STATE_HOME: join(dir, 'xdg'), TZ: ALICE_TZ },
  });

  /** Types `text` (a newline as Ctrl-J) and Enter once the input line shows it (a person looks before pressing Enter). */
  const say = async (text: string): Promise<void> => {
    for (const [i, line] of text.split('\n').entries()) {
      if (i > 0) await alice.press('C-j');
      await alice.type(line);
    }
    await alice.waitFor((s) => (rowsOf(s).at(-1)!.trimEnd() === `> ${text.replaceAll('\n', '↵')}` ? true : undefined), `the input line "> ${text}"`);
    await alice.press('Enter');
  };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'natkit-chat-tui-'));
    serve = await startServerCommand<Announced>(env, 'serve', ['-l', HOST, '-l', '127.0.0.2', '-p', '0', '--alt-port', '0', '--rendezvous-port', '0', '--no-turn']);
    const rendezvous = (transport: string): string => serve.info.listening.find((l) => l.transport === transport && l.serves.includes('rendezvous') && l.address.startsWith(`${HOST}:`))!.address;
    server = ['--server', rendezvous('udp'), '--rendezvous-port', String(parseEndpoint(rendezvous('tcp')).port), '--local', HOST];
    bob = new JsonPeer(['lobby', '--name', 'bob', ...server, '--state', join(dir, 'bob')]);
    await bob.waitFor((e) => e.event === 'ready', 'ready');
    alice = await startAlice(COLS, ROWS);
  });

  after(async () => {
    try {
      await alice?.kill();
    } finally {
      try {
        await bob?.quit();
      } finally {
        try {
          await serve?.stop();
        } finally {
          if (dir !== undefined) await rm(dir, { recursive: true, force: true });
        }
      }
    }
  });

  test('the screen: the header in inverse video, bob in the peers column with his path, a rule and the input line', async () => {
    const screen = await alice.waitForScreen(new RegExp(`bob joined \\(direct; pinned bob key ${FINGERPRINT} \\(first use\\)\\)`), 'bob joining');
    await bob.waitFor((e) => e.event === 'joined' && (e['peer'] as { name: string }).name === 'alice', 'alice joining');
    const state = await alice.state();
    assert.deepEqual([state.alternateScreen, state.cols, state.rows], [true, COLS, ROWS]);

    const rows = rowsOf(await alice.screen());
    assert.equal(rows.length, ROWS, screen);
    assert.match(rows[0]!, new RegExp(`^ natkit chat · #lobby · alice ${FINGERPRINT} · 1 peer\\s*$`));
    const attributed = rowsOf(await alice.screenWithAttributes());
    assert.ok(attributed[0]!.startsWith('\u001b[7m natkit chat'), `the header is in inverse video: ${JSON.stringify(attributed[0])}`);
    assert.match(rows[1]!, /│ peers\s*$/);
    assert.match(rows[2]!, /│ ● bob {10}direct\s*$/);
    for (const [i, row] of rows.slice(1, -2).entries()) {
      assert.equal(cells(row.slice(0, row.indexOf('│'))), LIST_WIDTH, `row ${i + 1}: the column's rule is at ${LIST_WIDTH}:\n${rows.join('\n')}`);
    }
    assert.match(rows.at(-2)!, /^─{100}$/);
    assert.equal(rows.at(-1)!.trimEnd(), '>');
    assert.match(screen, /open-internet .*\n?.*Type a message and Enter;/, 'what the NAT is, and how to start');
  });

  test('typed Unicode with spaces reaches bob exactly, and shows ✓✓ once bob confirmed it', async () => {
    const text = 'héllo wörld 👋';
    await say(text);
    const got = await bob.waitFor((e) => e.event === 'message' && e['from'] === 'alice', 'message from alice');
    assert.deepEqual([got['text'], got['room']], [text, 'lobby']);
    const screen = await alice.waitForScreen(messageRow(`alice: ${text} ✓✓ +│`), 'the message marked ✓✓');
    assert.equal(rowsOf(screen).at(-1)!.trimEnd(), '>', 'Enter empties the input line');
    const row = rowsOf(screen).find((r) => r.includes(text))!;
    helloTime = row.slice(0, 5);
    assert.equal(cells(row.slice(0, row.indexOf('│'))), LIST_WIDTH, `the emoji takes two columns, and the column's rule stays put: ${row}`);
  });

  test('Ctrl-J starts a new line: ↵ in the input, two lines at bob, two rows on the screen', async () => {
    await say('line one\nline two');
    const got = await bob.waitFor((e) => e.event === 'message' && e['from'] === 'alice' && e['text'] !== 'héllo wörld 👋', 'the second message');
    assert.equal(got['text'], 'line one\nline two');
    await alice.waitForScreen(/^\d\d:\d\d alice: line one +│\n {13}line two ✓✓ +│$/m, 'the two-line message marked ✓✓');
  });

  test('editing: Home, End, Left, Right, Backspace, Delete; Ctrl-D on a line does not leave; Up and Down recall', async () => {
    const input = async (expected: string): Promise<void> => {
      await alice.waitFor((s) => (rowsOf(s).at(-1)!.trimEnd() === `> ${expected}`.trimEnd() ? true : undefined), `the input line "> ${expected}"`);
    };
    await alice.type('xfixd');
    await input('xfixd');
    await alice.press('Home', 'Delete', 'End', 'Left');
    await alice.type('e');
    await alice.press('End');
    await alice.type('!?');
    await alice.press('BSpace', 'Left', 'Right', 'C-d');
    await input('fixed!');
    // Had Ctrl-D left, Enter would send nothing.
    await alice.press('Enter');
    await bob.waitFor((e) => e.event === 'message' && e['text'] === 'fixed!', 'the edited message');
    await alice.waitForScreen(messageRow('alice: fixed! ✓✓'), 'the edited message marked ✓✓');

    await alice.press('Up');
    await input('fixed!');
    await alice.press('Up');
    await input('line one↵line two');
    await alice.press('Down');
    await input('fixed!');
    await alice.press('Down');
    await input('');
    await alice.type('never sent');
    await alice.press('C-u');
    await input('');
  });

  test('bob\'s messages show: in the room as "bob: …", privately as "bob → you: …"; alice\'s /msg as "you → bob: …"', async () => {
    bob.send({ type: 'send', text: 'hi alice, ça va? 漢字' });
    bob.send({ type: 'send', to: 'alice', text: 'just between us' });
    await alice.waitForScreen(messageRow('bob: hi alice, ça va\\? 漢字 '), 'bob\'s room message');
    await alice.waitForScreen(messageRow('bob → you: just between us '), 'bob\'s private message');

    await say('/msg bob secret plan');
    const got = await bob.waitFor((e) => e.event === 'message' && e['text'] === 'secret plan', 'alice\'s private message');
    assert.deepEqual([got['from'], got['room']], ['alice', null], 'a private message has no room');
    await alice.waitForScreen(messageRow('you → bob: secret plan ✓✓'), 'the private message marked ✓✓');
  });

  test('/who lists bob and his path, /path tells the path\'s ends, /help the commands, an unknown command is refused', async () => {
    await say('/who');
    await alice.waitForScreen(new RegExp(`^\\d\\d:\\d\\d bob {10}direct {13}key ${FINGERPRINT}`, 'm'), '/who\'s answer');
    await say('/path');
    await alice.waitForScreen(messageRow('bob {10}direct \\(reflexive\\) 127\\.0\\.0\\.1:\\d+ → 127\\.0\\.0\\.1:\\d+'), '/path\'s answer');
    await say('/help');
    await alice.waitForScreen(/^ {6}\/msg NAME TEXT +say TEXT to NAME alone/m, '/help\'s answer');
    await say('/frobnicate');
    await alice.waitForScreen(messageRow('unknown command /frobnicate \\(try /help\\)'), 'the refusal');
  });

  test('a peer\'s escape sequences are shown as �, not obeyed: the screen is neither cleared nor recoloured, the title stays', async () => {
    await say('before the attack');
    await alice.waitForScreen(messageRow('alice: before the attack ✓✓'), 'the message before');
    bob.send({ type: 'send', text: '\u001b[2J\u001b[H evil \u001b]2;pwned\u0007 \u009b31mred\u001bc end' });
    const screen = await alice.waitForScreen(messageRow('bob: �\\[2J�\\[H evil �\\]2;pwned� �31mred�c end'), 'the message with its escapes replaced');
    const rows = rowsOf(screen);
    assert.match(rows[0]!, /^ natkit chat · #lobby · alice /, `the header is still there:\n${screen}`);
    assert.match(screen, messageRow('alice: before the attack ✓✓'), 'the message before is still there');
    assert.match(rows[1]!, /│ peers\s*$/, 'the peers column is still there');
    const state = await alice.state();
    assert.equal(state.alternateScreen, true, 'ESC c did not reset the terminal');
    assert.notEqual((await alice.tmux('display-message', '-p', '-t', alice.name, '#{pane_title}')).trim(), 'pwned', 'the title is not the peer\'s');
    const attributed = rowsOf(await alice.screenWithAttributes()).find((r) => r.includes('evil'))!;
    assert.ok(!attributed.includes('\u001b[31m'), `nothing is red: ${JSON.stringify(attributed)}`);
  });

  test('PgUp scrolls back to the first lines, PgDn comes back to the newest', async () => {
    const first = /^\d\d:\d\d socket +UDP socket 127\.0\.0\.1:\d+/m;
    assert.doesNotMatch(await alice.screen(), first, 'the first lines are scrolled off');
    for (let i = 0; i < 5; i++) await alice.press('PPage');
    const back = await alice.waitForScreen(first, 'the first lines after PgUp');
    assert.match(rowsOf(back).at(-2)!, /^─+ \d+ lines below — PgDn\s*$/);
    assert.doesNotMatch(back, /evil/);
    for (let i = 0; i < 5; i++) await alice.press('NPage');
    const again = await alice.waitForScreen(/evil/, 'the newest lines after PgDn');
    assert.match(rowsOf(again).at(-2)!, /^─{100}$/);
  });

  test('on a narrow terminal the peers are listed in the header and the column is gone; it comes back when wide again', async () => {
    await alice.resize(64, ROWS);
    const narrow = await alice.waitForScreen(/· bob \(direct\)/, 'the peers in the header');
    const rows = rowsOf(narrow);
    assert.match(rows[0]!, new RegExp(`^ #lobby · alice · bob \\(direct\\) · ${FINGERPRINT}\\s*$`));
    assert.ok(rows.every((r) => !r.includes('│')), `no column:\n${narrow}`);
    assert.match(rows.at(-2)!, /^─{64}$/);
    await alice.resize(COLS, ROWS);
    await alice.waitForScreen(/│ ● bob {10}direct/, 'the peers column again');
  });

  test('on a 50-column terminal bob is still named in the header', async () => {
    try {
      await alice.resize(50, ROWS);
      const screen = await alice.waitForScreen(/^ #lobby · alice · bob \(direct\)/, 'bob in the header', 2000);
      assert.equal(rowsOf(screen)[0]!.length, 50, 'the header is cut at the width');
    } finally {
      await alice.resize(COLS, ROWS);
      await alice.waitForScreen(/│ ● bob {10}direct/, 'the peers column again');
    }
  });

  test('Ctrl-C leaves: exit status 0, back at the shell with the normal screen and the cursor; bob sees alice leave', async () => {
    await alice.press('C-c');
    const { status, screen, state } = await alice.waitForExit(10_000);
    assert.equal(status, 0, screen);
    assert.equal(state.alternateScreen, false, 'back on the normal screen');
    assert.equal(state.cursorVisible, true, 'the cursor shows');
    assert.doesNotMatch(screen, /natkit chat ·|héllo/, `the chat went with the alternate screen:\n${screen}`);
    await bob.waitFor((e) => e.event === 'left' && e['peer'] === 'alice', 'alice leaving');
  });

  test('alice comes back on a narrow terminal: her history shows, bob\'s key is known', async () => {
    await alice.kill();
    alice = await startAlice(64, ROWS);
    const screen = await alice.waitForScreen(new RegExp(`bob joined \\(direct; known bob key ${FINGERPRINT}`), 'bob joining again');
    assert.match(rowsOf(screen)[0]!, new RegExp(`· bob \\(direct\\) · ${FINGERPRINT}\\s*$`));
    assert.match(screen, messageRow('— \\d+ earlier messages above —'));
    assert.match(screen, messageRow('alice: héllo wörld 👋\\s*$'), 'the history shows the first message');
  });

  test('the history shows each message at the time it showed when said, in alice\'s time zone', async () => {
    const row = rowsOf(await alice.screen()).find((r) => r.includes('héllo wörld 👋'))!;
    assert.ok(minutesApart(row.slice(0, 5), helloTime) <= 1, `shown at ${row.slice(0, 5)} in the history, at ${helloTime} when sent (TZ ${ALICE_TZ})`);
  });

  test('a tab or a flag in a peer\'s message keeps to its row: the header stays on the screen', async () => {
    bob.send({ type: 'send', text: 'tab\there' });
    bob.send({ type: 'send', text: 'flag 🇫🇷 here' });
    const screen = await alice.waitForScreen(/flag 🇫🇷 here/, 'the flag');
    assert.match(rowsOf(screen)[0]!, /^ #lobby · alice · bob/, `the header is still there:\n${screen}`);
    assert.match(screen, messageRow('bob: tab {4}here\\s*$'), 'the tab is four spaces');
  });

  test('/quit leaves with exit status 0', async () => {
    await say('/quit');
    const { status, screen, state } = await alice.waitForExit(10_000);
    assert.equal(status, 0, screen);
    assert.equal(state.alternateScreen, false);
  });
});
