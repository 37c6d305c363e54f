// ChatClient: a chat between peers behind NATs. It registers a name with the rendezvous
// server (connect()'s agent: one socket for discovery, relay, rendezvous and punching),
// joins a room — the server introduces every member to every other, so a room is a full
// mesh of punched paths — and runs a secure session (natkit/session) on each connection.
// Private messages go to one peer, dialled by name when not connected yet. Delivery marks
// come from the receiver's receipt frames (codec.ts); each peer's path (direct or relayed,
// as it changes) is reported as the connection sees it.
import {
  ConnectAgent, type ConnectOptions, type ConnectProgress, type PeerConnection, type PeerInfo, type PunchedPath,
} from '../punch/index.ts';
import { secureConnection, type SecureConnectionOptions, type SecureSession } from '../session/index.ts';
import { FailureCounter, type Timer } from '../net/index.ts';
import { NatkitError, isNatkitError } from '../util/index.ts';
import { MAX_RECEIPT_IDS, decodeChatFrame, displaySafe, encodeChatFrame, type TextFrame } from './codec.ts';

/** Whether a peer may talk to us (pin its key on first use, say); `note` says why, for display. */
export interface TrustVerdict {
  readonly trusted: boolean;
  readonly note: string;
}

export interface ChatOptions extends Omit<ConnectOptions, 'peer' | 'room' | 'accept' | 'onError' | 'onProgress'> {
  /** The room to join; absent: private messages only. */
  readonly room?: string;
  /** Asked before a session starts on a connection; refused peers are closed. @default everyone the server introduces */
  readonly trust?: (peer: PeerInfo) => TrustVerdict | Promise<TrustVerdict>;
  /** Passed to each secure session (keepalive, idle timeout, message size…). */
  readonly session?: Omit<SecureConnectionOptions, 'env' | 'identity'>;
  /** Wall-clock ms since the epoch, stamped on our messages (env.clock is monotonic, with no epoch): Date.now in a program, a fixed clock in tests. */
  readonly wallClock: () => number;
  /** How long a private message waits for its peer's connection before it is given up, ms. @default 30000 */
  readonly dialTimeoutMs?: number;
}

/** A message said or heard. */
export interface ChatMessage {
  readonly id: string;
  readonly from: string;
  /** The room it was said in; undefined for a private message. */
  readonly room: string | undefined;
  /** Private messages we sent: the receiver. */
  readonly to: string | undefined;
  /** Safe for a terminal (displaySafe()). */
  readonly text: string;
  /** The sender's clock, ms since the epoch. */
  readonly sentAt: number;
}

/** A peer as the chat knows it. */
export interface ChatPeer {
  readonly name: string;
  readonly fingerprint: string;
  /** Met in our room; false for a private conversation only. */
  readonly inRoom: boolean;
  readonly path: PunchedPath;
}

export type ChatEvent =
  | { readonly kind: 'progress'; readonly progress: ConnectProgress }
  | { readonly kind: 'joined'; readonly peer: ChatPeer; readonly note: string }
  | { readonly kind: 'left'; readonly name: string; readonly reason: string | undefined }
  | { readonly kind: 'refused'; readonly name: string; readonly fingerprint: string; readonly reason: string }
  | { readonly kind: 'path'; readonly name: string; readonly path: PunchedPath }
  | { readonly kind: 'message'; readonly message: ChatMessage }
  /** `by` confirmed `id`; `waiting` receivers still have not. */
  | { readonly kind: 'delivered'; readonly id: string; readonly by: string; readonly waiting: number }
  | { readonly kind: 'undelivered'; readonly id: string; readonly to: string; readonly reason: string }
  | { readonly kind: 'error'; readonly error: Error };

/** What send() did: the message, and who it went to (an empty room: nobody). */
export interface SentMessage {
  readonly message: ChatMessage;
  readonly recipients: readonly string[];
}

/** One peer's connection and session. */
interface Link {
  readonly conn: PeerConnection;
  readonly session: SecureSession;
  /** env.clock.now() when it was adopted. */
  readonly since: number;
  inRoom: boolean;
  open: boolean;
}

/** Two connections to one name this close together were made at once (both dialled, or a dial crossed a room's introduction). */
const CROSSED_MS = 10_000;
/** Receipts held for a peer whose session is not open yet, at most. */
const MAX_HELD_RECEIPTS = 4096;

/** A private message waiting for its peer's session. */
interface Waiting {
  readonly frame: TextFrame;
  /** Gives the message up when no session opens in time. */
  readonly timer: Timer;
}

/** A chat member: a name on a rendezvous server, a room, sessions to the peers. */
export class ChatClient implements AsyncDisposable {
  readonly name: string;
  readonly room: string | undefined;
  readonly agent: ConnectAgent;
  private readonly o: ChatOptions;
  private readonly links = new Map<string, Link>();
  private readonly handlers = new Set<(event: ChatEvent) => void>();
  /** Our messages not yet confirmed, by id: who still owes a receipt. */
  private readonly pending = new Map<string, Set<string>>();
  /** Private messages to peers we are connecting to, by name. */
  private readonly waiting = new Map<string, Waiting[]>();
  /** Names with a punch in progress (a room's introduction or our dial). */
  private readonly punching = new Set<string>();
  private readonly dialing = new Set<string>();
  /** Receipts to send, per peer, flushed once per tick. */
  private readonly receipts = new Map<string, string[]>();
  private readonly failures: FailureCounter;
  private readonly stopped = new AbortController();
  private closing: Promise<void> | undefined;

  private constructor(o: ChatOptions, agent: ConnectAgent) {
    this.o = o;
    this.name = o.name;
    this.room = o.room;
    this.agent = agent;
    this.failures = new FailureCounter('chat', o.env.logger, (error) => this.emit({ kind: 'error', error }));
    agent.onConnection((conn) => void this.adopt(conn));
  }

  /** Registers, joins the room (if any) and starts answering introductions; `onEvent` sees the progress too. */
  static async start(o: ChatOptions, onEvent?: (event: ChatEvent) => void): Promise<ChatClient> {
    // Progress comes before the client exists: to `onEvent` alone until then.
    const made: { client?: ChatClient } = {};
    const relay = (event: ChatEvent): void => (made.client === undefined ? onEvent?.(event) : made.client.emit(event));
    const agent = await ConnectAgent.start({
      ...o, accept: true,
      onProgress: (progress) => {
        made.client?.track(progress);
        relay({ kind: 'progress', progress });
      },
      onError: (error) => relay({ kind: 'error', error }),
    });
    const client = new ChatClient(o, agent);
    made.client = client;
    if (onEvent !== undefined) client.onEvent(onEvent);
    try {
      if (o.room !== undefined) await agent.join(o.room, { ...(o.signal && { signal: o.signal }) });
    } catch (err) {
      await client.close();
      throw err;
    }
    return client;
  }

  /** Subscribes to events; returns the unsubscribe. */
  onEvent(handler: (event: ChatEvent) => void): () => void {
    this.handlers.add(handler);
    return () => this.handlers.delete(handler);
  }

  /** Peers with an open session, by name. */
  peers(): ChatPeer[] {
    return [...this.links.entries()].filter(([, l]) => usable(l)).map(([name, l]) => this.describe(name, l)).sort((a, b) => a.name.localeCompare(b.name));
  }

  /**
   * Says `text` in the room (to every member with an open session), or privately `to` one
   * peer, connecting to it by name first when needed. Throws ERR_INVALID_ARGUMENT for an
   * empty or oversized text, or a room message without a room; ERR_CLOSED after close().
   */
  send(text: string, options: { readonly to?: string } = {}): SentMessage {
    if (this.closing !== undefined) throw new NatkitError('ERR_CLOSED', 'chat closed');
    if (text.trim() === '') throw new NatkitError('ERR_INVALID_ARGUMENT', 'nothing to send: the text is empty');
    const { to } = options;
    if (to === undefined && this.room === undefined) throw new NatkitError('ERR_INVALID_ARGUMENT', 'not in a room: send privately (to a peer by name)');
    if (to === this.name) throw new NatkitError('ERR_INVALID_ARGUMENT', 'that is your own name');
    const frame: TextFrame = {
      t: 'text', id: Buffer.from(this.o.env.random.bytes(9)).toString('base64url'), text, sentAt: this.o.wallClock(),
      ...(to === undefined && this.room !== undefined && { room: this.room }),
    };
    let data: Uint8Array;
    try {
      data = encodeChatFrame(frame);
    } catch (err) {
      throw new NatkitError('ERR_INVALID_ARGUMENT', err instanceof Error ? err.message : String(err), { cause: err });
    }
    const message: ChatMessage = { id: frame.id, from: this.name, room: frame.room, to, text: displaySafe(text), sentAt: frame.sentAt };
    if (to !== undefined) {
      const link = this.links.get(to);
      this.pending.set(frame.id, new Set([to]));
      if (link !== undefined && usable(link)) link.session.send(data);
      else this.wait(to, frame);
      return { message, recipients: [to] };
    }
    const recipients = [...this.links.entries()].filter(([, l]) => usable(l) && l.inRoom).map(([name]) => name);
    if (recipients.length > 0) this.pending.set(frame.id, new Set(recipients));
    for (const name of recipients) this.links.get(name)!.session.send(data);
    return { message, recipients };
  }

  /** Ends every session (each flushes and says goodbye), leaves the room and the server. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.stopped.abort();
      for (const name of [...this.waiting.keys()]) for (const w of this.takeWaiting(name)) this.undelivered(w.frame.id, name, 'chat closed');
      await Promise.all([...this.links.values()].map(async (l) => {
        await l.session.close();
        await l.conn.close();
      }));
      await this.agent.close();
    })();
    return this.closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  private emit(event: ChatEvent): void {
    for (const h of this.handlers) h(event);
  }

  private describe(name: string, l: Link): ChatPeer {
    return { name, fingerprint: l.conn.peer.fingerprint, inRoom: l.inRoom, path: l.conn.path };
  }

  /** Follows the agent's punches, so a private message waits for one in progress rather than dialling a second. */
  private track(p: ConnectProgress): void {
    if (p.peer === undefined) return;
    if (p.step === 'order') this.punching.add(p.peer);
    if (p.step === 'connected' || p.step === 'failed') {
      this.punching.delete(p.peer);
      // The introduction failed while private messages wait for this peer: try by name.
      if (p.step === 'failed' && this.waiting.has(p.peer)) this.dial(p.peer);
    }
  }

  /** Queues a private message for `to` until its session opens; dials it unless a punch is under way. */
  private wait(to: string, frame: TextFrame): void {
    const ms = this.o.dialTimeoutMs ?? 30_000;
    const entry: Waiting = {
      frame,
      timer: this.o.env.clock.setTimer(ms, () => {
        const queue = this.waiting.get(to) ?? [];
        const i = queue.indexOf(entry);
        if (i < 0) return;
        queue.splice(i, 1);
        if (queue.length === 0) this.waiting.delete(to);
        this.undelivered(frame.id, to, `no session with ${to} within ${ms} ms`);
      }),
    };
    this.waiting.set(to, [...this.waiting.get(to) ?? [], entry]);
    if (!this.punching.has(to) && !this.links.has(to)) this.dial(to);
  }

  /** Takes the messages waiting for `name` (their timers stopped). */
  private takeWaiting(name: string): Waiting[] {
    const queue = this.waiting.get(name) ?? [];
    this.waiting.delete(name);
    for (const w of queue) w.timer.cancel();
    return queue;
  }

  private dial(name: string): void {
    if (this.dialing.has(name) || this.closing !== undefined) return;
    this.dialing.add(name);
    this.agent.dial(name, { signal: this.stopped.signal }).then(
      (conn) => this.adopt(conn),
      (err: unknown) => {
        if (isNatkitError(err, 'ERR_ABORTED')) return;
        const reason = err instanceof Error ? err.message : String(err);
        for (const w of this.takeWaiting(name)) this.undelivered(w.frame.id, name, reason);
      },
    ).finally(() => {
      this.dialing.delete(name);
      // The agent reports a dial's retries, not its end: the punch is over either way.
      this.punching.delete(name);
    });
  }

  /**
   * A new connection: asks `trust`, then starts a session on it. A newer connection to a
   * name replaces the older one (the peer restarted, or joined our room after a private
   * talk); two made at once (within CROSSED_MS) are settled by the larger pair id, which
   * both sides see, so both keep the same one.
   */
  private async adopt(conn: PeerConnection): Promise<void> {
    const { name, fingerprint } = conn.peer;
    let verdict: TrustVerdict;
    try {
      verdict = this.o.trust === undefined ? { trusted: true, note: 'no key pinning' } : await this.o.trust(conn.peer);
    } catch (err) {
      verdict = { trusted: false, note: `cannot check its key (${err instanceof Error ? err.message : String(err)})` };
    }
    // Closing, or the connection ended while its key was checked: nothing to start on it.
    if (!verdict.trusted || this.closing !== undefined || conn.closed) {
      if (!verdict.trusted) this.emit({ kind: 'refused', name, fingerprint, reason: verdict.note });
      await conn.close().catch((err: unknown) => this.failures.fail(err));
      return;
    }
    const old = this.links.get(name);
    const now = this.o.env.clock.now();
    if (old !== undefined && now - old.since < CROSSED_MS && old.conn.pairId > conn.pairId) {
      old.inRoom ||= conn.room !== undefined && conn.room === this.room;
      await conn.close().catch((err: unknown) => this.failures.fail(err));
      return;
    }
    const session = secureConnection(conn, { ...this.o.session, env: this.o.env, identity: this.o.identity });
    const link: Link = { conn, session, since: now, inRoom: conn.room !== undefined && conn.room === this.room, open: false };
    if (old !== undefined) {
      link.inRoom ||= old.inRoom;
      this.links.delete(name);
      void old.session.close().then(() => old.conn.close()).catch((err: unknown) => this.failures.fail(err));
    }
    this.links.set(name, link);
    session.onMessage((data) => this.onFrame(name, data));
    conn.onPathChange((path) => this.links.get(name) === link && this.emit({ kind: 'path', name, path }));
    // The path is gone: the session can say nothing more (no CLOSE).
    conn.onClose(() => session.abort());
    session.onClose((error) => this.ended(name, link, error));
    session.opened().then(() => {
      if (this.links.get(name) !== link) return;
      link.open = true;
      this.emit({ kind: 'joined', peer: this.describe(name, link), note: verdict.note });
      for (const w of this.takeWaiting(name)) session.send(encodeChatFrame(w.frame));
      this.flushReceipts(name);
    }, () => undefined);
  }

  private ended(name: string, link: Link, error: Error | undefined): void {
    // After the session's linger: it may still have to acknowledge a repeated CLOSE.
    void link.session.whenStopped().then(() => link.conn.close()).catch((err: unknown) => this.failures.fail(err));
    if (this.links.get(name) !== link) return;
    this.links.delete(name);
    this.receipts.delete(name);
    const reason = error?.message;
    for (const [id, owed] of this.pending) {
      if (owed.delete(name)) this.undelivered(id, name, reason ?? `${name} left`);
      if (owed.size === 0) this.pending.delete(id);
    }
    if (link.open && this.closing === undefined) this.emit({ kind: 'left', name, reason });
    // Private messages queued while this session was closing: try a new one.
    if (this.waiting.has(name) && this.closing === undefined) this.dial(name);
    else if (error !== undefined && this.closing === undefined) this.failures.fail(new NatkitError('ERR_PROTOCOL', `no secure session with ${name}: ${error.message}`, { cause: error }));
  }

  private undelivered(id: string, to: string, reason: string): void {
    this.pending.get(id)?.delete(to);
    if (this.pending.get(id)?.size === 0) this.pending.delete(id);
    this.emit({ kind: 'undelivered', id, to, reason });
  }

  private onFrame(from: string, data: Uint8Array): void {
    let frame;
    try {
      frame = decodeChatFrame(data);
    } catch (err) {
      this.failures.fail(new NatkitError('ERR_CHAT_DECODE', `${from}: ${err instanceof Error ? err.message : String(err)}`, { cause: err }));
      return;
    }
    if (frame.t === 'text') {
      // A room message for another room (the peer is in several), or from a peer we only
      // talk to privately: not ours to show as the room's.
      if (frame.room !== undefined && (frame.room !== this.room || this.links.get(from)?.inRoom !== true)) return;
      const message: ChatMessage = { id: frame.id, from, room: frame.room, to: undefined, text: displaySafe(frame.text), sentAt: frame.sentAt };
      this.emit({ kind: 'message', message });
      this.receipt(from, frame.id);
    } else if (frame.t === 'receipt') {
      for (const id of frame.ids) {
        const owed = this.pending.get(id);
        if (owed?.delete(from) !== true) continue;
        if (owed.size === 0) this.pending.delete(id);
        this.emit({ kind: 'delivered', id, by: from, waiting: owed.size });
      }
    }
  }

  /** Confirms `id` to `from`; receipts of one tick travel together, held while its session is not open. */
  private receipt(from: string, id: string): void {
    const ids = this.receipts.get(from);
    if (ids !== undefined) {
      ids.push(id);
      if (ids.length > MAX_HELD_RECEIPTS) ids.shift();
      return;
    }
    this.receipts.set(from, [id]);
    queueMicrotask(() => this.flushReceipts(from));
  }

  private flushReceipts(name: string): void {
    const link = this.links.get(name);
    const ids = this.receipts.get(name);
    if (link === undefined || !usable(link) || ids === undefined) return;
    this.receipts.delete(name);
    for (let at = 0; at < ids.length; at += MAX_RECEIPT_IDS) link.session.send(encodeChatFrame({ t: 'receipt', ids: ids.slice(at, at + MAX_RECEIPT_IDS) }));
  }
}

/** The session takes messages: open, and not closing. */
function usable(link: Link): boolean {
  return link.open && link.session.state === 'open';
}
