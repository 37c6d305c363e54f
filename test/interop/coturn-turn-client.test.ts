// Interoperability of natkit's TURN client (RFC 8656) with coturn's turnserver on
// loopback: long-term credentials (RFC 8489 §9.2, coturn answers as an RFC 5389 server),
// Allocate over UDP and TCP, Send/Data indications and channels with a real UDP peer,
// deletion on close (coturn logs the Refresh with lifetime 0) and a wrong password.
// Without coturn every test fails and says what to install; nothing is skipped.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StunClient } from '../../src/stun/index.ts';
import { TurnClient, TurnError, type RelayedSocket, type TurnAllocateOptions } from '../../src/turn/index.ts';
import { endpoint, endpointKey, type Endpoint, type PacketSocket } from '../../src/net/index.ts';
import { nodeEnv } from '../../src/net/node/index.ts';
import { noLeaks } from '../helpers/leaks.ts';
import { reservePorts, type PortReservation } from '../helpers/ports.ts';
import { TestProgram, requireProgram } from '../helpers/process.ts';

const A1 = '127.0.0.1';
const INSTALL = 'install coturn (apt-get install coturn; .ci/run installs it in CI)';
const READY_MS = 10_000;
/** How long a datagram may take through the relay on loopback. */
const RELAY_MS = 5_000;
/** Loopback answers in well under a millisecond. */
const QUICK = { rtoMs: 100, maxTransmissions: 4, lastWaitMultiplier: 4, streamTimeoutMs: 3000 } as const;
const env = nodeEnv();

interface Coturn {
  readonly program: TestProgram;
  readonly reservation: PortReservation;
  readonly dir: string;
  readonly server: Endpoint;
}

/**
 * turnserver with one user and loopback peers allowed,
 * on a reserved port; ready once -v logged its UDP and TCP listeners and a Binding request
 * is answered. A port taken between reservation and bind ("Cannot bind") means another try.
 */
async function startCoturn(): Promise<Coturn> {
  requireProgram('turnserver', INSTALL);
  const dir = await mkdtemp(join(tmpdir(), 'natkit-coturn-turn-'));
  const failures: string[] = [];
  for (let attempt = 0; attempt < 3; attempt++) {
    const reservation = await reservePorts({ addresses: [A1], count: 1 });
    const server = endpoint(A1, reservation.ports[0]!);
    const program = TestProgram.start('turnserver', [
      '-n', '-v', '--lt-cred-mech', '--user', 'u:p', '--realm', 'natkit.test',
      '--listening-ip', A1, '--listening-port', String(server.port), '--relay-ip', A1, '--allow-loopback-peers',
      '--no-cli', '--no-tls', '--no-dtls', '--log-file', 'stdout', '--simple-log',
      '--pidfile', join(dir, 'turnserver.pid'), '--db', join(dir, 'turndb'),
    ]);
    const listening = ['UDP', 'TCP'].map((t) => new RegExp(`${t} listener opened on\\s*:\\s*${endpointKey(server).replace(/\./g, '\\.')}\\b`));
    try {
      const outcome = await program.waitFor(
        () => /Cannot bind/.test(program.stdout + program.stderr) ? 'bind-failed' : listening.every((l) => l.test(program.stdout)) ? 'up' : undefined,
        { timeoutMs: READY_MS, what: 'its UDP and TCP listeners' },
      );
      if (outcome === 'up') {
        await program.waitFor(() => answers(server), { timeoutMs: READY_MS, what: 'a Binding answer' });
        return { program, reservation, dir, server };
      }
      failures.push(program.describe());
    } catch (err) {
      await stopCoturn({ program, reservation, dir, server });
      throw err;
    }
    await program.stop();
    await reservation.release();
  }
  await rm(dir, { recursive: true, force: true });
  throw new Error(`turnserver could not bind its port in 3 tries:\n${failures.join('\n\n')}`);
}

async function stopCoturn(c: Coturn): Promise<void> {
  await c.program.stop();
  await c.reservation.release();
  await rm(c.dir, { recursive: true, force: true });
}

async function answers(to: Endpoint): Promise<true | undefined> {
  await using client = await StunClient.create({ env, server: to, localAddress: A1, ...QUICK, maxTransmissions: 1 });
  const r = await client.binding().catch(() => undefined);
  return r?.ok === true ? true : undefined;
}

/** A datagram one side received. */
interface Got {
  readonly text: string;
  readonly from: Endpoint;
}

/** Records what `socket` receives, as text. */
function record(socket: PacketSocket): Got[] {
  const got: Got[] = [];
  socket.onPacket((data, from) => got.push({ text: Buffer.from(data).toString(), from }));
  return got;
}

describe('natkit TurnClient → coturn turnserver', () => {
  let coturn: Coturn | undefined;
  before(async () => {
    coturn = await startCoturn();
  });
  after(async () => {
    if (coturn !== undefined) await stopCoturn(coturn);
  });

  const running = (): Coturn => {
    assert.ok(coturn, 'turnserver started');
    return coturn;
  };
  const allocate = (o: Partial<TurnAllocateOptions> = {}): Promise<RelayedSocket> =>
    TurnClient.allocate({ env, server: running().server, username: 'u', password: 'p', localAddress: A1, ...QUICK, ...o });

  /** Waits (polling, bounded) until `check` holds. */
  const until = (check: () => boolean, what: string): Promise<true> =>
    running().program.waitFor(() => (check() ? true : undefined), { timeoutMs: RELAY_MS, what });

  /** Relay → peer and back, `rounds` times, each datagram awaited on the other side. */
  async function exchange(relay: RelayedSocket, peer: PacketSocket, rounds: number): Promise<void> {
    const atPeer = record(peer);
    const atRelay = record(relay);
    for (let i = 0; i < rounds; i++) {
      relay.send(Buffer.from(`ping ${i}`), peer.local);
      await until(() => atPeer.length > i, `ping ${i} at the peer`);
      assert.deepEqual(atPeer[i], { text: `ping ${i}`, from: relay.local }, 'the peer sees the relayed address');
      peer.send(Buffer.from(`pong ${i}`), relay.local);
      await until(() => atRelay.length > i, `pong ${i} through the relay`);
      assert.deepEqual(atRelay[i], { text: `pong ${i}`, from: peer.local });
    }
  }

  for (const transport of ['udp', 'tcp'] as const) {
    test(`${transport}: 401 then Allocate; Send/Data indications only (no channel) with a UDP peer`, noLeaks(async () => {
      await using relay = await allocate({ transport, channelAfterPackets: Infinity });
      await using peer = await env.network.bindUdp({ address: A1 });
      assert.equal(relay.local.address, A1);
      assert.ok(relay.local.port >= 49152, `relay port ${relay.local.port} in coturn's default range`);
      assert.equal(relay.allocation.mapped?.address, A1);
      assert.ok(relay.allocation.lifetimeS > 0);
      await exchange(relay, peer, 3);
      const s = relay.core.stats;
      assert.deepEqual([s.indicationsSent, s.dataIndications, s.channelDataSent, s.channelDataReceived], [3, 3, 0, 0]);
      assert.deepEqual([relay.stats.packetsOut, relay.stats.packetsIn, relay.stats.sendErrors], [3, 3, 0]);
    }));

    test(`${transport}: a channel bound after the first datagram carries the rest both ways (ChannelData)`, noLeaks(async () => {
      await using relay = await allocate({ transport, channelAfterPackets: 1 });
      await using peer = await env.network.bindUdp({ address: A1 });
      await exchange(relay, peer, 1);
      // The ChannelBind went with the first datagram; its answer is a round trip away.
      await until(() => relay.core.stats.channelsBound === 1, 'the channel bound');
      await exchange(relay, peer, 4);
      const s = relay.core.stats;
      assert.deepEqual([s.indicationsSent, s.channelDataSent, s.dataIndications + s.channelDataReceived], [1, 4, 5]);
      assert.ok(s.channelDataReceived >= 4, `coturn relays the replies on the channel too (${s.channelDataReceived} of 5)`);
    }));
  }

  for (const transport of ['udp', 'tcp'] as const) {
    test(`${transport}: close() deletes the allocation with a Refresh of lifetime 0 that coturn accepts`, noLeaks(async () => {
      const deletions = (): number => running().program.stdout.match(/refreshed, realm=<natkit\.test>, username=<u>, lifetime=0/g)?.length ?? 0;
      const before = deletions();
      const relay = await allocate({ transport });
      await relay.close();
      assert.equal(relay.closed, true);
      assert.equal(relay.core.state, 'closed');
      await until(() => deletions() === before + 1, 'coturn to log the deletion');
      await relay.close();
    }));
  }

  test('wrong password: a TurnError with status 401, nothing left open', noLeaks(async () => {
    await assert.rejects(allocate({ password: 'wrong' }), (err: unknown) => err instanceof TurnError && err.status === 401);
  }));
});
