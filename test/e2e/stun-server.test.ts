// The STUN server on real loopback sockets (NodeNetwork), probed by raw node:dgram,
// node:net and node:tls clients: RFC 5780 §6.1 table 1 seen from the wire (the reply's
// real source address and port) with 127.0.0.1 and 127.0.0.2 as the two addresses,
// RESPONSE-PORT, RFC 3489 clients, IPv6, TCP framing, TLS, plain mode over UDP and TCP,
// stream caps, a garbage flood, shared sockets, abort and close. Every test checks that
// nothing is left open.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket, type Socket as DgramSocket } from 'node:dgram';
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import {
  BINDING, CHANGE_REQUEST, CHANGED_ADDRESS, ERROR_CODE, MAPPED_ADDRESS, OTHER_ADDRESS, RESPONSE_ORIGIN, RESPONSE_PORT, SOURCE_ADDRESS,
  StunClass, StunServer, XOR_MAPPED_ADDRESS, attr, decodeMessage, encodeMessage, totalDropped, type AttrEntry, type ServerRole,
  type ServerTransport, type StunMessage, type StunServerOptions,
} from '../../src/stun/index.ts';
import { StreamFramer, type Endpoint } from '../../src/net/index.ts';
import { nodeEnv } from '../../src/net/node/index.ts';
import { noLeaks } from '../helpers/leaks.ts';
import { hasOpenssl, selfSignedCertificate } from '../helpers/tls.ts';

const A1 = '127.0.0.1';
const A2 = '127.0.0.2';
const WAIT_MS = 2000;

const request = (attributes: readonly AttrEntry[] = [], legacy = false): Uint8Array =>
  encodeMessage({ method: BINDING, cls: StunClass.REQUEST, transactionId: randomBytes(legacy ? 16 : 12), attributes });

const idOf = (bytes: Uint8Array): string => Buffer.from(decodeMessage(bytes).transactionId).toString('hex');

const start = (o: Partial<StunServerOptions> = {}): Promise<StunServer> =>
  StunServer.create({ env: nodeEnv(), addresses: [A1, A2], ports: [0, 0], rateLimit: false, ...o });

const where = (server: StunServer, transport: ServerTransport, role: ServerRole): Endpoint => {
  const e = server.endpoints.find((x) => x.transport === transport && x.role === role);
  assert.ok(e, `server listens on ${transport} role ${role}`);
  return e.local;
};

interface Datagram {
  readonly data: Buffer;
  readonly from: { address: string; port: number };
}

/** A raw UDP client that queues what arrives. */
class UdpClient {
  readonly socket: DgramSocket;
  private readonly queue: Datagram[] = [];
  private waiter: (() => void) | undefined;

  private constructor(socket: DgramSocket) {
    this.socket = socket;
    socket.on('message', (data, rinfo) => {
      this.queue.push({ data, from: { address: rinfo.address, port: rinfo.port } });
      this.waiter?.();
    });
  }

  static async open(address = A1): Promise<UdpClient> {
    const socket = createSocket(address.includes(':') ? 'udp6' : 'udp4');
    socket.bind(0, address);
    await once(socket, 'listening');
    return new UdpClient(socket);
  }

  get local(): Endpoint {
    const a = this.socket.address();
    return { address: a.address, port: a.port, family: a.family === 'IPv6' ? 6 : 4 };
  }

  send(data: Uint8Array, to: Endpoint): void {
    this.socket.send(data, to.port, to.address);
  }

  /** The next datagram matching `match`, or undefined after `ms`. */
  async next(match: (d: Datagram) => boolean = () => true, ms = WAIT_MS): Promise<Datagram | undefined> {
    const deadline = performance.now() + ms;
    for (;;) {
      const i = this.queue.findIndex(match);
      if (i >= 0) return this.queue.splice(i, 1)[0];
      const left = deadline - performance.now();
      if (left <= 0) return undefined;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiter = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.waiter = undefined;
    }
  }

  /** Sends a request and waits for the response with its transaction ID. */
  async ask(data: Uint8Array, to: Endpoint): Promise<{ msg: StunMessage; from: Datagram['from'] }> {
    const id = idOf(data);
    this.send(data, to);
    const got = await this.next((d) => d.data.length >= 20 && idOf(d.data) === id);
    assert.ok(got, `a response from ${to.address}:${to.port}`);
    return { msg: decodeMessage(got.data), from: got.from };
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.socket.close(() => resolve()));
  }
}

/** Reads framed STUN messages (or raw text) from a TCP/TLS client socket. */
class StreamReader {
  readonly messages: Uint8Array[] = [];
  text = '';
  ended = false;
  private readonly framer = new StreamFramer();
  private wake: (() => void) | undefined;

  constructor(socket: Socket, mode: 'stun' | 'text') {
    socket.on('data', (chunk: Buffer) => {
      if (mode === 'text') this.text += chunk.toString('utf8');
      else this.framer.push(chunk, (m) => this.messages.push(Uint8Array.from(m)));
      this.wake?.();
    });
    socket.on('close', () => {
      this.ended = true;
      this.wake?.();
    });
    socket.on('error', () => undefined);
  }

  async until(done: () => boolean, ms = WAIT_MS): Promise<void> {
    const deadline = performance.now() + ms;
    while (!done()) {
      const left = deadline - performance.now();
      assert.ok(left > 0, 'timed out waiting on the stream');
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = undefined;
    }
  }
}

const tcpConnect = async (to: Endpoint): Promise<Socket> => {
  const socket = netConnect({ host: to.address, port: to.port });
  await once(socket, 'connect');
  return socket;
};

const destroyed = async (socket: Socket): Promise<void> => {
  if (socket.closed) return;
  socket.destroy();
  await once(socket, 'close');
};

test('UDP, 127.0.0.1 × 127.0.0.2, two ports: every role × CHANGE-REQUEST answers from the right socket (RFC 5780 §6.1)', noLeaks(async () => {
  await using server = await start({ tcp: false });
  assert.equal(server.endpoints.length, 4);
  assert.equal(where(server, 'udp', 0).port, where(server, 'udp', 2).port, 'same port on both addresses');
  assert.notEqual(where(server, 'udp', 0).port, where(server, 'udp', 1).port);
  const client = await UdpClient.open();
  try {
    for (const role of [0, 1, 2, 3] as const) {
      for (const [changeIp, changePort] of [[false, false], [true, false], [false, true], [true, true]] as const) {
        const to = where(server, 'udp', role);
        const { msg, from } = await client.ask(request([attr(CHANGE_REQUEST, { changeIp, changePort })]), to);
        const via = ((role ^ (changeIp ? 2 : 0)) ^ (changePort ? 1 : 0)) as ServerRole;
        const expected = where(server, 'udp', via);
        assert.deepEqual({ address: from.address, port: from.port }, { address: expected.address, port: expected.port }, `role ${role} ip=${changeIp} port=${changePort}`);
        assert.deepEqual(msg.get(RESPONSE_ORIGIN), expected);
        assert.deepEqual(msg.get(OTHER_ADDRESS), where(server, 'udp', (role ^ 3) as ServerRole));
        assert.deepEqual(msg.get(XOR_MAPPED_ADDRESS), client.local);
        assert.deepEqual(msg.get(MAPPED_ADDRESS), client.local);
      }
    }
    assert.equal(server.stats.success, 16);
    assert.equal(server.stats.changed, 12);
  } finally {
    await client.close();
  }
}));

test('UDP RESPONSE-PORT: the answer arrives on the other client socket (RFC 5780 §7.5)', noLeaks(async () => {
  await using server = await start({ tcp: false });
  const a = await UdpClient.open();
  const b = await UdpClient.open();
  try {
    const req = request([attr(RESPONSE_PORT, b.local.port)]);
    a.send(req, where(server, 'udp', 0));
    const got = await b.next((d) => idOf(d.data) === idOf(req));
    assert.ok(got, 'response on the RESPONSE-PORT socket');
    assert.deepEqual(decodeMessage(got.data).get(XOR_MAPPED_ADDRESS), a.local, 'mapped address is still the requester');
    assert.equal(await a.next(undefined, 100), undefined, 'nothing to the source port');
  } finally {
    await a.close();
    await b.close();
  }
}));

test('UDP RFC 3489 client: MAPPED-ADDRESS, SOURCE-ADDRESS, CHANGED-ADDRESS and CHANGE-REQUEST', noLeaks(async () => {
  await using server = await start({ tcp: false });
  const client = await UdpClient.open();
  try {
    const { msg, from } = await client.ask(request([attr(CHANGE_REQUEST, { changeIp: true, changePort: false })], true), where(server, 'udp', 0));
    assert.equal(msg.isLegacy, true);
    assert.deepEqual(msg.get(MAPPED_ADDRESS), client.local);
    assert.equal(from.address, A2);
    assert.deepEqual(msg.get(SOURCE_ADDRESS), where(server, 'udp', 2));
    assert.deepEqual(msg.get(CHANGED_ADDRESS), where(server, 'udp', 3));
    assert.equal(server.stats.legacy, 1);
  } finally {
    await client.close();
  }
}));

test('IPv6 ::1, one address: basic answers; CHANGE-REQUEST gets 420', noLeaks(async () => {
  await using server = await start({ addresses: ['::1'], ports: [0] });
  const client = await UdpClient.open('::1');
  try {
    const { msg } = await client.ask(request(), where(server, 'udp', 0));
    assert.deepEqual(msg.get(XOR_MAPPED_ADDRESS), client.local);
    assert.equal(msg.has(OTHER_ADDRESS), false);
    const changed = await client.ask(request([attr(CHANGE_REQUEST, { changeIp: false, changePort: true })]), where(server, 'udp', 0));
    assert.equal(changed.msg.get(ERROR_CODE)?.code, 420);
  } finally {
    await client.close();
  }
}));

test('TCP: several requests in one write and one split byte by byte, answered in order on the connection', noLeaks(async () => {
  await using server = await start({ udp: false });
  const socket = await tcpConnect(where(server, 'tcp', 1));
  try {
    const reader = new StreamReader(socket, 'stun');
    const reqs = [request(), request([attr(CHANGE_REQUEST, { changeIp: false, changePort: false })]), request([attr(CHANGE_REQUEST, { changeIp: true, changePort: false })]), request()];
    socket.write(Buffer.concat(reqs.slice(0, 3)));
    for (const byte of reqs[3]!) socket.write(Uint8Array.of(byte));
    await reader.until(() => reader.messages.length === 4);
    assert.deepEqual(reader.messages.map(idOf), reqs.map(idOf));
    const [first, , third] = reader.messages.map((m) => decodeMessage(m));
    assert.deepEqual(first?.get(XOR_MAPPED_ADDRESS), { address: socket.localAddress, port: socket.localPort, family: 4 });
    assert.deepEqual(first?.get(RESPONSE_ORIGIN), where(server, 'tcp', 1));
    assert.equal(third?.get(ERROR_CODE)?.code, 400, 'CHANGE-REQUEST with a flag needs UDP');
    assert.equal(server.stats.streams.accepted, 1);
  } finally {
    await destroyed(socket);
  }
}));

test('TLS with a self-signed certificate', noLeaks(async (t) => {
  if (!(await hasOpenssl())) {
    t.skip('openssl CLI not available');
    return;
  }
  const { cert, key } = await selfSignedCertificate();
  await using server = await start({ udp: false, tcp: false, tls: { cert, key } });
  const at = where(server, 'tls', 0);
  assert.notEqual(at.port, where(server, 'tls', 1).port);
  const socket = tlsConnect({ host: at.address, port: at.port, ca: cert, servername: 'localhost' });
  try {
    await once(socket, 'secureConnect');
    const reader = new StreamReader(socket, 'stun');
    const req = request();
    socket.write(req);
    await reader.until(() => reader.messages.length === 1);
    const msg = decodeMessage(reader.messages[0]!);
    assert.equal(idOf(reader.messages[0]!), idOf(req));
    assert.deepEqual(msg.get(RESPONSE_ORIGIN), at);
    assert.deepEqual(msg.get(OTHER_ADDRESS), where(server, 'tls', 3));
  } finally {
    await destroyed(socket);
  }
}));

test('plain mode over UDP and TCP: "ip,port\\n" for datagrams, for silent connections and for text', noLeaks(async () => {
  await using server = await start({ plain: true, plainGreetingMs: 50 });
  const client = await UdpClient.open();
  try {
    client.send(Buffer.from('what is my address? (padded so the reply is no larger)'), where(server, 'udp', 0));
    const got = await client.next();
    assert.equal(got?.data.toString(), `${A1},${client.local.port}\n`);
    client.send(Buffer.from('hi'), where(server, 'udp', 0));
    assert.equal(await client.next(undefined, 100), undefined, 'a datagram smaller than the answer gets none');
    assert.equal(server.stats.dropped['plain-too-small'], 1);
    const { msg } = await client.ask(request(), where(server, 'udp', 0));
    assert.equal(msg.cls, StunClass.SUCCESS, 'STUN still works in plain mode');
  } finally {
    await client.close();
  }
  // `nc host port`: connect, say nothing, read the address, see the close.
  const silent = await tcpConnect(where(server, 'tcp', 0));
  const silentPort = silent.localPort;
  const r1 = new StreamReader(silent, 'text');
  await r1.until(() => r1.ended);
  assert.equal(r1.text, `${A1},${silentPort}\n`);
  const talker = await tcpConnect(where(server, 'tcp', 0));
  const talkerPort = talker.localPort;
  const r2 = new StreamReader(talker, 'text');
  talker.write('hello\n');
  await r2.until(() => r2.ended);
  assert.equal(r2.text, `${A1},${talkerPort}\n`);
  assert.equal(server.stats.streams.plainClosed, 2);
}));

test('stream caps: maxConnections refuses, idle connections and garbage are closed', noLeaks(async () => {
  await using server = await start({ udp: false, maxConnections: 2, idleTimeoutMs: 150 });
  const at = where(server, 'tcp', 0);
  const a = await tcpConnect(at);
  const b = await tcpConnect(at);
  const c = await tcpConnect(at);
  const readers = [a, b, c].map((s) => new StreamReader(s, 'stun'));
  await readers[2]!.until(() => readers[2]!.ended);
  assert.equal(server.stats.streams.refused, 1);
  // a talks, b does not: both idle out after 150 ms of silence.
  a.write(request());
  await readers[0]!.until(() => readers[0]!.messages.length === 1);
  await readers[1]!.until(() => readers[1]!.ended, 1000);
  await readers[0]!.until(() => readers[0]!.ended, 1000);
  assert.equal(server.stats.streams.idleClosed, 2);
  const g = await tcpConnect(at);
  const rg = new StreamReader(g, 'stun');
  g.write(Buffer.from([0x00, 0x01, 0x00, 0x03, 1, 2, 3])); // length not a multiple of 4
  await rg.until(() => rg.ended);
  assert.equal(server.stats.streams.garbageClosed, 1);
  assert.equal(server.stats.streams.active, 0);
  for (const s of [a, b, c, g]) await destroyed(s);
}));

/** xorshift32: reproducible garbage without Math.random. */
function prng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
}

test('garbage flood: 20k random datagrams, then the server still answers and its counters add up', noLeaks(async () => {
  await using server = await start({ tcp: false, rateLimit: { ratePerS: 20, burst: 40 } });
  const flooder = await UdpClient.open();
  const next = prng(0x5eed);
  const targets = [0, 1, 2, 3].map((r) => where(server, 'udp', r as ServerRole));
  const SENT = 20_000;
  try {
    for (let i = 0; i < SENT; i++) {
      const size = next() % 120;
      const data = new Uint8Array(size);
      for (let j = 0; j < size; j++) data[j] = next() & 0xff;
      // Every 7th datagram looks like STUN (first byte 0x00/0x01) to reach deeper paths.
      if (i % 7 === 0 && size >= 20) data[0] = next() & 1;
      flooder.send(data, targets[i % 4]!);
      if (i % 500 === 499) await new Promise<void>((resolve) => setImmediate(resolve));
    }
    const deadline = performance.now() + 3000;
    while (server.stats.received < SENT && performance.now() < deadline) await new Promise<void>((resolve) => setTimeout(resolve, 10));
    const s = server.stats;
    assert.ok(s.received >= SENT * 0.9 && s.received <= SENT, `received ${s.received} of ${SENT}`);
    assert.equal(s.received, s.success + s.badRequest + s.unknownAttribute + s.plain + totalDropped(s));
    assert.ok(s.dropped['rate-limited'] > 0, 'the flooder hit its budget');
    assert.ok(s.replies <= 40 + 20 * 5, `at most burst + rate × duration replies to the flooder, got ${s.replies}`);
    assert.equal(s.internalErrors, 0);
    // Another source still gets answers on every socket.
    const other = await UdpClient.open('127.0.0.3');
    try {
      for (const to of targets) assert.deepEqual((await other.ask(request(), to)).msg.get(XOR_MAPPED_ADDRESS), other.local);
    } finally {
      await other.close();
    }
  } finally {
    await flooder.close();
  }
}));

test('caller-supplied UDP sockets: served, and left open on close', noLeaks(async () => {
  const env = nodeEnv();
  const socket = await env.network.bindUdp({ address: A1, port: 0 });
  try {
    const server = await StunServer.create({ env, udpSockets: [socket], rateLimit: false });
    assert.deepEqual(server.endpoints.map((e) => e.transport), ['udp'], 'no TCP by default with supplied sockets');
    const client = await UdpClient.open();
    try {
      const { msg } = await client.ask(request(), socket.local);
      assert.deepEqual(msg.get(XOR_MAPPED_ADDRESS), client.local);
      await server.close();
      assert.equal(socket.closed, false);
      client.send(request(), socket.local);
      assert.equal(await client.next(undefined, 100), undefined, 'detached after close');
    } finally {
      await client.close();
    }
  } finally {
    await socket.close();
  }
}));

test('close(): idempotent, releases every port; abort closes; an aborted signal rejects create', noLeaks(async () => {
  const server = await start();
  const bound = server.endpoints.map((e) => ({ ...e.local, transport: e.transport }));
  assert.equal(bound.length, 8, 'UDP and TCP × 4 roles');
  const conn = await tcpConnect(where(server, 'tcp', 0));
  const reader = new StreamReader(conn, 'stun');
  await Promise.all([server.close(), server.close()]);
  assert.equal(server.closed, true);
  await reader.until(() => reader.ended);
  await destroyed(conn);
  // The same ports bind again.
  const again = await StunServer.create({ env: nodeEnv(), addresses: [A1, A2], ports: [where(server, 'udp', 0).port, where(server, 'udp', 1).port], tcp: false, rateLimit: false });
  await again.close();

  const controller = new AbortController();
  const aborting = await start({ signal: controller.signal });
  controller.abort();
  await aborting.close();
  assert.equal(aborting.closed, true);
  await assert.rejects(start({ signal: AbortSignal.abort() }), { code: 'ERR_ABORTED' });
}));
