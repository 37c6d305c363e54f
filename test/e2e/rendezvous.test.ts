// The rendezvous server and client on real loopback sockets (NodeNetwork): registration
// and CONNECT over UDP, the TCP fallback when UDP goes unanswered, and a garbage flood
// the server survives and keeps serving through. Every test checks nothing is left open.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { generateKeyPairSync } from 'node:crypto';
import { once } from 'node:events';
import { PacketMux, endpoint, type PacketSocket } from '../../src/net/index.ts';
import { nodeEnv } from '../../src/net/node/index.ts';
import {
  MUX_RENDEZVOUS, RendezvousClient, RendezvousServer, identityFromKey, type PunchOrder, type RendezvousClientOptions,
} from '../../src/rendezvous/index.ts';
import { noLeaks } from '../helpers/leaks.ts';

const LOOPBACK = '127.0.0.1';

const startServer = (): Promise<RendezvousServer> =>
  RendezvousServer.start({ env: nodeEnv(), udp: [{ address: LOOPBACK, port: 0 }], tcp: [{ address: LOOPBACK, port: 0 }] });

/** A client on a fresh muxed socket; disposing it closes both. */
async function client(name: string, options: Partial<RendezvousClientOptions> & Pick<RendezvousClientOptions, 'server'>): Promise<RendezvousClient & { socket: PacketSocket }> {
  const env = nodeEnv();
  const mux = new PacketMux(await env.network.bindUdp({ address: LOOPBACK }));
  try {
    const c = await RendezvousClient.register({ env, socket: mux.route(MUX_RENDEZVOUS), name, identity: identityFromKey(generateKeyPairSync('ed25519').privateKey), ...options });
    const close = c.close.bind(c);
    return Object.assign(c, { socket: mux.socket, close: async () => { await close(); await mux.close(); } });
  } catch (err) {
    await mux.close();
    throw err;
  }
}

/** Resolves with the next PUNCH order the client receives. */
const nextOrder = (c: RendezvousClient): Promise<PunchOrder> => c.punches().next().then((r) => {
  assert.ok(r.done !== true);
  return r.value;
});

test('UDP: two peers register, CONNECT gives both an order with the other\'s address', noLeaks(async () => {
  await using server = await startServer();
  const [udp] = server.udpEndpoints;
  assert.ok(udp !== undefined);
  const alice = await client('alice', { server: udp });
  const bob = await client('bob', { server: udp });
  try {
    assert.deepEqual(alice.reflexive, alice.socket.local);
    assert.equal(alice.transport, 'udp');
    const bobsOrder = nextOrder(bob);
    const order = await alice.connect('bob');
    const other = await bobsOrder;
    assert.deepEqual(order.peer.candidates[0]?.endpoint, bob.socket.local);
    assert.deepEqual(other.peer.candidates[0]?.endpoint, alice.socket.local);
    assert.equal(order.pairId, other.pairId);
    assert.ok(Math.abs(order.startAtMs - other.startAtMs) < 50);
    await assert.rejects(alice.connect('carol'), (err: unknown) => err instanceof Error && 'reason' in err && err.reason === 'not-found');
  } finally {
    await alice.close();
    await bob.close();
  }
}));

test('TCP fallback: a server that never answers on UDP is reached over TCP', noLeaks(async () => {
  await using server = await startServer();
  const silent = createSocket('udp4');
  silent.bind(0, LOOPBACK);
  await once(silent, 'listening');
  try {
    const c = await client('carol', { server: endpoint(LOOPBACK, silent.address().port), tcpServer: server.tcpEndpoints[0]!, rtoMs: 50, maxTransmissions: 2 });
    try {
      assert.equal(c.transport, 'tcp');
      assert.equal(server.stats.registered, 1);
      assert.equal(server.stats.streams.active, 1);
    } finally {
      await c.close();
    }
  } finally {
    silent.close();
  }
}));

test('garbage flood: 20k datagrams, half of them rendezvous-shaped, and the server still serves', noLeaks(async () => {
  await using server = await startServer();
  const [udp] = server.udpEndpoints;
  assert.ok(udp !== undefined);
  const flooder = createSocket('udp4');
  // Another source address: the per-source limiter throttles the flood, not the peer.
  flooder.bind(0, '127.0.0.2');
  await once(flooder, 'listening');
  let seed = 0x5eed;
  const random = (): number => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 16;
  try {
    for (let i = 0; i < 20_000; i++) {
      const data = Buffer.alloc(2 + (random() % 300), 0).map(() => random() & 0xff);
      if (i % 2 === 0) data.set([0xd0, 1]);
      flooder.send(data, udp.port, udp.address);
      if (i % 500 === 0) await new Promise((resolve) => setImmediate(resolve));
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
    const alice = await client('alice', { server: udp });
    await alice.close();
    const s = server.stats;
    assert.equal(s.internalErrors, 0);
    assert.equal(s.registered, 1);
    // The kernel may drop some of the flood; the limiter takes most of what arrives (burst 40).
    assert.ok(s.dropped['rate-limited'] > 1000 && s.dropped['rate-limited'] < s.received, `rate-limited ${s.dropped['rate-limited']} of ${s.received}`);
  } finally {
    flooder.close();
  }
}));
