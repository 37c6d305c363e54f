// Link impairments, checked statistically on seeded runs (each rate within four standard
// deviations of what it should give), and determinism: the same seed and the same actions
// give the same packet trace; another seed gives another.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { endpoint, type PacketSocket } from '../../src/net/index.ts';
import { NAT_PRESETS, World, type LinkOptions, type SimHost } from '../../src/net/sim/index.ts';
import { collect, reflector, sendText, simTest, type Received } from '../helpers/sim.ts';

/** Sends `count` numbered datagrams from a server to a client whose link is `link`, `gapMs` apart; returns what arrived and when. */
async function blast(world: World, link: LinkOptions, count: number, gapMs = 0): Promise<{ got: (Received & { atMs: number })[]; client: SimHost }> {
  const server = world.addHost({ name: 'server' });
  const client = world.addHost({ name: 'client', link });
  await using from = await server.network.bindUdp();
  await using to = await client.network.bindUdp();
  const got: (Received & { atMs: number })[] = [];
  to.onPacket((data, src) => got.push({ from: src, text: new TextDecoder().decode(data), atMs: world.clock.now() }));
  const start = world.clock.now();
  const target = endpoint(client.address(), to.local.port);
  for (let i = 0; i < count; i++) world.clock.setTimer(i * gapMs, () => sendText(from, target, String(i)));
  await world.elapse(count * gapMs + 1000);
  for (const g of got) g.atMs -= start;
  return { got, client };
}

/** Asserts `value` is within 4 standard deviations of a binomial(n, p) mean. */
function aboutBinomial(value: number, n: number, p: number, what: string): void {
  const mean = n * p;
  const sd = Math.sqrt(n * p * (1 - p));
  assert.ok(Math.abs(value - mean) <= 4 * sd, `${what}: ${value}, expected ${mean.toFixed(0)} ± ${(4 * sd).toFixed(0)}`);
}

test('loss: about lossRate of the datagrams are lost, each traced as a drop', simTest({ seed: 11, traceCapacity: 10_000 }, async (world) => {
  const { got } = await blast(world, { lossRate: 0.3 }, 2000);
  aboutBinomial(2000 - got.length, 2000, 0.3, 'lost');
  assert.equal(world.trace.entries().filter((e) => e.reason === 'loss').length, 2000 - got.length);
}));

test('duplication: about duplicateRate of the datagrams arrive twice', simTest({ seed: 12 }, async (world) => {
  const { got } = await blast(world, { duplicateRate: 0.1 }, 2000);
  aboutBinomial(got.length - 2000, 2000, 0.1, 'duplicates');
  assert.equal(new Set(got.map((g) => g.text)).size, 2000, 'every datagram arrives at least once');
}));

test('delay and jitter: every datagram takes delayMs plus up to jitterMs, and some overtake others', simTest({ seed: 13 }, async (world) => {
  const { got } = await blast(world, { delayMs: 20, jitterMs: 10 }, 1000, 1);
  assert.equal(got.length, 1000);
  const transit = got.map((g) => g.atMs - Number(g.text));
  assert.ok(transit.every((t) => t >= 20 && t < 30), `transit within [20, 30): ${Math.min(...transit)}–${Math.max(...transit)}`);
  const mean = transit.reduce((a, b) => a + b, 0) / transit.length;
  assert.ok(Math.abs(mean - 25) < 0.5, `mean transit ${mean}`);
  assert.ok(got.some((g, i) => i > 0 && Number(g.text) < Number(got[i - 1]?.text)), 'jitter reorders datagrams 1 ms apart');
}));

test('reordering: about reorderRate of the datagrams are held back and overtaken', simTest({ seed: 14 }, async (world) => {
  const { got } = await blast(world, { reorderRate: 0.2, reorderDelayMs: 10 }, 1000, 1);
  assert.equal(got.length, 1000);
  // A held-back datagram arrives after datagrams sent later than it.
  const late = got.filter((g) => g.atMs - Number(g.text) >= 10).length;
  aboutBinomial(late, 1000, 0.2, 'held back');
  const inversions = got.filter((g, i) => i > 0 && Number(g.text) < Number(got[i - 1]?.text)).length;
  assert.ok(inversions > 0);
}));

test('impairments apply per link and can change mid-test', simTest({ seed: 15 }, async (world) => {
  const a = world.addHost({ name: 'a' });
  const b = world.addHost({ name: 'b' });
  await using sa = await a.network.bindUdp();
  await using sb = await b.network.bindUdp({ address: b.address() });
  const got = collect(sb);
  sendText(sa, sb.local, 'before');
  await world.elapse(100);
  b.link?.set({ lossRate: 1 });
  sendText(sa, sb.local, 'during');
  await world.elapse(100);
  b.link?.set({ delayMs: 50 });
  sendText(sa, sb.local, 'after');
  await world.elapse(49);
  assert.deepEqual(got.map((g) => g.text), ['before']);
  await world.elapse(1);
  assert.deepEqual(got.map((g) => g.text), ['before', 'after']);
  assert.throws(() => b.link?.set({ lossRate: 2 }), /lossRate must be within 0–1/);
}));

/** A busy scenario: a symmetric NAT with random ports, lossy and jittery links, 200 datagrams to a reflector. */
async function scenario(seed: number): Promise<string> {
  const world = new World({ seed, traceCapacity: 10_000 });
  try {
    const server = world.addHost({ name: 'server', link: { delayMs: 5, jitterMs: 5, duplicateRate: 0.05 } });
    const home = world.addRouter({ name: 'home', nat: NAT_PRESETS.symmetric, link: { lossRate: 0.1, reorderRate: 0.1 } });
    const alice = home.addHost({ name: 'alice', link: { delayMs: 1, jitterMs: 2 } });
    const sockets: PacketSocket[] = [await reflector(server, server.address(), 3478), await alice.network.bindUdp()];
    for (let i = 0; i < 200; i++) world.clock.setTimer(i, () => sendText(sockets[1]!, sockets[0]!.local, `ping ${i}`));
    await world.elapse(1000);
    await Promise.all(sockets.map((s) => s.close()));
    return world.trace.format();
  } finally {
    await world.close();
  }
}

test('determinism: the same seed gives the same trace, packet for packet; another seed another', async () => {
  const first = await scenario(42);
  assert.ok(first.split('\n').length > 600, 'a busy trace');
  assert.equal(await scenario(42), first);
  assert.notEqual(await scenario(43), first);
});

test('stream segments are never lost or duplicated: 200 kB over a lossy, duplicating, reordering link arrive intact', simTest({ seed: 16 }, async (world) => {
  const bad: LinkOptions = { lossRate: 0.3, duplicateRate: 0.3, reorderRate: 0.3, delayMs: 3, jitterMs: 4 };
  const server = world.addHost({ name: 'server', link: bad });
  const client = world.addHost({ name: 'client', link: bad });
  const received: Uint8Array[] = [];
  await using listener = await server.network.listenStream({}, (s) => s.onData((d) => received.push(Uint8Array.from(d))));
  const stream = await world.run(client.network.connectStream({ ...listener.local, address: server.address() }));
  const message = new Uint8Array(200_000).map((_, i) => (i * 7) % 256);
  stream.write(message);
  await world.elapse(1000);
  assert.deepEqual(Uint8Array.from(Buffer.concat(received)), message);
  await stream.close();
}));
