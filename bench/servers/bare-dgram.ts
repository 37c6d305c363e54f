// The reference: the least work a Node STUN responder can do per datagram on node:dgram.
// For each datagram of at least a STUN header it copies the 12-byte transaction ID into
// a preallocated 32-byte Binding success response (RFC 8489 §5 header + one
// XOR-MAPPED-ADDRESS, §14.2) computed for the sender, and sends it. No validation, no
// allocation per packet (a ring of response buffers, so a send the kernel queues keeps
// its bytes), the sender's XORed address cached. Same socket settings as natkit's
// NodeNetwork (4 MiB buffers), same send call shape (port and address string).
import { createSocket } from 'node:dgram';
import { announceReady, childOptions, onStop } from './lifecycle.ts';

const MAGIC_COOKIE = 0x2112a442;
const RING = 256; // power of two
const BUFFER_BYTES = 4 * 1024 * 1024;

const { port } = childOptions();

const ring: Buffer[] = [];
for (let i = 0; i < RING; i++) {
  const b = Buffer.alloc(32);
  b.writeUInt16BE(0x0101, 0); // Binding success response
  b.writeUInt16BE(12, 2); // one attribute: 4 + 8 bytes
  b.writeUInt32BE(MAGIC_COOKIE, 4);
  b.writeUInt16BE(0x0020, 20); // XOR-MAPPED-ADDRESS
  b.writeUInt16BE(8, 22);
  b[25] = 0x01; // IPv4
  ring.push(b);
}
let next = 0;
let received = 0;
let sendErrors = 0;
let lastAddress = '';
let xaddr = 0;

const socket = createSocket({ type: 'udp4', recvBufferSize: BUFFER_BYTES, sendBufferSize: BUFFER_BYTES });
socket.on('error', () => sendErrors++);
socket.on('message', (msg, rinfo) => {
  received++;
  if (msg.length < 20) return;
  const res = ring[next]!;
  next = (next + 1) & (RING - 1);
  msg.copy(res, 8, 8, 20);
  const xport = rinfo.port ^ (MAGIC_COOKIE >>> 16);
  res[26] = xport >>> 8;
  res[27] = xport & 0xff;
  if (rinfo.address !== lastAddress) {
    lastAddress = rinfo.address;
    const [a = 0, b = 0, c = 0, d = 0] = rinfo.address.split('.').map(Number);
    xaddr = ((((a << 24) | (b << 16) | (c << 8) | d) ^ MAGIC_COOKIE) >>> 0);
  }
  res.writeUInt32BE(xaddr, 28);
  socket.send(res, rinfo.port, rinfo.address);
});
socket.bind(port, '127.0.0.1', () => {
  announceReady(socket.address().port);
});

onStop(
  () =>
    new Promise((resolve) => {
      socket.close(() => resolve({ received, sendErrors }));
    }),
);
