// `natkit chat [ROOM] --name NAME --server HOST`: a chat room (and private messages by
// name) between peers behind NATs, each conversation end-to-end encrypted over a punched
// or relayed path. A terminal interface on a terminal; plain lines when piped; JSON lines
// with --json, for programs.
import { mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { ChatClient, type ChatPeer } from '../../chat/index.ts';
import { keyFingerprint } from '../../punch/index.ts';
import { isNatkitError } from '../../util/index.ts';
import { ChatHistory, historyEntry } from '../chat-history.ts';
import { CHAT_HELP, JsonFrontend, LineFrontend, type ChatFrontend, type ChatInput } from '../chat-io.ts';
import { EXIT_OK, UsageError, flag, intOption, stringOption, type Command, type CommandContext } from '../command.ts';
import { pinVerdict } from '../known-peers.ts';
import { NETWORK_OPTIONS, forgetPeer, knownPeersOf, loadIdentity, peerNetwork } from '../peer-session.ts';
import { stateDir } from '../state-dir.ts';
import { COMMAND_SUMMARIES } from './summaries.ts';

export const chatCommand: Command = {
  name: 'chat',
  summary: COMMAND_SUMMARIES['chat'],
  usage: '[ROOM] --name NAME --server HOST[:PORT] [options]',
  options: {
    name: { type: 'string', short: 'n', valueName: 'NAME', description: 'your name on the server (others /msg you by it)' },
    ...NETWORK_OPTIONS,
    key: { type: 'string', valueName: 'FILE', description: 'Ed25519 private key (PKCS #8 PEM) owning NAME; created (mode 0600) when missing; default: keys/NAME.pem in the state directory' },
    json: { type: 'boolean', description: 'JSON lines: events on stdout, commands on stdin (see below)' },
    plain: { type: 'boolean', description: 'plain lines even on a terminal: each input line is a message or a command' },
    history: { type: 'string', valueName: 'N', default: '50', description: 'show the last N messages of this room and of private talk on start (0: none)' },
  },
  details: [
    'Joins ROOM (every member gets a direct path to every other where the NATs allow, else a relayed one) or,',
    'without ROOM, waits for private messages. Messages are end-to-end encrypted (natkit/session); the server and',
    'the relay see only ciphertext. Each peer\'s key is pinned on first use (known-peers.json in the state directory).',
    'History: chat/NAME.jsonl in the state directory.',
    '',
    'Typed input:',
    ...CHAT_HELP.split('\n').map((l) => `  ${l}`),
    '',
    'On a terminal: Enter sends, Ctrl-J starts a new line, Up/Down recall, PgUp/PgDn scroll, Ctrl-C leaves.',
    'A message shows · until a receiver confirms it, ✓ n/m as some do, ✓✓ once all have.',
    '',
    '--json: each event is a line {"event": …, "atMs": …}: ready, progress, joined, left, refused, path, message,',
    'sent, delivered, undelivered, who, notice, error. Commands, one JSON object per line on stdin:',
    '  {"type":"send","text":"hi"}  {"type":"send","to":"bob","text":"hi"}  {"type":"who"}  {"type":"path"}  {"type":"quit"}',
    '',
    'Examples:',
    '  natkit chat lobby --name alice --server rv.example.net --turn-user alice --turn-pass s3cret',
    '  natkit chat --name bob --server rv.example.net            # private messages only',
    '  natkit chat lobby --name bot --server rv.example.net --json   # a program drives it on stdin/stdout',
  ].join('\n'),
  run: runChat,
};

async function runChat(ctx: CommandContext): Promise<number> {
  const { env } = ctx;
  const [room, ...extra] = ctx.positionals;
  if (extra.length > 0) throw new UsageError(`expected at most one ROOM, got ${ctx.positionals.length}`);
  const name = stringOption(ctx, 'name');
  if (name === undefined) throw new UsageError('--name: expected the name to chat under');
  const historyLimit = intOption(ctx, 'history', 0, 10_000) ?? 50;
  await forgetPeer(ctx, false);
  const network = await peerNetwork(ctx);
  const dir = stateDir(stringOption(ctx, 'state'), ctx.vars);
  const keyPath = stringOption(ctx, 'key') ?? join(dir, 'keys', `${encodeURIComponent(name)}.pem`);
  await mkdir(dirname(keyPath), { recursive: true, mode: 0o700 });
  const identity = await loadIdentity(keyPath);
  const known = knownPeersOf(ctx);
  let client: ChatClient | undefined;
  const frontend = await openFrontend(ctx, name, () => client?.peers() ?? []);
  const history = new ChatHistory(dir, name, (error) => frontend.show({ kind: 'error', error }));
  const signal = frontend.interrupted === undefined ? ctx.signal : AbortSignal.any([ctx.signal, frontend.interrupted]);
  try {
    const past = await history.load(room, historyLimit);
    client = await ChatClient.start({
      env, identity, name, signal, ...network, ...(room !== undefined && { room }),
      wallClock: Date.now,
      trust: (peer) => pinVerdict(known, peer.name, peer.publicKey, new Date()),
    }, (event) => {
      if (event.kind === 'message') history.append(historyEntry(event.message, name));
      frontend.show(event);
    });
    const report = client.agent.report;
    frontend.show({ kind: 'ready', name, room, fingerprint: keyFingerprint(identity.publicKey), nat: `NAT type ${report.classic} (mapping ${report.mapping}, filtering ${report.filtering})`, history: past });
    for await (const input of frontend.inputs(signal)) {
      if (input.kind === 'quit') break;
      handle(client, frontend, history, input);
    }
  } finally {
    await client?.close();
    await history.flush();
    await frontend.close();
  }
  return EXIT_OK;
}

/** The terminal interface on a terminal (unless --plain or --json), else lines. */
async function openFrontend(ctx: CommandContext, name: string, peers: () => readonly ChatPeer[]): Promise<ChatFrontend> {
  if (flag(ctx, 'json')) return new JsonFrontend(ctx);
  const terminal = flag(ctx, 'plain') ? undefined : ctx.terminal?.();
  if (terminal === undefined) return new LineFrontend(ctx, name);
  const { ChatTui } = await import('../chat-tui.ts');
  return new ChatTui(terminal, name, peers);
}

/** Carries out one input: a message, a command, or the reason it was not understood. */
function handle(client: ChatClient, frontend: ChatFrontend, history: ChatHistory, input: Exclude<ChatInput, { kind: 'quit' }>): void {
  switch (input.kind) {
    case 'say': case 'msg': {
      try {
        const sent = client.send(input.text, input.kind === 'msg' ? { to: input.to } : {});
        // A room message with nobody to hear it was not said.
        if (sent.recipients.length > 0) history.append(historyEntry(sent.message, client.name));
        frontend.show({ kind: 'sent', sent });
      } catch (err) {
        if (!isNatkitError(err)) throw err;
        frontend.show({ kind: 'notice', text: `not sent: ${err.message}` });
      }
      return;
    }
    case 'who': return frontend.show({ kind: 'who', peers: client.peers(), detail: false });
    case 'path': {
      const peers = client.peers().filter((p) => input.peer === undefined || p.name === input.peer);
      if (input.peer !== undefined && peers.length === 0) return frontend.show({ kind: 'notice', text: `no session with ${input.peer} (/who lists the peers)` });
      return frontend.show({ kind: 'who', peers, detail: true });
    }
    case 'help': return frontend.show({ kind: 'notice', text: CHAT_HELP });
    case 'invalid': return frontend.show({ kind: 'notice', text: input.reason });
  }
}
