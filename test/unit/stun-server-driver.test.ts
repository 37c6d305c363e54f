// The STUN server driver on a fake Network and a fake clock: replies leave from the
// socket of the role the core picked, port pairs are retried when the alternate address
// has the system-chosen port taken, and the stream side's timers and caps (idle timeout,
// plain greeting, slow readers, maxConnections) behave exactly, with no real time passing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  BINDING, CHANGE_REQUEST, StunClass, StunServer, attr, decodeMessage, encodeMessage, type StunServerOptions,
} from '../../src/stun/index.ts';
import type {
  Clock, Endpoint, Env, ListenOptions, Network, PacketSocket, StreamListener, StreamSocket, Timer, BindOptions,
} from '../../src/net/index.ts';
import { NatkitError } from '../../src/util/index.ts';
import { FakePacketSocket } from '../helpers/fake-socket.ts';

/** A clock whose time moves only when the test says so. */
class FakeClock implements Clock {
  private time = 0;
  private timers: { at: number; fn: () => void; live: boolean }[] = [];
  now(): number {
    return this.time;
  }
  setTimer(delayMs: number, fn: () => void): Timer {
    const t = { at: this.time + delayMs, fn, live: true };
    this.timers.push(t);
    return { cancel: () => void (t.live = false) };
  }
  get pending(): number {
    return this.timers.filter((t) => t.live).length;
  }
  advance(ms: number): void {
    const end = this.time + ms;
    for (;;) {
      const due = this.timers.filter((t) => t.live && t.at <= end).sort((a, b) => a.at - b.at)[0];
      if (due === undefined) break;
      this.time = due.at;
      due.live = false;
      due.fn();
    }
    this.time = end;
    this.timers = this.timers.filter((t) => t.live);
  }
}

class FakeStream implements StreamSocket {
  readonly local: Endpoint;
  readonly remote: Endpoint;
  readonly secure = false;
  closed = false;
  writeResult = true;
  readonly written: Uint8Array[] = [];
  private dataHandler: ((data: Uint8Array) => void) | undefined;
  private closeHandler: ((error?: Error) => void) | undefined;
  constructor(local: Endpoint, remote: Endpoint) {
    this.local = local;
    this.remote = remote;
  }
  write(data: Uint8Array): boolean {
    if (this.closed) return false;
    this.written.push(Uint8Array.from(data));
    return this.writeResult;
  }
  onData(handler: ((data: Uint8Array) => void) | undefined): void {
    this.dataHandler = handler;
  }
  onClose(handler: ((error?: Error) => void) | undefined): void {
    this.closeHandler = handler;
  }
  deliver(data: Uint8Array): void {
    this.dataHandler?.(data);
  }
  /** The peer went away (or failed). */
  drop(error?: Error): void {
    if (this.closed) return;
    this.closed = true;
    this.closeHandler?.(error);
  }
  close(): Promise<void> {
    this.drop();
    return Promise.resolve();
  }
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

class FakeListener implements StreamListener {
  readonly local: Endpoint;
  readonly accept: (stream: StreamSocket) => void;
  closed = false;
  constructor(local: Endpoint, accept: (stream: StreamSocket) => void) {
    this.local = local;
    this.accept = accept;
  }
  /** A client connects from `remote`. */
  connect(remote: Endpoint): FakeStream {
    const s = new FakeStream(this.local, remote);
    this.accept(s);
    return s;
  }
  close(): Promise<void> {
    this.closed = true;
    return Promise.resolve();
  }
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/** Hands out fake sockets; ports from 40000; `refuse` makes chosen binds fail. */
class FakeNetwork implements Network {
  readonly udp: FakePacketSocket[] = [];
  readonly listeners: FakeListener[] = [];
  refuse: (address: string, port: number) => boolean = () => false;
  private nextPort = 40000;
  private readonly taken = new Set<string>();
  private claim(address = '0.0.0.0', port = 0, kind: string): Endpoint {
    const p = port === 0 ? this.nextPort++ : port;
    const key = `${kind} ${address} ${p}`;
    if (this.taken.has(key) || this.refuse(address, p)) throw new NatkitError('ERR_SOCKET', `${key} in use`);
    this.taken.add(key);
    return { address, port: p, family: address.includes(':') ? 6 : 4 };
  }
  bindUdp(options: BindOptions = {}): Promise<PacketSocket> {
    // A throw in the executor rejects, as a real bind failure would.
    return new Promise((resolve) => {
      const s = new FakePacketSocket(this.claim(options.address, options.port, 'udp'));
      this.udp.push(s);
      resolve(s);
    });
  }
  listenStream(options: ListenOptions, onConnection: (stream: StreamSocket) => void): Promise<StreamListener> {
    return new Promise((resolve) => {
      const l = new FakeListener(this.claim(options.address, options.port, 'tcp'), onConnection);
      this.listeners.push(l);
      resolve(l);
    });
  }
  connectStream(): Promise<StreamSocket> {
    return Promise.reject(new NatkitError('ERR_SOCKET', 'not in this test'));
  }
}

const silent = { debug: () => undefined, info: () => undefined, warn: () => undefined };
const fakeEnv = (): { env: Env; net: FakeNetwork; clock: FakeClock } => {
  const net = new FakeNetwork();
  const clock = new FakeClock();
  return { env: { network: net, clock, random: { bytes: (n) => new Uint8Array(n) }, logger: silent }, net, clock };
};
const CLIENT: Endpoint = { address: '198.51.100.7', port: 40000, family: 4 };
const ID = Uint8Array.from({ length: 12 }, (_, i) => i);
const request = (changeIp = false, changePort = false): Uint8Array =>
  encodeMessage({ method: BINDING, cls: StunClass.REQUEST, transactionId: ID, attributes: changeIp || changePort ? [attr(CHANGE_REQUEST, { changeIp, changePort })] : [] });

const create = (env: Env, o: Partial<StunServerOptions> = {}): Promise<StunServer> =>
  StunServer.create({ env, addresses: ['192.0.2.1', '192.0.2.2'], ports: [0, 0], rateLimit: false, ...o });

test('UDP: the reply leaves from the socket of the changed role', async () => {
  const { env, net } = fakeEnv();
  await using server = await create(env, { tcp: false });
  const byRole = [0, 1, 2, 3].map((r) => net.udp.find((s) => s.local.port === server.endpoints[r]!.local.port && s.local.address === server.endpoints[r]!.local.address)!);
  byRole[1]!.deliver(request(true, false), CLIENT);
  assert.equal(byRole[3]!.sent.length, 1, 'A2:P2 answers a change-IP request that came to A1:P2');
  assert.deepEqual(byRole[3]!.sent[0]!.to, CLIENT);
  assert.deepEqual(byRole.map((s) => s.sent.length), [0, 0, 0, 1]);
});

test('port 0: the alternate address takes the same port, retried when it is taken there', async () => {
  const { env, net } = fakeEnv();
  net.refuse = (address, port) => address === '192.0.2.2' && port === 40000;
  await using server = await create(env, { tcp: false });
  const e = server.endpoints.map((x) => `${x.role} ${x.local.address}:${x.local.port}`);
  assert.deepEqual(e, ['0 192.0.2.1:40001', '1 192.0.2.1:40002', '2 192.0.2.2:40001', '3 192.0.2.2:40002']);
  assert.equal(net.udp.find((s) => s.local.port === 40000)?.closed, true, 'the first try was closed');
});

test('a failed bind closes what was bound and rejects', async () => {
  const { env, net } = fakeEnv();
  net.refuse = (address) => address === '192.0.2.2';
  await assert.rejects(create(env, { ports: [3478, 3479] }), { code: 'ERR_SOCKET' });
  assert.ok(net.udp.every((s) => s.closed));
});

test('TCP: idle timeout counts from the last byte; a timer per connection, none left after close', async () => {
  const { env, net, clock } = fakeEnv();
  const server = await create(env, { udp: false, addresses: ['192.0.2.1'], ports: [3478], idleTimeoutMs: 1000 });
  const s = net.listeners[0]!.connect(CLIENT);
  clock.advance(900);
  s.deliver(request());
  assert.equal(s.written.length, 1);
  assert.equal(decodeMessage(s.written[0]!).cls, StunClass.SUCCESS);
  clock.advance(900);
  assert.equal(s.closed, false, 'activity at 900 ms moved the deadline to 1900 ms');
  clock.advance(100);
  assert.equal(s.closed, true);
  assert.equal(server.stats.streams.idleClosed, 1);
  assert.equal(server.stats.streams.active, 0);
  assert.equal(clock.pending, 0);
  await server.close();
});

test('TCP plain mode: silence gets the greeting after plainGreetingMs; a STUN first byte does not', async () => {
  const { env, net, clock } = fakeEnv();
  await using server = await create(env, { udp: false, addresses: ['192.0.2.1'], ports: [3478], plain: true, plainGreetingMs: 300 });
  const quiet = net.listeners[0]!.connect(CLIENT);
  const stun = net.listeners[0]!.connect({ ...CLIENT, port: 40001 });
  stun.deliver(request().subarray(0, 10));
  clock.advance(300);
  assert.equal(new TextDecoder().decode(quiet.written[0]), '198.51.100.7,40000\n');
  assert.equal(quiet.closed, true);
  assert.equal(stun.closed, false);
  stun.deliver(request().subarray(10));
  assert.equal(decodeMessage(stun.written[0]!).cls, StunClass.SUCCESS);
  assert.equal(server.stats.plain, 1);
});

test('TCP: a peer that leaves replies unread is closed; maxConnections refuses the next', async () => {
  const { env, net } = fakeEnv();
  await using server = await create(env, { udp: false, addresses: ['192.0.2.1'], ports: [3478], maxConnections: 1 });
  const slow = net.listeners[0]!.connect(CLIENT);
  slow.writeResult = false;
  const extra = net.listeners[0]!.connect({ ...CLIENT, port: 2 });
  assert.equal(extra.closed, true);
  assert.equal(server.stats.streams.refused, 1);
  slow.deliver(Uint8Array.from([...request(), ...request()]));
  assert.equal(slow.written.length, 1, 'the second reply is not even tried');
  assert.equal(slow.closed, true);
  assert.equal(server.stats.streams.slowClosed, 1);
  const next = net.listeners[0]!.connect({ ...CLIENT, port: 3 });
  assert.equal(next.closed, false, 'room again once the slow one is gone');
});

test('a connection that fails counts as errored; close() ends the rest and is idempotent', async () => {
  const { env, net, clock } = fakeEnv();
  const server = await create(env, { udp: false, addresses: ['192.0.2.1'], ports: [3478] });
  const a = net.listeners[0]!.connect(CLIENT);
  const b = net.listeners[0]!.connect({ ...CLIENT, port: 2 });
  a.drop(new NatkitError('ERR_SOCKET', 'reset'));
  assert.equal(server.stats.streams.errored, 1);
  await Promise.all([server.close(), server.close()]);
  assert.equal(b.closed, true);
  assert.ok(net.listeners.every((l) => l.closed));
  assert.equal(clock.pending, 0, 'no timer outlives the server');
  const late = net.listeners[0]!.connect({ ...CLIENT, port: 3 });
  assert.equal(late.closed, true, 'connections after close are closed at once');
});

test('unexpected failures are counted and reported, a throwing onError included', async () => {
  const { env, net } = fakeEnv();
  const seen: Error[] = [];
  await using server = await create(env, {
    tcp: false, addresses: ['192.0.2.1'], ports: [3478],
    onError: (e) => {
      seen.push(e);
      throw new Error('handler bug');
    },
  });
  // A socket whose send throws (PacketSocket promises not to; the server survives it anyway).
  net.udp[0]!.send = () => {
    throw new Error('send exploded');
  };
  net.udp[0]!.deliver(request(), CLIENT);
  assert.equal(server.stats.internalErrors, 1);
  assert.equal(seen[0]?.message, 'send exploded');
});

test('abort: an aborted signal rejects create; aborting later closes the server', async () => {
  const { env, net } = fakeEnv();
  await assert.rejects(create(env, { signal: AbortSignal.abort() }), { code: 'ERR_ABORTED' });
  const controller = new AbortController();
  const server = await create(env, { signal: controller.signal, tcp: false });
  controller.abort();
  await server.close();
  assert.equal(server.closed, true);
  assert.ok(net.udp.every((s) => s.closed));
});

test('udpSockets that do not form the A×P layout are refused', async () => {
  const { env } = fakeEnv();
  const s = (address: string, port: number): FakePacketSocket => new FakePacketSocket({ address, port, family: 4 });
  await assert.rejects(StunServer.create({ env, udpSockets: [s('192.0.2.1', 1), s('192.0.2.1', 2), s('192.0.2.2', 1)] }), { code: 'ERR_CONFIG' });
  await assert.rejects(StunServer.create({ env, udpSockets: [s('192.0.2.1', 1), s('192.0.2.1', 2), s('192.0.2.2', 9), s('192.0.2.2', 2)] }), { code: 'ERR_CONFIG' });
  const ok = await StunServer.create({ env, udpSockets: [s('192.0.2.1', 1), s('192.0.2.1', 2), s('192.0.2.2', 1), s('192.0.2.2', 2)] });
  assert.equal(ok.endpoints.length, 4);
  await ok.close();
});
