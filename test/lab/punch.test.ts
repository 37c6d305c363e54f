// The NAT matrix with kernel NATs (test/lab/lib/punch-lab.ts): `natkit serve` on a public
// host, two peers (test/lab/bin/punch-peer.ts) behind every pair of lab presets and two
// behind the same NAT, connecting by name through the rendezvous server. Every pair must
// connect and carry messages both ways, on the path kind the strategy expects from the
// routers' truth (direct whenever the pair can go direct). One lab serves every row: each
// row reloads the NAT routers (one nftables transaction, conntrack flushed). The measured
// matrix is printed at the end. Needs root: without it every test fails with the reason.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import type { NatPreset } from './lib/nat-rules.ts';
import { PUNCH_PRESETS, buildPunchLab, expectPair, judgePair, pairName, punchPairs, runPair, simPresetOf, type PairReports, type PunchLab } from './lib/punch-lab.ts';
import { Lab } from './lib/topology.ts';

test('every lab preset of the matrix behaves as one preset of the simulated matrix (NAT_TRUTH against PRESET_ROUTERS)', () => {
  assert.deepEqual(PUNCH_PRESETS.map(simPresetOf), ['open', 'full-cone', 'restricted', 'port-restricted', 'symmetric-seq', 'symmetric-random']);
  assert.equal(simPresetOf('address-dependent-mapping'), undefined, 'the matrix has no address-dependent mapping');
});

test('the issue\'s pairs go direct: symmetric against every cone, sequential symmetric against itself', () => {
  const cones: NatPreset[] = ['full-cone', 'restricted-cone', 'port-restricted-cone'];
  for (const pair of punchPairs().filter((p) => !p.sameNat)) {
    const symmetricCone = [pair.a, pair.b].some((p) => p === 'symmetric' || p === 'symmetric-sequential') && [pair.a, pair.b].some((p) => cones.includes(p));
    const sequentialBoth = pair.a === 'symmetric-sequential' && pair.b === 'symmetric-sequential';
    if (symmetricCone || sequentialBoth) assert.equal(expectPair(pair).kind, 'direct', pairName(pair));
  }
});


describe('two peers connect by name through kernel NATs', () => {
  let lab: Lab | undefined;
  let punchLab: PunchLab | undefined;
  const measured: { readonly name: string; readonly reports: PairReports }[] = [];

  before(async () => {
    lab = await Lab.create();
    punchLab = await buildPunchLab(lab);
  });

  after(async () => {
    const names = lab?.namespaceNames ?? [];
    await lab?.close();
    assert.deepEqual(names.filter((n) => existsSync(`/run/netns/${n}`)), [], 'the lab removed every namespace it made');
    const rows = measured.map(({ name, reports: [a, b] }) =>
      `${name.padEnd(46)} ${a.outcome.padEnd(16)} ${`${a.path.method}/${b.path.method}`.padEnd(20)} ${String(Math.max(a.punchMs, b.punchMs)).padStart(5)} ms ` +
      `${String(Math.max(a.totalMs, b.totalMs)).padStart(5)} ms ${String(a.packetsSent + b.packetsSent).padStart(6)} pkts`);
    process.stdout.write(`\nlab punch matrix (pair; plan; path methods a/b; punch time; connect() time; datagrams the engines sent)\n${rows.join('\n')}\n`);
  });

  for (const [i, pair] of punchPairs().entries()) {
    const expected = expectPair(pair);
    test(`${pairName(pair)}: ${expected.outcome}${expected.method === undefined ? '' : ` (${expected.method})`}`, async () => {
      assert.ok(punchLab, 'the lab was built');
      const hosts = await punchLab.configure(pair);
      const reports = await runPair(punchLab, hosts, String(i));
      measured.push({ name: pairName(pair), reports });
      assert.deepEqual(judgePair(expected, reports), [], JSON.stringify(reports));
    });
  }
});
