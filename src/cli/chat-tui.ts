// `natkit chat`'s terminal interface: a header (who we are, the room), the messages with
// their delivery marks, the peers with their paths (a column on the right when the
// terminal is wide enough, else in the header), and an input line. The whole screen is
// redrawn on each change, at most once per tick, on the alternate screen; the terminal is
// put back as it was on close. Keys: Enter sends, Ctrl-J (or a pasted newline) starts a
// new line, Up/Down recall what was sent, PgUp/PgDn scroll, Ctrl-C or Ctrl-D leave.
import { emitKeypressEvents } from 'node:readline';
import { displaySafe, type ChatPeer } from '../chat/index.ts';
import { parseChatInput, eventLine, messageLine, pathLabel, type ChatFrontend, type ChatInput, type ChatItem } from './chat-io.ts';
import type { Terminal } from './command.ts';

const ESC = '\u001b[';
const PEER_COLUMN = 26;
/** Lines of the message list kept for scrolling back. */
const MAX_LINES = 2000;
/** Characters of one line kept for display (a message may be 64 KiB; --json has it whole). */
const MAX_LINE_CHARS = 8000;
/** Puts the terminal back: bracketed paste off, autowrap on, cursor shown, normal screen. */
const RESTORE = `${ESC}?2004l${ESC}?7h${ESC}?25h${ESC}?1049l`;

interface Line {
  readonly time: string;
  readonly text: string;
  readonly style: 'message' | 'own' | 'private' | 'system';
  /** Our messages: how many receivers confirmed it, of how many; undelivered ones. */
  marks?: { confirmed: number; of: number; failed: number };
  readonly id?: string;
  /** The rows it was last drawn as, at which width and with which mark: a redraw re-wraps only what changed. */
  drawn?: { readonly width: number; readonly mark: string; readonly rows: readonly string[] };
}

/** A key as node:readline reports it. */
interface Key {
  readonly name?: string;
  readonly ctrl?: boolean;
  readonly meta?: boolean;
  readonly sequence?: string;
}

export class ChatTui implements ChatFrontend {
  private readonly term: Terminal;
  private readonly self: string;
  private room = '';
  private fingerprint = '';
  private readonly lines: Line[] = [];
  private readonly byId = new Map<string, Line>();
  private peers: readonly ChatPeer[] = [];
  private peerSource: (() => readonly ChatPeer[]) | undefined;
  /** The input being typed, as grapheme clusters, and the cursor's index in it. */
  private input: string[] = [];
  private cursor = 0;
  private readonly sentInputs: string[] = [];
  private recall = -1;
  private scroll = 0;
  private pasting = false;
  private drawQueued = false;
  private readonly queue: ChatInput[] = [];
  private wake: (() => void) | undefined;
  private ended = false;
  private readonly interrupt = new AbortController();
  private readonly onKey = (str: string | undefined, key: Key | undefined): void => this.key(str, key ?? {});
  private readonly onResize = (): void => this.draw();
  /** Should the process exit with the interface up (a second Ctrl-C), the terminal is put back all the same. */
  private readonly onExit = (): void => {
    if (this.term.input.isTTY) this.term.input.setRawMode(false);
    this.term.output.write(RESTORE);
  };

  constructor(term: Terminal, self: string, peers: () => readonly ChatPeer[]) {
    this.term = term;
    this.self = self;
    this.peerSource = peers;
    emitKeypressEvents(term.input);
    term.input.setRawMode(true);
    term.input.on('keypress', this.onKey);
    term.input.resume();
    term.output.on('resize', this.onResize);
    // Alternate screen, bracketed paste (a pasted newline is not Enter).
    term.output.write(`${ESC}?1049h${ESC}?2004h`);
    process.once('exit', this.onExit);
    this.draw();
  }

  /**
   * Aborts on Ctrl-C (raw mode turns the key into a byte, not SIGINT): what is under way
   * (the NAT check, the registration) stops; a second Ctrl-C raises SIGINT, which the
   * binary answers by exiting at once.
   */
  get interrupted(): AbortSignal {
    return this.interrupt.signal;
  }

  show(item: ChatItem): void {
    const time = clock(new Date());
    switch (item.kind) {
      case 'ready': {
        this.room = item.room === undefined ? 'private messages' : `#${item.room}`;
        this.fingerprint = item.fingerprint;
        for (const h of item.history) this.push({ time: clock(new Date(h.at)), text: messageLine(h, this.self), style: 'system' });
        if (item.history.length > 0) this.push({ time, text: `— ${item.history.length} earlier messages above —`, style: 'system' });
        this.push({ time, text: `${item.nat}. Type a message and Enter; /help for commands.`, style: 'system' });
        break;
      }
      case 'message': {
        const m = item.message;
        this.push({ time, text: messageLine(m, this.self), style: m.room === undefined ? 'private' : 'message' });
        break;
      }
      case 'sent': {
        const { message, recipients } = item.sent;
        const line: Line = {
          time, id: message.id, text: messageLine(message, this.self),
          style: message.to === undefined ? 'own' : 'private', marks: { confirmed: 0, of: recipients.length, failed: 0 },
        };
        this.push(line);
        if (recipients.length === 0) this.push({ time, text: 'nobody else is here yet: not sent', style: 'system' });
        break;
      }
      case 'delivered': {
        const marks = this.byId.get(item.id)?.marks;
        if (marks !== undefined) marks.confirmed++;
        break;
      }
      case 'undelivered': {
        const marks = this.byId.get(item.id)?.marks;
        if (marks !== undefined) marks.failed++;
        this.push({ time, text: eventLine(item)!, style: 'system' });
        break;
      }
      default: {
        const text = eventLine(item);
        if (text !== undefined) this.push({ time, text, style: 'system' });
      }
    }
    this.schedule();
  }

  async *inputs(signal: AbortSignal): AsyncGenerator<ChatInput> {
    const stop = (): void => this.finish();
    if (signal.aborted) stop();
    signal.addEventListener('abort', stop, { once: true });
    try {
      while (!this.ended || this.queue.length > 0) {
        const next = this.queue.shift();
        if (next !== undefined) {
          yield next;
          continue;
        }
        await new Promise<void>((resolve) => (this.wake = resolve));
      }
    } finally {
      signal.removeEventListener('abort', stop);
    }
  }

  close(): Promise<void> {
    this.finish();
    this.peerSource = undefined;
    this.term.input.off('keypress', this.onKey);
    this.term.output.off('resize', this.onResize);
    if (this.term.input.isTTY) this.term.input.setRawMode(false);
    this.term.input.pause();
    this.term.output.write(RESTORE);
    process.off('exit', this.onExit);
    return Promise.resolve();
  }

  private finish(): void {
    this.ended = true;
    this.wake?.();
  }

  private submit(input: ChatInput): void {
    this.queue.push(input);
    this.wake?.();
  }

  /** Adds a line; names and errors come from peers too, so all of it is made terminal-safe. */
  private push(raw: Line): void {
    const text = raw.text.length <= MAX_LINE_CHARS ? raw.text : `${raw.text.slice(0, MAX_LINE_CHARS)}… (${raw.text.length - MAX_LINE_CHARS} more characters)`;
    const line: Line = { ...raw, text: displaySafe(text) };
    this.lines.push(line);
    if (line.id !== undefined) this.byId.set(line.id, line);
    if (this.lines.length > MAX_LINES) {
      const dropped = this.lines.shift()!;
      if (dropped.id !== undefined) this.byId.delete(dropped.id);
    }
  }

  private key(str: string | undefined, key: Key): void {
    if (key.name === 'paste-start') this.pasting = true;
    else if (key.name === 'paste-end') this.pasting = false;
    else if (key.ctrl === true && key.name === 'c') this.ctrlC();
    else if (key.ctrl === true && key.name === 'd') {
      if (this.input.length === 0) this.submit({ kind: 'quit' });
    } else if (key.name === 'return' && !this.pasting && key.meta !== true) this.enter();
    else if (key.name === 'enter' || key.name === 'return') this.insert('\n');
    else if (key.name === 'backspace') this.removeAt(this.cursor - 1);
    else if (key.name === 'delete') this.removeAt(this.cursor);
    else if (key.name === 'left') this.cursor = Math.max(0, this.cursor - 1);
    else if (key.name === 'right') this.cursor = Math.min(this.input.length, this.cursor + 1);
    else if (key.name === 'home' || (key.ctrl === true && key.name === 'a')) this.cursor = 0;
    else if (key.name === 'end' || (key.ctrl === true && key.name === 'e')) this.cursor = this.input.length;
    else if (key.ctrl === true && key.name === 'u') this.setInput('');
    else if (key.name === 'up' || key.name === 'down') this.recallInput(key.name === 'up' ? 1 : -1);
    else if (key.name === 'pageup') this.scroll += this.bodyRows() - 1;
    else if (key.name === 'pagedown') this.scroll = Math.max(0, this.scroll - (this.bodyRows() - 1));
    else if (str !== undefined && key.ctrl !== true && key.meta !== true) this.insert(str);
    this.schedule();
  }

  private ctrlC(): void {
    if (this.interrupt.signal.aborted) {
      process.kill(process.pid, 'SIGINT');
      return;
    }
    this.interrupt.abort();
    this.submit({ kind: 'quit' });
  }

  private enter(): void {
    const text = this.input.join('');
    if (text.trim() === '') return;
    this.sentInputs.unshift(text);
    this.sentInputs.length = Math.min(this.sentInputs.length, 100);
    this.recall = -1;
    this.scroll = 0;
    this.setInput('');
    const input = parseChatInput(text);
    this.submit(input);
  }

  private insert(text: string): void {
    // Tabs become spaces; other control characters are dropped (a message shows on others' terminals).
    // eslint-disable-next-line no-control-regex
    const clean = text.replaceAll('\r', '\n').replaceAll('\t', '    ').replace(/[\u0000-\u0009\u000b-\u001f\u007f]/g, '');
    const parts = graphemes(clean);
    this.input.splice(this.cursor, 0, ...parts);
    this.cursor += parts.length;
  }

  private removeAt(i: number): void {
    if (i < 0 || i >= this.input.length) return;
    this.input.splice(i, 1);
    if (i < this.cursor) this.cursor--;
  }

  private setInput(text: string): void {
    this.input = graphemes(text);
    this.cursor = this.input.length;
  }

  private recallInput(step: number): void {
    const at = Math.max(-1, Math.min(this.sentInputs.length - 1, this.recall + step));
    this.recall = at;
    this.setInput(at < 0 ? '' : this.sentInputs[at]!);
  }

  private schedule(): void {
    if (this.drawQueued || this.ended) return;
    this.drawQueued = true;
    setImmediate(() => {
      this.drawQueued = false;
      if (!this.ended) this.draw();
    });
  }

  private size(): { rows: number; cols: number } {
    return { rows: Math.max(6, this.term.output.rows || 24), cols: Math.max(30, this.term.output.columns || 80) };
  }

  private bodyRows(): number {
    return this.size().rows - 3;
  }

  private draw(): void {
    this.peers = this.peerSource?.() ?? this.peers;
    const { rows, cols } = this.size();
    const side = cols >= 72 ? PEER_COLUMN : 0;
    const width = cols - (side === 0 ? 0 : side + 1);
    const body = rows - 3;
    // Each row is placed (ESC [ row ; 1 H) with autowrap off: a character the terminal
    // measures wider than we do costs the end of its row, never a scrolled screen.
    const out: string[] = [`${ESC}?25l${ESC}?7l`];
    const row = (r: number, text: string): number => out.push(`${ESC}${r};1H${text}`);
    // Header: inverse video; without the column, the peers' names and paths, before our fingerprint.
    const header = side === 0
      ? ` ${this.room} · ${this.self}${this.peers.length === 0 ? ' · nobody yet' : ` · ${this.peers.map((p) => `${p.name} (${pathLabel(p)})`).join(', ')}`} · ${this.fingerprint}`
      : ` natkit chat · ${this.room} · ${this.self} ${this.fingerprint} · ${this.peers.length} ${this.peers.length === 1 ? 'peer' : 'peers'}`;
    row(1, `${ESC}7m${fit(displaySafe(header), cols)}${ESC}0m`);
    // Messages: wrapped to the width, the newest at the bottom, scrolled back by PgUp. Only
    // the newest lines that fill the screen (and what is scrolled past) are wrapped.
    const need = body + this.scroll;
    const tail: (readonly string[])[] = [];
    let count = 0;
    let i = this.lines.length - 1;
    for (; i >= 0 && count < need; i--) {
      const rows = this.render(this.lines[i]!, width);
      tail.push(rows);
      count += rows.length;
    }
    const wrapped = tail.reverse().flat();
    if (i < 0) this.scroll = Math.min(this.scroll, Math.max(0, wrapped.length - body));
    const end = wrapped.length - this.scroll;
    const visible = wrapped.slice(Math.max(0, end - body), end);
    const panel = this.peerPanel(body);
    for (let r = 0; r < body; r++) {
      const left = visible[r] ?? '';
      row(r + 2, `${ESC}2K${left}${ESC}0m`);
      if (side > 0) out.push(`${ESC}${r + 2};${width + 1}H${ESC}2m│${ESC}0m${fit(panel[r] ?? '', side)}`);
    }
    const hint = this.scroll > 0 ? ` ${this.scroll} lines below — PgDn ` : '';
    row(rows - 1, `${ESC}2m${'─'.repeat(Math.max(0, cols - visibleWidth(hint)))}${hint}${ESC}0m`);
    // The input: one line, a window that ends at the cursor when the text is longer; newlines shown as ↵.
    const shown = this.input.map((g) => (g === '\n' ? '↵' : g));
    const widths = shown.map(clusterWidth);
    const prompt = '> ';
    const room = cols - prompt.length - 1;
    let from = this.cursor;
    for (let used = 0; from > 0 && used + widths[from - 1]! <= room; from--) used += widths[from - 1]!;
    let to = from;
    for (let used = 0; to < shown.length && used + widths[to]! <= room; to++) used += widths[to]!;
    const column = widths.slice(from, this.cursor).reduce((a, b) => a + b, 0);
    row(rows, `${ESC}2K${prompt}${shown.slice(from, to).join('')}`);
    out.push(`${ESC}${rows};${prompt.length + 1 + column}H${ESC}?25h`);
    this.term.output.write(out.join(''));
  }

  /** One message as screen rows: time, text wrapped to `width`, delivery marks on our own. */
  private render(l: Line, width: number): readonly string[] {
    const mark = l.marks === undefined ? '' : ` ${marks(l.marks)}`;
    if (l.drawn?.width === width && l.drawn.mark === mark) return l.drawn.rows;
    const colour = l.style === 'own' ? `${ESC}36m` : l.style === 'private' ? `${ESC}35m` : l.style === 'system' ? `${ESC}2m` : '';
    const prefix = `${l.time} `;
    const rows = wrap(`${l.text.replaceAll('\t', '    ')}${mark}`, width - prefix.length).map((row, i) => `${ESC}2m${i === 0 ? prefix : ' '.repeat(prefix.length)}${ESC}0m${colour}${row}`);
    l.drawn = { width, mark, rows };
    return rows;
  }

  private peerPanel(rows: number): string[] {
    const out = [` ${ESC}1mpeers${ESC}0m`];
    if (this.peers.length === 0) out.push(` ${ESC}2mnobody yet${ESC}0m`);
    for (const p of this.peers) {
      const colour = p.path.kind === 'direct' ? `${ESC}32m` : `${ESC}33m`;
      out.push(` ${colour}●${ESC}0m ${displaySafe(p.name).slice(0, 12).padEnd(12)} ${pathLabel(p).slice(0, 9)}`);
    }
    return out.slice(0, rows);
  }
}

/** "·" waiting, "✓" some receivers confirmed, "✓✓" all; "✗" when one could not be reached. */
function marks(m: { confirmed: number; of: number; failed: number }): string {
  if (m.of === 0) return '';
  const base = m.confirmed === 0 ? '·' : m.confirmed < m.of ? `✓ ${m.confirmed}/${m.of}` : '✓✓';
  return m.failed > 0 ? `${base} ✗${m.failed}` : base;
}

const segmenter = new Intl.Segmenter();

function graphemes(text: string): string[] {
  return [...segmenter.segment(text)].map((s) => s.segment);
}

/** Local wall-clock "HH:MM". */
function clock(at: Date): string {
  return at.toTimeString().slice(0, 5);
}

/** Columns a grapheme cluster takes: 2 for East Asian wide, emoji and flags, 0 for combining marks alone. */
function clusterWidth(g: string): number {
  if (/\p{Regional_Indicator}/u.test(g)) return 2;
  if (/\p{Extended_Pictographic}/u.test(g) && !/^[\u0023\u002a\u0030-\u0039\u00a9\u00ae]$/.test(g)) return 2;
  const cp = g.codePointAt(0) ?? 0;
  if (/^\p{M}/u.test(g) || cp === 0x200d) return 0;
  const wide = (cp >= 0x1100 && cp <= 0x115f) || (cp >= 0x2e80 && cp <= 0xa4cf) || (cp >= 0xac00 && cp <= 0xd7a3) || (cp >= 0xf900 && cp <= 0xfaff)
    || (cp >= 0xfe30 && cp <= 0xfe4f) || (cp >= 0xff00 && cp <= 0xff60) || (cp >= 0xffe0 && cp <= 0xffe6) || (cp >= 0x20000 && cp <= 0x3fffd);
  return wide ? 2 : 1;
}

function widthOf(clusters: readonly string[]): number {
  return clusters.reduce((n, g) => n + clusterWidth(g), 0);
}

/** Width of text that may hold our own escape sequences (which take no columns). */
function visibleWidth(text: string): number {
  // eslint-disable-next-line no-control-regex
  return widthOf(graphemes(text.replace(/\u001b\[[0-9;?]*[A-Za-z]/g, '')));
}

/** `text` cut or padded to exactly `width` columns. */
function fit(text: string, width: number): string {
  const out: string[] = [];
  let used = 0;
  // eslint-disable-next-line no-control-regex
  for (const part of text.split(/(\u001b\[[0-9;?]*[A-Za-z])/)) {
    if (part.startsWith(ESC)) {
      out.push(part);
      continue;
    }
    for (const g of graphemes(part)) {
      const w = clusterWidth(g);
      if (used + w > width) return `${out.join('')}${' '.repeat(width - used)}`;
      out.push(g);
      used += w;
    }
  }
  return `${out.join('')}${' '.repeat(width - used)}`;
}

/** Rows of at most `width` columns: the text's own lines, broken at spaces where one is near, else anywhere. */
function wrap(text: string, width: number): string[] {
  const rows: string[] = [];
  for (const line of text.split('\n')) {
    let row: string[] = [];
    let used = 0;
    for (const g of graphemes(line)) {
      const w = clusterWidth(g);
      if (used + w > width && row.length > 0) {
        const space = row.lastIndexOf(' ');
        const cut = space > row.length / 2 ? space + 1 : row.length;
        rows.push(row.slice(0, cut).join(''));
        row = row.slice(cut);
        used = widthOf(row);
      }
      row.push(g);
      used += w;
    }
    rows.push(row.join(''));
  }
  return rows;
}
