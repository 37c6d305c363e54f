// ChatClient in the simulated world, through `natkit serve` itself: three members of a room
// behind a random symmetric NAT, a port-restricted cone and a full cone; each pair's path is
// what the NAT matrix says; every message reaches every other member once and in order,
// with a delivery mark per receiver; a private message reaches a peer outside the room (it
// is dialled by name); a refused key is refused; a member that leaves is reported as gone.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { World } from '../../src/net/sim/index.ts';
import { expectedOutcome, presetHost, type Preset } from '../../src/punch/index.ts';
import { identityFromSeed } from '../../src/rendezvous/index.ts';
import { ChatClient, displaySafe, type ChatEvent, type ChatOptions } from '../../src/chat/index.ts';
import { SIM_TURN_USER, startSimServe, type SimServe } from '../../src/cli/sim-serve.ts';
import { simTest } from '../helpers/sim.ts';

const ROOM = 'lobby';
const COUNT = 20;

interface Member {
  readonly name: string;
  readonly preset: Preset;
  readonly client: ChatClient;
  readonly events: ChatEvent[];
}

async function join(world: World, serve: SimServe, name: string, preset: Preset, extra: Partial<ChatOptions> = {}, room: string | null = ROOM): Promise<Member> {
  const host = presetHost(world, name, preset);
  const events: ChatEvent[] = [];
  const client = await world.run(ChatClient.start({
    env: host.env, identity: identityFromSeed(world.random.bytes(32)), name, ...(room !== null && { room }), localAddress: host.address(),
    rendezvous: serve.endpoint, rendezvousTcp: serve.rendezvousTcp, turn: { server: serve.endpoint, ...SIM_TURN_USER },
    wallClock: () => 1_700_000_000_000 + world.clock.now(),
    ...extra,
  }, (e) => events.push(e)));
  return { name, preset, client, events };
}

const messages = (m: Member, from?: string): string[] =>
  m.events.flatMap((e) => (e.kind === 'message' && (from === undefined || e.message.from === from) ? [e.message.text] : []));

async function until(world: World, done: () => boolean, seconds: number): Promise<void> {
  for (let t = 0; t < seconds * 10 && !done(); t++) await world.elapse(100);
}

test('a room of three behind symmetric, port-restricted and full-cone NATs: every message to every member, once, in order, paths as they are', simTest({ seed: 4242 }, async (world) => {
  const serve = await startSimServe(world);
  const members = [
    await join(world, serve, 'alice', 'symmetric-random'),
    await join(world, serve, 'bob', 'port-restricted'),
    await join(world, serve, 'carol', 'full-cone'),
  ];
  await until(world, () => members.every((m) => m.client.peers().length === 2), 30);
  for (const m of members) {
    const peers = m.client.peers();
    assert.deepEqual(peers.map((p) => p.name), members.filter((o) => o !== m).map((o) => o.name), `${m.name} sees the other two`);
    for (const p of peers) {
      const other = members.find((o) => o.name === p.name)!;
      const direct = expectedOutcome(m.preset, other.preset) !== 'relay';
      assert.equal(p.path.kind, direct ? 'direct' : 'relay', `${m.name} → ${p.name}`);
      assert.ok(p.inRoom);
    }
  }

  // Spaces, Unicode and several lines, and a terminal escape that must not pass.
  const said = (name: string): string[] => Array.from({ length: COUNT }, (_, n) => `${name} says #${n}: héllo wörld 👋\nsecond line`);
  const sent = new Set<string>();
  for (const m of members) for (const text of said(m.name)) sent.add(m.client.send(text).message.id);
  const evil = members[1]!.client.send('\u001b[2J\u001b]0;pwned\u0007 hi\u202e');
  await until(world, () => members.every((m) => messages(m).length === 2 * COUNT + (m.name === 'bob' ? 0 : 1)), 30);
  for (const m of members) {
    for (const o of members.filter((x) => x !== m)) {
      const expected = said(o.name);
      if (o.name === 'bob') expected.push(displaySafe('\u001b[2J\u001b]0;pwned\u0007 hi\u202e'));
      assert.deepEqual(messages(m, o.name), expected, `${m.name} got ${o.name}'s messages once each, in order`);
    }
  }
  assert.equal(members[0]!.events.flatMap((e) => (e.kind === 'message' && e.message.id === evil.message.id ? [e.message.text] : []))[0], '\ufffd[2J\ufffd]0;pwned\ufffd hi\ufffd');
  // Every message of each member was confirmed by both others.
  await until(world, () => members.every((m) => m.events.filter((e) => e.kind === 'delivered').length === 2 * (COUNT + (m.name === 'bob' ? 1 : 0))), 10);
  for (const m of members) {
    const marks = m.events.filter((e) => e.kind === 'delivered');
    assert.equal(marks.length, 2 * (COUNT + (m.name === 'bob' ? 1 : 0)), `${m.name}: a delivery mark per message and receiver`);
  }
  assert.equal(sent.size, 3 * COUNT, 'message ids are unique');

  // dave is in no room: carol reaches him by name.
  const dave = await join(world, serve, 'dave', 'port-restricted', {}, null);
  const secret = members[2]!.client.send('just for you, dave', { to: 'dave' });
  assert.deepEqual(secret.recipients, ['dave']);
  await until(world, () => messages(dave).length === 1 && members[2]!.events.some((e) => e.kind === 'delivered' && e.id === secret.message.id), 30);
  const got = dave.events.find((e) => e.kind === 'message');
  assert.ok(got?.kind === 'message');
  assert.equal(got.message.text, 'just for you, dave');
  assert.equal(got.message.room, undefined, 'private');
  assert.equal(got.message.from, 'carol');
  assert.deepEqual(dave.client.peers().map((p) => [p.name, p.inRoom]), [['carol', false]]);
  // A room message does not go to dave.
  assert.deepEqual([...members[2]!.client.send('room only').recipients].sort(), ['alice', 'bob']);

  // bob leaves: the others see him go.
  await world.run(members[1]!.client.close());
  await until(world, () => [members[0]!, members[2]!].every((m) => m.events.some((e) => e.kind === 'left' && e.name === 'bob')), 60);
  for (const m of [members[0]!, members[2]!]) assert.deepEqual(m.client.peers().map((p) => p.name).includes('bob'), false);

  for (const m of [members[0]!, members[2]!, dave]) await world.run(m.client.close());
  assert.equal(await serve.stop(), 0);
}));

test('a peer whose key is not trusted is refused before any session: no message reaches it', simTest({ seed: 4343 }, async (world) => {
  const serve = await startSimServe(world);
  const alice = await join(world, serve, 'alice', 'full-cone', { trust: (peer) => ({ trusted: peer.name !== 'mallory', note: 'test' }) });
  const mallory = await join(world, serve, 'mallory', 'full-cone');
  await until(world, () => alice.events.some((e) => e.kind === 'refused'), 30);
  const refused = alice.events.find((e) => e.kind === 'refused');
  assert.ok(refused?.kind === 'refused');
  assert.equal(refused.name, 'mallory');
  assert.deepEqual(alice.client.send('anyone?').recipients, []);
  await world.elapse(2000);
  assert.deepEqual(messages(mallory), []);
  assert.throws(() => alice.client.send('   '), { code: 'ERR_INVALID_ARGUMENT' });
  assert.throws(() => alice.client.send('me', { to: 'alice' }), { code: 'ERR_INVALID_ARGUMENT' });
  await world.run(alice.client.close());
  await world.run(mallory.client.close());
  assert.throws(() => alice.client.send('late'), { code: 'ERR_CLOSED' });
  assert.equal(await serve.stop(), 0);
}));

test('private talk: two peers dialling each other at once keep one session; a failed dial does not block the next', simTest({ seed: 4444 }, async (world) => {
  const serve = await startSimServe(world);
  const alice = await join(world, serve, 'alice', 'port-restricted', { dialTimeoutMs: 60_000 }, null);
  const bob = await join(world, serve, 'bob', 'full-cone', {}, null);
  // Both dial at once: each gets two connections, and both must keep the same one.
  const a1 = alice.client.send('hi bob', { to: 'bob' });
  const b1 = bob.client.send('hi alice', { to: 'alice' });
  await until(world, () => messages(alice).length === 1 && messages(bob).length === 1, 30);
  assert.deepEqual([messages(alice), messages(bob)], [['hi alice'], ['hi bob']]);
  const orders = (m: Member): number => m.events.filter((e) => e.kind === 'progress' && e.progress.step === 'order').length;
  assert.deepEqual([orders(alice), orders(bob)], [2, 2], 'the dials crossed: two introductions each');
  await world.elapse(15_000);
  assert.deepEqual(alice.client.peers().map((p) => p.name), ['bob'], 'alice still has a session with bob');
  assert.deepEqual(bob.client.peers().map((p) => p.name), ['alice'], 'bob still has a session with alice');
  assert.ok(!alice.events.some((e) => e.kind === 'left') && !bob.events.some((e) => e.kind === 'left'), 'nobody was dropped');
  const a2 = alice.client.send('still there?', { to: 'bob' });
  await until(world, () => messages(bob).length === 2, 10);
  assert.equal(messages(bob)[1], 'still there?');
  for (const [m, ids] of [[alice, [a1, a2]], [bob, [b1]]] as const) {
    for (const sent of ids) assert.ok(m.events.some((e) => e.kind === 'delivered' && e.id === sent.message.id), `${m.name}: ${sent.message.text} confirmed`);
  }
  // carol is not registered yet: the message is given up; once she is, the next one reaches her.
  const early = alice.client.send('carol?', { to: 'carol' });
  await until(world, () => alice.events.some((e) => e.kind === 'undelivered' && e.id === early.message.id), 60);
  const carol = await join(world, serve, 'carol', 'full-cone', {}, null);
  const late = alice.client.send('carol!', { to: 'carol' });
  await until(world, () => messages(carol).length === 1, 30);
  assert.deepEqual(messages(carol), ['carol!']);
  assert.ok(alice.events.some((e) => e.kind === 'delivered' && e.id === late.message.id));
  for (const m of [alice, bob, carol]) await world.run(m.client.close());
  assert.equal(await serve.stop(), 0);
}));
