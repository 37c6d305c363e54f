// `natkit serve` in-process on loopback: one client UDP socket gets a STUN Binding, a TURN
// Allocate and a rendezvous registration from the one shared server port, with the same
// reflexive address for STUN and rendezvous; CONNECT by name gives both peers PUNCH
// orders; with two addresses CHANGE-REQUEST is answered from the other one; /metrics
// covers all three; config-file sections < environment < flags; usage errors; with legacy
// channels, ChannelData on RFC 5766 numbers (first byte 0x50–0x7F) reaches TURN. Then the
// binary: SIGTERM prints the counters and exits 0.
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { commands } from '../../src/cli/commands/index.ts';
import { runCli } from '../../src/cli/run.ts';
import { MUX_STUN, PacketMux, parseEndpoint, type Endpoint } from '../../src/net/index.ts';
import { nodeEnv } from '../../src/net/node/index.ts';
import { MUX_RENDEZVOUS, RendezvousClient, identityFromKey, type PunchOrder } from '../../src/rendezvous/index.ts';
import { ERROR_CODE, REALM, SOFTWARE, StunClient, attr } from '../../src/stun/index.ts';
import { ALLOCATE, REQUESTED_TRANSPORT, TRANSPORT_UDP, encodeChannelData } from '../../src/turn/index.ts';
import { TurnWireClient } from '../fixtures/turn/wire-client.ts';
import { noLeaks } from '../helpers/leaks.ts';
import { TestProgram } from '../helpers/process.ts';
import { startServerCommand } from '../helpers/server-command.ts';

const env = nodeEnv();
const A1 = '127.0.0.1';
const A2 = '127.0.0.2';
const EPHEMERAL = ['-p', '0', '--rendezvous-port', '0'];

interface Announced {
  readonly listening: readonly { transport: string; address: string; serves: string[] }[];
  readonly relay?: { addresses: string[]; ports: string };
  readonly metrics?: string;
}

/** `natkit serve --json …` in-process; resolves once it announced where it listens. */
async function startServe(argv: readonly string[], vars: Record<string, string> = {}) {
  const server = await startServerCommand<Announced, Record<string, Record<string, unknown>>>(env, 'serve', argv, vars);
  return {
    ...server,
    /** The endpoint of `transport` whose components include `serves`, on `address`. */
    at(transport: string, serves: string, address = A1): Endpoint {
      const l = server.info.listening.find((e) => e.transport === transport && e.serves.some((s) => s.startsWith(serves)) && parseEndpoint(e.address).address === address);
      assert.ok(l, `${transport} ${serves} on ${address} in ${JSON.stringify(server.info.listening)}`);
      return parseEndpoint(l.address);
    },
  };
}

/** A peer: one UDP socket, muxed, as natkit clients use it. */
async function peer(): Promise<PacketMux> {
  return new PacketMux(await env.network.bindUdp({ address: A1 }));
}

const identity = () => identityFromKey(generateKeyPairSync('ed25519').privateKey);

const nextOrder = (c: RendezvousClient): Promise<PunchOrder> => c.punches().next().then((r) => {
  assert.ok(r.done !== true);
  return r.value;
});

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'natkit-serve-cli-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('natkit serve usage', () => {
  test('bad invocations exit 2, naming what was expected', async () => {
    const cases: [string[], Record<string, string>, RegExp][] = [
      [['-l', A1], {}, /no credentials: expected --user, --users-file or --secret/],
      [['-l', A1, '-l', A2, '-l', '127.0.0.3', '--no-turn'], {}, /--listen: expected one or two addresses, got 3/],
      [['-l', A1, '--alt-port', '4000', '--no-turn'], {}, /--alt-port: expected two --listen addresses/],
      [['-l', A1, '--no-turn', '--rendezvous-lease', '5', '--rendezvous-keepalive', '5'], {}, /--rendezvous-keepalive: expected less than the lease/],
      [['-l', A1, '--no-turn'], { NATKIT_RENDEZVOUS_PORT: 'x' }, /--rendezvous-port: expected a whole number/],
      [['-l', 'example.org', '--no-turn'], {}, /--listen: expected an IPv4 or IPv6 address/],
    ];
    for (const [argv, vars, expected] of cases) {
      let err = '';
      const code = await runCli(commands, ['serve', ...argv], { io: { out: () => {}, err: (s) => void (err += s) }, env, signal: AbortSignal.timeout(10_000), vars });
      assert.equal(code, 2, `${argv.join(' ')}: ${err}`);
      assert.match(err, expected);
    }
  });

  test('config file: unknown keys and sections are refused', async () => {
    const cases: [unknown, RegExp][] = [
      [{ realm: 'flat' }, /unknown key "realm"/],
      [{ turn: { nope: 1 } }, /unknown key "turn\.nope"/],
      [{ stun: { 'alt-port': true } }, /"stun\.alt-port" expected a string or number/],
    ];
    for (const [data, expected] of cases) {
      const config = join(dir, 'bad.json');
      await writeFile(config, JSON.stringify(data));
      let err = '';
      const code = await runCli(commands, ['serve', '-c', config], { io: { out: () => {}, err: (s) => void (err += s) }, env, signal: AbortSignal.timeout(10_000) });
      assert.equal(code, 2, err);
      assert.match(err, expected);
    }
  });
});

describe('natkit serve in-process', () => {
  test('one client socket: STUN Binding, TURN Allocate and rendezvous registration on the shared port; CONNECT orders both peers', noLeaks(async () => {
    const realm = 'serve.test';
    const server = await startServe(['-l', A1, ...EPHEMERAL, '--realm', realm, '-u', 'alice:alice-pw', '--metrics', `${A1}:0`]);
    const alice = await peer();
    const bob = await peer();
    const clients: RendezvousClient[] = [];
    try {
      const shared = server.at('udp', 'rendezvous');
      assert.deepEqual(server.at('udp', 'turn'), shared, 'TURN and rendezvous on the STUN socket');

      const stunRoute = alice.route(MUX_STUN);
      const stun = await StunClient.create({ env, server: shared, socket: stunRoute });
      const binding = await stun.binding();
      await stun.close();
      assert.ok(binding.ok);
      assert.deepEqual(binding.mapped, alice.socket.local, 'XOR-MAPPED-ADDRESS is the client socket');

      await using turn = TurnWireClient.onSocket(env, stunRoute, shared, { username: 'alice', password: 'alice-pw', realm });
      const relayed = await turn.allocate();
      assert.equal(relayed.address, A1, 'TURN relays on the primary address');

      for (const [name, mux] of [['alice', alice], ['bob', bob]] as const) {
        clients.push(await RendezvousClient.register({
          env, server: shared, tcpServer: server.at('tcp', 'rendezvous'), socket: mux.route(MUX_RENDEZVOUS), name, identity: identity(),
        }));
      }
      const [ra, rb] = clients as [RendezvousClient, RendezvousClient];
      assert.deepEqual(ra.reflexive, binding.mapped, 'rendezvous sees the mapping STUN reported');
      assert.equal(ra.transport, 'udp');
      const bobsOrder = nextOrder(rb);
      const order = await ra.connect('bob');
      const other = await bobsOrder;
      assert.deepEqual(order.peer.candidates[0]?.endpoint, bob.socket.local);
      assert.deepEqual(other.peer.candidates[0]?.endpoint, alice.socket.local);
      assert.equal(order.pairId, other.pairId);

      const res = await fetch(server.info.metrics!, { headers: { connection: 'close' } });
      const text = await res.text();
      assert.match(text, /^natkit_turn_allocations 1$/m);
      assert.match(text, /^natkit_stun_success_total 1$/m);
      assert.match(text, /^natkit_rendezvous_registrations 2$/m);
      assert.match(text, /^natkit_rendezvous_punch_orders_total 2$/m);
    } finally {
      for (const c of clients) await c.close();
      await alice.close();
      await bob.close();
      const stats = await server.stop();
      assert.equal(stats.stun?.success, 1, 'the Binding was answered by STUN alone');
      assert.equal((stats.turn?.errors as Record<string, number>)[401], 1, 'the one 401 challenge of Allocate');
      assert.equal(stats.turn?.allocationsCreated, 1);
      assert.equal(stats.rendezvous?.registered, 2);
    }
  }));

  test('NATKIT_TURN_LEGACY_CHANNELS: ChannelBind 0x7000, and its ChannelData (first byte 0x70) is routed to TURN and relayed', noLeaks(async () => {
    const server = await startServe(['-l', A1, ...EPHEMERAL, '-u', 'alice:pw', '--allow-peer', '127.0.0.0/8', '--no-rendezvous'], { NATKIT_TURN_LEGACY_CHANNELS: '1' });
    const target = await env.network.bindUdp({ address: A1 });
    const got: Uint8Array[] = [];
    target.onPacket((data) => void got.push(Uint8Array.from(data)));
    try {
      await using c = await TurnWireClient.udp(env, server.at('udp', 'turn'), { username: 'alice', password: 'pw', realm: 'natkit' }, A1);
      await c.allocate();
      assert.equal(await c.bind(0x7000, target.local), 0);
      c.sendRaw(encodeChannelData({ channel: 0x7000, data: Uint8Array.of(7, 7) }, 'udp', { legacyChannels: true }));
      for (let i = 0; i < 100 && got.length === 0; i++) await delay(20);
      assert.deepEqual(got, [Uint8Array.of(7, 7)]);
    } finally {
      await target.close();
      const stats = await server.stop();
      assert.equal(stats.turn?.toPeerPackets, 1);
    }
  }));

  test('two addresses: the RFC 5780 layout answers CHANGE-REQUEST from the other address and port', noLeaks(async () => {
    const server = await startServe(['-l', A1, '-l', A2, ...EPHEMERAL, '-u', 'alice:pw']);
    const mux = await peer();
    try {
      const primary = server.at('udp', 'stun A1:P1');
      assert.deepEqual(server.at('udp', 'turn'), primary);
      assert.equal(server.at('udp', 'stun A2:P1', A2).port, primary.port, 'the same port on both addresses');
      await using stun = await StunClient.create({ env, server: primary, socket: mux.route(MUX_STUN) });
      const plain = await stun.binding();
      assert.ok(plain.ok);
      assert.deepEqual(plain.otherAddress, server.at('udp', 'stun A2:P2', A2));
      const changed = await stun.binding({ changeRequest: { changeIp: true, changePort: true } });
      assert.ok(changed.ok);
      assert.deepEqual(changed.from, server.at('udp', 'stun A2:P2', A2), 'answered from A2:P2');
      assert.deepEqual(server.info.relay?.addresses, [A1]);
    } finally {
      await mux.close();
      const stats = await server.stop();
      assert.equal(stats.stun?.changed, 1);
      assert.equal(stats.turn?.received, 0, 'TURN never saw the Bindings');
    }
  }));

  test('config file sections < environment < flags; --no-turn and --no-rendezvous', noLeaks(async () => {
    const config = join(dir, 'serve.json');
    await writeFile(config, JSON.stringify({
      listen: ['127.0.0.2'], port: 0, software: 'from-file', tcp: false,
      turn: { realm: 'file.test', user: ['frank:frank-pw'] }, rendezvous: { enabled: false, port: 0 },
    }));
    const server = await startServe(['--software', 'from-flag'], { NATKIT_CONFIG: config, NATKIT_TURN_REALM: 'env.test', NATKIT_LISTEN: A1 });
    try {
      assert.deepEqual(server.info.listening, [{ transport: 'udp', address: server.info.listening[0]!.address, serves: ['stun A1:P1', 'turn'] }],
        'tcp: false and rendezvous off from the file; NATKIT_LISTEN beats the file');
      await using c = await TurnWireClient.udp(env, server.at('udp', 'turn'), { username: 'frank', password: 'wrong', realm: 'env.test' }, A1);
      const refused = await c.request(ALLOCATE, [attr(REQUESTED_TRANSPORT, TRANSPORT_UDP)]);
      assert.equal(refused.get(ERROR_CODE)?.code, 401);
      assert.equal(refused.get(REALM), 'env.test', 'the environment beats the file section');
      assert.equal(refused.get(SOFTWARE), 'from-flag', 'a flag beats the file');
    } finally {
      await server.stop();
    }
    const stunOnly = await startServe(['-l', A1, ...EPHEMERAL, '--no-turn', '--no-rendezvous']);
    try {
      assert.deepEqual(stunOnly.info.listening.map((l) => [l.transport, l.serves]), [['udp', ['stun A1:P1']], ['tcp', ['stun']]], 'STUN takes TCP without TURN');
      assert.equal(stunOnly.info.relay, undefined);
    } finally {
      const stats = await stunOnly.stop();
      assert.deepEqual(Object.keys(stats), ['stun']);
    }
  }));
});

describe('the natkit binary', () => {
  test('natkit serve prints where it listens, stops on SIGTERM with the counters and exits 0', noLeaks(async () => {
    await using program = TestProgram.start(process.execPath, ['src/cli/main.ts', 'serve', '--json', '-l', A1, ...EPHEMERAL, '--secret', 's3cret'], { name: 'natkit serve' });
    const line = await program.waitForOutput(/^\{"listening".*\n/, { timeoutMs: 10_000 });
    const info = JSON.parse(line[0]) as Announced;
    const udp = info.listening.find((l) => l.transport === 'udp');
    assert.deepEqual(udp?.serves, ['stun A1:P1', 'turn', 'rendezvous']);
    await using stun = await StunClient.create({ env, server: parseEndpoint(udp.address), localAddress: A1 });
    assert.ok((await stun.binding()).ok);
    const status = await program.stop();
    assert.deepEqual(status, { code: 0, signal: null }, program.describe());
    const stats = (JSON.parse(program.stdout.trim().split('\n').at(-1)!) as { stats: { stun: { success: number } } }).stats;
    assert.equal(stats.stun.success, 1);
  }));
});
