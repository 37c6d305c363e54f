// fast-check properties of the punch checks and plans: any bytes are classified (a
// check, a response, a frame or a drop with its reason) and never throw; a check made
// with any credentials and transaction id is answered by the mirrored side only, and the
// answer reads back as that transaction; flipping one byte of a check never passes
// authentication as another request; any two NAT summaries give both sides one outcome;
// a sequential peer's mappings in any order give one prediction window, after the freshest.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { endpoint, type Endpoint } from '../../src/net/index.ts';
import { encodeCheck, planPunch, readInbound, type PairCredentials, type PunchOffer } from '../../src/punch/index.ts';
import type { Candidate, NatSummary } from '../../src/rendezvous/index.ts';
import { transactionKey } from '../../src/stun/index.ts';

const runs = { numRuns: 1000 };
const FROM: Endpoint = endpoint('198.18.0.7', 4000);
const word = (min: number): fc.Arbitrary<string> => fc.stringMatching(new RegExp(`^[A-Za-z0-9+/]{${min},32}$`));
const creds: fc.Arbitrary<PairCredentials> = fc.record({
  local: fc.record({ ufrag: word(4), password: word(22) }),
  remote: fc.record({ ufrag: word(4), password: word(22) }),
}).filter((c) => c.local.ufrag !== c.remote.ufrag);
const mirror = (c: PairCredentials): PairCredentials => ({ local: c.remote, remote: c.local });
const id = fc.uint8Array({ minLength: 12, maxLength: 12 });

test('any bytes are classified without throwing', () => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), creds, (data, c) => {
    const got = readInbound(data, FROM, c);
    assert.ok(['drop', 'data', 'upgrade'].includes(got.kind), `garbage authenticated as ${got.kind}`);
  }), runs);
});

test('a check is answered by the mirrored side only, and the answer names its transaction', () => {
  fc.assert(fc.property(creds, id, fc.boolean(), fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), (c, transactionId, useCandidate, tieBreaker) => {
    const bytes = encodeCheck({ transactionId, controlling: true, tieBreaker, useCandidate }, c);
    assert.equal(readInbound(bytes, FROM, c).kind, 'drop', 'the sender cannot answer its own check');
    const got = readInbound(bytes, FROM, mirror(c));
    assert.ok(got.kind === 'request' && got.useCandidate === useCandidate);
    assert.deepEqual(readInbound(got.response, FROM, c), { kind: 'response', transactionKey: transactionKey(transactionId) });
  }), runs);
});

test('one flipped byte of a check never authenticates', () => {
  fc.assert(fc.property(creds, id, fc.nat(), fc.integer({ min: 1, max: 255 }), (c, transactionId, at, flip) => {
    const bytes = encodeCheck({ transactionId, controlling: false, tieBreaker: 1n, useCandidate: false }, c);
    const i = at % bytes.length;
    bytes[i] = bytes[i]! ^ flip;
    // MESSAGE-INTEGRITY covers the header and every attribute before it, padding included
    // (RFC 8489 §14.5), FINGERPRINT the rest; a first byte turned into 0xD1/0xD2 reads as a frame.
    const got = readInbound(bytes, FROM, mirror(c));
    assert.ok(got.kind !== 'request' && got.kind !== 'response', `byte ${i} flipped, read as ${got.kind}`);
  }), runs);
});

const behaviour = fc.constantFrom('endpoint-independent', 'address-dependent', 'address-and-port-dependent', 'unknown');
const nat: fc.Arbitrary<NatSummary | undefined> = fc.option(fc.record({
  mapping: behaviour,
  filtering: behaviour,
  allocation: fc.oneof(
    fc.constantFrom({ kind: 'preserving' } as const, { kind: 'random' } as const, { kind: 'unknown' } as const),
    fc.integer({ min: -16, max: 16 }).filter((s) => s !== 0).map((step) => ({ kind: 'sequential', step }) as const),
  ),
  hairpinning: fc.option(fc.boolean(), { nil: undefined }),
}), { nil: undefined });
const candidate = (n: number): fc.Arbitrary<Candidate> => fc.record({
  kind: fc.constantFrom('host', 'server-reflexive', 'port-mapped', 'relayed'),
  transport: fc.constantFrom('udp', 'tcp'),
  endpoint: fc.integer({ min: 1, max: 65535 }).map((p) => endpoint(`198.18.0.${n}`, p)),
});
const peer = (n: number): fc.Arbitrary<PunchOffer> => fc.record({ candidates: fc.array(candidate(n), { maxLength: 8 }), nat });

test('any two offers: both sides reach the same outcome, within the stated packet budget', () => {
  fc.assert(fc.property(peer(1), peer(2), (a, b) => {
    const mine = planPunch(a, b);
    const theirs = planPunch(b, a);
    assert.equal(mine.outcome, theirs.outcome);
    const sent = mine.targets.reduce((n, t) => n + t.tries, 0) + (mine.birthdaySockets?.count ?? 0) * (mine.birthdaySockets?.tries ?? 0) + (mine.birthdayProbes?.count ?? 0);
    assert.equal(mine.packetBudget, sent);
  }), runs);
});

test('a sequential peer\'s mappings in any order: the window starts one step after the freshest', () => {
  const sequentialPeer = fc.record({
    step: fc.integer({ min: -16, max: 16 }).filter((s) => s !== 0),
    last: fc.integer({ min: 1024, max: 65535 }),
    // How many allocations before the freshest each other advertised mapping was made.
    ages: fc.uniqueArray(fc.integer({ min: 1, max: 40 }), { maxLength: 5 }),
    seed: fc.nat(),
  });
  const seq: NatSummary = { mapping: 'address-and-port-dependent', filtering: 'address-and-port-dependent', allocation: { kind: 'sequential', step: 1 }, hairpinning: false };
  const wrap = (p: number): number => 1024 + ((((p - 1024) % 64512) + 64512) % 64512);
  fc.assert(fc.property(sequentialPeer, ({ step, last, ages, seed }) => {
    const ports = [last, ...ages.map((age) => wrap(last - age * step))];
    // A deterministic shuffle of the list: the order must not matter.
    const shuffled = ports.map((p, i) => ({ p, k: (i * 7919 + seed) % 101 })).sort((x, y) => x.k - y.k).map((x) => x.p);
    const remote: PunchOffer = {
      candidates: shuffled.map((p) => ({ kind: 'server-reflexive', transport: 'udp', endpoint: endpoint('198.18.0.2', p) })),
      nat: { ...seq, allocation: { kind: 'sequential', step } },
    };
    const local: PunchOffer = { candidates: [{ kind: 'server-reflexive', transport: 'udp', endpoint: endpoint('198.18.0.1', 5000) }], nat: seq };
    const first = planPunch(local, remote).targets[0];
    assert.deepEqual(first, { endpoint: endpoint('198.18.0.2', wrap(last + step)), method: 'predicted', tries: 4 });
  }), runs);
});
