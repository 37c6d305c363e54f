// Readiness probe: a server is ready when it answers one RFC 8489 Binding request with a
// success response carrying the same transaction ID. Raw bytes, no natkit code, so the
// probe is the same for every server.
import { randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { sleep } from './children.ts';

const MAGIC_COOKIE = 0x2112a442;

/** A 20-byte Binding request with a random transaction ID. */
function bindingRequest(): Buffer {
  const b = Buffer.alloc(20);
  b.writeUInt16BE(0x0001, 0);
  b.writeUInt32BE(MAGIC_COOKIE, 4);
  randomBytes(12).copy(b, 8);
  return b;
}

/**
 * Sends a Binding request to 127.0.0.1:`port` every `intervalMs` until a success response
 * with the right transaction ID comes back; rejects after `timeoutMs`, when `isDead()`
 * says the server exited, or on abort.
 */
export async function waitForStun(
  port: number, options: { timeoutMs: number; intervalMs?: number; signal: AbortSignal; isDead?: () => boolean },
): Promise<void> {
  const socket = createSocket('udp4');
  const ids = new Set<string>();
  let answered = false;
  socket.on('message', (msg) => {
    if (msg.length >= 20 && msg.readUInt16BE(0) === 0x0101 && ids.has(msg.subarray(8, 20).toString('hex'))) answered = true;
  });
  socket.on('error', () => undefined); // ICMP port unreachable before the server binds
  try {
    await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
    const interval = options.intervalMs ?? 100;
    const attempts = Math.ceil(options.timeoutMs / interval);
    for (let i = 0; i < attempts && !answered; i++) {
      options.signal.throwIfAborted();
      if (options.isDead?.() === true) throw new Error('server exited before answering');
      const req = bindingRequest();
      ids.add(req.subarray(8, 20).toString('hex'));
      socket.send(req, port, '127.0.0.1');
      await sleep(interval, options.signal);
    }
    if (!answered) throw new Error(`no STUN answer from 127.0.0.1:${port} within ${options.timeoutMs} ms`);
  } finally {
    await new Promise<void>((resolve) => socket.close(() => resolve()));
  }
}

/** A UDP port on 127.0.0.1 that was free a moment ago (for servers that cannot report theirs). */
export async function freeUdpPort(): Promise<number> {
  const socket = createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  const { port } = socket.address();
  await new Promise<void>((resolve) => socket.close(() => resolve()));
  return port;
}
