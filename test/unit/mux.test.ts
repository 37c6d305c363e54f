// PacketMux: RFC 7983 §7 first-byte routing over an in-memory socket.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  MUX_DTLS, MUX_RTP, MUX_STUN, MUX_TURN_CHANNEL, MUX_ZRTP, PacketMux, endpoint, type MuxRange, type PacketSocket,
} from '../../src/net/index.ts';
import { isNatkitError } from '../../src/util/index.ts';
import { FakePacketSocket } from '../helpers/fake-socket.ts';

const peer = endpoint('198.51.100.9', 40000);
const packet = (first: number, size = 8): Uint8Array => new Uint8Array(size).fill(0xee).fill(first, 0, 1);

/** A mux with every RFC 7983 range routed, each view recording the first bytes it got. */
function fullMux(): { socket: FakePacketSocket; mux: PacketMux; got: Map<string, number[]>; views: Map<string, PacketSocket> } {
  const socket = new FakePacketSocket();
  const mux = new PacketMux(socket);
  const got = new Map<string, number[]>();
  const views = new Map<string, PacketSocket>();
  for (const range of [MUX_STUN, MUX_ZRTP, MUX_DTLS, MUX_TURN_CHANNEL, MUX_RTP]) {
    const seen: number[] = [];
    got.set(range.name, seen);
    views.set(range.name, mux.route(range, { onPacket: (d) => seen.push(d[0] ?? -1) }));
  }
  return { socket, mux, got, views };
}

// RFC 7983 §7: the boundaries of every range, and the unassigned values next to them.
const routing: [first: number, route: string | undefined][] = [
  [0, 'stun'], [3, 'stun'], [4, undefined], [15, undefined],
  [16, 'zrtp'], [19, 'zrtp'], [20, 'dtls'], [63, 'dtls'],
  [64, 'turn-channel'], [79, 'turn-channel'], [80, undefined], [127, undefined],
  [128, 'rtp'], [191, 'rtp'], [192, undefined], [255, undefined],
];

for (const [first, route] of routing) {
  test(`first byte ${first} goes to ${route ?? 'no route'}`, () => {
    const { socket, mux, got } = fullMux();
    socket.deliver(packet(first), peer);
    for (const [name, seen] of got) assert.deepEqual(seen, name === route ? [first] : [], name);
    assert.equal(mux.stats.unrouted, route === undefined ? 1 : 0);
  });
}

test('the exported ranges are RFC 7983 §7 and disjoint', () => {
  const ranges = [MUX_STUN, MUX_ZRTP, MUX_DTLS, MUX_TURN_CHANNEL, MUX_RTP].map((r) => [r.first, r.last]);
  assert.deepEqual(ranges, [[0, 3], [16, 19], [20, 63], [64, 79], [128, 191]]);
});

test('a view receives the datagram and sender unchanged, and counts it', () => {
  const { socket, views } = fullMux();
  const stun = views.get('stun')!;
  let seen: { data: Uint8Array; from: unknown } | undefined;
  stun.onPacket((data, from) => (seen = { data: Uint8Array.from(data), from }));
  const data = packet(1, 20);
  socket.deliver(data, peer);
  assert.deepEqual(seen, { data, from: peer });
  assert.equal(stun.stats.packetsIn, 1);
  assert.equal(stun.stats.bytesIn, 20);
});

test('a view sends through the shared socket and counts what it sent', () => {
  const { socket, views } = fullMux();
  const channel = views.get('turn-channel')!;
  assert.deepEqual(channel.local, socket.local);
  channel.send(packet(0x40, 12), peer);
  assert.equal(socket.sent.length, 1);
  assert.deepEqual(socket.sent[0]?.to, peer);
  assert.deepEqual({ ...channel.stats }, { packetsIn: 0, packetsOut: 1, bytesIn: 0, bytesOut: 12, sendErrors: 0 });
  // A refusal the socket reports at once shows in the view too.
  channel.send(packet(0x40), endpoint('2001:db8::1', 1));
  assert.equal(channel.stats.sendErrors, 1);
  assert.equal(socket.stats.sendErrors, 1);
});

test('overlapping or malformed ranges are rejected with ERR_INVALID_ARGUMENT', () => {
  const mux = new PacketMux(new FakePacketSocket());
  mux.route(MUX_STUN);
  const bad: MuxRange[] = [
    { first: 3, last: 5, name: 'overlaps stun' },
    { first: 0, last: 0, name: 'inside stun' },
    { first: 10, last: 9, name: 'backwards' },
    { first: -1, last: 2, name: 'negative' },
    { first: 250, last: 256, name: 'past 255' },
    { first: 4.5, last: 6, name: 'fractional' },
  ];
  for (const range of bad) {
    assert.throws(() => mux.route(range), (err: unknown) => isNatkitError(err, 'ERR_INVALID_ARGUMENT'), range.name);
  }
  // A failed route() claims nothing.
  assert.doesNotThrow(() => mux.route({ first: 4, last: 15, name: 'natkit' }));
});

test('later modules claim free ranges of their own', () => {
  const socket = new FakePacketSocket();
  const mux = new PacketMux(socket);
  const got: number[] = [];
  mux.route({ first: 4, last: 15, name: 'natkit' }, { onPacket: (d) => got.push(d[0] ?? -1) });
  mux.route({ first: 255, last: 255, name: 'single byte' });
  socket.deliver(packet(4), peer);
  socket.deliver(packet(15), peer);
  socket.deliver(packet(16), peer);
  assert.deepEqual(got, [4, 15]);
  assert.equal(mux.stats.unrouted, 1);
});

test('unrouted datagrams are counted and go to the fallback; empty ones are counted and dropped', () => {
  const socket = new FakePacketSocket();
  const mux = new PacketMux(socket);
  const stun: number[] = [];
  mux.route(MUX_STUN, { onPacket: (d) => stun.push(d.length) });
  const fallback: number[] = [];
  socket.deliver(packet(200), peer);
  mux.onUnrouted((d) => fallback.push(d[0] ?? -1));
  socket.deliver(packet(201), peer);
  socket.deliver(new Uint8Array(0), peer);
  mux.onUnrouted(undefined);
  socket.deliver(packet(202), peer);
  assert.deepEqual(fallback, [201]);
  assert.deepEqual(stun, []);
  assert.deepEqual(mux.stats, { unrouted: 3, empty: 1 });
});

test('closing a view detaches it only: its range is free, the socket stays open', async () => {
  const { socket, mux, views, got } = fullMux();
  const stun = views.get('stun')!;
  await stun.close();
  await stun.close();
  assert.equal(stun.closed, true);
  assert.equal(socket.closed, false);
  socket.deliver(packet(0), peer);
  assert.deepEqual(got.get('stun'), []);
  assert.equal(mux.stats.unrouted, 1);
  stun.send(packet(0), peer);
  assert.equal(stun.stats.sendErrors, 1, 'send on a closed view is counted');
  assert.equal(socket.sent.length, 0);
  // The range can be routed again.
  const again: number[] = [];
  mux.route(MUX_STUN, { onPacket: (d) => again.push(d[0] ?? -1) });
  socket.deliver(packet(2), peer);
  assert.deepEqual(again, [2]);
  // Other routes were untouched.
  socket.deliver(packet(20), peer);
  assert.deepEqual(got.get('dtls'), [20]);
});

test('onPacket on a view replaces its handler; undefined drops but counts', () => {
  const { socket, views } = fullMux();
  const rtp = views.get('rtp')!;
  const second: number[] = [];
  rtp.onPacket((d) => second.push(d[0] ?? -1));
  socket.deliver(packet(128), peer);
  rtp.onPacket(undefined);
  socket.deliver(packet(129), peer);
  assert.deepEqual(second, [128]);
  assert.equal(rtp.stats.packetsIn, 2);
});

test('mux.close closes every view and the socket; views report the socket closed', async () => {
  const { socket, mux, views } = fullMux();
  await mux.close();
  await mux[Symbol.asyncDispose]();
  assert.equal(socket.closed, true);
  for (const view of views.values()) assert.equal(view.closed, true);
});

test('a view reports closed when the shared socket closes underneath it', async () => {
  const socket = new FakePacketSocket();
  const view = new PacketMux(socket).route(MUX_STUN);
  await socket.close();
  assert.equal(view.closed, true);
  view.send(packet(0), peer);
  assert.equal(view.stats.sendErrors, 1);
});
