// StunClient against a scripted responder on in-memory sockets and a manual clock:
// retransmission, timeout, abort, close, error responses as values, spoofed and garbled
// responses, integrity, legacy requests, an application-owned socket, and streams.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  BINDING, CHANGE_REQUEST, CHANGED_ADDRESS, ERROR_CODE, FINGERPRINT, MAPPED_ADDRESS, MESSAGE_INTEGRITY, OTHER_ADDRESS,
  PADDING, RESPONSE_ORIGIN, RESPONSE_PORT, RtoCache, SOFTWARE, SOURCE_ADDRESS, StunClass, StunClient, UNKNOWN_ATTRIBUTES, USERNAME,
  XOR_MAPPED_ADDRESS, attr, checkIntegrity, decodeMessage, encodeMessage, shortTermKey,
  type AttrCodec, type AttrEntry, type StunClientOptions, type StunMessage,
} from '../../src/stun/index.ts';
import { MUX_RTP, MUX_STUN, PacketMux, type Endpoint, type Env, type Network, type StreamSocket } from '../../src/net/index.ts';
import { FakePacketSocket } from '../helpers/fake-socket.ts';
import { ManualClock } from '../helpers/manual-clock.ts';
import { isNatkitError } from '../../src/util/index.ts';

const SERVER: Endpoint = { address: '198.51.100.1', port: 3478, family: 4 };
const OTHER: Endpoint = { address: '198.51.100.2', port: 3479, family: 4 };
const LOCAL: Endpoint = { address: '10.0.0.2', port: 50000, family: 4 };
const MAPPED: Endpoint = { address: '203.0.113.9', port: 61000, family: 4 };
const KEY = shortTermKey('pass');

/** A stream whose far side the test plays. */
class FakeStream implements StreamSocket {
  readonly local: Endpoint = LOCAL;
  readonly remote: Endpoint = SERVER;
  readonly secure = false;
  readonly written: Uint8Array[] = [];
  closed = false;
  private data: ((d: Uint8Array) => void) | undefined;
  private end: ((e?: Error) => void) | undefined;
  write(d: Uint8Array): boolean {
    this.written.push(Uint8Array.from(d));
    return true;
  }
  onData(h: ((d: Uint8Array) => void) | undefined): void {
    this.data = h;
  }
  onClose(h: ((e?: Error) => void) | undefined): void {
    this.end = h;
  }
  /** Plays bytes in from the server. */
  feed(d: Uint8Array): void {
    this.data?.(d);
  }
  /** The server goes away. */
  hangUp(error?: Error): void {
    this.closed = true;
    this.end?.(error);
  }
  close(): Promise<void> {
    this.closed = true;
    return Promise.resolve();
  }
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

interface World {
  readonly env: Env;
  readonly clock: ManualClock;
  readonly socket: FakePacketSocket;
  readonly stream: FakeStream;
}

function world(): World {
  const clock = new ManualClock();
  const socket = new FakePacketSocket(LOCAL);
  const stream = new FakeStream();
  let counter = 0;
  const network: Network = {
    bindUdp: () => Promise.resolve(socket),
    connectStream: () => Promise.resolve(stream),
    listenStream: () => Promise.reject(new Error('not used')),
  };
  return {
    clock, socket, stream,
    env: {
      network,
      clock,
      // Distinct, predictable IDs.
      random: { bytes: (n) => Uint8Array.from({ length: n }, (_, i) => (counter++ * 7 + i) & 0xff) },
      logger: { debug() {}, info() {}, warn() {} },
    },
  };
}

const client = (w: World, extra: Partial<StunClientOptions> = {}): Promise<StunClient> =>
  StunClient.create({ env: w.env, server: SERVER, ...extra });

/** The request the client sent last. */
const lastRequest = (w: World): StunMessage => {
  const p = w.socket.sent.at(-1);
  assert.ok(p, 'something was sent');
  return decodeMessage(p.data);
};

interface ReplyOptions {
  cls?: StunClass;
  attributes?: readonly AttrEntry[];
  key?: Uint8Array;
  fingerprint?: boolean;
  id?: Uint8Array;
}
const reply = (req: StunMessage, o: ReplyOptions = {}): Uint8Array =>
  encodeMessage(
    {
      method: req.method,
      cls: o.cls ?? StunClass.SUCCESS,
      transactionId: o.id ?? req.transactionId,
      attributes: o.attributes ?? [attr(XOR_MAPPED_ADDRESS, MAPPED)],
    },
    { ...(o.key && { key: o.key }), fingerprint: o.fingerprint ?? false },
  );
const raw = (type: number): AttrCodec<Uint8Array> => ({ type, name: 'raw', encode: (v, w) => void w.bytes(v), decode: (r) => r.bytesView(r.remaining) });

test('binding over UDP: mapped, origin, other address, from, RTT, stats', async () => {
  const w = world();
  await using c = await client(w, { software: 'natkit-test' });
  const p = c.binding();
  const req = lastRequest(w);
  assert.equal(req.method, BINDING);
  assert.equal(req.cls, StunClass.REQUEST);
  assert.equal(req.isLegacy, false);
  assert.equal(req.get(SOFTWARE), 'natkit-test');
  assert.deepEqual(w.socket.sent[0]?.to, SERVER);
  w.clock.advance(42);
  w.socket.deliver(reply(req, { attributes: [attr(XOR_MAPPED_ADDRESS, MAPPED), attr(RESPONSE_ORIGIN, SERVER), attr(OTHER_ADDRESS, OTHER)] }), SERVER);
  const r = await p;
  assert.ok(r.ok);
  assert.deepEqual(r.mapped, MAPPED);
  assert.equal(r.isXorMapped, true);
  assert.deepEqual(r.responseOrigin, SERVER);
  assert.deepEqual(r.otherAddress, OTHER);
  assert.deepEqual(r.from, SERVER);
  assert.equal(r.rttMs, 42);
  assert.equal(r.transmissions, 1);
  assert.equal(r.message.cls, StunClass.SUCCESS);
  assert.equal(c.pending, 0);
  assert.equal(w.clock.pendingTimers, 0, 'no timer left');
  assert.deepEqual(c.local, LOCAL);
  assert.equal(c.stats.requests, 1);
  assert.equal(c.stats.responses, 1);
  assert.equal(c.stats.transmissions, 1);
});

test('MAPPED-ADDRESS is the fallback when XOR-MAPPED-ADDRESS is absent', async () => {
  const w = world();
  await using c = await client(w);
  const p = c.binding();
  w.socket.deliver(reply(lastRequest(w), { attributes: [attr(MAPPED_ADDRESS, MAPPED)] }), SERVER);
  const r = await p;
  assert.ok(r.ok);
  assert.deepEqual(r.mapped, MAPPED);
  assert.equal(r.isXorMapped, false);
});

test('lost requests are retransmitted at RTO, 3·RTO…; the answer to the third counts 3 transmissions', async () => {
  const w = world();
  await using c = await client(w);
  const p = c.binding();
  const times = [w.clock.now()];
  for (let i = 0; i < 2; i++) {
    const before = w.socket.sent.length;
    while (w.socket.sent.length === before) w.clock.advance(1);
    times.push(w.clock.now());
  }
  assert.deepEqual(times, [0, 500, 1500]);
  const ids = new Set(w.socket.sent.map((s) => Buffer.from(s.data).toString('hex')));
  assert.equal(ids.size, 1, 'retransmissions are byte-identical');
  w.clock.advance(30);
  w.socket.deliver(reply(lastRequest(w)), SERVER);
  const r = await p;
  assert.equal(r.transmissions, 3);
  assert.equal(r.rttMs, 1530);
  assert.equal(c.stats.transmissions, 3);
});

test('no answer: ERR_TIMEOUT after Rc sends and Rm × RTO, timers released', async () => {
  const w = world();
  await using c = await client(w, { rtoMs: 100, maxTransmissions: 3, lastWaitMultiplier: 4 });
  const p = c.binding();
  w.clock.advance(699);
  assert.equal(w.socket.sent.length, 3);
  assert.equal(c.pending, 1);
  w.clock.advance(1);
  await assert.rejects(p, (err: Error & { code?: string }) => {
    assert.equal(err.code, 'ERR_TIMEOUT');
    assert.match(err.message, /198\.51\.100\.1:3478.*3 transmissions in 700 ms/);
    return true;
  });
  assert.equal(w.clock.pendingTimers, 0);
  assert.equal(c.pending, 0);
});

test('abort rejects with ERR_ABORTED, stops retransmitting, and a late answer is ignored', async () => {
  const w = world();
  await using c = await client(w);
  const ac = new AbortController();
  const p = c.binding({ signal: ac.signal });
  const req = lastRequest(w);
  w.clock.advance(600);
  ac.abort(new Error('user gave up'));
  await assert.rejects(p, (err: Error & { code?: string }) => err.code === 'ERR_ABORTED' && (err.cause as Error).message === 'user gave up');
  assert.equal(w.clock.pendingTimers, 0);
  w.clock.advance(10_000);
  assert.equal(w.socket.sent.length, 2);
  assert.equal(c.receive(reply(req), SERVER), false);
  assert.equal(c.stats.unknownTransaction, 1);
});

test('an already-aborted signal rejects before sending', async () => {
  const w = world();
  await using c = await client(w);
  await assert.rejects(c.binding({ signal: AbortSignal.abort() }), { code: 'ERR_ABORTED' });
  assert.equal(w.socket.sent.length, 0);
});

test('error responses are values: 420 with UNKNOWN-ATTRIBUTES', async () => {
  const w = world();
  await using c = await client(w);
  const p = c.binding();
  const error = { code: 420, reason: 'Unknown Attribute' };
  w.socket.deliver(reply(lastRequest(w), { cls: StunClass.ERROR, attributes: [attr(ERROR_CODE, error), attr(UNKNOWN_ATTRIBUTES, [0x0003])] }), SERVER);
  const r = await p;
  assert.equal(r.ok, false);
  assert.ok(!r.ok);
  assert.deepEqual(r.error, error);
  assert.deepEqual(r.unknownAttributes, [0x0003]);
  assert.equal(r.alternateServer, undefined);
});

test('RFC 5780 options reach the wire; `to` sends elsewhere and `from` tells where the answer came from', async () => {
  const w = world();
  await using c = await client(w);
  const p = c.binding({ to: OTHER, changeRequest: { changeIp: true, changePort: true }, responsePort: 50001, paddingBytes: 100 });
  const req = lastRequest(w);
  assert.deepEqual(w.socket.sent[0]?.to, OTHER);
  assert.deepEqual(req.get(CHANGE_REQUEST), { changeIp: true, changePort: true });
  assert.equal(req.get(RESPONSE_PORT), 50001);
  assert.equal(req.get(PADDING), 100);
  const changed: Endpoint = { address: '198.51.100.3', port: 3480, family: 4 };
  w.socket.deliver(reply(req), changed);
  const r = await p;
  assert.deepEqual(r.from, changed);
});

test('spoofed, garbled and stray datagrams are counted and ignored', async () => {
  const w = world();
  await using c = await client(w);
  const p = c.binding();
  const req = lastRequest(w);
  w.socket.deliver(Uint8Array.of(0x80, 1, 2, 3), SERVER); // RTP-like: not STUN
  w.socket.deliver(new Uint8Array(24), SERVER); // STUN-looking, wrong length
  w.socket.deliver(reply(req, { id: new Uint8Array(12).fill(9) }), SERVER); // another transaction
  w.socket.deliver(reply(req, { cls: StunClass.REQUEST }), SERVER); // a request to us
  w.socket.deliver(reply(req, { attributes: [attr(raw(XOR_MAPPED_ADDRESS.type), new Uint8Array(5))] }), SERVER); // garbled address
  w.socket.deliver(reply(req, { attributes: [] }), SERVER); // no address at all
  const fp = Uint8Array.from(reply(req, { fingerprint: true }));
  fp[fp.length - 1]! ^= 1;
  w.socket.deliver(fp, SERVER); // wrong FINGERPRINT
  assert.equal(c.pending, 1);
  w.socket.deliver(reply(req, { fingerprint: true }), SERVER);
  const r = await p;
  assert.ok(r.ok);
  assert.deepEqual(c.stats, {
    requests: 1, transmissions: 1, responses: 1, notStun: 1, undecodable: 1, notResponses: 1,
    unknownTransaction: 1, queued: 0, badFingerprint: 1, badIntegrity: 0, malformed: 2,
  });
});

test('only garbled answers: the failure says so instead of a bare timeout', async () => {
  const w = world();
  await using c = await client(w, { rtoMs: 10, maxTransmissions: 2, lastWaitMultiplier: 2 });
  const p = c.binding();
  w.socket.deliver(reply(lastRequest(w), { attributes: [] }), SERVER);
  w.clock.advance(30);
  await assert.rejects(p, { code: 'ERR_STUN_DECODE' });
});

test('FINGERPRINT on requests when asked', async () => {
  const w = world();
  await using c = await client(w, { fingerprint: true });
  void c.binding().catch(() => undefined);
  assert.ok(lastRequest(w).has(FINGERPRINT));
  void c.binding({ fingerprint: false }).catch(() => undefined);
  assert.ok(!lastRequest(w).has(FINGERPRINT));
});

test('short-term integrity: signed request; unsigned answers discarded, a signed one accepted', async () => {
  const w = world();
  await using c = await client(w);
  const p = c.binding({ key: KEY, username: 'alice' });
  const req = lastRequest(w);
  assert.equal(req.get(USERNAME), 'alice');
  assert.ok(req.has(MESSAGE_INTEGRITY));
  assert.equal(checkIntegrity(req, KEY), 'ok');
  w.socket.deliver(reply(req), SERVER);
  w.socket.deliver(reply(req, { key: shortTermKey('wrong') }), SERVER);
  assert.equal(c.stats.badIntegrity, 2);
  w.socket.deliver(reply(req, { key: KEY }), SERVER);
  assert.ok((await p).ok);
});

test('short-term integrity: only unsigned answers end in ERR_STUN_INTEGRITY', async () => {
  const w = world();
  await using c = await client(w, { rtoMs: 10, maxTransmissions: 1, lastWaitMultiplier: 1 });
  const p = c.binding({ key: KEY });
  w.socket.deliver(reply(lastRequest(w)), SERVER);
  w.clock.advance(10);
  await assert.rejects(p, { code: 'ERR_STUN_INTEGRITY' });
});

test('legacy RFC 3489 request: no cookie, 16-byte ID, MAPPED/SOURCE/CHANGED-ADDRESS', async () => {
  const w = world();
  await using c = await client(w);
  const p = c.binding({ legacy: true, changeRequest: { changeIp: false, changePort: true } });
  const req = lastRequest(w);
  assert.equal(req.isLegacy, true);
  assert.equal(req.transactionId.length, 16);
  assert.equal(req.raw.length, 20 + 8);
  w.socket.deliver(reply(req, { attributes: [attr(MAPPED_ADDRESS, MAPPED), attr(SOURCE_ADDRESS, SERVER), attr(CHANGED_ADDRESS, OTHER)] }), SERVER);
  const r = await p;
  assert.ok(r.ok);
  assert.deepEqual(r.mapped, MAPPED);
  assert.equal(r.isXorMapped, false);
  assert.deepEqual(r.responseOrigin, SERVER);
  assert.deepEqual(r.otherAddress, OTHER);
  assert.equal(r.message.isLegacy, true);
});

test('concurrent requests get their own answers, out of order', async () => {
  const w = world();
  await using c = await client(w);
  const a = c.binding();
  const reqA = lastRequest(w);
  const b = c.binding({ to: OTHER });
  const reqB = lastRequest(w);
  assert.notDeepEqual(reqA.transactionId, reqB.transactionId);
  const mappedB: Endpoint = { ...MAPPED, port: 61001 };
  w.socket.deliver(reply(reqB, { attributes: [attr(XOR_MAPPED_ADDRESS, mappedB)] }), OTHER);
  w.socket.deliver(reply(reqA), SERVER);
  const [ra, rb] = await Promise.all([a, b]);
  assert.ok(ra.ok && rb.ok);
  assert.deepEqual(ra.mapped, MAPPED);
  assert.deepEqual(rb.mapped, mappedB);
});

test('request(): any method; success and error responses as values', async () => {
  const w = world();
  await using c = await client(w);
  const p1 = c.request({ method: 0x003, attributes: [attr(SOFTWARE, 'x')] });
  const req = lastRequest(w);
  assert.equal(req.method, 0x003);
  w.socket.deliver(reply(req, { attributes: [] }), SERVER);
  const r1 = await p1;
  assert.equal(r1.ok, true);
  const p2 = c.request({ method: 0x003 });
  w.socket.deliver(reply(lastRequest(w), { cls: StunClass.ERROR, attributes: [attr(ERROR_CODE, { code: 437, reason: 'Allocation Mismatch' })] }), SERVER);
  const r2 = await p2;
  assert.ok(!r2.ok);
  assert.equal(r2.error.code, 437);
});

test('close rejects pending calls with ERR_CLOSED, closes its own socket, is idempotent', async () => {
  const w = world();
  const c = await client(w);
  const p = c.binding();
  const closing = c.close();
  await assert.rejects(p, { code: 'ERR_CLOSED' });
  await closing;
  await c.close();
  assert.equal(w.socket.closed, true);
  assert.equal(c.closed, true);
  assert.equal(w.clock.pendingTimers, 0);
  await assert.rejects(c.binding(), { code: 'ERR_CLOSED' });
});

test("an application's socket: never closed by the client, handler detached on close", async () => {
  const w = world();
  const app = new FakePacketSocket(LOCAL);
  const c = await client(w, { socket: app });
  const p = c.binding();
  const sent = app.sent.at(-1);
  assert.ok(sent);
  app.deliver(reply(decodeMessage(sent.data)), SERVER);
  assert.ok((await p).ok);
  await c.close();
  assert.equal(app.closed, false);
  assert.equal(app.deliver(reply(decodeMessage(sent.data)), SERVER), false, 'no handler left on the socket');
  assert.equal(w.socket.sent.length, 0, 'the client bound nothing of its own');
});

test('attachHandler false: the owner feeds datagrams to receive()', async () => {
  const w = world();
  const app = new FakePacketSocket(LOCAL);
  await using c = await client(w, { socket: app, attachHandler: false });
  const p = c.binding();
  const req = decodeMessage(app.sent.at(-1)!.data);
  assert.equal(app.deliver(reply(req), SERVER), false, 'the client did not take the handler');
  assert.equal(c.pending, 1);
  assert.equal(c.receive(Uint8Array.of(0x80, 0, 0, 0), SERVER), false);
  assert.equal(c.receive(reply(req), SERVER), true);
  assert.ok((await p).ok);
});

test('a socket closed under the client fails its transactions with ERR_CLOSED', async () => {
  const w = world();
  const app = new FakePacketSocket(LOCAL);
  await using c = await client(w, { socket: app });
  const p = c.binding();
  await app.close();
  w.clock.advance(500);
  await assert.rejects(p, { code: 'ERR_CLOSED' });
  await assert.rejects(client(w, { socket: app }), { code: 'ERR_CLOSED' });
});

test('invalid options are refused', async () => {
  const w = world();
  await assert.rejects(client(w, { rtoMs: 0 }), { code: 'ERR_INVALID_ARGUMENT' });
  await assert.rejects(client(w, { transport: 'tcp', socket: new FakePacketSocket() }), { code: 'ERR_INVALID_ARGUMENT' });
  await assert.rejects(client(w, { transport: 'tcp', tls: {} }), { code: 'ERR_INVALID_ARGUMENT' });
  await assert.rejects(client(w, { transport: 'udp', stream: new FakeStream() }), { code: 'ERR_INVALID_ARGUMENT' });
  await assert.rejects(client(w, { signal: AbortSignal.abort() }), { code: 'ERR_ABORTED' });
});

test('stream: one transmission, answer split into 1-byte chunks, timeout after Ti', async () => {
  const w = world();
  await using c = await client(w, { transport: 'tcp', rtoMs: 10, streamTimeoutMs: 5000 });
  const p = c.binding();
  w.clock.advance(4000);
  assert.equal(w.stream.written.length, 1, 'no retransmission over a stream');
  const res = reply(decodeMessage(w.stream.written[0]!), { fingerprint: true });
  for (const b of res) w.stream.feed(Uint8Array.of(b));
  const r = await p;
  assert.ok(r.ok);
  assert.deepEqual(r.from, SERVER);
  const q = c.binding();
  w.clock.advance(5000);
  await assert.rejects(q, { code: 'ERR_TIMEOUT' });
  await assert.rejects(c.binding({ to: OTHER }), { code: 'ERR_INVALID_ARGUMENT' });
});

test('stream: two answers in one chunk, then the server hangs up: ERR_CLOSED', async () => {
  const w = world();
  await using c = await client(w, { transport: 'tcp' });
  const a = c.binding();
  const b = c.binding();
  const [ra, rb] = w.stream.written.map((bytes) => reply(decodeMessage(bytes)));
  w.stream.feed(Buffer.concat([rb!, ra!]));
  assert.ok((await a).ok && (await b).ok);
  const p = c.binding();
  w.stream.hangUp(new Error('reset'));
  await assert.rejects(p, (err: Error & { code?: string }) => err.code === 'ERR_CLOSED' && (err.cause as Error).message === 'reset');
  await assert.rejects(c.binding(), { code: 'ERR_CLOSED' });
});

test('stream: a garbled answer fails its transaction at once; lost framing ends the client', async () => {
  const w = world();
  await using c = await client(w, { transport: 'tcp' });
  const p = c.binding();
  const req = decodeMessage(w.stream.written[0]!);
  w.stream.feed(reply(req, { attributes: [attr(raw(XOR_MAPPED_ADDRESS.type), new Uint8Array(5))] }));
  await assert.rejects(p, { code: 'ERR_STUN_DECODE' });
  // A frame whose attribute overruns the message does not decode at all; its header still names the transaction.
  const p2 = c.binding();
  const undecodable = Uint8Array.from(reply(decodeMessage(w.stream.written[1]!), { attributes: [attr(raw(0x8001), new Uint8Array(4))] }));
  undecodable[23] = 0x40;
  w.stream.feed(undecodable);
  await assert.rejects(p2, (err: Error & { code?: string }) => err.code === 'ERR_STUN_DECODE' && /overruns/.test(err.message));
  assert.equal(c.stats.undecodable, 1);
  const q = c.binding();
  w.stream.feed(Uint8Array.of(0xff, 0, 0, 0));
  await assert.rejects(q, (err: Error & { code?: string }) => err.code === 'ERR_CLOSED' && /framing/.test((err.cause as Error).message));
});

test('stream: integrity failure is fatal at once', async () => {
  const w = world();
  await using c = await client(w, { transport: 'tls' });
  const p = c.binding({ key: KEY });
  w.stream.feed(reply(decodeMessage(w.stream.written[0]!)));
  await assert.rejects(p, { code: 'ERR_STUN_INTEGRITY' });
});

test("stream: the application's stream is not closed by the client", async () => {
  const w = world();
  const s = new FakeStream();
  const c = await client(w, { transport: 'tcp', stream: s });
  await c.close();
  assert.equal(s.closed, false);
  assert.equal(w.stream.closed, false);
});

test('a destination of the other family is refused before anything is sent', async () => {
  const w = world();
  await using c = await client(w);
  await assert.rejects(c.binding({ to: { address: '2001:db8::1', port: 3478, family: 6 } }), { code: 'ERR_INVALID_ARGUMENT' });
  assert.equal(w.socket.sent.length, 0);
});

test('on a PacketMux STUN view: the application keeps its other traffic and its socket', async () => {
  const w = world();
  const shared = new FakePacketSocket(LOCAL);
  const mux = new PacketMux(shared);
  const media: Uint8Array[] = [];
  mux.route(MUX_RTP, { onPacket: (d) => void media.push(Uint8Array.from(d)) });
  const c = await client(w, { socket: mux.route(MUX_STUN) });
  const p = c.binding();
  const req = decodeMessage(shared.sent.at(-1)!.data);
  shared.deliver(Uint8Array.of(0x80, 0, 0, 1), SERVER);
  shared.deliver(reply(req), SERVER);
  const r = await p;
  assert.ok(r.ok);
  assert.equal(media.length, 1, 'RTP went to its own route');
  await c.close();
  assert.equal(shared.closed, false);
  await mux.close();
});

test('RTO is cached per server (RFC 8489 §6.2.1): the next transaction retransmits at the estimate', async () => {
  const w = world();
  await using c = await client(w);
  const first = c.binding();
  w.clock.advance(40);
  w.socket.deliver(reply(lastRequest(w)), SERVER);
  assert.equal((await first).rttMs, 40);
  const second = c.binding();
  const sentAt = w.clock.now();
  const before = w.socket.sent.length;
  while (w.socket.sent.length === before) w.clock.advance(1);
  assert.equal(w.clock.now() - sentAt, 40 + 4 * 20, 'RTO = SRTT + 4·RTTVAR after one 40 ms sample');
  w.socket.deliver(reply(lastRequest(w)), SERVER);
  assert.equal((await second).transmissions, 2);

  await using fixed = await client(world(), { rtoCache: false, rtoMs: 300 });
  assert.equal(fixed.stats.requests, 0);
});

test('at most ten transactions to one server at once; the rest wait, abortable, and fail on close', async () => {
  const w = world();
  const c = await client(w);
  const calls = Array.from({ length: 10 }, () => c.binding());
  const eleventh = c.binding();
  const abort = new AbortController();
  const twelfth = c.binding({ signal: abort.signal });
  const thirteenth = c.binding();
  await Promise.resolve();
  assert.equal(w.socket.sent.length, 10, 'only ten on the wire');
  assert.equal(c.stats.queued, 3);
  abort.abort();
  await assert.rejects(twelfth, (e) => isNatkitError(e, 'ERR_ABORTED'));
  w.socket.deliver(reply(decodeMessage(w.socket.sent[0]!.data)), SERVER);
  assert.ok((await calls[0]!).ok);
  for (let i = 0; i < 5 && w.socket.sent.length === 10; i++) await Promise.resolve();
  assert.equal(w.socket.sent.length, 11, 'a finished transaction lets the next waiter go');
  w.socket.deliver(reply(lastRequest(w)), SERVER);
  assert.ok((await eleventh).ok);
  await c.close();
  await assert.rejects(thirteenth, (e) => isNatkitError(e, 'ERR_CLOSED'));
  for (const p of calls.slice(1)) await assert.rejects(p, (e) => isNatkitError(e, 'ERR_CLOSED'));
});

test('per-request timers: a short probe times out on its own schedule and leaves the RTO cache alone', async () => {
  const w = world();
  const rtoCache = new RtoCache();
  await using c = await client(w, { rtoCache });
  const p = c.binding({ timers: { rtoMs: 50, maxTransmissions: 2, lastWaitMultiplier: 2 } });
  const failed = assert.rejects(p, (e) => isNatkitError(e, 'ERR_TIMEOUT'));
  w.clock.advance(149);
  assert.equal(w.socket.sent.length, 2);
  assert.equal(c.pending, 1);
  w.clock.advance(1);
  await failed;
  assert.equal(rtoCache.size, 0, 'an expected-unanswered probe is no evidence about the path');
  await assert.rejects(c.binding({ timers: { rtoMs: -1 } }), (e) => isNatkitError(e, 'ERR_INVALID_ARGUMENT'));
  assert.equal(c.pending, 0);
});
