// Four `natkit chat lobby --json` clients behind four kernel NATs of the lab
// (test/lab/lib/chat-lab.ts): alice behind a symmetric NAT with random ports, bob behind a
// port-restricted cone, carol behind a full cone — the issue's three — and dave behind a
// second random symmetric NAT, so that one pair (alice × dave) can only meet through the
// relay, all meeting through `natkit serve` on a public host (TURN credentials given). Each pair
// must join on the path kind the punch matrix expects for its NATs (expectPair, read from
// src/punch/presets.ts through the routers' truth), the same kind on both sides, and each
// reported path must be the one the routers' conntrack tables really carry. Then every
// member says N messages (spaces, Unicode, a newline) in the room: each other member gets
// exactly those, once each, in order, and confirms each one; a private message reaches
// its receiver alone; members quit cleanly (exit 0) and the others see them leave. A small
// table of the pairs is printed at the end. Needs root: without it every test fails with
// the reason.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import {
  buildChatLab, describeAll, expectChatPair, missingNatFacts, judgePathEnds, natFlows, startChat,
  type ChatEventJson, type ChatEventOf, type ChatLab, type ChatPathJson, type ChatProcess,
} from './lib/chat-lab.ts';
import type { NatPreset } from './lib/nat-rules.ts';
import { Lab } from './lib/topology.ts';

const ROOM = 'lobby';
const MEMBERS: readonly { readonly name: string; readonly preset: NatPreset }[] = [
  { name: 'alice', preset: 'symmetric' },
  { name: 'bob', preset: 'port-restricted-cone' },
  { name: 'carol', preset: 'full-cone' },
  { name: 'dave', preset: 'symmetric' },
];
/** Room messages each member sends. */
const MESSAGES = 30;
/** Bounds of the waits, ms. */
const READY_MS = 30_000;
const JOIN_MS = 30_000;
const DELIVERY_MS = 30_000;
const PATH_MS = 5_000;
const LEFT_MS = 10_000;
const EXIT_MS = 10_000;

/** The i-th room message of `from`: spaces, accents, an emoji and a newline. */
function roomText(from: string, i: number): string {
  return `${from} says #${String(i).padStart(2, '0')}: héllo 👋 wörld\n  second line of ${i} — ünïcödé ✓`;
}
const PRIVATE_TEXT = 'psst carol: only you 🤫\nsee this';

/** One unordered pair of members, the first as MEMBERS lists them. */
interface Pair {
  readonly a: ChatProcess;
  readonly b: ChatProcess;
}

/** What the table prints per pair. */
interface Measured {
  readonly pair: string;
  readonly plan: string;
  readonly kinds: string;
  readonly joinedMs: readonly [number, number];
}

/** The peer `name` as `self` last reported its path: the joined event, then each path event after it. */
function reportedPath(self: ChatProcess, name: string): ChatPathJson | undefined {
  let path: ChatPathJson | undefined;
  for (const e of self.events()) {
    if (e.event === 'joined' && e.peer.name === name) path = e.peer.path;
    if (e.event === 'path' && e.peer === name) path = e.path;
  }
  return path;
}

/** The plan `self`'s PUNCH order toward `peer` announced ("… plan direct-birthday: …"), if any. */
function announcedPlan(self: ChatProcess, peer: string): string | undefined {
  const order = self.eventsOf('progress').find((e) => e.step === 'order' && e.peer === peer);
  return order === undefined ? undefined : /\bplan ([a-z-]+):/.exec(order.detail)?.[1];
}

function joinedEvent(self: ChatProcess, name: string): ChatEventOf<'joined'> | undefined {
  return self.eventsOf('joined').find((e) => e.peer.name === name);
}

describe('chat clients behind a symmetric, a port-restricted cone, a full cone and a second symmetric kernel NAT', () => {
  let lab: Lab | undefined;
  let chatLab: ChatLab | undefined;
  let members: ChatProcess[] = [];
  const measured: Measured[] = [];
  const timings: string[] = [];

  const pairs = (): Pair[] => members.flatMap((a, i) => members.slice(i + 1).map((b) => ({ a, b })));
  const others = (self: ChatProcess): ChatProcess[] => members.filter((m) => m !== self);
  /** Runs a test's body; a failure carries every member's exit status, stderr and last events. */
  const withContext = (body: () => Promise<void>) => async (): Promise<void> => {
    assert.equal(members.length, MEMBERS.length, 'the members were started (see the first failure)');
    try {
      await body();
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      throw new Error(`${message}\n${describeAll(members)}`, { cause: err });
    }
  };

  before(async () => {
    lab = await Lab.create();
    chatLab = await buildChatLab(lab, MEMBERS);
    members = chatLab.sites.map((site) => startChat(chatLab!, site, { room: ROOM }));
  });

  after(async () => {
    const names = lab?.namespaceNames ?? [];
    await lab?.close();
    assert.deepEqual(names.filter((n) => existsSync(`/run/netns/${n}`)), [], 'the lab removed every namespace it made');
    const rows = measured.map((m) => `${m.pair.padEnd(52)} ${m.plan.padEnd(16)} ${m.kinds.padEnd(36)} ${String(m.joinedMs[0]).padStart(5)} / ${String(m.joinedMs[1]).padStart(5)} ms`);
    process.stdout.write(`\nlab chat pairs (pair; plan; path kind (method) a→b / b→a; joined after, ms since each client started a / b)\n${rows.join('\n')}\n${timings.join('\n')}\n`);
  });

  test('each member is ready in the room and reports its NAT as the router behaves', { timeout: READY_MS + 5_000 }, withContext(async () => {
    const ready = await Promise.all(members.map((m) => m.waitFor('ready event', (events) => events.find((e): e is ChatEventOf<'ready'> => e.event === 'ready'), READY_MS)));
    for (const [i, m] of members.entries()) {
      const r = ready[i]!;
      assert.equal(r.name, m.name);
      assert.equal(r.room, ROOM);
      assert.deepEqual(r.history, [], `${m.name} starts with an empty state directory`);
      assert.deepEqual(missingNatFacts(r.nat, m.site.preset), [], `${m.name} behind ${m.site.preset} reports ${JSON.stringify(r.nat)}`);
    }
  }));

  test('every member joins every other on the path the NAT matrix expects, the same kind on both sides', { timeout: JOIN_MS + 10_000 }, withContext(async () => {
    await Promise.all(members.map((m) => m.waitFor(`joined events for ${others(m).map((o) => o.name).join(' and ')}`,
      () => (others(m).every((o) => joinedEvent(m, o.name) !== undefined) ? true : undefined), JOIN_MS)));
    const wrong: string[] = [];
    for (const { a, b } of pairs()) {
      const expected = expectChatPair(a.site.preset, b.site.preset);
      const [ja, jb] = [joinedEvent(a, b.name)!, joinedEvent(b, a.name)!];
      const [pa, pb] = [ja.peer.path, jb.peer.path];
      const [plA, plB] = [announcedPlan(a, b.name), announcedPlan(b, a.name)];
      measured.push({
        pair: `${a.name} (${a.site.preset}) × ${b.name} (${b.site.preset})`, plan: plA ?? '?',
        kinds: `${pa.kind} (${pa.method}) / ${pb.kind} (${pb.method})`, joinedMs: [ja.atMs, jb.atMs],
      });
      const name = `${a.name} × ${b.name}`;
      if (pa.kind !== pb.kind) wrong.push(`${name}: ${a.name} reports ${pa.kind}, ${b.name} reports ${pb.kind}`);
      if (pa.kind !== expected.kind) wrong.push(`${name}: ${a.name} joined ${b.name} on ${pa.kind} (${pa.method}), expected ${expected.kind}`);
      if (pb.kind !== expected.kind) wrong.push(`${name}: ${b.name} joined ${a.name} on ${pb.kind} (${pb.method}), expected ${expected.kind}`);
      if (plA !== expected.outcome || plB !== expected.outcome) wrong.push(`${name}: plans ${plA ?? 'none'} / ${plB ?? 'none'}, expected ${expected.outcome}`);
      if (ja.peer.fingerprint !== b.eventsOf('ready')[0]?.fingerprint) wrong.push(`${name}: ${a.name} sees ${b.name}'s key ${ja.peer.fingerprint}, ${b.name} has ${b.eventsOf('ready')[0]?.fingerprint}`);
      if (jb.peer.fingerprint !== a.eventsOf('ready')[0]?.fingerprint) wrong.push(`${name}: ${b.name} sees ${a.name}'s key ${jb.peer.fingerprint}, ${a.name} has ${a.eventsOf('ready')[0]?.fingerprint}`);
      if (!ja.peer.inRoom || !jb.peer.inRoom) wrong.push(`${name}: not reported as room members of each other`);
    }
    assert.deepEqual(wrong, []);
  }));

  test('each reported path is the one the NAT routers really carry', { timeout: PATH_MS + 15_000 }, withContext(async () => {
    // The live paths (the `path` command answers with a detailed `who`), against what the events said.
    const asked = members.map((m) => m.eventsOf('who').length);
    for (const m of members) m.command({ type: 'path' });
    const now = await Promise.all(members.map((m, i) => m.waitFor('an answer to {"type":"path"}', () => m.eventsOf('who')[asked[i]!], PATH_MS)));
    const flows = await Promise.all(members.map((m) => natFlows(m.site.router)));
    const wrong: string[] = [];
    for (const [i, self] of members.entries()) {
      assert.deepEqual(now[i]!.peers.map((p) => p.name).sort(), others(self).map((o) => o.name).sort(), `${self.name}'s peers`);
      for (const peer of others(self)) {
        const live = now[i]!.peers.find((p) => p.name === peer.name)!.path;
        const reported = reportedPath(self, peer.name);
        if (JSON.stringify(live) !== JSON.stringify(reported)) wrong.push(`${self.name}→${peer.name}: path now ${JSON.stringify(live)}, last reported ${JSON.stringify(reported)}`);
        wrong.push(...judgePathEnds(live, self.site, peer.site, chatLab!.server));
        if (live.kind !== 'direct') continue;
        // The router holds a two-way flow from our socket to the far end, and the far end
        // sees it come from the endpoint its own path names.
        const theirs = now[members.indexOf(peer)]!.peers.find((p) => p.name === self.name)?.path;
        const flow = flows[i]!.find((f) => f.internal === live.local && f.peer === live.remote);
        if (flow === undefined) wrong.push(`${self.name}→${peer.name}: ${self.name}'s router has no flow ${live.local} → ${live.remote}`);
        else {
          if (!flow.replied) wrong.push(`${self.name}→${peer.name}: the flow ${live.local} → ${live.remote} was never answered`);
          if (theirs !== undefined && flow.external !== theirs.remote) wrong.push(`${self.name}→${peer.name}: the router maps ${live.local} to ${flow.external}, ${peer.name} talks to ${theirs.remote}`);
        }
      }
    }
    assert.deepEqual(wrong, []);
  }));

  test(`every member says ${MESSAGES} messages in the room: each other gets them once, in order, and confirms each`, { timeout: DELIVERY_MS + 10_000 }, withContext(async () => {
    const t0 = Date.now();
    for (let i = 0; i < MESSAGES; i++) for (const m of members) m.command({ type: 'send', text: roomText(m.name, i) });
    const roomMessages = (self: ChatProcess, from: string): ChatEventOf<'message'>[] =>
      self.eventsOf('message').filter((e) => e.from === from && e.room === ROOM);
    const sentOf = (m: ChatProcess): ChatEventOf<'sent'>[] => m.eventsOf('sent').filter((e) => e.room === ROOM);
    const deliveredAll = (m: ChatProcess): boolean => {
      const ids = new Set(sentOf(m).map((s) => s.id));
      const by = new Set(m.eventsOf('delivered').filter((d) => ids.has(d.id)).map((d) => `${d.id} ${d.by}`));
      return ids.size === MESSAGES && by.size === MESSAGES * others(m).length;
    };
    await Promise.all(members.map(async (m) => {
      await m.waitFor(`${MESSAGES} room messages from each of ${others(m).map((o) => o.name).join(', ')}`,
        () => (others(m).every((o) => roomMessages(m, o.name).length >= MESSAGES) ? true : undefined), DELIVERY_MS);
      await m.waitFor(`delivery marks from every other member for its ${MESSAGES} messages`, () => (deliveredAll(m) ? true : undefined), DELIVERY_MS);
    }));
    timings.push(`${MESSAGES} room messages from each of ${members.length} members, all received and confirmed in ${Date.now() - t0} ms`);
    for (const m of members) {
      const sent = sentOf(m);
      const texts = Array.from({ length: MESSAGES }, (_, i) => roomText(m.name, i));
      assert.deepEqual(sent.map((s) => s.text), texts, `${m.name}'s sent events, in order`);
      for (const s of sent) {
        assert.equal(s.to, null, `${m.name}: a room message has no receiver`);
        assert.deepEqual([...s.recipients].sort(), others(m).map((o) => o.name).sort(), `${m.name}: ${s.id} went to every other member`);
      }
      assert.equal(new Set(sent.map((s) => s.id)).size, MESSAGES, `${m.name}: message ids are unique`);
      assert.deepEqual(m.eventsOf('message').filter((e) => e.from === m.name), [], `${m.name} does not hear itself`);
      for (const o of others(m)) {
        const heard = roomMessages(o, m.name);
        assert.deepEqual(heard.map((e) => e.text), texts, `${o.name} heard ${m.name}'s room messages exactly, once each, in order`);
        assert.deepEqual(heard.map((e) => e.id), sent.map((s) => s.id), `${o.name} heard ${m.name}'s messages under the ids ${m.name} sent`);
        for (const s of sent) {
          const marks = m.eventsOf('delivered').filter((d) => d.id === s.id && d.by === o.name);
          assert.equal(marks.length, 1, `${m.name}: one delivery mark by ${o.name} for ${s.id}`);
        }
      }
      for (const s of sent) {
        const marks = m.eventsOf('delivered').filter((d) => d.id === s.id);
        assert.deepEqual(marks.map((d) => d.waiting).sort((x, y) => x - y), others(m).map((_, i) => i), `${m.name}: ${s.id} counted down its receivers to none`);
      }
      assert.deepEqual(m.eventsOf('undelivered'), [], `${m.name}: nothing undelivered`);
    }
  }));

  test('a private message from alice reaches carol alone', { timeout: DELIVERY_MS + 5_000 }, withContext(async () => {
    const [alice, bob, carol] = members as [ChatProcess, ChatProcess, ChatProcess];
    alice.command({ type: 'send', to: carol.name, text: PRIVATE_TEXT });
    const sent = await alice.waitFor('the sent event of the private message', (events) => events.find((e): e is ChatEventOf<'sent'> => e.event === 'sent' && e.to === carol.name), DELIVERY_MS);
    const heard = await carol.waitFor('the private message from alice', (events) => events.find((e): e is ChatEventOf<'message'> => e.event === 'message' && e.room === null), DELIVERY_MS);
    await alice.waitFor('carol\'s delivery mark of the private message', (events) => events.find((e) => e.event === 'delivered' && e.id === sent.id && e.by === carol.name), DELIVERY_MS);
    assert.equal(sent.room, null);
    assert.deepEqual(sent.recipients, [carol.name]);
    assert.equal(heard.from, alice.name);
    assert.equal(heard.text, PRIVATE_TEXT);
    assert.equal(heard.id, sent.id);
    const notFor = (m: ChatProcess): ChatEventJson[] => m.eventsOf('message').filter((e) => e.room === null || e.text === PRIVATE_TEXT);
    assert.deepEqual(notFor(bob), [], 'bob does not get it');
    assert.deepEqual(notFor(alice), [], 'alice does not hear it back');
    assert.equal(notFor(carol).length, 1, 'carol gets it once');
  }));

  test('bob quits first: the others see him leave; then all exit with code 0', { timeout: LEFT_MS + 2 * EXIT_MS + 5_000 }, withContext(async () => {
    const [, bob, carol] = members as [ChatProcess, ChatProcess, ChatProcess];
    const rest = members.filter((m) => m !== bob);
    bob.command({ type: 'quit' });
    const bobExit = await bob.exitWithin(EXIT_MS);
    assert.equal(bobExit, 0, 'bob exits with code 0');
    const left = await Promise.all(rest.map((m) => m.waitFor('a left event for bob', (events) => events.find((e) => e.event === 'left' && e.peer === bob.name), LEFT_MS)));
    timings.push(`bob quit: exited ${bobExit}; ${rest.map((m, i) => `${m.name} saw him leave at ${left[i]!.atMs} ms`).join(', ')} of their runs`);
    for (const m of rest) m.command({ type: 'quit' });
    const codes = await Promise.all(rest.map((m) => m.exitWithin(EXIT_MS)));
    assert.deepEqual(codes, rest.map(() => 0), 'the others exit with code 0');
    // Whatever else happened on the way out, nobody was refused, nothing failed, nothing but events on stdout.
    for (const m of members) {
      assert.deepEqual(m.eventsOf('refused'), [], `${m.name}: nobody refused`);
      assert.deepEqual(m.eventsOf('error'), [], `${m.name}: no error events`);
      assert.deepEqual(m.strayLines(), [], `${m.name}: only JSON events on stdout`);
      assert.deepEqual(m.eventsOf('message').filter((e) => e.room === null && m !== carol), [], `${m.name}: no private message`);
    }
    assert.equal(bob.eventsOf('left').length, 0, 'bob, who quit first, saw nobody leave');
  }));
});
