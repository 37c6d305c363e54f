// The CLI runner: help, usage errors (exit 2), failures (exit 1), and the one option
// schema merged from defaults < config file < environment < flags.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../../src/cli/run.ts';
import { flag, intOption, stringOption, type Command, type CommandContext } from '../../src/cli/command.ts';
import { NatkitError } from '../../src/util/index.ts';
import type { Env } from '../../src/net/index.ts';

const unused = (): never => {
  throw new Error('not used by these tests');
};
const env: Env = {
  network: { bindUdp: unused, listenStream: unused, connectStream: unused },
  clock: { now: () => 0, setTimer: unused },
  random: { bytes: (n) => new Uint8Array(n) },
  logger: { debug() {}, info() {}, warn() {} },
};

let seen: CommandContext | undefined;
const probe: Command = {
  name: 'probe',
  summary: 'records what it was given',
  usage: '[options] [ARG]',
  options: {
    port: { type: 'string', description: 'port', env: 'PROBE_PORT', default: '3478', valueName: 'N' },
    verbose: { type: 'boolean', description: 'talk more', env: 'PROBE_VERBOSE' },
    listen: { type: 'string', multiple: true, description: 'addresses', env: 'PROBE_LISTEN' },
    config: { type: 'string', description: 'config file', env: 'PROBE_CONFIG' },
    fail: { type: 'string', description: 'fail with this code' },
  },
  run(ctx) {
    seen = ctx;
    intOption(ctx, 'port', 1, 65535);
    const fail = stringOption(ctx, 'fail');
    if (fail === 'natkit') throw new NatkitError('ERR_TIMEOUT', 'no answer');
    if (fail === 'exit') return Promise.resolve(1);
    ctx.io.out(`ok ${flag(ctx, 'verbose')}\n`);
    return Promise.resolve(0);
  },
};

async function run(argv: string[], vars: Record<string, string> = {}) {
  let out = '';
  let err = '';
  seen = undefined;
  const code = await runCli([probe], argv, { io: { out: (s) => void (out += s), err: (s) => void (err += s) }, env, signal: new AbortController().signal, vars });
  return { code, out, err };
}

test('no command prints the list and exits 2; --help exits 0', async () => {
  assert.equal((await run([])).code, 2);
  const help = await run(['--help']);
  assert.equal(help.code, 0);
  assert.match(help.out, /probe\s+records what it was given/);
});

test('command --help lists options with defaults and environment variables', async () => {
  const r = await run(['probe', '--help']);
  assert.equal(r.code, 0);
  assert.match(r.out, /--port N\s+port \(default: 3478; env: PROBE_PORT\)/);
  assert.equal(seen, undefined);
});

const usage: [string, string[], RegExp][] = [
  ['unknown command', ['nope'], /unknown command "nope"/],
  ['unknown flag', ['probe', '--nope'], /--nope/],
  ['missing value', ['probe', '--port'], /--port/],
  ['bad number', ['probe', '--port', 'x'], /--port: expected a whole number in 1–65535, got "x"/],
];
for (const [name, argv, message] of usage) {
  test(`usage error (${name}) exits 2 and says what was expected`, async () => {
    const r = await run(argv);
    assert.equal(r.code, 2);
    assert.match(r.err, message);
  });
}

test('a NatkitError exits 1 with its code; a command may return 1', async () => {
  const r = await run(['probe', '--fail', 'natkit']);
  assert.equal(r.code, 1);
  assert.match(r.err, /no answer \[ERR_TIMEOUT\]/);
  assert.equal((await run(['probe', '--fail', 'exit'])).code, 1);
});

test('sources merge: default < config file < environment < flags', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'natkit-cli-'));
  try {
    const file = join(dir, 'c.json');
    writeFileSync(file, JSON.stringify({ port: 4000, verbose: true, listen: ['127.0.0.1'] }));
    await run(['probe']);
    assert.equal(seen?.values.port, '3478');
    await run(['probe', '--config', file]);
    assert.deepEqual([seen?.values.port, seen?.values.verbose, seen?.values.listen], ['4000', true, ['127.0.0.1']]);
    await run(['probe'], { PROBE_CONFIG: file, PROBE_PORT: '5000', PROBE_LISTEN: '::1, 127.0.0.2', PROBE_VERBOSE: 'no' });
    assert.deepEqual([seen?.values.port, seen?.values.verbose, seen?.values.listen], ['5000', false, ['::1', '127.0.0.2']]);
    await run(['probe', '--config', file, '--port', '6000'], { PROBE_PORT: '5000' });
    assert.equal(seen?.values.port, '6000');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('bad config files and environment values are usage errors', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'natkit-cli-'));
  try {
    const cases: [string, string, RegExp][] = [
      ['unknown key', JSON.stringify({ nope: 1 }), /unknown key "nope"/],
      ['wrong type', JSON.stringify({ verbose: 'x' }), /"verbose" expected true or false/],
      ['not JSON', '{', /expected readable JSON/],
      ['not an object', '[1]', /expected a JSON object/],
    ];
    for (const [name, body, message] of cases) {
      const file = join(dir, `${name}.json`);
      writeFileSync(file, body);
      const r = await run(['probe', '--config', file]);
      assert.equal(r.code, 2, name);
      assert.match(r.err, message, name);
    }
    const r = await run(['probe'], { PROBE_VERBOSE: 'maybe' });
    assert.equal(r.code, 2);
    assert.match(r.err, /environment PROBE_VERBOSE \(--verbose\): expected true or false, got "maybe"/);
    assert.equal((await run(['probe', '--config', join(dir, 'missing.json')])).code, 2);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
