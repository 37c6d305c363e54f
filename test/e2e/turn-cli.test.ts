// `natkit turn` in-process against natkit's TurnServer on loopback: the allocation printed,
// stdin lines relayed to a real UDP peer and its replies written out, the allocation deleted
// at end of input and on abort (SIGINT), refusals as exit 1 with the server's code, usage
// errors as exit 2; and how input is cut into datagrams.
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import { createTurnCommand, cutDatagrams, type TurnReport } from '../../src/cli/commands/turn.ts';
import { runCli } from '../../src/cli/run.ts';
import type { Endpoint, PacketSocket } from '../../src/net/index.ts';
import { formatEndpoint } from '../../src/net/index.ts';
import { nodeEnv } from '../../src/net/node/index.ts';
import { TurnServer } from '../../src/turn/index.ts';
import { noLeaks } from '../helpers/leaks.ts';

const LOOPBACK = '127.0.0.1';
const env = nodeEnv();

/** Polls `check` every 5 ms for at most 5 s. */
async function until(check: () => boolean, what: string): Promise<void> {
  for (let waited = 0; !check(); waited += 5) {
    if (waited >= 5000) assert.fail(`no ${what} within 5 s`);
    await sleep(5);
  }
}

const startServer = (): Promise<TurnServer> => TurnServer.start({
  env, listen: [{ address: LOOPBACK, port: 0, transports: ['udp'] }], relayAddresses: [LOOPBACK], realm: 'natkit.test',
  users: { alice: 'alice-pw' }, allowPeers: ['127.0.0.0/8'], spareRelaySockets: 2,
});

/** `natkit turn ARGS…` in-process, its stdin a stream the test writes, its stdout split in text (io.out) and relayed bytes. */
function turn(argv: readonly string[], controller = new AbortController()) {
  const stdin = new PassThrough();
  const received: Buffer[] = [];
  let out = '';
  let err = '';
  const command = createTurnCommand({ input: () => stdin, output: (data) => received.push(Buffer.from(data)) });
  const done = runCli([command], ['turn', ...argv], {
    io: { out: (s) => void (out += s), err: (s) => void (err += s) }, env, signal: AbortSignal.any([controller.signal, AbortSignal.timeout(20_000)]), vars: {},
  });
  return {
    stdin, received, done, controller,
    out: () => out,
    err: () => err,
    /** The --json line, once printed. */
    async report(): Promise<TurnReport> {
      await until(() => out.includes('\n') || err.includes('natkit turn:'), 'allocation line');
      assert.ok(out.includes('\n'), `no allocation printed: ${err}`);
      return JSON.parse(out.split('\n')[0]!) as TurnReport;
    },
  };
}

function record(socket: PacketSocket): { text: string; from: Endpoint }[] {
  const got: { text: string; from: Endpoint }[] = [];
  socket.onPacket((data, from) => got.push({ text: Buffer.from(data).toString(), from }));
  return got;
}

test('allocation printed as one JSON line; stdin lines reach the peer from the relayed address, its replies reach stdout; EOF deletes', noLeaks(async () => {
  await using server = await startServer();
  await using peer = await env.network.bindUdp({ address: LOOPBACK });
  const atPeer = record(peer);
  const at = formatEndpoint(server.endpoints[0]!.local);
  const run = turn(['-u', 'alice', '-w', 'alice-pw', '--peer', formatEndpoint(peer.local), '--linger', '0', '--json', at]);
  const report = await run.report();
  assert.equal(report.server, at);
  assert.equal(report.transport, 'udp');
  assert.equal(report.relayed.length, 1);
  const relayed = report.relayed[0]!;
  assert.match(relayed, /^127\.0\.0\.1:\d+$/);
  assert.match(report.mapped ?? '', /^127\.0\.0\.1:\d+$/);
  assert.equal(report.peer, formatEndpoint(peer.local));
  assert.equal(server.stats.allocations, 1);

  run.stdin.write('one\ntw');
  run.stdin.write('o\nthree');
  await until(() => atPeer.length === 2, 'two lines at the peer');
  assert.deepEqual(atPeer.map((g) => g.text), ['one\n', 'two\n'], 'one datagram per line, the partial one held');
  assert.ok(atPeer.every((g) => formatEndpoint(g.from) === relayed), 'sent from the relayed address');
  const [address, port] = [relayed.split(':')[0]!, Number(relayed.split(':')[1])];
  for (const reply of ['first reply\n', 'second reply\n']) peer.send(Buffer.from(reply), { address, port, family: 4 });
  await until(() => run.received.length === 2, 'two replies on stdout');
  assert.deepEqual(run.received.map(String), ['first reply\n', 'second reply\n']);

  run.stdin.end();
  assert.equal(await run.done, 0, run.err());
  await until(() => atPeer.length === 3, 'the unterminated last line at EOF');
  assert.equal(atPeer[2]!.text, 'three');
  assert.equal(server.stats.allocations, 0, 'deleted at exit');
  // The first datagram goes as a Send indication, ChannelData once the channel is bound (when depends on timing).
  assert.match(run.err(), /3 datagrams relayed out \([12] Send, [12] ChannelData\), 2 in/);
}));

test('human output; abort (SIGINT) ends the relay with exit 0 and deletes the allocation', noLeaks(async () => {
  await using server = await startServer();
  const run = turn(['-u', 'alice', '-w', 'alice-pw', formatEndpoint(server.endpoints[0]!.local)]);
  await until(() => run.out().includes('server'), 'allocation printed');
  assert.match(run.out(), /^relayed {2}127\.0\.0\.1:\d+\nmapped {3}127\.0\.0\.1:\d+\nserver {3}127\.0\.0\.1:\d+ \(udp\), lifetime 600 s\n$/);
  run.stdin.write('dropped\n');
  await until(() => run.err().includes('no --peer'), 'the warning');
  assert.equal(server.stats.allocations, 1);
  run.controller.abort();
  assert.equal(await run.done, 0, run.err());
  assert.equal(server.stats.allocations, 0);
}));

test('a wrong password: exit 1 with the server\'s 401 in the message, nothing allocated', noLeaks(async () => {
  await using server = await startServer();
  const run = turn(['-u', 'alice', '-w', 'wrong', formatEndpoint(server.endpoints[0]!.local)]);
  assert.equal(await run.done, 1);
  assert.match(run.err(), /natkit turn: TURN Allocate at 127\.0\.0\.1:\d+: 401 .*\[ERR_PROTOCOL\]/);
  assert.equal(run.out(), '');
  assert.equal(server.stats.allocations, 0);
}));

const USAGE: readonly { readonly name: string; readonly argv: readonly string[]; readonly says: RegExp }[] = [
  { name: 'missing --user', argv: ['-w', 'pw', '127.0.0.1'], says: /missing --user/ },
  { name: 'missing --pass', argv: ['-u', 'alice', '127.0.0.1'], says: /missing --pass/ },
  { name: 'no server', argv: ['-u', 'alice', '-w', 'pw'], says: /expected one SERVER/ },
  { name: 'bad transport', argv: ['-u', 'alice', '-w', 'pw', '-t', 'sctp', '127.0.0.1'], says: /--transport: expected udp, tcp or tls/ },
  { name: 'peer without port', argv: ['-u', 'alice', '-w', 'pw', '--peer', '127.0.0.1', '127.0.0.1'], says: /--peer: expected HOST:PORT/ },
  { name: 'bad lifetime', argv: ['-u', 'alice', '-w', 'pw', '--lifetime', '0', '127.0.0.1'], says: /--lifetime: expected a whole number/ },
];
for (const c of USAGE) {
  test(`usage error, exit 2: ${c.name}`, noLeaks(async () => {
    const run = turn(c.argv);
    assert.equal(await run.done, 2);
    assert.match(run.err(), c.says);
    assert.match(run.err(), /natkit turn --help/);
  }));
}

test('--help shows the options and examples', async () => {
  const run = turn(['--help']);
  assert.equal(await run.done, 0);
  for (const want of ['--user', '--pass', '--transport', '--peer', '--lifetime', '--json', 'Examples:', 'natkit turn -u alice']) assert.ok(run.out().includes(want), want);
});

test('cutDatagrams: one datagram per line, newline kept; long lines in 1200-byte pieces; the rest returned', () => {
  const cases: readonly { readonly input: string; readonly sent: readonly string[]; readonly rest: string }[] = [
    { input: 'a\nbb\n', sent: ['a\n', 'bb\n'], rest: '' },
    { input: 'a\nbb', sent: ['a\n'], rest: 'bb' },
    { input: '\n\n', sent: ['\n', '\n'], rest: '' },
    { input: `${'x'.repeat(2500)}\ny`, sent: ['x'.repeat(1200), 'x'.repeat(1200), `${'x'.repeat(100)}\n`], rest: 'y' },
    { input: 'x'.repeat(1300), sent: ['x'.repeat(1200)], rest: 'x'.repeat(100) },
    { input: `${'x'.repeat(1199)}\n`, sent: [`${'x'.repeat(1199)}\n`], rest: '' },
  ];
  for (const c of cases) {
    const sent: string[] = [];
    const rest = cutDatagrams(Buffer.from(c.input), (d) => sent.push(Buffer.from(d).toString()));
    assert.deepEqual(sent, c.sent, JSON.stringify(c.input.slice(0, 20)));
    assert.equal(Buffer.from(rest).toString(), c.rest);
  }
});
