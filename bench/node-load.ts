// Fallback load generator in Node, for machines without a C compiler. Same options and
// the same JSON line as bench/native/stun-load.c (with "generator":"node"), same method:
// a window of Binding requests in flight on one connected socket, unique transaction IDs
// (nonce | slot | generation), answers matched by ID and their XOR-MAPPED-ADDRESS
// checked, latency from process.hrtime, requests lost after a timeout. One datagram per
// syscall, so it saturates long before a fast server does: its figures are a floor.
import { randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { parseArgs } from 'node:util';

const MAGIC_COOKIE = 0x2112a442;

const { values } = parseArgs({
  options: {
    host: { type: 'string', default: '127.0.0.1' },
    port: { type: 'string' },
    'duration-s': { type: 'string', default: '3' },
    'warmup-s': { type: 'string', default: '0.5' },
    window: { type: 'string', default: '128' },
    'timeout-ms': { type: 'string', default: '200' },
    fingerprint: { type: 'boolean', default: false },
  },
});
const host = values.host;
const port = Number(values.port);
const durationS = Number(values['duration-s']);
const warmupS = Number(values['warmup-s']);
const window = Number(values.window);
const timeoutMs = Number(values['timeout-ms']);
if (!/^127\./.test(host)) {
  process.stderr.write(`node-load: --host: only loopback (127.0.0.0/8) is allowed, got ${host}\n`);
  process.exit(2);
}
if (!Number.isInteger(port) || port < 1 || port > 0xffff || !(durationS > 0) || !(warmupS >= 0) || !(window >= 1 && window <= 65536) || !(timeoutMs >= 1)) {
  process.stderr.write('node-load: bad options\n');
  process.exit(2);
}
if (values.fingerprint) process.stderr.write('node-load: --fingerprint is not supported by the Node generator; sending plain requests\n');

const nowNs = (): bigint => process.hrtime.bigint();
const nonce = randomBytes(4).readUInt32BE(0);
const sentAt = new Array<bigint>(window).fill(0n);
const gens = new Uint32Array(window);
const measured = new Uint8Array(window);
const latencies: number[] = [];
const r = { sent: 0, received: 0, lost: 0, late: 0, invalid: 0, error_responses: 0, send_errors: 0 };

const socket = createSocket({ type: 'udp4', recvBufferSize: 4 << 20, sendBufferSize: 4 << 20 });
await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
await new Promise<void>((resolve, reject) => socket.connect(port, host, (err?: Error) => (err ? reject(err) : resolve())));
const local = socket.address();
const wantXport = local.port ^ (MAGIC_COOKIE >>> 16);
const [a = 0, b = 0, c = 0, d = 0] = local.address.split('.').map(Number);
const wantXaddr = ((((a << 24) | (b << 16) | (c << 8) | d) ^ MAGIC_COOKIE) >>> 0);

const t0 = nowNs();
const warmEnd = t0 + BigInt(Math.round(warmupS * 1e9));
const measEnd = warmEnd + BigInt(Math.round(durationS * 1e9));
const timeoutNs = BigInt(timeoutMs) * 1_000_000n;
let measuredBusy = 0;
const cpu0 = process.cpuUsage();

function send(slot: number): void {
  const now = nowNs();
  if (now >= measEnd) return;
  const gen = ((gens[slot] ?? 0) + 1) >>> 0;
  gens[slot] = gen;
  const req = Buffer.alloc(20);
  req.writeUInt16BE(0x0001, 0);
  req.writeUInt32BE(MAGIC_COOKIE, 4);
  req.writeUInt32BE(nonce, 8);
  req.writeUInt32BE(slot, 12);
  req.writeUInt32BE(gen, 16);
  sentAt[slot] = now;
  const isMeasured = now >= warmEnd ? 1 : 0;
  measured[slot] = isMeasured;
  if (isMeasured) {
    r.sent++;
    measuredBusy++;
  }
  socket.send(req, (err) => {
    if (err) r.send_errors++;
  });
}

function release(slot: number): void {
  if (measured[slot] === 1) measuredBusy--;
  sentAt[slot] = 0n;
  measured[slot] = 0;
}

socket.on('error', () => r.send_errors++);
socket.on('message', (msg) => {
  const t = nowNs();
  if (msg.length < 20 || msg.readUInt32BE(4) !== MAGIC_COOKIE || msg.readUInt32BE(8) !== nonce) {
    r.invalid++;
    return;
  }
  const slot = msg.readUInt32BE(12);
  if (slot >= window) {
    r.invalid++;
    return;
  }
  if (sentAt[slot] === 0n || gens[slot] !== msg.readUInt32BE(16)) {
    r.late++;
    return;
  }
  const type = msg.readUInt16BE(0);
  let ok = false;
  for (let off = 20; type === 0x0101 && off + 4 <= msg.length;) {
    const at = msg.readUInt16BE(off);
    const al = msg.readUInt16BE(off + 2);
    if (off + 4 + al > msg.length) break;
    if (at === 0x0020 && al === 8 && msg[off + 5] === 1) {
      ok = msg.readUInt16BE(off + 6) === wantXport && msg.readUInt32BE(off + 8) === wantXaddr;
      break;
    }
    off += 4 + ((al + 3) & ~3);
  }
  if (!ok) {
    if (type === 0x0111) r.error_responses++;
    else r.invalid++;
  } else if (measured[slot] === 1) {
    r.received++;
    latencies.push(Number(t - sentAt[slot]!));
  }
  release(slot);
  send(slot);
});

for (let s = 0; s < window; s++) send(s);

// Expire lost requests once a millisecond; stop after the drain (bounded by time).
const hardEnd = measEnd + timeoutNs + 50_000_000n;
await new Promise<void>((resolve) => {
  const tick = setInterval(() => {
    const now = nowNs();
    for (let s = 0; s < window; s++) {
      const at = sentAt[s]!;
      if (at === 0n || at + timeoutNs > now) continue;
      if (measured[s] === 1) r.lost++;
      release(s);
      send(s);
    }
    if (now >= hardEnd || (now >= measEnd && measuredBusy === 0)) {
      clearInterval(tick);
      resolve();
    }
  }, 1);
});
for (let s = 0; s < window; s++) if (sentAt[s] !== 0n && measured[s] === 1) r.lost++;
const cpu = process.cpuUsage(cpu0);
const wallS = Number(nowNs() - t0) / 1e9;
socket.close();

latencies.sort((x, y) => x - y);
const pct = (p: number): number => {
  if (latencies.length === 0) return 0;
  const rank = Math.min(latencies.length, Math.max(1, Math.ceil(p * latencies.length)));
  return Math.round(latencies[rank - 1]! / 100) / 10;
};
const mean = latencies.length === 0 ? 0 : latencies.reduce((x, y) => x + y, 0) / latencies.length / 1000;
process.stdout.write(`${JSON.stringify({
  generator: 'node', window, duration_s: durationS, warmup_s: warmupS, timeout_ms: timeoutMs, fingerprint: false,
  ...r,
  rps: Math.round((r.received / durationS) * 10) / 10,
  loss_pct: r.sent === 0 ? 0 : (100 * r.lost) / r.sent,
  p50_us: pct(0.5), p90_us: pct(0.9), p99_us: pct(0.99), p999_us: pct(0.999), max_us: pct(1), mean_us: Math.round(mean * 10) / 10,
  samples: latencies.length,
  generator_cpu_pct: Math.round(((cpu.user + cpu.system) / 1e6 / wallS) * 1000) / 10,
})}\n`);
