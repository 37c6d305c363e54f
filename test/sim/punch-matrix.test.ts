// The NAT matrix: two peers behind every pair of presets, each gathering its offer on the
// socket it punches from (checkNat, then TURN on that socket, over TCP when UDP is
// blocked), punching with the plan both sides derive alike. The expected outcome of each
// pair is data (EXPECTED_TABLE in src/punch/presets.ts, which the strategy's unit test
// reads too); every pair must connect, on a direct path unless the table says relay, with
// data crossing both ways. Extra rows list checkNat's first mapping beside the freshest,
// in both orders, as the lab's offers did. The compact matrix is printed after the run.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import type { World } from '../../src/net/sim/index.ts';
import { pairCredentials, punch, type PunchConnection, type PunchOutcome } from '../../src/punch/index.ts';
import { simTest } from '../helpers/sim.ts';
import { EXPECTED_TABLE, PRESETS, addPeer, gather, parseTable, startServers, type GatherOptions, type Preset } from './punch-world.ts';

const EXPECTED = parseTable(EXPECTED_TABLE);
const utf8 = new TextEncoder();
const text = (b: Uint8Array): string => new TextDecoder().decode(b);

interface Result {
  readonly a: Preset;
  readonly b: string;
  readonly outcome: PunchOutcome;
  readonly path: string;
  readonly connectMs: number;
  readonly packets: number;
}
const results: Result[] = [];

test('the expected table is symmetric', () => {
  for (const a of PRESETS) for (const b of PRESETS) assert.equal(EXPECTED.get(`${a}|${b}`), EXPECTED.get(`${b}|${a}`), `${a} × ${b}`);
});

/** One row: the pair, how each peer lists its reflexive candidates, the row's name suffix. */
interface Row {
  readonly a: Preset;
  readonly b: Preset;
  readonly seed: number;
  readonly gather: GatherOptions;
  readonly label: string;
}

const rows: Row[] = [];
for (const [i, a] of PRESETS.entries()) {
  for (const [j, b] of PRESETS.entries()) if (j >= i) rows.push({ a, b, seed: 100 + i * 10 + j, gather: {}, label: '' });
}
// The lab's peers advertised checkNat's first mapping besides the freshest, the oldest
// first (the rendezvous server lists the address it saw first); lockstep prediction must
// count from the freshest whatever the order. The same for a sequential peer against a cone.
for (const [k, reflexives] of (['oldest-first', 'oldest-last'] as const).entries()) {
  rows.push({ a: 'symmetric-seq', b: 'symmetric-seq', seed: 200 + k, gather: { reflexives }, label: ` (${reflexives})` });
  rows.push({ a: 'port-restricted', b: 'symmetric-seq', seed: 210 + k, gather: { reflexives }, label: ` (${reflexives})` });
}

for (const [n, { a, b, seed, gather: how, label }] of rows.entries()) {
  const expected = EXPECTED.get(`${a}|${b}`)!;
  test(`${a} × ${b}${label}: ${expected}`, simTest({ seed }, async (world) => {
    await using servers = await startServers(world);
    const pa = await gather(world, addPeer(world, 'a', a), servers, 'a', how);
    const pb = await gather(world, addPeer(world, 'b', b), servers, 'b', how);
    const keys = { pairId: Uint8Array.of(1, 2, 3, 4, 5, 6, n >> 8, n & 0xff), a: utf8.encode('a'.repeat(32)), b: utf8.encode('b'.repeat(32)) };
    const startAtMs = world.clock.now() + 100;
    const [ca, cb] = await world.run(Promise.all([
      punch({ env: pa.host.env, socket: pa.socket, ...(pa.relay && { relay: pa.relay }), local: pa.offer, remote: pb.offer, controlling: true, startAtMs,
        credentials: pairCredentials({ pairId: keys.pairId, localKey: keys.a, remoteKey: keys.b }) }),
      punch({ env: pb.host.env, socket: pb.socket, ...(pb.relay && { relay: pb.relay }), local: pb.offer, remote: pa.offer, controlling: false, startAtMs,
        credentials: pairCredentials({ pairId: keys.pairId, localKey: keys.b, remoteKey: keys.a }) }),
    ]));
    try {
      assert.equal(ca.plan.outcome, expected, `a's plan: ${ca.plan.reason}`);
      assert.equal(cb.plan.outcome, expected, `b's plan: ${cb.plan.reason}`);
      const kind = expected === 'relay' ? 'relay' : 'direct';
      assert.equal(ca.path.kind, kind, `a's path ${JSON.stringify(ca.path)}`);
      assert.equal(cb.path.kind, kind, `b's path ${JSON.stringify(cb.path)}`);
      await exchange(world, ca, cb);
      results.push({
        a, b: `${b}${label}`, outcome: expected, path: `${ca.path.method}/${cb.path.method}`,
        connectMs: Math.max(ca.stats.connectMs ?? 0, cb.stats.connectMs ?? 0), packets: ca.stats.packetsSent + cb.stats.packetsSent,
      });
    } finally {
      await world.run(Promise.all([ca.close(), cb.close()]));
      await world.run(Promise.all([pa.close(), pb.close()]));
    }
  }));
}

/** One datagram each way over the nominated path. */
async function exchange(world: World, ca: PunchConnection, cb: PunchConnection): Promise<void> {
  const atA: string[] = [];
  const atB: string[] = [];
  ca.onMessage((d) => atA.push(text(d)));
  cb.onMessage((d) => atB.push(text(d)));
  ca.send(utf8.encode('hello b'));
  cb.send(utf8.encode('hello a'));
  await world.elapse(1000);
  assert.deepEqual([atA, atB], [['hello a'], ['hello b']]);
}

after(() => {
  const lines = results.map((r) => `${r.a.padEnd(16)} ${r.b.padEnd(28)} ${r.outcome.padEnd(16)} ${r.path.padEnd(20)} ${String(r.connectMs).padStart(6)} ms ${String(r.packets).padStart(6)} pkts`);
  process.stdout.write(`\npunch matrix (a controlling × b; outcome, path methods a/b, virtual time to connect, datagrams both sides sent)\n${lines.join('\n')}\n`);
});
