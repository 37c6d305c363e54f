// connect() end to end in the simulated world: `natkit serve` itself on a server host
// (STUN 2×2, TURN and rendezvous sharing the primary socket), peers behind chosen NAT
// presets that measure, allocate, register and punch from one socket each. By name both
// ways, a relay-only pair, a same-LAN pair, a room of three, and path changes reported
// when a router forgets its mappings.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NAT_PRESETS, type SimHost, type World } from '../../src/net/sim/index.ts';
import { connect, expectedOutcome, presetHost, type ConnectAgent, type ConnectOptions, type PeerConnection, type Preset, type PunchedPath } from '../../src/punch/index.ts';
import { identityFromSeed } from '../../src/rendezvous/index.ts';
import { SIM_TURN_USER, startSimServe, type SimServe } from '../../src/cli/sim-serve.ts';
import { isNatkitError } from '../../src/util/index.ts';
import { simTest } from '../helpers/sim.ts';
import { flushMappings } from './punch-world.ts';

const utf8 = new TextEncoder();
const text = (b: Uint8Array): string => new TextDecoder().decode(b);

/** connect()'s options for `host` against the simulated server. */
function options(world: World, serve: SimServe, host: SimHost, name: string, extra: Partial<ConnectOptions> = {}): ConnectOptions {
  return {
    env: host.env, identity: identityFromSeed(world.random.bytes(32)), name, localAddress: host.address(),
    rendezvous: serve.endpoint, rendezvousTcp: serve.rendezvousTcp, turn: { server: serve.endpoint, ...SIM_TURN_USER },
    ...extra,
  };
}

/** Resolves with the next connection `agent` yields. */
function nextConnection(agent: ConnectAgent): Promise<PeerConnection> {
  return new Promise((resolve) => {
    const off = agent.onConnection((conn) => {
      off();
      resolve(conn);
    });
  });
}

/** One datagram each way between the dialer `a` and the answerer `b`; what arrived, sorted. */
async function exchange(world: World, a: PeerConnection, b: PeerConnection, label: string): Promise<string[]> {
  const got: string[] = [];
  a.onMessage((d) => got.push(`a got ${text(d)}`));
  b.onMessage((d) => got.push(`b got ${text(d)}`));
  a.send(utf8.encode(label));
  b.send(utf8.encode(label));
  await world.elapse(500);
  return got.sort();
}

/** `listener` listens behind `bPreset`, `dialer` behind `aPreset` connects to it by name. */
async function byName(world: World, aPreset: Preset, bPreset: Preset): Promise<{ serve: SimServe; dialed: PeerConnection; answered: PeerConnection; listener: ConnectAgent }> {
  const serve = await startSimServe(world);
  const listener = await world.run(connect(options(world, serve, presetHost(world, 'b', bPreset), 'bob')));
  const answering = nextConnection(listener);
  const dialed = await world.run(connect({ ...options(world, serve, presetHost(world, 'a', aPreset), 'alice'), peer: 'bob' }));
  const answered = await world.run(answering);
  return { serve, dialed, answered, listener };
}

const PAIRS: readonly (readonly [Preset, Preset])[] = [
  ['symmetric-seq', 'port-restricted'],
  ['port-restricted', 'symmetric-seq'],
  ['symmetric-random', 'symmetric-random'],
  ['full-cone', 'udp-blocked'],
];

for (const [i, [a, b]] of PAIRS.entries()) {
  const expected = expectedOutcome(a, b);
  test(`by name: ${a} dials ${b} → ${expected}`, simTest({ seed: 300 + i }, async (world) => {
    const { serve, dialed, answered, listener } = await byName(world, a, b);
    assert.equal(dialed.plan.outcome, expected, dialed.plan.reason);
    assert.equal(answered.plan.outcome, expected, answered.plan.reason);
    const kind = expected === 'relay' ? 'relay' : 'direct';
    assert.deepEqual([dialed.path.kind, answered.path.kind], [kind, kind]);
    assert.deepEqual([dialed.peer.name, answered.peer.name, dialed.controlling, answered.controlling], ['bob', 'alice', true, false]);
    assert.equal(answered.peer.fingerprint.length, 19);
    assert.deepEqual(await exchange(world, dialed, answered, 'hi'), ['a got hi', 'b got hi']);
    await world.run(dialed.close());
    await world.run(listener.close());
    assert.equal(answered.closed, true, 'closing the agent closes its connections');
    assert.equal(await serve.stop(), 0);
  }));
}

test('same LAN behind a non-hairpinning NAT: host candidates', simTest({ seed: 310 }, async (world) => {
  const serve = await startSimServe(world);
  const home = world.addRouter({ name: 'home', nat: NAT_PRESETS['port-restricted-cone'], ipv6: 'off' });
  const listener = await world.run(connect(options(world, serve, home.addHost({ name: 'b', ipv6: false }), 'bob')));
  const answering = nextConnection(listener);
  const dialed = await world.run(connect({ ...options(world, serve, home.addHost({ name: 'a', ipv6: false }), 'alice'), peer: 'bob' }));
  const answered = await world.run(answering);
  assert.deepEqual([dialed.path.method, answered.path.method], ['host', 'host']);
  assert.deepEqual(await exchange(world, dialed, answered, 'lan'), ['a got lan', 'b got lan']);
  await world.run(Promise.all([dialed.close(), listener.close()]));
  assert.equal(await serve.stop(), 0);
}));

test('a room of three: each member gets a connection to each other member, all on one socket', simTest({ seed: 311 }, async (world) => {
  const serve = await startSimServe(world);
  const presets: readonly Preset[] = ['port-restricted', 'symmetric-seq', 'full-cone'];
  const agents: ConnectAgent[] = [];
  const conns = new Map<string, PeerConnection[]>();
  let iterated: Promise<void> | undefined;
  for (const [i, preset] of presets.entries()) {
    const name = `m${i}`;
    conns.set(name, []);
    const agent = await world.run(connect({ ...options(world, serve, presetHost(world, name, preset), name), room: 'lobby' }));
    // m0 takes its connections from the async iterator (which ends when the agent closes), the others from the event.
    if (i === 0) {
      iterated = (async () => {
        for await (const c of agent) conns.get(name)!.push(c);
      })();
    } else agent.onConnection((c) => conns.get(name)!.push(c));
    agents.push(agent);
    await world.elapse(10_000);
  }
  const pairs = [...conns].flatMap(([me, list]) => list.map((c) => `${me}-${c.peer.name}`)).sort();
  assert.deepEqual(pairs, ['m0-m1', 'm0-m2', 'm1-m0', 'm1-m2', 'm2-m0', 'm2-m1']);
  for (const list of conns.values()) for (const c of list) assert.equal(c.path.kind, 'direct', `${c.peer.name}: ${JSON.stringify(c.path)}`);
  // Every member greets every other; each hears two greetings.
  const heard = new Map<string, string[]>([...conns.keys()].map((k) => [k, []]));
  for (const [me, list] of conns) for (const c of list) c.onMessage((d) => heard.get(me)!.push(text(d)));
  for (const [me, list] of conns) for (const c of list) c.send(utf8.encode(`from ${me}`));
  await world.elapse(500);
  assert.deepEqual(Object.fromEntries([...heard].map(([k, v]) => [k, v.sort()])), { m0: ['from m1', 'from m2'], m1: ['from m0', 'from m2'], m2: ['from m0', 'from m1'] });
  for (const agent of agents) await world.run(agent.close());
  await iterated;
  assert.equal(await serve.stop(), 0);
}));

test('a router that forgets its mappings: both sides report the move to the relay and back', simTest({ seed: 312 }, async (world) => {
  const serve = await startSimServe(world);
  const timers = { keepaliveMs: 5000, deadAfterMs: 15_000, upgradeIntervalMs: 20_000 };
  const listener = await world.run(connect(options(world, serve, presetHost(world, 'b', 'port-restricted'), 'bob', { punch: timers })));
  const answering = nextConnection(listener);
  const aRouter = world.addRouter({ name: 'a-home', nat: { ...NAT_PRESETS['port-restricted-cone'], portAllocation: { kind: 'random' } }, ipv6: 'off' });
  const dialed = await world.run(connect({ ...options(world, serve, aRouter.addHost({ name: 'a', ipv6: false }), 'alice', { punch: timers }), peer: 'bob' }));
  const answered = await world.run(answering);
  const changes: string[] = [];
  const watch = (who: string) => (p: PunchedPath): void => void changes.push(`${who} ${p.kind}`);
  dialed.onPathChange(watch('a'));
  answered.onPathChange(watch('b'));
  await world.elapse(10_000);
  flushMappings(aRouter);
  await world.elapse(timers.deadAfterMs + timers.upgradeIntervalMs + 10_000);
  assert.deepEqual(changes.filter((c) => c.startsWith('a')), ['a relay', 'a direct']);
  assert.deepEqual(changes.filter((c) => c.startsWith('b')), ['b relay', 'b direct']);
  assert.deepEqual(await exchange(world, dialed, answered, 'back'), ['a got back', 'b got back']);
  await world.run(Promise.all([dialed.close(), listener.close()]));
  assert.equal(await serve.stop(), 0);
}));

test('a peer that never answers: CONNECT is retried connectTries times, then ERR_TIMEOUT; nothing is left open', simTest({ seed: 313 }, async (world) => {
  const serve = await startSimServe(world);
  // Registered, but it answers no PUNCH order (as a peer that missed them would).
  const deaf = await world.run(connect(options(world, serve, presetHost(world, 'b', 'full-cone'), 'bob', { accept: false })));
  const steps: string[] = [];
  const startedAt = world.clock.now();
  const attempt = connect({
    ...options(world, serve, presetHost(world, 'a', 'port-restricted'), 'alice', { punch: { timeoutMs: 3000 }, connectTries: 2, onProgress: (p) => steps.push(p.step) }),
    peer: 'bob',
  });
  await assert.rejects(world.run(attempt), (err: unknown) => isNatkitError(err, 'ERR_TIMEOUT') && /no path after 2 introduction/.test((err as Error).message));
  assert.deepEqual(steps.filter((s) => s === 'connect' || s === 'retry'), ['connect', 'retry', 'connect', 'retry']);
  assert.ok(world.clock.now() - startedAt >= 6000, 'two punches of 3 s each');
  assert.equal(deaf.stats.ignoredOrders, 2);
  await world.run(deaf.close());
  assert.equal(await serve.stop(), 0);
}));

