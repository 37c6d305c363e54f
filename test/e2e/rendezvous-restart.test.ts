// A peer that closes and restarts at once under the same name, on real loopback sockets:
// close() resolves only once the server has answered UNREGISTER, so the socket may be
// closed right after it (node:dgram drops a datagram still queued on a socket that closes)
// and a new key gets the name at once, over UDP and after a TCP registration. The same
// key always gets its name back, UNREGISTER or not; another key waits for the lease
// when the old holder crashed. connect()/ConnectAgent against `natkit serve` likewise.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { generateKeyPairSync } from 'node:crypto';
import { once } from 'node:events';
import { PacketMux, endpoint, parseEndpoint, type Endpoint } from '../../src/net/index.ts';
import { nodeEnv } from '../../src/net/node/index.ts';
import { connect, type ConnectOptions } from '../../src/punch/index.ts';
import {
  MUX_RENDEZVOUS, RendezvousClient, RendezvousError, RendezvousServer, identityFromKey, type RendezvousClientOptions, type RendezvousIdentity,
} from '../../src/rendezvous/index.ts';
import { noLeaks } from '../helpers/leaks.ts';
import { startServerCommand } from '../helpers/server-command.ts';

const env = nodeEnv();
const LOOPBACK = '127.0.0.1';
const newIdentity = (): RendezvousIdentity => identityFromKey(generateKeyPairSync('ed25519').privateKey);

const startServer = (): Promise<RendezvousServer> =>
  RendezvousServer.start({ env, udp: [{ address: LOOPBACK, port: 0 }], tcp: [{ address: LOOPBACK, port: 0 }] });

/** Registers `name` with `identity` from a new muxed socket; `close()` closes the client, then at once the socket, as ConnectAgent does. */
async function register(name: string, identity: RendezvousIdentity, options: Pick<RendezvousClientOptions, 'server'> & Partial<RendezvousClientOptions>): Promise<RendezvousClient & { crash(): Promise<void> }> {
  const mux = new PacketMux(await env.network.bindUdp({ address: LOOPBACK }));
  try {
    const c = await RendezvousClient.register({ env, socket: mux.route(MUX_RENDEZVOUS), name, identity, ...options });
    const close = c.close.bind(c);
    return Object.assign(c, {
      close: async () => {
        await close();
        await mux.close();
      },
      /** The process dies: the socket goes first, so no UNREGISTER reaches the server. */
      crash: async () => {
        await mux.close();
        await close();
      },
    });
  } catch (err) {
    await mux.close();
    throw err;
  }
}

const nameTaken = (err: unknown): boolean => err instanceof RendezvousError && err.reason === 'name-taken';

test('close(), then at once the same name with a new key: registered every time (UDP)', noLeaks(async () => {
  await using server = await startServer();
  const udp = server.udpEndpoints[0]!;
  for (let round = 1; round <= 5; round++) {
    const c = await register('alice', newIdentity(), { server: udp });
    await c.close();
    // close() resolved: the server has already freed the name.
    assert.equal(server.stats.unregistered, round);
    assert.equal(server.core.registrationCount, 0);
  }
  assert.equal(server.stats.registered, 5);
  assert.equal(server.stats.errors['name-taken'], 0);
}));

test('close() of a TCP registration frees the name at once for a new key over UDP', noLeaks(async () => {
  await using server = await startServer();
  const silent = createSocket('udp4');
  silent.bind(0, LOOPBACK);
  await once(silent, 'listening');
  try {
    const old = await register('bob', newIdentity(), { server: endpoint(LOOPBACK, silent.address().port), tcpServer: server.tcpEndpoints[0]!, rtoMs: 50, maxTransmissions: 2 });
    assert.equal(old.transport, 'tcp');
    await old.close();
    assert.equal(server.stats.unregistered, 1);
    const again = await register('bob', newIdentity(), { server: server.udpEndpoints[0]! });
    assert.equal(again.transport, 'udp');
    await again.close();
  } finally {
    silent.close();
  }
}));

test('the same key gets its name back at once, after close() or a crash; another key waits for a crashed holder\'s lease', noLeaks(async () => {
  await using server = await startServer();
  const udp = server.udpEndpoints[0]!;
  const k1 = newIdentity();
  await (await register('carol', k1, { server: udp })).close();
  const crashed = await register('carol', k1, { server: udp });
  await crashed.crash();
  assert.equal(server.stats.unregistered, 1, 'a crash sends nothing');
  // The crashed registration is live: another key is refused, the same key moves it.
  await assert.rejects(register('carol', newIdentity(), { server: udp }), nameTaken);
  const restarted = await register('carol', k1, { server: udp });
  assert.equal(server.stats.reregistered, 1);
  await restarted.close();
  assert.equal(server.core.registrationCount, 0);
  await (await register('carol', newIdentity(), { server: udp })).close();
}));

test('close() waits no longer than closeTimeoutMs when the server has gone silent', noLeaks(async () => {
  const server = await startServer();
  const c = await register('dave', newIdentity(), { server: server.udpEndpoints[0]!, tcpServer: false, rtoMs: 20, closeTimeoutMs: 200 });
  await server.close();
  const started = Date.now();
  await c.close();
  const tookMs = Date.now() - started;
  assert.ok(tookMs >= 150 && tookMs < 2000, `close() took ${tookMs} ms`);
}));

interface Announced {
  readonly listening: readonly { transport: string; address: string; serves: string[] }[];
}

function at(info: Announced, transport: string, what: string): Endpoint {
  const l = info.listening.find((e) => e.transport === transport && e.serves.some((s) => s.startsWith(what)) && parseEndpoint(e.address).address === LOOPBACK);
  assert.ok(l, `${transport} ${what} in ${JSON.stringify(info.listening)}`);
  return parseEndpoint(l.address);
}

test('ConnectAgent.close(), then at once connect() under the same name against natkit serve: a new key and the old key both register', noLeaks(async () => {
  const serve = await startServerCommand<Announced, { rendezvous: { unregistered: number; errors: Record<string, number> } }>(
    env, 'serve', ['-l', LOOPBACK, '-l', '127.0.0.2', '-p', '0', '--alt-port', '0', '--rendezvous-port', '0', '--no-turn'],
  );
  let stopped = false;
  try {
    const base = (identity: RendezvousIdentity): ConnectOptions => ({
      env, name: 'erin', identity, localAddress: LOOPBACK, signal: AbortSignal.timeout(20_000),
      rendezvous: at(serve.info, 'udp', 'rendezvous'), rendezvousTcp: at(serve.info, 'tcp', 'rendezvous'),
    });
    const k1 = newIdentity();
    for (const identity of [k1, newIdentity(), newIdentity(), k1]) {
      const agent = await connect(base(identity));
      assert.equal(agent.rendezvous.transport, 'udp');
      await agent.close();
    }
    stopped = true;
    const stats = await serve.stop();
    assert.equal(stats.rendezvous.unregistered, 4);
    assert.equal(stats.rendezvous.errors['name-taken'], 0);
  } finally {
    if (!stopped) await serve.stop();
  }
}));
