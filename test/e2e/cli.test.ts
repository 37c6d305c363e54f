// The `natkit stun` and `natkit stun-server` commands in-process on loopback, and the
// binary itself for signals and exit codes.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { commands } from '../../src/cli/commands/index.ts';
import { runCli } from '../../src/cli/run.ts';
import { nodeEnv } from '../../src/net/node/index.ts';
import { selfSignedCertificate } from '../helpers/tls.ts';

interface Run {
  readonly code: number;
  readonly out: string;
  readonly err: string;
}

const env = nodeEnv();

async function natkit(argv: string[], vars: Record<string, string> = {}): Promise<Run> {
  let out = '';
  let err = '';
  const code = await runCli(commands, argv, {
    io: { out: (s) => void (out += s), err: (s) => void (err += s) },
    env,
    signal: AbortSignal.timeout(20_000),
    vars,
  });
  return { code, out, err };
}

interface Listening {
  readonly transport: string;
  readonly role: string;
  readonly address: string;
}

/** Starts `natkit stun-server --json …` in-process; resolves once it prints where it listens. */
async function startServer(argv: string[], vars: Record<string, string> = {}) {
  const controller = new AbortController();
  let out = '';
  let err = '';
  let announced: (value: Listening[]) => void = () => {};
  const listening = new Promise<Listening[]>((resolve) => (announced = resolve));
  const done = runCli(commands, ['stun-server', '--json', ...argv], {
    io: {
      out: (s) => {
        out += s;
        const first = out.split('\n')[0] ?? '';
        if (out.includes('\n') && first.startsWith('{"listening"')) announced((JSON.parse(first) as { listening: Listening[] }).listening);
      },
      err: (s) => void (err += s),
    },
    env,
    signal: controller.signal,
    vars,
  });
  const endpoints = await Promise.race([
    listening,
    done.then((code) => assert.fail(`stun-server exited ${code} before listening: ${err}`)),
  ]);
  const at = (transport: string, role: string): string => {
    const e = endpoints.find((x) => x.transport === transport && x.role === role);
    assert.ok(e, `no ${transport} ${role} in ${JSON.stringify(endpoints)}`);
    return e.address;
  };
  return {
    endpoints,
    at,
    async stop(): Promise<{ code: number; stats: Record<string, unknown> }> {
      controller.abort();
      const code = await done;
      const last = out.trim().split('\n').at(-1) ?? '';
      return { code, stats: (JSON.parse(last) as { stats: Record<string, unknown> }).stats };
    },
  };
}

function json(run: Run): Record<string, unknown> {
  assert.equal(run.err, '', 'nothing on stderr with --json');
  return JSON.parse(run.out) as Record<string, unknown>;
}

describe('natkit stun against natkit stun-server (two addresses × two ports)', () => {
  let server: Awaited<ReturnType<typeof startServer>>;
  before(async () => {
    server = await startServer(['-l', '127.0.0.1', '-l', '127.0.0.2', '-p', '0', '--rate', '0']);
  });
  after(async () => {
    const { code, stats } = await server.stop();
    assert.equal(code, 0);
    assert.ok(typeof stats.success === 'number' && stats.success >= 4, `counters at exit: ${JSON.stringify(stats)}`);
  });

  test('the server listens on every role over UDP and TCP', () => {
    assert.deepEqual(server.endpoints.map((e) => `${e.transport} ${e.role}`).sort(), [
      'tcp A1:P1', 'tcp A1:P2', 'tcp A2:P1', 'tcp A2:P2', 'udp A1:P1', 'udp A1:P2', 'udp A2:P1', 'udp A2:P2',
    ]);
  });

  test('a UDP query reports the mapped address, origin and other address', async () => {
    const run = await natkit(['stun', '--json', '--local', '127.0.0.1', server.at('udp', 'A1:P1')]);
    assert.equal(run.code, 0);
    const r = json(run);
    assert.equal(r.ok, true);
    assert.equal(r.mapped, r.local, 'no NAT on loopback: mapped equals local');
    assert.equal(r.mappedAttribute, 'XOR-MAPPED-ADDRESS');
    assert.equal(r.responseOrigin, server.at('udp', 'A1:P1'));
    assert.equal(r.otherAddress, server.at('udp', 'A2:P2'));
    assert.equal(r.software, 'natkit');
  });

  test('--change-ip --change-port gets the answer from the other address and port', async () => {
    const r = json(await natkit(['stun', '--json', '--change-ip', '--change-port', server.at('udp', 'A1:P1')]));
    assert.equal(r.respondedFrom, server.at('udp', 'A2:P2'));
    assert.equal(r.responseOrigin, server.at('udp', 'A2:P2'));
  });

  test('--legacy gets MAPPED-ADDRESS from an RFC 3489 answer', async () => {
    const r = json(await natkit(['stun', '--json', '--legacy', server.at('udp', 'A2:P1')]));
    assert.equal(r.mappedAttribute, 'MAPPED-ADDRESS');
    assert.equal(r.otherAddress, server.at('udp', 'A1:P2'), 'CHANGED-ADDRESS names the opposite role');
  });

  test('over TCP, with a fixed local port, and in human form', async () => {
    const run = await natkit(['stun', '-t', 'tcp', server.at('tcp', 'A1:P2')]);
    assert.equal(run.code, 0, run.err);
    assert.match(run.out, /^server {6}127\.0\.0\.1:\d+ \(tcp\)$/m);
    assert.match(run.out, /^mapped {6}127\.0\.0\.1:\d+ {2}\(XOR-MAPPED-ADDRESS\)$/m);
    assert.match(run.err, /querying 127\.0\.0\.1:\d+ over tcp/);
  });

  test('CHANGE-REQUEST over TCP is refused as a usage error (RFC 5780 §7.2)', async () => {
    const run = await natkit(['stun', '-t', 'tcp', '--change-ip', server.at('tcp', 'A1:P1')]);
    assert.equal(run.code, 2);
    assert.match(run.err, /CHANGE-REQUEST over UDP only/);
  });
});

describe('natkit stun failures and usage', () => {
  test('no answer: exit 1 with the timeout named', async () => {
    const silent = await env.network.bindUdp({ address: '127.0.0.1' });
    try {
      const run = await natkit(['stun', '--rto', '20', '--transmissions', '2', `127.0.0.1:${silent.local.port}`]);
      assert.equal(run.code, 1);
      assert.match(run.err, /no response after 2 transmissions in \d+ ms \[ERR_TIMEOUT\]/);
    } finally {
      await silent.close();
    }
  });

  test('usage errors exit 2 and point at --help', async () => {
    for (const argv of [['stun'], ['stun', 'a', 'b'], ['stun', '--transport', 'sctp', '127.0.0.1'], ['stun', '--rto', 'x', '127.0.0.1'], ['stun', '--bogus', '127.0.0.1'], ['stun', '--local', 'not an address', '127.0.0.1']]) {
      const run = await natkit(argv);
      assert.equal(run.code, 2, argv.join(' '));
      assert.match(run.err, /Run `natkit stun --help` for usage/);
    }
  });

  test('--help lists every option and exits 0', async () => {
    for (const entry of commands) {
      const c = await entry.load();
      assert.equal(c.name, entry.name, 'the entry loads its own command');
      const run = await natkit([c.name, '--help']);
      assert.equal(run.code, 0);
      for (const name of Object.keys(c.options)) assert.match(run.out, new RegExp(`--(\\[no-\\])?${name}\\b`), `${c.name} --help mentions --${name}`);
    }
  });
});

describe('natkit stun-server configuration', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'natkit-cli-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('config file < environment < flags', async () => {
    const config = join(dir, 'server.json');
    await writeFile(config, JSON.stringify({ listen: ['127.0.0.2'], port: 0, software: 'from-file', tcp: false }));
    const server = await startServer([], { NATKIT_CONFIG: config, NATKIT_SOFTWARE: 'from-env', NATKIT_LISTEN: '127.0.0.1' });
    try {
      assert.deepEqual(server.endpoints.map((e) => e.transport), ['udp'], 'tcp: false from the file');
      const r = json(await natkit(['stun', '--json', server.at('udp', 'A1:P1')]));
      assert.equal(r.software, 'from-env');
      assert.match(String(r.respondedFrom), /^127\.0\.0\.1:/, 'NATKIT_LISTEN beats the file');
    } finally {
      await server.stop();
    }
    const flagged = await startServer(['--software', 'from-flag', '--listen', '127.0.0.1', '--no-tcp', '--rate', '0'], { NATKIT_CONFIG: config, NATKIT_SOFTWARE: 'from-env' });
    try {
      const r = json(await natkit(['stun', '--json', flagged.at('udp', 'A1:P1')]));
      assert.equal(r.software, 'from-flag');
    } finally {
      await flagged.stop();
    }
  });

  test('bad configuration exits 2 with what was expected', async () => {
    const bad = join(dir, 'bad.json');
    await writeFile(bad, JSON.stringify({ lisen: ['127.0.0.1'] }));
    const cases: [string[], Record<string, string>, RegExp][] = [
      [['--config', bad], {}, /unknown key "lisen"/],
      [['-l', '127.0.0.1', '-l', '127.0.0.2', '-l', '127.0.0.3'], {}, /one or two addresses, got 3/],
      [['--port', '70000'], {}, /--port: expected a whole number in 0–65535/],
      [[], { NATKIT_UDP: 'maybe' }, /NATKIT_UDP.*expected true or false/],
      [['--tls-cert', join(dir, 'missing.pem'), '--tls-key', join(dir, 'missing.pem')], {}, /--tls-cert: cannot read/],
      [['--no-udp', '--no-tcp'], {}, /nothing to serve/],
    ];
    for (const [argv, vars, expected] of cases) {
      const run = await natkit(['stun-server', ...argv], vars);
      assert.equal(run.code, 2, argv.join(' '));
      assert.match(run.err, expected);
    }
  });

  test('TLS: the server serves a certificate the client verifies with --ca', async () => {
    const { cert, key } = await selfSignedCertificate();
    await writeFile(join(dir, 'cert.pem'), cert);
    await writeFile(join(dir, 'key.pem'), key);
    const server = await startServer(['-l', '127.0.0.1', '-p', '0', '--no-udp', '--no-tcp', '--tls-port', '0', '--tls-cert', join(dir, 'cert.pem'), '--tls-key', join(dir, 'key.pem')]);
    try {
      const at = server.at('tls', 'A1:P1');
      const verified = await natkit(['stun', '--json', '-t', 'tls', '--ca', join(dir, 'cert.pem'), '--servername', 'localhost', at]);
      assert.equal(verified.code, 0, verified.err);
      assert.equal(json(verified).transport, 'tls');
      const untrusted = await natkit(['stun', '-t', 'tls', at]);
      assert.equal(untrusted.code, 1, 'a self-signed certificate is refused without --ca or --insecure');
      assert.equal((await natkit(['stun', '-t', 'tls', '--insecure', at])).code, 0);
    } finally {
      await server.stop();
    }
  });
});

describe('the natkit binary', () => {
  test('SIGTERM stops stun-server cleanly: counters printed, exit 0', async () => {
    const child = spawn(process.execPath, ['src/cli/main.ts', 'stun-server', '-l', '127.0.0.1', '-p', '0', '--no-tcp'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      for (let i = 0; i < 100 && !/udp 127\.0\.0\.1:\d+/.test(out); i++) await new Promise((resolve) => setTimeout(resolve, 50));
      const port = /udp 127\.0\.0\.1:(\d+)/.exec(out)?.[1];
      assert.ok(port, `listening line expected, got: ${out}`);
      assert.equal((await natkit(['stun', `127.0.0.1:${port}`])).code, 0);
      child.kill('SIGTERM');
      assert.equal(await exited, 0);
      assert.match(out, /stopped: 1 requests, 1 answered/);
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
  });

  test('no command: help on stdout and exit 2; unknown command: exit 2', async () => {
    assert.equal((await natkit([])).code, 2);
    const run = await natkit(['frobnicate']);
    assert.equal(run.code, 2);
    assert.ok(run.err.includes(`unknown command "frobnicate"; expected one of ${commands.map((c) => c.name).join(', ')}`), run.err);
  });
});

test('the README demo (npm run demo) runs every query and exits 0', async () => {
  const child = spawn(process.execPath, ['examples/stun-demo.ts'], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
  const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
  const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
  clearTimeout(timer);
  assert.equal(code, 0, out);
  assert.match(out, /CHANGE-REQUEST: other address and port[^]*answered from 127\.0\.0\.2:/);
  assert.match(out, /server counters: 5 received, 5 answered, 2 from a changed address or port, 1 RFC 3489/);
});
