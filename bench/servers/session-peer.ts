// One end of the secure-session benchmark (bench/lib/session.ts), a child process of its own
// so the two ends do not share an event loop. Both ends bind a NodeUdpSocket on 127.0.0.1
// (the socket natkit's real Env gives, 4 MiB buffers) and speak either plain datagrams
// (`--path udp`) or a SecureSession over that socket (`--path session`: Noise XX, then
// ChaCha20-Poly1305 packets carrying the reliable channel), with the same small protocol
// on top, first byte the kind:
//
//   START id → START_ACK id      the receiver zeroes its counters
//   DATA …                        counted (udp: WINDOW_ACK with the count every UDP_ACK_EVERY)
//   PING seq …                    echoed as is
//   END id → REPORT id json       what arrived since START, the receiver's CPU and datagrams
//
// `--side b` (the receiver) prints {"ready":true,"port":N}, serves until SIGTERM or the end
// of stdin and prints {"stats":…} (lifecycle.ts). `--side a` (the sender) runs the latency
// case, then the throughput cases, prints one {"report":…} line (PeerReport) and exits.
// Over udp, START and END are repeated every 50 ms until answered (datagrams may be lost);
// over the session they are sent once (it is reliable and ordered: END arrives after the
// last DATA). Identities come from fixed seeds, so each side can pin the other's key.
import { parseArgs } from 'node:util';
import { endpoint, type Endpoint, type PacketSocket } from '../../src/net/index.ts';
import { nodeEnv } from '../../src/net/node/index.ts';
import { identityFromSeed } from '../../src/rendezvous/index.ts';
import { SecureSession, type DatagramPath } from '../../src/session/index.ts';
import {
  SESSION_QUEUE_FRAGMENTS, UDP_ACK_EVERY, latencySummary, udpWindow,
  type LatencyCase, type PeerReport, type SessionPathKind, type ThroughputCase,
} from '../lib/session.ts';
import { announceReady, onStop } from './lifecycle.ts';

const START = 1;
const DATA = 2;
const PING = 3;
const END = 4;
const REPORT = 5;
const START_ACK = 6;
const WINDOW_ACK = 7;
const CONTROL_RETRY_MS = 50;
const CONTROL_TIMEOUT_MS = 10_000;
/** A ping unanswered this long is counted lost and replaced (udp may drop it). */
const PING_LOST_MS = 200;
/** Most latency samples kept (1 s at 10 µs per round trip is 100,000). */
const MAX_SAMPLES = 1_000_000;

const A_IDENTITY = identityFromSeed(new Uint8Array(32).fill(0xa1));
const B_IDENTITY = identityFromSeed(new Uint8Array(32).fill(0xb2));

const u32 = (m: Uint8Array, at: number): number => ((m[at]! << 24) | (m[at + 1]! << 16) | (m[at + 2]! << 8) | m[at + 3]!) >>> 0;
function put32(m: Uint8Array, at: number, v: number): void {
  m[at] = v >>> 24;
  m[at + 1] = (v >>> 16) & 0xff;
  m[at + 2] = (v >>> 8) & 0xff;
  m[at + 3] = v & 0xff;
}
function control(kind: number, id: number, body?: Uint8Array): Uint8Array {
  const m = new Uint8Array(5 + (body?.length ?? 0));
  m[0] = kind;
  put32(m, 1, id);
  if (body !== undefined) m.set(body, 5);
  return m;
}
const cpuUs = (): number => {
  const c = process.cpuUsage();
  return c.user + c.system;
};

/** Messages both ways over the socket, plainly or through a SecureSession. */
interface Link {
  readonly socket: PacketSocket;
  readonly session: SecureSession | undefined;
  send(message: Uint8Array): void;
}

/**
 * Wires `socket` to `onMessage` (every message from the peer), then `afterInput` (after each
 * datagram, once the session has handled it: the sender refills its window there). `remote`
 * is where to send; undefined: learn it from the first datagram (the receiver).
 */
function link(
  path: SessionPathKind, side: 'a' | 'b', socket: PacketSocket, remote: Endpoint | undefined,
  onMessage: (m: Uint8Array) => void, afterInput: () => void,
): Link {
  let to = remote;
  if (path === 'udp') {
    socket.onPacket((data, from) => {
      to ??= from;
      onMessage(data);
      afterInput();
    });
    return {
      socket, session: undefined,
      send: (m) => {
        if (to !== undefined) socket.send(m, to);
      },
    };
  }
  let handler: ((d: Uint8Array) => void) | undefined;
  socket.onPacket((data, from) => {
    to ??= from;
    handler?.(data);
    afterInput();
  });
  const datagrams: DatagramPath = {
    send: (d) => {
      if (to !== undefined) socket.send(d, to);
    },
    onMessage: (h) => {
      handler = h;
    },
  };
  const session = new SecureSession({
    env: nodeEnv(), path: datagrams, role: side === 'a' ? 'initiator' : 'responder',
    identity: side === 'a' ? A_IDENTITY : B_IDENTITY, peerIdentityKey: (side === 'a' ? B_IDENTITY : A_IDENTITY).publicKey,
  });
  session.onMessage(onMessage);
  return { socket, session, send: (m) => session.send(m) };
}

/** The receiver: counts, echoes and reports until stopped. */
async function receiver(path: SessionPathKind): Promise<void> {
  const socket = await nodeEnv().network.bindUdp({ address: '127.0.0.1', port: 0 });
  let test = -1;
  let delivered = 0;
  let bytes = 0;
  let cpu0 = 0;
  let t0 = 0;
  let out0 = 0;
  let in0 = 0;
  let report: { id: number; message: Uint8Array } | undefined;
  const ack = new Uint8Array(5);
  ack[0] = WINDOW_ACK;
  const l: Link = link(path, 'b', socket, undefined, (m) => {
    switch (m[0]) {
      case DATA:
        delivered++;
        bytes += m.length;
        if (path === 'udp' && delivered % UDP_ACK_EVERY === 0) {
          put32(ack, 1, delivered);
          l.send(ack.slice());
        }
        return;
      case PING:
        l.send(m);
        return;
      case START: {
        const id = u32(m, 1);
        if (id !== test) {
          test = id;
          delivered = 0;
          bytes = 0;
          cpu0 = cpuUs();
          t0 = performance.now();
          out0 = socket.stats.packetsOut;
          in0 = socket.stats.packetsIn;
        }
        l.send(control(START_ACK, id));
        return;
      }
      case END: {
        const id = u32(m, 1);
        if (report?.id !== id) {
          const body = { delivered, bytes, cpuUs: cpuUs() - cpu0, wallMs: performance.now() - t0, datagramsOut: socket.stats.packetsOut - out0, datagramsIn: socket.stats.packetsIn - in0 };
          report = { id, message: control(REPORT, id, new TextEncoder().encode(JSON.stringify(body))) };
        }
        l.send(report.message);
        return;
      }
      default:
    }
  }, () => undefined);
  announceReady(socket.local.port);
  onStop(async () => {
    const stats = { socket: { ...socket.stats }, session: l.session?.stats };
    // abort(), not close(): the sender may be gone, and a graceful close would wait for it.
    l.session?.abort();
    await socket.close();
    return stats;
  });
}

interface ReceiverReport {
  readonly delivered: number;
  readonly bytes: number;
  readonly cpuUs: number;
  readonly wallMs: number;
  readonly datagramsOut: number;
  readonly datagramsIn: number;
}

/** The sender: handshake, latency, throughput at each size; prints the report and exits. */
async function sender(path: SessionPathKind, peerPort: number, sizes: readonly number[], latencySize: number, durationS: number, warmupS: number): Promise<void> {
  const socket = await nodeEnv().network.bindUdp({ address: '127.0.0.1', port: 0 });
  let pending: { kind: number; id: number; done: (m: Uint8Array) => void } | undefined;
  let onPing: ((m: Uint8Array) => void) | undefined;
  let onWindowAck: ((count: number) => void) | undefined;
  let refill: (() => void) | undefined;
  const l = link(path, 'a', socket, endpoint('127.0.0.1', peerPort), (m) => {
    switch (m[0]) {
      case PING:
        onPing?.(m);
        return;
      case WINDOW_ACK:
        onWindowAck?.(u32(m, 1));
        return;
      case START_ACK:
      case REPORT:
        if (pending !== undefined && m[0] === pending.kind && u32(m, 1) === pending.id) pending.done(m);
        return;
      default:
    }
  }, () => refill?.());

  let handshakeMs: number | undefined;
  if (l.session !== undefined) {
    const t0 = performance.now();
    await l.session.opened({ signal: AbortSignal.timeout(CONTROL_TIMEOUT_MS) });
    handshakeMs = performance.now() - t0;
  }

  let nextId = 1;
  /** Sends a control message until its answer comes (once over the session); rejects after CONTROL_TIMEOUT_MS. */
  const request = (kind: number, answer: number): Promise<Uint8Array> => {
    const id = nextId++;
    const message = control(kind, id);
    return new Promise((resolve, reject) => {
      const retry = path === 'udp' ? setInterval(() => l.send(message), CONTROL_RETRY_MS) : undefined;
      const timeout = setTimeout(() => {
        clearInterval(retry);
        pending = undefined;
        reject(new Error(`no answer to control message ${kind} within ${CONTROL_TIMEOUT_MS} ms`));
      }, CONTROL_TIMEOUT_MS);
      pending = {
        kind: answer, id,
        done: (m) => {
          clearInterval(retry);
          clearTimeout(timeout);
          pending = undefined;
          resolve(m);
        },
      };
      l.send(message);
    });
  };

  /** Round trips of one message at a time for warm-up + duration; the samples after the warm-up. */
  const latency = (size: number): Promise<LatencyCase> => new Promise((resolve) => {
    const samples = new Float64Array(MAX_SAMPLES);
    let n = 0;
    let seq = 0;
    let lost = 0;
    let sentAt = 0;
    const t0 = performance.now();
    const warmEnd = t0 + warmupS * 1000;
    const end = warmEnd + durationS * 1000;
    const ping = (): void => {
      const m = new Uint8Array(size);
      m[0] = PING;
      put32(m, 1, ++seq);
      sentAt = performance.now();
      l.send(m);
    };
    const watchdog = setInterval(() => {
      if (performance.now() - sentAt < PING_LOST_MS) return;
      lost++;
      ping();
    }, PING_LOST_MS / 2);
    onPing = (m) => {
      if (u32(m, 1) !== seq) return;
      const now = performance.now();
      if (now >= warmEnd && n < MAX_SAMPLES) samples[n++] = (now - sentAt) * 1000;
      if (now < end) {
        ping();
        return;
      }
      clearInterval(watchdog);
      onPing = undefined;
      resolve({ size, ...latencySummary(samples.subarray(0, n), durationS), lost });
    };
    ping();
  });

  /** DATA messages for `seconds`, as fast as the window lets; END; what the receiver counted. */
  const stream = async (size: number, seconds: number): Promise<ThroughputCase> => {
    await request(START, START_ACK);
    const message = new Uint8Array(size);
    message[0] = DATA;
    let running = true;
    let sent = 0;
    const session = l.session;
    const retx0 = session?.stats.reliable.retransmissions ?? 0;
    const out0 = socket.stats.packetsOut;
    const in0 = socket.stats.packetsIn;
    const cpu0 = cpuUs();
    const t0 = performance.now();
    let watchdog: ReturnType<typeof setInterval> | undefined;
    if (session !== undefined) {
      // The session's own flow control (maxInFlight fragments) paces it; keep its queue fed.
      refill = () => {
        while (running && session.unacknowledged < SESSION_QUEUE_FRAGMENTS) {
          session.send(message);
          sent++;
        }
      };
    } else {
      // At most udpWindow(size) datagrams beyond the receiver's last count; a count that
      // stops coming (datagrams lost) is written off after 20 ms so the window reopens.
      const window = udpWindow(size);
      let acked = 0;
      let writtenOff = 0;
      let moved = false;
      const to = endpoint('127.0.0.1', peerPort);
      onWindowAck = (count) => {
        if (count > acked) {
          acked = count;
          moved = true;
        }
      };
      refill = () => {
        while (running && sent - acked - writtenOff < window) {
          socket.send(message, to);
          sent++;
        }
      };
      watchdog = setInterval(() => {
        if (!moved) writtenOff = sent - acked;
        moved = false;
        refill?.();
      }, 20);
    }
    refill();
    await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
    running = false;
    refill = undefined;
    onWindowAck = undefined;
    clearInterval(watchdog);
    const answer = await request(END, REPORT);
    const wallS = (performance.now() - t0) / 1000;
    const cpu = cpuUs() - cpu0;
    const r = JSON.parse(new TextDecoder().decode(answer.subarray(5))) as ReceiverReport;
    return {
      size, sent, delivered: r.delivered, seconds: wallS,
      senderCpuPct: cpu / 1e4 / wallS, receiverCpuPct: r.cpuUs / 1e4 / (r.wallMs / 1000),
      datagramsOut: socket.stats.packetsOut - out0, datagramsBack: socket.stats.packetsIn - in0,
      ...(session !== undefined && { retransmissions: session.stats.reliable.retransmissions - retx0 }),
    };
  };

  const lat = await latency(latencySize);
  const throughput: ThroughputCase[] = [];
  for (const size of sizes) {
    if (warmupS > 0) await stream(size, warmupS);
    throughput.push(await stream(size, durationS));
  }
  const report: PeerReport = {
    path, ...(handshakeMs !== undefined && { handshakeMs }), latency: lat, throughput,
    socket: { ...socket.stats }, ...(l.session !== undefined && { session: l.session.stats }),
  };
  l.session?.abort();
  await socket.close();
  process.stdout.write(`${JSON.stringify({ report })}\n`, () => process.exit(0));
}

function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      side: { type: 'string' }, path: { type: 'string' }, 'peer-port': { type: 'string' }, sizes: { type: 'string', default: '100' },
      'latency-size': { type: 'string', default: '100' }, 'duration-s': { type: 'string', default: '1' }, 'warmup-s': { type: 'string', default: '0.5' },
    },
    strict: true,
  });
  const path = values.path;
  if (path !== 'udp' && path !== 'session') throw new Error(`--path: expected udp or session, got ${String(path)}`);
  if (values.side === 'b') return receiver(path);
  if (values.side !== 'a') throw new Error(`--side: expected a or b, got ${String(values.side)}`);
  // The sender exits with the orchestrator too (its stdin ends).
  process.stdin.on('end', () => process.exit(1));
  process.stdin.resume();
  const numbers = (name: string, text: string): number[] => text.split(',').map((s) => {
    const n = Number(s);
    if (!Number.isFinite(n) || n < 0) throw new Error(`--${name}: expected numbers, got ${text}`);
    return n;
  });
  const peerPort = numbers('peer-port', values['peer-port'] ?? '')[0]!;
  return sender(
    path, peerPort, numbers('sizes', values.sizes).map((n) => Math.max(5, Math.round(n))), Math.max(5, Number(values['latency-size'])),
    numbers('duration-s', values['duration-s'])[0]!, numbers('warmup-s', values['warmup-s'])[0]!,
  );
}

main().catch((err: unknown) => {
  process.stderr.write(`session-peer: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
