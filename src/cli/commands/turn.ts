// `natkit turn SERVER`: a TURN allocation (RFC 8656 §7) as a netcat: prints the relayed and
// mapped addresses, relays stdin to a peer through the server (permission §9, Send
// indications §10, then a channel §11–§12) and writes what peers send to the relayed
// address to stdout, until end of input or SIGINT/SIGTERM; then deletes the allocation (§7.5).
import type { Readable } from 'node:stream';
import { formatEndpoint, type Clock, type Endpoint } from '../../net/index.ts';
import { resolveEndpoint } from '../../net/node/index.ts';
import { TurnClient, type RelayedSocket, type TurnAllocation, type TurnClientTransport } from '../../turn/index.ts';
import { NatkitError, isNatkitError } from '../../util/index.ts';
import { EXIT_OK, UsageError, flag, intOption, stringOption, type Command, type CommandContext } from '../command.ts';
import { TLS_CLIENT_OPTIONS, tlsClientOptions } from '../tls-client.ts';
import { COMMAND_SUMMARIES } from './summaries.ts';

/** RFC 8656 §4: 3478 over UDP and TCP, 5349 over TLS. */
const DEFAULT_PORT: Readonly<Record<TurnClientTransport, number>> = { udp: 3478, tcp: 3478, tls: 5349 };
/**
 * Input is cut into datagrams at line ends and at this size: with TURN's 4 bytes of
 * ChannelData (36 of a Send indication) and IP/UDP headers it stays under a 1280-byte path
 * MTU, the IPv6 minimum (RFC 8656 §3.7 asks clients to avoid fragmentation).
 */
const MAX_DATAGRAM = 1200;
const NEWLINE = 0x0a;

/** The byte streams `natkit turn` relays: the process's stdin and stdout in the binary, buffers in tests. */
export interface TurnStreams {
  /** Read once; its end ends the relay; destroyed when the relay ends. */
  readonly input: () => Readable;
  readonly output: (data: Uint8Array) => void;
}

/** The data `natkit turn --json` prints first. */
export interface TurnReport {
  readonly server: string;
  readonly transport: TurnClientTransport;
  readonly relayed: readonly string[];
  readonly mapped: string | undefined;
  readonly lifetimeS: number;
  readonly peer: string | undefined;
}

/** `natkit turn` reading and writing `streams`. */
export function createTurnCommand(streams: TurnStreams): Command {
  return {
    name: 'turn',
    summary: COMMAND_SUMMARIES['turn'],
    usage: '--user NAME --pass PASSWORD [options] SERVER[:PORT]',
    options: {
      user: { type: 'string', short: 'u', valueName: 'NAME', description: 'long-term credential username (required)' },
      pass: { type: 'string', short: 'w', valueName: 'PASSWORD', env: 'NATKIT_TURN_CLIENT_PASSWORD', description: 'its password (required; the environment keeps it out of `ps`)' },
      transport: { type: 'string', short: 't', valueName: 'udp|tcp|tls', description: 'transport to the server', default: 'udp' },
      peer: { type: 'string', valueName: 'HOST:PORT', description: 'relay input to this peer (without it the allocation is only held: no permission, so no peer can reach it)' },
      lifetime: { type: 'string', valueName: 'S', description: 'allocation lifetime to ask for, seconds (default: the server\'s, 600); refreshed until the end' },
      linger: { type: 'string', valueName: 'MS', description: 'after end of input, keep relaying peers\' datagrams this long before deleting the allocation', default: '1000' },
      'channel-after': {
        type: 'string', valueName: 'N', default: '1',
        description: 'datagrams to the peer sent as Send indications before a channel is bound (ChannelData saves 32 bytes a datagram)',
      },
      keepalive: { type: 'string', valueName: 'MS', description: 'UDP: Binding indication to the server after this long idle, keeping the NAT mapping; 0 for none', default: '15000' },
      ...TLS_CLIENT_OPTIONS,
      json: { type: 'boolean', description: 'print the allocation as one JSON line' },
    },
    details: [
      'stdout starts with the allocation (relayed and mapped address; one JSON line with --json), then',
      'carries every datagram peers send to the relayed address, as received. Input is cut into one',
      `datagram per line (newline included; long lines every ${MAX_DATAGRAM} bytes). Progress goes to stderr.`,
      '',
      'Examples:',
      '  natkit turn -u alice -w secret --peer 198.51.100.20:5000 turn.example.net',
      '  echo hello | natkit turn -u alice -w secret -t tls --peer 198.51.100.20:5000 turn.example.net --json',
      '  NATKIT_TURN_CLIENT_PASSWORD=secret natkit turn -u alice 192.0.2.1:3478 < /dev/null   # credentials check',
      '',
      'Exit code 0 after end of input or SIGINT/SIGTERM (the allocation deleted), 1 when the server',
      'refuses (its error code in the message: 401, 441, 486, 508…) or the allocation is lost, 2 on usage errors.',
    ].join('\n'),

    async run(ctx) {
      const [target, ...extra] = ctx.positionals;
      if (target === undefined || extra.length > 0) throw new UsageError(`expected one SERVER[:PORT], got ${ctx.positionals.length}`);
      const username = stringOption(ctx, 'user');
      const password = stringOption(ctx, 'pass');
      if (username === undefined || password === undefined) throw new UsageError(`expected --user and --pass, missing ${username === undefined ? '--user' : '--pass'}`);
      const transport = stringOption(ctx, 'transport') ?? 'udp';
      if (transport !== 'udp' && transport !== 'tcp' && transport !== 'tls') throw new UsageError(`--transport: expected udp, tcp or tls, got "${transport}"`);
      const lifetimeS = intOption(ctx, 'lifetime', 1, 0xffffffff);
      const lingerMs = intOption(ctx, 'linger', 0, 600_000) ?? 1000;
      const keepaliveMs = intOption(ctx, 'keepalive', 0, 3_600_000) ?? 15_000;
      const channelAfterPackets = intOption(ctx, 'channel-after', 0, 1_000_000) ?? 1;
      const { signal } = ctx;
      const peerText = stringOption(ctx, 'peer');
      const peer = peerText === undefined ? undefined : await resolveEndpoint(peerText, undefined, { signal }).catch((cause: unknown) => {
        throw isNatkitError(cause, 'ERR_INVALID_ARGUMENT') ? new UsageError(`--peer: expected HOST:PORT, got "${peerText}"`, { cause }) : cause;
      });
      if (peer?.port === 0) throw new UsageError(`--peer: expected a port other than 0, got "${peerText}"`);
      const server = await resolveEndpoint(target, DEFAULT_PORT[transport], { signal });
      const tls = transport === 'tls' ? await tlsClientOptions(ctx, target) : undefined;

      if (!flag(ctx, 'json')) ctx.io.err(`allocating at ${formatEndpoint(server)} over ${transport}…\n`);
      await using relay = await TurnClient.allocate({
        env: ctx.env, server, transport, username, password, keepaliveMs, channelAfterPackets, signal,
        ...(lifetimeS !== undefined && { lifetimeS }),
        ...(tls !== undefined && { tls }),
      });
      const report = describe(relay.allocation, transport, peer);
      ctx.io.out(flag(ctx, 'json') ? `${JSON.stringify(report)}\n` : formatReport(report));
      const lost = await relayUntilEnd(relay, peer, streams, ctx, lingerMs);
      if (lost !== undefined) throw lost;
      const s = relay.core.stats;
      ctx.io.err(
        `deleting the allocation: ${relay.stats.packetsOut} datagrams relayed out (${s.indicationsSent} Send, ${s.channelDataSent} ChannelData), ` +
        `${relay.stats.packetsIn} in (${s.dataIndications} Data, ${s.channelDataReceived} ChannelData)\n`,
      );
      return EXIT_OK;
    },
  };
}

/** `natkit turn` on the process's stdin and stdout. */
export const turnCommand: Command = createTurnCommand({
  input: () => process.stdin,
  output: (data) => void process.stdout.write(data),
});

/**
 * Relays input to the peer and peers' datagrams to output until input ends (then lingers)
 * or the signal fires. Resolves with the error when the allocation is lost meanwhile.
 */
async function relayUntilEnd(
  relay: RelayedSocket, peer: Endpoint | undefined, streams: TurnStreams, ctx: CommandContext, lingerMs: number,
): Promise<Error | undefined> {
  let warned = false;
  relay.onPacket((data) => streams.output(data));
  // One promise for every way the relay ends early: the signal, or the allocation lost.
  let stop: (why: { readonly error?: Error }) => void = () => undefined;
  const stopped = new Promise<{ readonly error?: Error }>((resolve) => (stop = resolve));
  const onAbort = (): void => stop({});
  ctx.signal.addEventListener('abort', onAbort, { once: true });
  relay.onClose((error) => stop(error === undefined ? {} : { error }));
  const send = (datagram: Uint8Array): void => {
    if (peer !== undefined) {
      relay.send(datagram, peer);
    } else if (!warned) {
      warned = true;
      ctx.io.err('no --peer: input dropped\n');
    }
  };
  const input = streams.input();
  let pending: Uint8Array = new Uint8Array(0);
  const onData = (chunk: Uint8Array): void => {
    pending = cutDatagrams(concat(pending, chunk), send);
  };
  const ended = new Promise<{ readonly error?: Error }>((resolve) => {
    input.once('end', () => resolve({}));
    input.once('error', (error: Error) => resolve({ error: new NatkitError('ERR_SOCKET', `reading input: ${error.message}`, { cause: error }) }));
  });
  try {
    if (ctx.signal.aborted) return undefined;
    input.on('data', onData);
    const why = await Promise.race([ended.then((r) => ({ ...r, eof: true })), stopped]);
    if (why.error !== undefined || !('eof' in why)) return why.error;
    if (pending.length > 0) send(pending);
    const lingered = await Promise.race([stopped, sleep(ctx.env.clock, lingerMs, ctx.signal)]);
    return lingered?.error;
  } finally {
    ctx.signal.removeEventListener('abort', onAbort);
    relay.onPacket(undefined);
    relay.onClose(undefined);
    input.off('data', onData);
    // Ends a read in flight, so a waiting stdin keeps the process alive no longer.
    input.destroy();
  }
}

/** Sends every complete line (or MAX_DATAGRAM-byte piece) of `bytes`; returns the rest. */
export function cutDatagrams(bytes: Uint8Array, send: (datagram: Uint8Array) => void): Uint8Array {
  let start = 0;
  // Bounded: each turn moves `start` forward by at least one byte.
  while (start < bytes.length) {
    const newline = bytes.indexOf(NEWLINE, start);
    const end = newline >= 0 && newline - start < MAX_DATAGRAM ? newline + 1 : start + MAX_DATAGRAM;
    if (end > bytes.length) break;
    send(bytes.subarray(start, end));
    start = end;
  }
  return bytes.slice(start);
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (a.length === 0) return b;
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

/** Resolves after `ms` on `clock` (undefined), or at once when `signal` fires. */
function sleep(clock: Clock, ms: number, signal: AbortSignal): Promise<undefined> {
  return new Promise((resolve) => {
    const done = (): void => {
      timer.cancel();
      signal.removeEventListener('abort', done);
      resolve(undefined);
    };
    const timer = clock.setTimer(ms, done);
    signal.addEventListener('abort', done, { once: true });
  });
}

function describe(a: TurnAllocation, transport: TurnClientTransport, peer: Endpoint | undefined): TurnReport {
  return {
    server: formatEndpoint(a.server),
    transport,
    relayed: a.relayed.map(formatEndpoint),
    mapped: a.mapped === undefined ? undefined : formatEndpoint(a.mapped),
    lifetimeS: a.lifetimeS,
    peer: peer === undefined ? undefined : formatEndpoint(peer),
  };
}

function formatReport(r: TurnReport): string {
  const rows: [string, string | undefined][] = [
    ['relayed', r.relayed.join(', ')],
    ['mapped', r.mapped],
    ['server', `${r.server} (${r.transport}), lifetime ${r.lifetimeS} s`],
    ['peer', r.peer],
  ];
  return rows.filter((row): row is [string, string] => row[1] !== undefined).map(([k, v]) => `${k.padEnd(9)}${v}\n`).join('');
}
