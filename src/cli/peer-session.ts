// What `natkit connect` and `natkit pipe` share: their options, the identity key file,
// connect() on real sockets with progress on stderr (or JSON lines on stdout), and the
// connections it yields, watched for path changes until Ctrl-C (connect) or the end of
// standard input (pipe, over a SecureSession per connection: encrypted end to end,
// reliable and ordered). Each peer's key is pinned under its name on first use
// (known-peers.ts); a connection presenting another key is refused.
import { createPrivateKey, generateKeyPairSync } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { formatEndpoint } from '../net/index.ts';
import { localAddressToward, resolveEndpoint } from '../net/node/index.ts';
import { connect, describePath, keyFingerprint, type ConnectAgent, type ConnectOptions, type ConnectProgress, type PeerConnection } from '../punch/index.ts';
import { identityFromKey, type RendezvousIdentity } from '../rendezvous/index.ts';
import { secureConnection, type SecureSession } from '../session/index.ts';
import { EXIT_FAILURE, EXIT_OK, UsageError, flag, intOption, stringOption, type CommandContext, type OptionSpec } from './command.ts';
import { KnownPeers, pinVerdict } from './known-peers.ts';
import { untilAborted } from './server-options.ts';
import { stateDir } from './state-dir.ts';

/** How a peer reaches its server, who it is, where it keeps state: `natkit connect`, `pipe` and `chat`. */
export const NETWORK_OPTIONS: Readonly<Record<string, OptionSpec>> = {
  server: { type: 'string', short: 's', valueName: 'HOST[:PORT]', env: 'NATKIT_SERVER', description: 'the natkit serve to use: STUN, TURN and rendezvous over UDP (port 3478 by default)' },
  'rendezvous-port': { type: 'string', valueName: 'PORT', default: '3480', description: 'the server\'s rendezvous TCP fallback port, used when UDP is blocked' },
  'turn-user': { type: 'string', valueName: 'USER', description: 'TURN user on the server: gives a relay when no direct path exists' },
  'turn-pass': { type: 'string', valueName: 'PASSWORD', description: 'its password' },
  key: { type: 'string', valueName: 'FILE', description: 'Ed25519 private key (PKCS #8 PEM) owning NAME; created (mode 0600) when missing; default: a new key each run' },
  local: { type: 'string', valueName: 'ADDR', description: 'local address to bind; default: the one routed toward the server' },
  json: { type: 'boolean', description: 'progress, connections and path changes as JSON lines (on stdout; on stderr for pipe)' },
  state: { type: 'string', valueName: 'DIR', env: 'NATKIT_STATE_DIR', description: 'state directory: known-peers.json, and for chat keys/ and chat/ (history) (default: $XDG_STATE_HOME/natkit or ~/.local/state/natkit)' },
  'forget-peer': { type: 'string', valueName: 'PEER', description: 'drop the key pinned for PEER first (it is pinned again on the next connection); alone, only that' },
};

/** Options of `natkit connect` and `natkit pipe`. */
export const PEER_OPTIONS: Readonly<Record<string, OptionSpec>> = {
  to: { type: 'string', valueName: 'PEER', description: 'connect to the peer registered under this name' },
  room: { type: 'string', valueName: 'ROOM', description: 'join a room: a connection to each member' },
  listen: { type: 'boolean', description: 'wait for peers that connect to NAME' },
  ...NETWORK_OPTIONS,
};

/** Shared --help text. */
export const PEER_DETAILS = [
  'Exactly one of --to, --room and --listen. Both peers use the same server (`natkit serve`, docs/serve.md).',
  'The first key a peer name connects with is pinned in known-peers.json; a later connection under that name with another key is refused (--forget-peer NAME drops the old key).',
  'Progress goes to stderr (discovery, registration, the PUNCH order and the plan, the path); --json prints JSON lines instead (on stdout; pipe: on stderr).',
];

/** Milliseconds since `t0` as a fixed-width column: "[  1234 ms]". */
function stamp(atMs: number, t0: number): string {
  return `[${String(Math.round(atMs - t0)).padStart(6)} ms]`;
}

/** One progress line: "[   12 ms] alice  nat         full-cone: …". */
export function progressLine(p: Pick<ConnectProgress, 'detail' | 'atMs'> & { readonly step: string }, t0: number, who?: string): string {
  return `${stamp(p.atMs, t0)} ${who === undefined ? '' : `${who.padEnd(6)} `}${p.step.padEnd(10)} ${p.detail}\n`;
}

/** The JSON form of a connection's state. */
export function connectionJson(conn: PeerConnection): Record<string, unknown> {
  const { path, plan } = conn;
  return {
    peer: { name: conn.peer.name, fingerprint: conn.peer.fingerprint },
    path: { kind: path.kind, method: path.method, local: formatEndpoint(path.local), remote: formatEndpoint(path.remote) },
    plan: { outcome: plan.outcome, reason: plan.reason },
    connectMs: conn.stats.connectMs,
  };
}

/** Where the peer stands: connected to one, or an agent yielding connections. */
type Mode = { readonly kind: 'to'; readonly peer: string } | { readonly kind: 'room'; readonly room: string } | { readonly kind: 'listen' };

/** Runs `natkit connect` (pipe false) or `natkit pipe` (pipe true). */
export async function runPeer(ctx: CommandContext, pipe: boolean): Promise<number> {
  const { io, env, signal } = ctx;
  const json = flag(ctx, 'json');
  const [name, ...extra] = ctx.positionals;
  if (name === undefined || extra.length > 0) throw new UsageError(`expected one NAME, got ${ctx.positionals.length}`);
  if (await forgetPeer(ctx, stringOption(ctx, 'to') === undefined && stringOption(ctx, 'room') === undefined && !flag(ctx, 'listen'))) return EXIT_OK;
  const mode = modeOf(ctx);
  const network = await peerNetwork(ctx);
  const known = knownPeersOf(ctx);
  const identity = await loadIdentity(stringOption(ctx, 'key'));
  const t0 = env.clock.now();
  // pipe's standard output carries the peer's data: its JSON lines go to stderr.
  const jsonOut = (line: string): void => (pipe ? io.err(line) : io.out(line));
  const emit = (event: string, data: Record<string, unknown>, human: string): void => {
    if (json) jsonOut(`${JSON.stringify({ event, atMs: Math.round(env.clock.now() - t0), ...data })}\n`);
    else io.err(`${stamp(env.clock.now(), t0)} ${human}\n`);
  };
  const options: ConnectOptions = {
    env, identity, name, signal, ...network,
    ...(mode.kind === 'to' && { peer: mode.peer }),
    ...(mode.kind === 'room' && { room: mode.room }),
    onProgress: (p) => (json ? emit('progress', { step: p.step, detail: p.detail, ...(p.peer !== undefined && { peer: p.peer }) }, '') : io.err(progressLine(p, t0))),
    onError: (err) => emit('error', { message: err.message }, `error      ${err.message}`),
  };
  const session = new Session(ctx, pipe ? identity : undefined, json, emit, known);
  if (mode.kind === 'to') {
    const conn = await connect({ ...options, peer: mode.peer });
    if (!(await session.accept(conn))) return EXIT_FAILURE;
    await session.run(() => conn.close());
  } else {
    const agent: ConnectAgent = await connect(options);
    agent.onConnection((conn) => void session.accept(conn));
    await session.run(() => agent.close());
  }
  return session.onlyRefused ? EXIT_FAILURE : EXIT_OK;
}

/** Where the server is (--server, --rendezvous-port), the TURN user, the local address: connect()'s network options. */
export async function peerNetwork(ctx: CommandContext): Promise<Pick<ConnectOptions, 'rendezvous' | 'rendezvousTcp' | 'localAddress' | 'turn'>> {
  const serverText = stringOption(ctx, 'server');
  if (serverText === undefined) throw new UsageError('--server: expected the HOST[:PORT] of a natkit serve');
  const user = stringOption(ctx, 'turn-user');
  const pass = stringOption(ctx, 'turn-pass');
  if ((user === undefined) !== (pass === undefined)) throw new UsageError('--turn-user and --turn-pass: expected both or neither');
  const tcpPort = intOption(ctx, 'rendezvous-port', 1, 65535) ?? 3480;
  const server = await resolveEndpoint(serverText, 3478, { signal: ctx.signal });
  return {
    rendezvous: server,
    rendezvousTcp: { ...server, port: tcpPort },
    localAddress: stringOption(ctx, 'local') ?? await localAddressToward(server),
    ...(user !== undefined && pass !== undefined && { turn: { server, username: user, password: pass } }),
  };
}

/** Runs --forget-peer when given; true when that was all there was to do (no other mode flag). */
export async function forgetPeer(ctx: CommandContext, alone: boolean): Promise<boolean> {
  const forget = stringOption(ctx, 'forget-peer');
  if (forget === undefined) return false;
  const known = knownPeersOf(ctx);
  const dropped = await known.forget(forget);
  ctx.io.err(dropped === undefined ? `no key pinned for ${forget} in ${known.path}\n` : `forgot ${forget} key ${keyFingerprint(Buffer.from(dropped.publicKey, 'hex'))}\n`);
  return alone;
}

function modeOf(ctx: CommandContext): Mode {
  const to = stringOption(ctx, 'to');
  const room = stringOption(ctx, 'room');
  const listen = flag(ctx, 'listen');
  if ([to !== undefined, room !== undefined, listen].filter(Boolean).length !== 1) throw new UsageError('expected exactly one of --to PEER, --room ROOM and --listen');
  return to !== undefined ? { kind: 'to', peer: to } : room !== undefined ? { kind: 'room', room } : { kind: 'listen' };
}

/** known-peers.json in --state (NATKIT_STATE_DIR), else the default state directory. */
export function knownPeersOf(ctx: CommandContext): KnownPeers {
  return new KnownPeers(stateDir(stringOption(ctx, 'state'), ctx.vars));
}

/** The key in `path` (PKCS #8 PEM), created with mode 0600 when missing; a fresh key without a path. */
export async function loadIdentity(path: string | undefined): Promise<RendezvousIdentity> {
  if (path === undefined) return identityFromKey(generateKeyPairSync('ed25519').privateKey);
  let pem: string;
  try {
    pem = await readFile(path, 'utf8');
  } catch (err) {
    if (!(err instanceof Error && 'code' in err && err.code === 'ENOENT')) throw new UsageError(`--key: cannot read ${path} (${err instanceof Error ? err.message : String(err)})`);
    pem = generateKeyPairSync('ed25519').privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
    // 'wx': never overwrite a key another process just wrote.
    await writeFile(path, pem, { mode: 0o600, flag: 'wx' });
  }
  try {
    return identityFromKey(createPrivateKey(pem));
  } catch (err) {
    throw new UsageError(`--key: ${path} is not an Ed25519 private key in PEM (${err instanceof Error ? err.message : String(err)})`);
  }
}

/** Largest message `natkit pipe` sends (the session fragments it to fit the path). */
const PIPE_CHUNK_BYTES = 16_384;
/** After the end of input, how long to wait for the peers to acknowledge everything, ms. */
const PIPE_DRAIN_MS = 10_000;
/** How often to look whether everything was acknowledged, ms. */
const PIPE_DRAIN_POLL_MS = 20;

/** The connections of one run: reported, watched, and for pipe fed with standard input. */
class Session {
  private readonly ctx: CommandContext;
  /** pipe: our identity, for the secure sessions; undefined for connect. */
  private readonly identity: RendezvousIdentity | undefined;
  private readonly json: boolean;
  private readonly emit: (event: string, data: Record<string, unknown>, human: string) => void;
  private readonly known: KnownPeers;
  private readonly sessions = new Map<PeerConnection, SecureSession>();
  private accepted = 0;
  private refused = 0;
  /** run() is closing down: a connection whose key check ends now is not added. */
  private stopping = false;
  private firstConnection: (() => void) | undefined;
  private readonly connected = new Promise<void>((resolve) => (this.firstConnection = resolve));

  constructor(ctx: CommandContext, identity: RendezvousIdentity | undefined, json: boolean, emit: Session['emit'], known: KnownPeers) {
    this.ctx = ctx;
    this.identity = identity;
    this.json = json;
    this.emit = emit;
    this.known = known;
  }

  /** Every connection was refused, and there was at least one. */
  get onlyRefused(): boolean {
    return this.refused > 0 && this.accepted === 0;
  }

  /**
   * Checks the peer's key against the one pinned for its name (pinning it on first use),
   * then adds the connection; refuses it otherwise: closed before anything is sent. Never
   * rejects: a failure refuses the connection and is reported.
   */
  async accept(conn: PeerConnection): Promise<boolean> {
    const { name, fingerprint } = conn.peer;
    const verdict = await pinVerdict(this.known, name, conn.peer.publicKey, new Date());
    // The run ended (or the connection did) while the key was being checked: too late to add it.
    if (this.stopping || conn.closed) {
      await conn.close().catch(() => undefined);
      return false;
    }
    if (verdict.trusted) {
      this.emit(verdict.kind, { peer: name, fingerprint, ...(verdict.firstSeen !== undefined && { firstSeen: verdict.firstSeen }) }, verdict.note);
      return this.add(conn);
    }
    const problem = verdict.note;
    this.refused++;
    this.emit('refused', { peer: name, fingerprint, message: problem }, `error      ${problem}`);
    try {
      await conn.close();
    } catch (err) {
      this.emit('error', { peer: name, message: err instanceof Error ? err.message : String(err) }, `error      closing ${name}: ${err instanceof Error ? err.message : String(err)}`);
    }
    return false;
  }

  private add(conn: PeerConnection): true {
    this.accepted++;
    // The human line came with connect()'s progress ('connected'); JSON gets the whole state.
    if (this.json) this.emit('connected', connectionJson(conn), '');
    conn.onPathChange((path) => this.emit('path', { peer: conn.peer.name, kind: path.kind, method: path.method, remote: formatEndpoint(path.remote) }, `path       ${conn.peer.name}: ${describePath(path)}`));
    conn.onClose((error) => {
      // The path is gone: nothing more can be said on it.
      this.sessions.get(conn)?.abort();
      this.sessions.delete(conn);
      this.emit('closed', { peer: conn.peer.name, ...(error !== undefined && { error: error.message }) }, `closed     ${conn.peer.name}${error === undefined ? '' : `: ${error.message}`}`);
    });
    if (this.identity !== undefined) {
      // The initiator is the controlling side; only the key the PUNCH order named may answer.
      const session = secureConnection(conn, { env: this.ctx.env, identity: this.identity });
      const decoder = new TextDecoder();
      session.onMessage((data) => this.ctx.io.out(decoder.decode(data, { stream: true })));
      session.onClose((error) => {
        if (error !== undefined) this.emit('error', { peer: conn.peer.name, message: error.message }, `error      ${conn.peer.name}: ${error.message}`);
      });
      this.sessions.set(conn, session);
    }
    this.firstConnection?.();
    return true;
  }

  /** Until Ctrl-C (connect) or the end of input after the first connection (pipe); then `close`. */
  async run(close: () => Promise<void>): Promise<void> {
    const { signal } = this.ctx;
    try {
      if (this.identity === undefined) await untilAborted(signal);
      else {
        await Promise.race([this.connected, untilAborted(signal)]);
        if (!signal.aborted) await this.relayInput();
      }
    } finally {
      this.stopping = true;
      for (const session of this.sessions.values()) await session.close();
      await close();
    }
  }

  /**
   * Standard input to every connection's session, in chunks, until its end or Ctrl-C; then
   * waits (up to PIPE_DRAIN_MS) until the peers acknowledged everything. A read pending at
   * Ctrl-C cannot be cancelled through an iterator (return() waits for it): the binary
   * destroys its standard input at exit.
   */
  private async relayInput(): Promise<void> {
    const { stdin, env, signal } = this.ctx;
    if (stdin === undefined) return;
    const input = stdin[Symbol.asyncIterator]();
    const aborted = untilAborted(signal).then(() => undefined);
    for (let r = await Promise.race([input.next(), aborted]); r !== undefined && r.done !== true; r = await Promise.race([input.next(), aborted])) {
      for (let at = 0; at < r.value.length; at += PIPE_CHUNK_BYTES) {
        const part = r.value.subarray(at, at + PIPE_CHUNK_BYTES);
        for (const session of this.sessions.values()) if (session.state === 'handshaking' || session.state === 'open') session.send(part);
      }
    }
    const drained = (): boolean => [...this.sessions.values()].every((s) => s.unacknowledged === 0 || (s.state !== 'handshaking' && s.state !== 'open'));
    for (const deadline = env.clock.now() + PIPE_DRAIN_MS; !drained() && !signal.aborted && env.clock.now() < deadline; ) {
      await new Promise<void>((resolve) => env.clock.setTimer(PIPE_DRAIN_POLL_MS, resolve));
    }
  }
}
