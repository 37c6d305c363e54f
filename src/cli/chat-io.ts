// How `natkit chat` talks to its user: the typed input (commands and messages), what the
// screen shows, and two of the three front ends — JSON lines for programs (`--json`) and
// plain lines when standard input or output is not a terminal. The terminal interface is
// chat-tui.ts.
import { displaySafe, type ChatEvent, type ChatPeer, type SentMessage } from '../chat/index.ts';
import { formatEndpoint } from '../net/index.ts';
import { describePath } from '../punch/index.ts';
import type { HistoryEntry } from './chat-history.ts';
import type { CommandContext } from './command.ts';
import { untilAborted } from './server-options.ts';

/** What the user asked for. */
export type ChatInput =
  | { readonly kind: 'say'; readonly text: string }
  | { readonly kind: 'msg'; readonly to: string; readonly text: string }
  | { readonly kind: 'who' }
  | { readonly kind: 'path'; readonly peer?: string }
  | { readonly kind: 'help' }
  | { readonly kind: 'quit' }
  | { readonly kind: 'invalid'; readonly reason: string };

/** What the front end shows: the client's events, our own messages, answers to commands. */
export type ChatItem =
  | ChatEvent
  | { readonly kind: 'ready'; readonly name: string; readonly room: string | undefined; readonly fingerprint: string; readonly nat: string; readonly history: readonly HistoryEntry[] }
  | { readonly kind: 'sent'; readonly sent: SentMessage }
  | { readonly kind: 'who'; readonly peers: readonly ChatPeer[]; readonly detail: boolean }
  | { readonly kind: 'notice'; readonly text: string };

/** A way to talk to the user. */
export interface ChatFrontend {
  show(item: ChatItem): void;
  /** The user's inputs until the end of input, Ctrl-C or Ctrl-D. */
  inputs(signal: AbortSignal): AsyncIterable<ChatInput>;
  close(): Promise<void>;
  /** Aborts when the user asks to stop before inputs() is read (the terminal's Ctrl-C); absent: the process signals do. */
  readonly interrupted?: AbortSignal;
}

export const CHAT_HELP = [
  'TEXT                say TEXT in the room',
  '/msg NAME TEXT      say TEXT to NAME alone (connects to NAME if needed)',
  '/who                who is here, and each one\'s path (direct or relayed)',
  '/path [NAME]        the paths in detail: how each was found, both ends',
  '/quit               leave (also Ctrl-C, Ctrl-D on an empty line)',
  '//TEXT              say TEXT that starts with a slash',
].join('\n');

/** Parses one line (or several, from the terminal's Ctrl-J) the user typed. */
export function parseChatInput(line: string): ChatInput {
  if (!line.startsWith('/') || line.startsWith('//')) {
    const text = line.startsWith('//') ? line.slice(1) : line;
    return text.trim() === '' ? { kind: 'invalid', reason: 'nothing to send' } : { kind: 'say', text };
  }
  const [, command = '', rest = ''] = /^\/(\S*)\s*([\s\S]*)$/.exec(line) ?? [];
  switch (command) {
    case 'msg': case 'm': {
      const m = /^(\S+)\s+([\s\S]*\S[\s\S]*)$/.exec(rest);
      return m === null ? { kind: 'invalid', reason: 'usage: /msg NAME TEXT' } : { kind: 'msg', to: m[1]!, text: m[2]! };
    }
    case 'who': return { kind: 'who' };
    case 'path': return rest.trim() === '' ? { kind: 'path' } : { kind: 'path', peer: rest.trim() };
    case 'help': case '?': return { kind: 'help' };
    case 'quit': case 'exit': case 'q': return { kind: 'quit' };
    default: return { kind: 'invalid', reason: `unknown command /${command} (try /help)` };
  }
}

/** "direct", "relayed", with the method when it is not the plain one. */
export function pathLabel(peer: Pick<ChatPeer, 'path'>): string {
  const { kind, method } = peer.path;
  return kind === 'relay' ? 'relayed' : method === 'reflexive' || method === 'host' ? 'direct' : `direct (${method})`;
}

/** One line per peer for /who (short) and /path (detail). */
export function whoLines(peers: readonly ChatPeer[], detail: boolean): string[] {
  if (peers.length === 0) return ['nobody else is here'];
  return peers.map((p) => `${p.name.padEnd(12)} ${(detail ? describePath(p.path) : pathLabel(p)).padEnd(detail ? 0 : 18)}${detail ? '' : ` key ${p.fingerprint}${p.inRoom ? '' : '  (private)'}`}`);
}

/** A line of text for each event a line-based front end prints; undefined: nothing to print. */
export function eventLine(item: ChatItem): string | undefined {
  switch (item.kind) {
    case 'progress': return `${item.progress.step.padEnd(10)} ${item.progress.detail}`;
    case 'joined': return `${item.peer.name} joined (${pathLabel(item.peer)}; ${item.note})`;
    case 'left': return `${item.name} left${item.reason === undefined ? '' : ` (${item.reason})`}`;
    case 'refused': return `refused ${item.name}: ${item.reason}`;
    case 'path': return `${item.name} is now ${pathLabel({ path: item.path })}: ${describePath(item.path)}`;
    case 'undelivered': return `not delivered to ${item.to}: ${item.reason}`;
    case 'error': return `error: ${item.error.message}`;
    case 'notice': return item.text;
    case 'who': return whoLines(item.peers, item.detail).join('\n');
    default: return undefined;
  }
}

/**
 * A message (said, heard or from the history) as a line: "bob: hello" in a room, "bob →
 * you: hi" or "you → bob: hi" when private (no room; a heard one names no receiver: us),
 * continuation lines indented.
 */
export function messageLine(m: { readonly from: string; readonly to?: string | undefined; readonly room?: string | undefined; readonly text: string }, self: string): string {
  const to = m.room === undefined ? m.to ?? self : undefined;
  const who = to === undefined ? m.from : `${m.from === self ? 'you' : m.from} → ${to === self ? 'you' : to}`;
  return `${who}: ${m.text.replaceAll('\n', `\n${' '.repeat(who.length + 2)}`)}`;
}

/** Lines of `stdin`, split on \n, until it ends or `signal` aborts. */
async function* stdinLines(ctx: CommandContext, signal: AbortSignal): AsyncGenerator<string> {
  if (ctx.stdin === undefined) return;
  const decoder = new TextDecoder();
  const input = ctx.stdin[Symbol.asyncIterator]();
  const aborted = untilAborted(signal).then(() => undefined);
  let buffered = '';
  for (;;) {
    const r = await Promise.race([input.next(), aborted]);
    if (r === undefined) return;
    buffered += r.done === true ? decoder.decode() : decoder.decode(r.value, { stream: true });
    const parts = buffered.split('\n');
    buffered = parts.pop()!;
    for (const line of parts) yield line.replace(/\r$/, '');
    if (r.done === true) {
      if (buffered !== '') yield buffered;
      return;
    }
  }
}

/** Plain lines: each input line is a message or a command; messages on stdout, the rest on stderr. */
export class LineFrontend implements ChatFrontend {
  private readonly ctx: CommandContext;
  private readonly self: string;

  constructor(ctx: CommandContext, self: string) {
    this.ctx = ctx;
    this.self = self;
  }

  show(item: ChatItem): void {
    // Names and errors come from peers too: nothing goes out that could steer a terminal.
    const io = { out: (t: string): void => this.ctx.io.out(displaySafe(t)), err: (t: string): void => this.ctx.io.err(displaySafe(t)) };
    if (item.kind === 'message') io.out(`${messageLine(item.message, this.self)}\n`);
    else if (item.kind === 'ready') {
      for (const h of item.history) io.out(`${h.at.slice(0, 16).replace('T', ' ')} ${messageLine(h, this.self)}\n`);
      io.err(`${item.name} (key ${item.fingerprint})${item.room === undefined ? '' : ` in room "${item.room}"`}; ${item.nat}. /help for commands\n`);
    } else if (item.kind === 'who') io.out(`${eventLine(item)!}\n`);
    else {
      const line = eventLine(item);
      if (line !== undefined) io.err(`${line}\n`);
    }
  }

  async *inputs(signal: AbortSignal): AsyncGenerator<ChatInput> {
    for await (const line of stdinLines(this.ctx, signal)) if (line.trim() !== '') yield parseChatInput(line);
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

/**
 * JSON lines: one object per event on stdout, one command per line on stdin —
 * {"type":"send","text":"…","to"?:"NAME"}, {"type":"who"}, {"type":"path","peer"?:"NAME"},
 * {"type":"quit"}. A malformed line gets an "error" event; nothing else happens.
 */
export class JsonFrontend implements ChatFrontend {
  private readonly ctx: CommandContext;
  private readonly t0: number;

  constructor(ctx: CommandContext) {
    this.ctx = ctx;
    this.t0 = ctx.env.clock.now();
  }

  show(item: ChatItem): void {
    this.ctx.io.out(`${JSON.stringify({ event: item.kind, atMs: Math.round(this.ctx.env.clock.now() - this.t0), ...itemJson(item) })}\n`);
  }

  async *inputs(signal: AbortSignal): AsyncGenerator<ChatInput> {
    let n = 0;
    for await (const line of stdinLines(this.ctx, signal)) {
      n++;
      if (line.trim() === '') continue;
      const input = jsonInput(line);
      if (input.kind === 'invalid') this.show({ kind: 'notice', text: `line ${n}: ${input.reason}` });
      else yield input;
    }
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** One JSON command line as an input; `invalid` with the reason when it is not one. */
export function jsonInput(line: string): ChatInput {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    return { kind: 'invalid', reason: 'expected a JSON object' };
  }
  if (typeof v !== 'object' || v === null) return { kind: 'invalid', reason: 'expected a JSON object' };
  const o = v as Record<string, unknown>;
  const str = (key: string): string | undefined => (typeof o[key] === 'string' ? o[key] : undefined);
  switch (o['type']) {
    case 'send': {
      const text = str('text');
      const to = str('to');
      if (text === undefined) return { kind: 'invalid', reason: 'send: expected "text", a string' };
      if (o['to'] !== undefined && to === undefined) return { kind: 'invalid', reason: 'send: "to" must be a string' };
      return to === undefined ? { kind: 'say', text } : { kind: 'msg', to, text };
    }
    case 'who': return { kind: 'who' };
    case 'path': {
      const peer = str('peer');
      return peer === undefined ? { kind: 'path' } : { kind: 'path', peer };
    }
    case 'quit': return { kind: 'quit' };
    default: return { kind: 'invalid', reason: 'expected "type": "send", "who", "path" or "quit"' };
  }
}

function peerJson(p: ChatPeer): Record<string, unknown> {
  return { name: p.name, fingerprint: p.fingerprint, inRoom: p.inRoom, path: { kind: p.path.kind, method: p.path.method, local: formatEndpoint(p.path.local), remote: formatEndpoint(p.path.remote) } };
}

/** The JSON fields of an item (besides "event" and "atMs"). */
function itemJson(item: ChatItem): Record<string, unknown> {
  switch (item.kind) {
    case 'progress': return { step: item.progress.step, detail: item.progress.detail, ...(item.progress.peer !== undefined && { peer: item.progress.peer }) };
    case 'ready': return { name: item.name, room: item.room ?? null, fingerprint: item.fingerprint, nat: item.nat, history: item.history };
    case 'joined': return { peer: peerJson(item.peer), note: item.note };
    case 'left': return { peer: item.name, ...(item.reason !== undefined && { reason: item.reason }) };
    case 'refused': return { peer: item.name, fingerprint: item.fingerprint, reason: item.reason };
    case 'path': return { peer: item.name, path: { kind: item.path.kind, method: item.path.method, local: formatEndpoint(item.path.local), remote: formatEndpoint(item.path.remote) } };
    case 'message': {
      const m = item.message;
      return { id: m.id, from: m.from, room: m.room ?? null, text: m.text, sentAt: m.sentAt };
    }
    case 'sent': {
      const m = item.sent.message;
      return { id: m.id, room: m.room ?? null, to: m.to ?? null, text: m.text, recipients: item.sent.recipients };
    }
    case 'delivered': return { id: item.id, by: item.by, waiting: item.waiting };
    case 'undelivered': return { id: item.id, to: item.to, reason: item.reason };
    case 'who': return { peers: item.peers.map(peerJson) };
    case 'error': return { message: item.error.message, ...('code' in item.error && { code: item.error.code }) };
    case 'notice': return { text: item.text };
  }
}
