// secureConnection() over connect() in the simulated world: two peers find each other
// through `natkit serve` itself, then talk through a SecureSession while the dialer's router
// loses, duplicates and reorders packets. 200 messages each way arrive once and in order,
// and the server host (rendezvous and TURN relay) never receives a byte of plaintext.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { SimRouter, World } from '../../src/net/sim/index.ts';
import { connect, expectedOutcome, presetHost, type ConnectAgent, type ConnectOptions, type PeerConnection, type Preset } from '../../src/punch/index.ts';
import { identityFromSeed, type RendezvousIdentity } from '../../src/rendezvous/index.ts';
import { secureConnection, type SecureSession } from '../../src/session/index.ts';
import { SIM_TURN_USER, startSimServe, type SimServe } from '../../src/cli/sim-serve.ts';
import { simTest } from '../helpers/sim.ts';

const COUNT = 200;
const MARKER = 'plaintext-marker-7f3a';
const LOSSY = { delayMs: 10, jitterMs: 3, lossRate: 0.1, duplicateRate: 0.05, reorderRate: 0.1, reorderDelayMs: 15 };
const utf8 = new TextEncoder();
const text = (b: Uint8Array): string => new TextDecoder().decode(b);

function options(serve: SimServe, env: ConnectOptions['env'], identity: RendezvousIdentity, address: string, name: string): ConnectOptions {
  return { env, identity, name, localAddress: address, rendezvous: serve.endpoint, rendezvousTcp: serve.rendezvousTcp, turn: { server: serve.endpoint, ...SIM_TURN_USER } };
}

function nextConnection(agent: ConnectAgent): Promise<PeerConnection> {
  return new Promise((resolve) => {
    const off = agent.onConnection((conn) => {
      off();
      resolve(conn);
    });
  });
}

/** Every payload the server host receives (UDP datagrams and TCP data), as latin1 text. */
function tapServer(serve: SimServe): string[] {
  const seen: string[] = [];
  const network = serve.host.network;
  const receive = network.receive.bind(network);
  network.receive = (packet) => {
    seen.push(Buffer.from(packet.data).toString('latin1'));
    receive(packet);
  };
  return seen;
}

const CASES: readonly { readonly a: Preset; readonly b: Preset }[] = [
  { a: 'full-cone', b: 'udp-blocked' },
  { a: 'port-restricted', b: 'symmetric-seq' },
];

for (const [i, { a, b }] of CASES.entries()) {
  const expected = expectedOutcome(a, b);
  test(`secure session over connect(): ${a} dials ${b} (${expected}), lossy router link, ${COUNT} messages each way`, simTest({ seed: 900 + i }, async (world: World) => {
    const serve = await startSimServe(world);
    const seen = tapServer(serve);
    const aliceId = identityFromSeed(world.random.bytes(32));
    const bobId = identityFromSeed(world.random.bytes(32));
    const bobHost = presetHost(world, 'b', b);
    const listener = await world.run(connect(options(serve, bobHost.env, bobId, bobHost.address(), 'bob')));
    const answering = nextConnection(listener);
    const aliceHost = presetHost(world, 'a', a);
    const dialed = await world.run(connect({ ...options(serve, aliceHost.env, aliceId, aliceHost.address(), 'alice'), peer: 'bob' }));
    const answered = await world.run(answering);
    assert.equal(dialed.path.kind, expected === 'relay' ? 'relay' : 'direct');
    (world.node('a-r0') as SimRouter).link.set(LOSSY);

    const sessions: [SecureSession, SecureSession] = [
      secureConnection(dialed, { env: aliceHost.env, identity: aliceId }),
      secureConnection(answered, { env: bobHost.env, identity: bobId }),
    ];
    const got: [string[], string[]] = [[], []];
    sessions.forEach((s, k) => s.onMessage((m) => got[k]!.push(text(m))));
    const [alicePeer, bobPeer] = await world.run(Promise.all([sessions[0].opened(), sessions[1].opened()]));
    assert.deepEqual(alicePeer.identityKey, dialed.peer.publicKey);
    assert.deepEqual(bobPeer.identityKey, answered.peer.publicKey);

    const sent = (who: string): string[] => Array.from({ length: COUNT }, (_, n) => `${MARKER} from ${who} #${n}`);
    for (const m of sent('alice')) sessions[0].send(utf8.encode(m));
    for (const m of sent('bob')) sessions[1].send(utf8.encode(m));
    for (let t = 0; t < 60 && (got[0].length < COUNT || got[1].length < COUNT); t++) await world.elapse(1000);
    assert.deepEqual(got[1], sent('alice'), 'bob got alice\'s messages once each, in order');
    assert.deepEqual(got[0], sent('bob'), 'alice got bob\'s messages once each, in order');
    const retransmitted = sessions.reduce((n, s) => n + s.stats.reliable.retransmissions, 0);
    assert.ok(retransmitted > 0, 'the lossy link cost retransmissions');

    assert.ok(seen.length > 0);
    assert.equal(seen.filter((p) => p.includes(MARKER)).length, 0, 'the server saw plaintext');
    if (expected === 'relay') assert.ok(seen.length > 2 * COUNT / 10, 'the relay carried the messages');

    for (const s of sessions) await world.run(s.close());
    await world.run(dialed.close());
    await world.run(listener.close());
    assert.equal(await serve.stop(), 0);
  }));
}
