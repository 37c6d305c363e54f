// `natkit turn-server` in-process on loopback (usage errors, flags < environment < config
// file precedence, Allocate with a static user, a coturn-style MD5 key and a TURN REST API
// credential), and the binary itself: SIGHUP reloading the users file, /metrics over
// HTTP, SIGTERM printing the counters and exiting 0.
import assert from 'node:assert/strict';
import { createHash, createHmac } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { commands } from '../../src/cli/commands/index.ts';
import { runCli } from '../../src/cli/run.ts';
import { parseEndpoint, type Endpoint } from '../../src/net/index.ts';
import { nodeEnv } from '../../src/net/node/index.ts';
import { ERROR_CODE, REALM, SOFTWARE, attr } from '../../src/stun/index.ts';
import { ALLOCATE, REQUESTED_TRANSPORT, TRANSPORT_UDP } from '../../src/turn/index.ts';
import { TurnWireClient, type Credentials } from '../fixtures/turn/wire-client.ts';
import { noLeaks } from '../helpers/leaks.ts';
import { TestProgram } from '../helpers/process.ts';
import { startServerCommand } from '../helpers/server-command.ts';
import { selfSignedCertificate } from '../helpers/tls.ts';

const env = nodeEnv();
const LOOPBACK = '127.0.0.1';
const ALLOCATE_UDP = [attr(REQUESTED_TRANSPORT, TRANSPORT_UDP)];

interface Announced {
  readonly listening: readonly { transport: string; address: string }[];
  readonly relay: { addresses: string[]; ports: string };
  readonly metrics?: string;
}

/** `natkit turn-server --json …` in-process; resolves once it announced where it listens. */
async function startServer(argv: readonly string[], vars: Record<string, string> = {}) {
  const server = await startServerCommand<Announced>(env, 'turn-server', argv, vars);
  return {
    ...server,
    get udp(): Endpoint {
      return udpEndpoint(server.info);
    },
  };
}

function udpEndpoint(info: Announced): Endpoint {
  const udp = info.listening.find((l) => l.transport === 'udp');
  assert.ok(udp, `a UDP endpoint in ${JSON.stringify(info.listening)}`);
  return parseEndpoint(udp.address);
}

/** Allocate's error code for `creds` (0: success), on a fresh client. */
async function allocateCode(server: Endpoint, creds: Credentials): Promise<number> {
  await using c = await TurnWireClient.udp(env, server, creds, LOOPBACK);
  return await c.codeOf(ALLOCATE, ALLOCATE_UDP);
}

/** A TURN REST API credential (draft-uberti-behave-turn-rest-00 §2.2) expiring at `expiry` (Unix seconds). */
function restCredential(secret: string, user: string, expiry: number, realm: string): Credentials {
  const username = `${expiry}:${user}`;
  return { username, password: createHmac('sha1', secret).update(username).digest('base64'), realm };
}

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'natkit-turn-cli-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('natkit turn-server usage', () => {
  test('bad invocations exit 2, naming the option and what was expected', async () => {
    const base = ['-l', LOOPBACK, '-p', '0', '-u', 'alice:pw'];
    const cases: [string[], Record<string, string>, RegExp][] = [
      [['-l', LOOPBACK], {}, /no credentials: expected --user, --users-file or --secret/],
      [[...base, '--deny-peer', '10.0.0.0/33'], {}, /--deny-peer: .*prefix length in "10\.0\.0\.0\/33" outside 0–32/],
      [[...base, '--allow-peer', 'lan'], {}, /--allow-peer: .*expected an address or CIDR prefix, got "lan"/],
      [[...base, '--relay-ports', '60000-50000'], {}, /--relay-ports: expected MIN-MAX with 1024 ≤ MIN < MAX ≤ 65535, got "60000-50000"/],
      [[...base], { NATKIT_TURN_RELAY_PORTS: '49152' }, /--relay-ports: expected MIN-MAX/],
      [[...base, '--relay-address', '127.0.0.1', '--relay-address', '127.0.0.2'], {}, /--relay-address: expected one address per family/],
      [[...base, '--relay-address', '0.0.0.0'], {}, /--relay-address: expected a concrete address/],
      [['-l', LOOPBACK, '-u', 'alice'], {}, /--user: expected NAME:PASSWORD/],
      [[...base, '--users-file', join(dir, 'missing')], {}, /--users-file: cannot read/],
      [[...base, '--metrics', 'localhost'], {}, /--metrics: expected host:port/],
      [[...base, '--max-lifetime', '60'], {}, /--max-lifetime: expected a whole number in 600–86400/],
      [[...base, '--external-address', 'nat.example'], {}, /--external-address: expected an IPv4 or IPv6 address/],
      [['-l', LOOPBACK, '-u', 'alice:pw'], { NATKIT_TURN_PORT: 'x' }, /--port: expected a whole number/],
    ];
    for (const [argv, vars, expected] of cases) {
      let err = '';
      const code = await runCli(commands, ['turn-server', ...argv], { io: { out: () => {}, err: (s) => void (err += s) }, env, signal: AbortSignal.timeout(10_000), vars });
      assert.equal(code, 2, `${argv.join(' ')} ${JSON.stringify(vars)}: ${err}`);
      assert.match(err, expected);
      assert.match(err, /Run `natkit turn-server --help` for usage/);
      assert.doesNotMatch(err, /pw/, 'no password in messages');
    }
  });
});

describe('natkit turn-server in-process', () => {
  test('config file < environment < flags', noLeaks(async () => {
    const config = join(dir, 'turn.json');
    await writeFile(config, JSON.stringify({ listen: ['127.0.0.2'], port: 0, realm: 'file.test', software: 'from-file', tcp: false, user: ['frank:frank-pw'] }));
    const server = await startServer(['--software', 'from-flag'], { NATKIT_TURN_CONFIG: config, NATKIT_TURN_REALM: 'env.test', NATKIT_TURN_SOFTWARE: 'from-env', NATKIT_TURN_LISTEN: LOOPBACK });
    try {
      assert.deepEqual(server.info.listening.map((l) => l.transport), ['udp'], 'tcp: false from the file');
      assert.equal(server.udp.address, LOOPBACK, 'NATKIT_TURN_LISTEN beats the file');
      assert.deepEqual(server.info.relay, { addresses: [LOOPBACK], ports: '49152-65535' }, 'the relay binds to the listen address by default');
      await using c = await TurnWireClient.udp(env, server.udp, { username: 'frank', password: 'wrong', realm: 'env.test' }, LOOPBACK);
      const refused = await c.request(ALLOCATE, ALLOCATE_UDP);
      assert.equal(refused.get(ERROR_CODE)?.code, 401);
      assert.equal(refused.get(REALM), 'env.test', 'the environment beats the file');
      assert.equal(refused.get(SOFTWARE), 'from-flag', 'a flag beats the environment');
      assert.equal(await allocateCode(server.udp, { username: 'frank', password: 'frank-pw', realm: 'env.test' }), 0, 'the user from the file');
    } finally {
      await server.stop();
    }
  }));

  test('Allocate with --user, an MD5 key user and --secret REST credentials (with rotation and expiry)', noLeaks(async () => {
    const realm = 'natkit.test';
    const md5 = createHash('md5').update(`carol:${realm}:carol-pw`).digest('hex');
    const server = await startServer([
      '-l', LOOPBACK, '-p', '0', '--realm', realm, '-u', 'alice:alice-pw', '-u', `carol:0x${md5}`,
      '--secret', 'new-secret', '--secret', 'old-secret', '--user-quota', '1',
    ]);
    try {
      const now = Math.floor(Date.now() / 1000);
      assert.equal(await allocateCode(server.udp, { username: 'alice', password: 'alice-pw', realm }), 0);
      assert.equal(await allocateCode(server.udp, { username: 'alice', password: 'wrong', realm }), 401);
      assert.equal(await allocateCode(server.udp, { username: 'carol', password: 'carol-pw', realm }), 0, 'coturn\'s NAME:0x<key> form');
      assert.equal(await allocateCode(server.udp, restCredential('new-secret', 'bob', now + 3600, realm)), 0);
      assert.equal(await allocateCode(server.udp, restCredential('old-secret', 'eve', now + 3600, realm)), 0, 'the old secret still counts');
      assert.equal(await allocateCode(server.udp, restCredential('old-secret', 'eve', now + 3600, realm)), 486, '--user-quota 1');
      assert.equal(await allocateCode(server.udp, restCredential('new-secret', 'bob', now - 10, realm)), 401, 'an expired REST username');
      assert.equal(await allocateCode(server.udp, restCredential('another', 'bob', now + 3600, realm)), 401, 'an unknown secret');
    } finally {
      const stats = await server.stop();
      assert.equal(stats.allocationsCreated, 4);
      assert.equal(stats.allocations, 4, 'the gauge as it stood at the stop');
    }
  }));

  test('TLS alone on its own port (RFC 8656 §3.1)', noLeaks(async () => {
    const { cert, key } = await selfSignedCertificate();
    await writeFile(join(dir, 'cert.pem'), cert);
    await writeFile(join(dir, 'key.pem'), key);
    const server = await startServer(['-l', LOOPBACK, '--no-udp', '--no-tcp', '--tls-port', '0', '--tls-cert', join(dir, 'cert.pem'), '--tls-key', join(dir, 'key.pem'), '-u', 'tina:tina-pw']);
    try {
      const [tls] = server.info.listening;
      assert.equal(tls?.transport, 'tls');
      await using c = await TurnWireClient.tcp(env, parseEndpoint(tls.address), { username: 'tina', password: 'tina-pw', realm: 'natkit' }, { ca: cert, servername: 'localhost' });
      assert.equal((await c.allocate()).address, LOOPBACK);
    } finally {
      await server.stop();
    }
  }));
});

describe('the natkit binary', () => {
  test('SIGHUP reloads the users file, /metrics serves the gauges, SIGTERM prints the counters and exits 0', noLeaks(async () => {
    const usersFile = join(dir, 'users');
    await writeFile(usersFile, '# natkit turn users\ndave:dave-pw\n\n');
    const realm = 'bin.test';
    const dave = { username: 'dave', password: 'dave-pw', realm };
    const erin = { username: 'erin', password: 'erin-pw', realm };
    await using program = TestProgram.start(process.execPath, [
      'src/cli/main.ts', 'turn-server', '--json', '-l', LOOPBACK, '-p', '0', '--no-tcp', '--realm', realm,
      '--users-file', usersFile, '--metrics', `${LOOPBACK}:0`,
    ], { name: 'natkit turn-server' });
    const line = await program.waitForOutput(/^\{"listening".*\n/, { timeoutMs: 10_000 });
    const info = JSON.parse(line[0]) as Announced;
    const server = udpEndpoint(info);
    assert.match(info.metrics ?? '', /^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    const scrape = async (): Promise<string> => {
      const res = await fetch(info.metrics!, { headers: { connection: 'close' } });
      assert.equal(res.status, 200);
      assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
      return res.text();
    };

    await using kept = await TurnWireClient.udp(env, server, dave, LOOPBACK);
    await kept.allocate();
    assert.match(await scrape(), /^natkit_turn_allocations 1$/m);
    assert.equal((await fetch(info.metrics!.replace('/metrics', '/'), { headers: { connection: 'close' } })).status, 404);
    assert.equal(await allocateCode(server, erin), 401, 'erin is not in the file yet');

    await writeFile(usersFile, 'erin:erin-pw\n');
    process.kill(program.pid, 'SIGHUP');
    await program.waitFor(() => /reloaded users from/.exec(program.stderr) ?? undefined, { timeoutMs: 5000, what: 'the reload' });
    assert.equal(await allocateCode(server, erin), 0, 'a user added to the file');
    assert.equal(await allocateCode(server, dave), 401, 'a user removed from the file');
    assert.match(await scrape(), /^natkit_turn_allocations 2$/m, 'dave\'s allocation outlives the reload');

    const status = await program.stop();
    assert.deepEqual(status, { code: 0, signal: null }, program.describe());
    const stats = (JSON.parse(program.stdout.trim().split('\n').at(-1)!) as { stats: Record<string, unknown> }).stats;
    assert.equal(stats.allocationsCreated, 2);
    assert.equal(stats.authFailures, 2, 'erin before the reload, dave after it');
  }));
});
