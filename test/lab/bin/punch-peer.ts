// Lab runner: one peer of the NAT matrix. connect() (natkit/punch) on one UDP socket bound
// to --bind: checkNat, a TURN allocation and registration with `natkit serve` at --server,
// then with --peer a CONNECT to that name, without it waiting for whoever connects. Prints
// `{"registered":NAME}` once registered, then sends --messages pings over the path
// (each resent every 200 ms until answered, at most 10 times) while answering the peer's,
// and prints one PeerReport line (test/lab/lib/punch-lab.ts) once all were answered or
// given up. It keeps answering until stdin ends or SIGTERM, then closes everything and
// exits 0; 1 when connect() fails; 3 past --limit-ms. Progress goes to stderr.
// Usage: punch-peer.ts --server A:P --bind ADDR --name NAME [--peer NAME] [--user NAME:PASSWORD]
//        [--messages N] [--limit-ms N]
import { randomBytes } from 'node:crypto';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { formatEndpoint, parseEndpoint } from '../../../src/net/index.ts';
import { nodeEnv } from '../../../src/net/node/index.ts';
import { connect, type PeerConnection } from '../../../src/punch/index.ts';
import { identityFromSeed } from '../../../src/rendezvous/index.ts';
import { median } from '../../../bench/lib/report.ts';
import type { PeerReport } from '../lib/punch-lab.ts';

const { values } = parseArgs({
  options: {
    server: { type: 'string', default: '' }, bind: { type: 'string', default: '' }, name: { type: 'string', default: '' }, peer: { type: 'string' },
    user: { type: 'string', default: 'lab:labpass' }, messages: { type: 'string', default: '5' }, 'limit-ms': { type: 'string', default: '60000' },
  },
  strict: true,
});
if (values.server === '' || values.bind === '' || values.name === '') {
  process.stderr.write('usage: punch-peer.ts --server A:P --bind ADDR --name NAME [--peer NAME]\n');
  process.exit(2);
}
/** Between resends of an unanswered ping, and how often at most. */
const RESEND_MS = 200;
const MAX_SENDS = 10;
/** natkit serve's rendezvous TCP fallback port (docs/serve.md). */
const RENDEZVOUS_TCP_PORT = 3480;

const limit = setTimeout(() => {
  process.stderr.write(`punch-peer ${values.name}: still running after ${values['limit-ms']} ms\n`);
  process.exit(3);
}, Number(values['limit-ms']));
const env = nodeEnv();
const server = parseEndpoint(values.server, 3478);
const [username, password] = values.user.split(':') as [string, string];
const print = (v: unknown): void => void process.stdout.write(`${JSON.stringify(v)}\n`);
const t0 = performance.now();

const options = {
  env, identity: identityFromSeed(randomBytes(32)), name: values.name, localAddress: values.bind,
  rendezvous: server, rendezvousTcp: { ...server, port: RENDEZVOUS_TCP_PORT }, turn: { server, username, password },
  onProgress: (p: { readonly detail: string }) => void process.stderr.write(`${values.name}: ${p.detail}\n`),
};
let conn: PeerConnection;
let close: () => Promise<void>;
try {
  if (values.peer === undefined) {
    const agent = await connect(options);
    print({ registered: values.name });
    close = () => agent.close();
    conn = await new Promise<PeerConnection>((resolve) => agent.onConnection(resolve));
  } else {
    conn = await connect({ ...options, peer: values.peer });
    close = () => conn.close();
  }
} catch (err) {
  process.stderr.write(`punch-peer ${values.name}: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
}
const totalMs = Math.round(performance.now() - t0);

// Pings out, pongs back: "ping N" is answered with "pong N" whoever sends it.
const count = Number(values.messages);
const sentAt = new Map<number, number>();
const rtts: number[] = [];
const pings = new Set<number>();
const utf8 = new TextEncoder();
let answeredAll = (): void => undefined;
const allAnswered = new Promise<void>((resolve) => {
  answeredAll = resolve;
});
conn.onMessage((data) => {
  const [kind, n] = new TextDecoder().decode(data).split(' ');
  const i = Number(n);
  if (kind === 'ping') {
    pings.add(i);
    conn.send(utf8.encode(`pong ${i}`));
  } else if (kind === 'pong' && sentAt.has(i)) {
    rtts.push(performance.now() - sentAt.get(i)!);
    sentAt.delete(i);
    if (sentAt.size === 0) answeredAll();
  }
});
const send = (i: number): void => {
  sentAt.set(i, performance.now());
  conn.send(utf8.encode(`ping ${i}`));
};
for (let i = 1; i <= count; i++) send(i);
for (let round = 1; round < MAX_SENDS && sentAt.size > 0; round++) {
  const resend = new Promise<void>((resolve) => setTimeout(resolve, RESEND_MS));
  await Promise.race([allAnswered, resend]);
  for (const i of sentAt.keys()) send(i);
}
await Promise.race([allAnswered, new Promise<void>((resolve) => setTimeout(resolve, RESEND_MS))]);

const { stats, plan, path } = conn;
const report: PeerReport = {
  name: values.name, outcome: plan.outcome, reason: plan.reason,
  path: { kind: path.kind, method: path.method, local: formatEndpoint(path.local), remote: formatEndpoint(path.remote) },
  punchMs: Math.round(stats.connectMs ?? -1), totalMs, packetsSent: stats.packetsSent, checksSent: stats.checksSent, birthdaySockets: stats.birthdaySockets,
  messages: { sent: count, answered: count - sentAt.size, received: pings.size },
  rttMs: rtts.length === 0 ? -1 : Math.round(median(rtts) * 1000) / 1000,
};
print(report);

const finish = async (): Promise<void> => {
  clearTimeout(limit);
  await close();
  process.exit(0);
};
process.on('SIGTERM', () => void finish());
createInterface({ input: process.stdin }).on('close', () => void finish());
