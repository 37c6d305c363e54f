// `natkit demo` in-process: for a few preset pairs, the path it prints is the one the
// expected outcome table (src/punch/presets.ts, the matrix's) gives; a seed gives the same
// output every time; --trace adds the packet trace; a preset it does not know exits 2.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { commands } from '../../src/cli/commands/index.ts';
import { runCli } from '../../src/cli/run.ts';
import { nodeEnv } from '../../src/net/node/index.ts';
import { EXPECTED_TABLE, parseTable, type Preset } from '../../src/punch/index.ts';

const EXPECTED = parseTable(EXPECTED_TABLE);

/** `natkit demo ARGV…`: exit code and output. */
async function demo(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await runCli(commands, ['demo', ...argv], { io: { out: (t) => void (out += t), err: (t) => void (err += t) }, env: nodeEnv(), signal: AbortSignal.timeout(30_000) });
  return { code, out, err };
}

interface Result {
  readonly result: {
    readonly alice: { readonly path: { readonly kind: string; readonly method: string }; readonly plan: { readonly outcome: string } };
    readonly bob: { readonly path: { readonly kind: string } };
    readonly expected: string;
    readonly ok: boolean;
    readonly delivered: { readonly toBob: number; readonly toAlice: number };
  };
}

const PAIRS: readonly (readonly [Preset, Preset])[] = [
  ['symmetric-seq', 'port-restricted'],
  ['port-restricted', 'symmetric-random'],
  ['symmetric-random', 'symmetric-random'],
  ['udp-blocked', 'full-cone'],
  ['double-nat', 'firewall'],
];

for (const [a, b] of PAIRS) {
  const expected = EXPECTED.get(`${a}|${b}`)!;
  test(`natkit demo --a ${a} --b ${b}: ${expected}`, async () => {
    const { code, out, err } = await demo('--a', a, '--b', b, '--json');
    assert.equal(code, 0, err + out);
    const last = JSON.parse(out.trim().split('\n').at(-1)!) as Result;
    assert.equal(last.result.expected, expected);
    assert.equal(last.result.alice.plan.outcome, expected);
    const kind = expected === 'relay' ? 'relay' : 'direct';
    assert.deepEqual([last.result.alice.path.kind, last.result.bob.path.kind], [kind, kind]);
    assert.deepEqual(last.result.delivered, { toBob: 3, toAlice: 3 });
    for (const step of ['nat', 'registered', 'order', 'connected']) assert.ok(out.includes(`"step":"${step}"`), `${step} reported`);
  });
}

test('natkit demo: the default pair, human output; the same seed prints the same story', async () => {
  const first = await demo('--seed', '7');
  const second = await demo('--seed', '7');
  assert.equal(first.code, 0, first.err);
  assert.equal(first.out, second.out);
  assert.match(first.out, /alice behind symmetric-seq dials bob behind port-restricted/);
  assert.match(first.out, /expected {2}direct-predicted \(docs\/punch\.md, the NAT matrix\): as expected/);
  assert.match(first.out, /bob +message +got "hello bob #1" \(direct\)/);
});

test('natkit demo --trace prints the packet trace; an unknown preset exits 2', async () => {
  const traced = await demo('--a', 'full-cone', '--b', 'open', '--trace');
  assert.equal(traced.code, 0, traced.err);
  assert.match(traced.out, /packet trace \(virtual ms, last \d+ events\):\n/);
  assert.match(traced.out, /translate +udp/);
  const bad = await demo('--a', 'cone');
  assert.equal(bad.code, 2);
  assert.match(bad.err, /--a: expected one of open, full-cone, .*, got "cone"/);
});
