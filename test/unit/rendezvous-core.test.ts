// The rendezvous server core, fed frames by hand on a fake clock: registration with the
// challenge and key binding (takeover refused, the same key may move), expiry without
// keepalive, UNREGISTER by the holder only, CONNECT ordering both sides, rooms introducing
// every pair once, no reflection (every send goes to an address the core saw a packet
// from), rate limits and the amplification rule.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { endpoint, endpointKey, type Endpoint, type Random } from '../../src/net/index.ts';
import {
  CHALLENGE_BYTES, HEADER_BYTES, RendezvousCore, decodeFrame, encodeFrame, errorCodeName, identityFromSeed, registerSignedData,
  type CoreResult, type MessageOf, type RendezvousCoreOptions, type RendezvousIdentity, type RendezvousMessage,
} from '../../src/rendezvous/index.ts';

/** Deterministic bytes: a counter. */
function counterRandom(): Random {
  let n = 0;
  return { bytes: (k) => Uint8Array.from({ length: k }, () => n++ & 0xff) };
}

const ids = new Map<string, RendezvousIdentity>();
const identity = (who: string): RendezvousIdentity => {
  let id = ids.get(who);
  if (id === undefined) ids.set(who, (id = identityFromSeed(new Uint8Array(32).fill(who.charCodeAt(0)))));
  return id;
};
const A = endpoint('203.0.113.1', 40001);
const B = endpoint('198.51.100.2', 50002);
const C = endpoint('192.0.2.3', 60003);
const VICTIM = endpoint('192.0.2.99', 53);
let txCounter = 0;
const tx = (): Uint8Array => Uint8Array.from([0xaa, 0, 0, 0, 0, 0, 0, txCounter++ & 0xff]);

class Harness {
  readonly core: RendezvousCore<string>;
  now = 1000;
  /** Every send the core made: destination key and decoded message. */
  readonly sent: { to: string; link: string; message: RendezvousMessage }[] = [];

  constructor(options: Omit<RendezvousCoreOptions, 'random'> = {}) {
    this.core = new RendezvousCore<string>({ random: counterRandom(), rateLimit: false, ...options });
  }

  feed(message: RendezvousMessage | Uint8Array, from: Endpoint, link = 'udp0', transport: 'udp' | 'tcp' = 'udp'): CoreResult<string> & { messages: RendezvousMessage[] } {
    const data = message instanceof Uint8Array ? message : encodeFrame(message);
    const result = this.core.handle({ data, from, link, transport, now: this.now });
    const messages = result.sends.map((s) => decodeFrame(s.data));
    result.sends.forEach((s, i) => this.sent.push({ to: endpointKey(s.to), link: s.link, message: messages[i]! }));
    return { ...result, messages };
  }

  /** HELLO, CHALLENGE, REGISTER: the answer to REGISTER. */
  register(name: string, from: Endpoint, who = name, options: { link?: string; transport?: 'udp' | 'tcp'; candidates?: MessageOf<'register'>['candidates'] } = {}): RendezvousMessage {
    const link = options.link ?? 'udp0';
    const [challenge] = this.feed({ type: 'hello', transactionId: tx(), padding: CHALLENGE_BYTES - HEADER_BYTES - 3 }, from, link, options.transport).messages;
    assert.ok(challenge?.type === 'challenge');
    this.now += 20;
    const id = identity(who);
    const signature = id.sign(registerSignedData(challenge.nonce, new TextEncoder().encode(name), id.publicKey));
    const [reply] = this.feed({
      type: 'register', transactionId: tx(), name, publicKey: id.publicKey, nonce: challenge.nonce, signature, candidates: options.candidates ?? [],
    }, from, link, options.transport).messages;
    assert.ok(reply !== undefined);
    return reply;
  }

  /** Registers and returns the session token. */
  session(name: string, from: Endpoint, options: Parameters<Harness['register']>[3] = {}): Uint8Array {
    const reply = this.register(name, from, name, options);
    assert.ok(reply.type === 'registered', `expected registered, got ${JSON.stringify(reply)}`);
    return reply.session;
  }
}

const errorOf = (m: RendezvousMessage | undefined): string => (m?.type === 'error' ? errorCodeName(m.code) : `not an error: ${m?.type}`);

test('REGISTER answers with the observed address, the lease and a session', () => {
  const h = new Harness();
  const reply = h.register('alice', A);
  assert.ok(reply.type === 'registered');
  assert.deepEqual(reply.reflexive, A);
  assert.deepEqual(reply.timers, { leaseS: 30, keepaliveS: 10 });
  assert.equal(reply.serverTimeMs, h.now);
  assert.equal(h.core.stats.registered, 1);
});

test('a name cannot be taken over by another key until it expires', () => {
  const h = new Harness();
  h.session('alice', A);
  assert.equal(errorOf(h.register('alice', B, 'mallory')), 'name-taken');
  h.now += 30_000;
  assert.equal(h.register('alice', B, 'mallory').type, 'registered');
});

test('the same key re-registers from a new address; the old session is gone', () => {
  const h = new Harness();
  const old = h.session('alice', A);
  const moved = h.register('alice', B);
  assert.ok(moved.type === 'registered');
  assert.deepEqual(moved.reflexive, B);
  assert.equal(errorOf(h.feed({ type: 'keepalive', transactionId: tx(), session: old }, A).messages[0]), 'not-registered');
  assert.equal(h.feed({ type: 'keepalive', transactionId: tx(), session: moved.session }, B).messages[0]?.type, 'registered');
  assert.equal(h.core.stats.reregistered, 1);
});

test('a session only works from its registered address and link', () => {
  const h = new Harness();
  const s = h.session('alice', A);
  assert.equal(errorOf(h.feed({ type: 'keepalive', transactionId: tx(), session: s }, B).messages[0]), 'not-registered');
  assert.equal(errorOf(h.feed({ type: 'keepalive', transactionId: tx(), session: s }, A, 'udp1').messages[0]), 'not-registered');
});

test('a registration expires without keepalive; keepalives keep it', () => {
  const h = new Harness();
  const a = h.session('alice', A);
  const b = h.session('bob', B);
  for (let i = 0; i < 5; i++) {
    h.now += 10_000;
    assert.equal(h.feed({ type: 'keepalive', transactionId: tx(), session: a }, A).messages[0]?.type, 'registered');
  }
  // bob registered 50 s ago and never kept alive: his lease is the next to end.
  assert.equal(h.core.nextExpiry, h.now - 20_000);
  h.core.expire(h.now);
  assert.equal(h.core.registrationCount, 1);
  assert.equal(h.core.stats.expired, 1);
  assert.equal(errorOf(h.feed({ type: 'connect', transactionId: tx(), session: a, name: 'bob' }, A).messages[0]), 'not-found');
  assert.equal(errorOf(h.feed({ type: 'keepalive', transactionId: tx(), session: b }, B).messages[0]), 'not-registered');
});

test('the challenge proves the address: a nonce from elsewhere, an old one, or a bad signature is refused', () => {
  const h = new Harness();
  const [challenge] = h.feed({ type: 'hello', transactionId: tx(), padding: 40 }, A).messages;
  assert.ok(challenge?.type === 'challenge');
  const id = identity('alice');
  const register = (from: Endpoint, signature = id.sign(registerSignedData(challenge.nonce, new TextEncoder().encode('alice'), id.publicKey))): RendezvousMessage | undefined =>
    h.feed({ type: 'register', transactionId: tx(), name: 'alice', publicKey: id.publicKey, nonce: challenge.nonce, signature, candidates: [] }, from).messages[0];
  assert.equal(errorOf(register(B)), 'stale-nonce');
  assert.equal(errorOf(register(A, new Uint8Array(64))), 'bad-signature');
  assert.equal(errorOf(register(A, identity('mallory').sign(registerSignedData(challenge.nonce, new TextEncoder().encode('alice'), id.publicKey)))), 'bad-signature');
  h.now += 30_001;
  assert.equal(errorOf(register(A)), 'stale-nonce');
});

test('CONNECT orders both sides to punch, each with the other\'s observed address, key and a common start', () => {
  const h = new Harness();
  const a = h.session('alice', A, { candidates: [{ kind: 'host', transport: 'udp', endpoint: endpoint('10.0.0.2', 40001) }, { kind: 'server-reflexive', transport: 'udp', endpoint: A }] });
  h.session('bob', B);
  const connect = { type: 'connect', transactionId: tx(), session: a, name: 'bob' } as const;
  const r = h.feed(connect, A);
  assert.equal(r.sends.length, 2);
  assert.deepEqual(r.sends.map((s) => s.to), [A, B]);
  const [toA, toB] = r.messages;
  assert.ok(toA?.type === 'punch' && toB?.type === 'punch');
  assert.deepEqual(toA.transactionId, connect.transactionId);
  assert.equal(toA.name, 'bob');
  assert.deepEqual(toA.publicKey, identity('bob').publicKey);
  assert.deepEqual(toA.candidates, [{ kind: 'server-reflexive', transport: 'udp', endpoint: B }]);
  assert.equal(toB.name, 'alice');
  // The observed address first; the copy alice reported of it is not repeated.
  assert.deepEqual(toB.candidates.map((c) => endpointKey(c.endpoint)), [endpointKey(A), '10.0.0.2:40001']);
  assert.equal(toA.controlling, true);
  assert.equal(toB.controlling, false);
  assert.deepEqual(toA.pairId, toB.pairId);
  assert.equal(toA.startAtMs, toB.startAtMs);
  // RTTs of 20 ms (challenge to register): start = now + 10 + the 100 ms lead; each offset is its one-way delay.
  assert.equal(toA.startAtMs, h.now + 110);
  assert.equal(toA.offsetMs, 10);
  assert.equal(errorOf(h.feed({ type: 'connect', transactionId: tx(), session: a, name: 'carol' }, A).messages[0]), 'not-found');
  assert.equal(errorOf(h.feed({ type: 'connect', transactionId: tx(), session: a, name: 'alice' }, A).messages[0]), 'bad-request');
});

test('a retransmitted CONNECT gives the same pair id', () => {
  const h = new Harness();
  const a = h.session('alice', A);
  h.session('bob', B);
  const connect = { type: 'connect', transactionId: tx(), session: a, name: 'bob' } as const;
  const first = h.feed(connect, A).messages[0];
  h.now += 500;
  const again = h.feed(connect, A).messages[0];
  assert.ok(first?.type === 'punch' && again?.type === 'punch');
  assert.deepEqual(first.pairId, again.pairId);
  assert.equal(again.startAtMs, first.startAtMs + 500);
});

test('a room of three introduces each of the three pairs once; the room cap holds', () => {
  const h = new Harness({ maxRoomMembers: 3 });
  const sessions = [h.session('a', A), h.session('b', B), h.session('c', C)];
  const froms = [A, B, C];
  const pairs = new Set<string>();
  let punches = 0;
  sessions.forEach((session, i) => {
    const r = h.feed({ type: 'join', transactionId: tx(), session, room: 'pool' }, froms[i]!);
    assert.equal(r.messages[0]?.type, 'ok');
    for (const [j, m] of r.messages.entries()) {
      if (m.type !== 'punch') continue;
      punches++;
      assert.equal(m.room, 'pool');
      const self = endpointKey(r.sends[j]!.to);
      pairs.add([self, endpointKey(m.candidates[0]!.endpoint)].sort().join(' '));
      // The newcomer is controlling.
      assert.equal(m.controlling, self === endpointKey(froms[i]!));
    }
  });
  assert.equal(punches, 6);
  assert.equal(pairs.size, 3);
  const d = h.session('d', endpoint('192.0.2.4', 4));
  assert.equal(errorOf(h.feed({ type: 'join', transactionId: tx(), session: d, room: 'pool' }, endpoint('192.0.2.4', 4)).messages[0]), 'room-full');
  assert.equal(h.feed({ type: 'leave', transactionId: tx(), session: sessions[0]!, room: 'pool' }, A).messages[0]?.type, 'ok');
  // OK, then b and c each meet d.
  assert.equal(h.feed({ type: 'join', transactionId: tx(), session: d, room: 'pool' }, endpoint('192.0.2.4', 4)).messages.length, 5);
});

test('no reflection: addresses written in payloads are relayed as data, never sent to', () => {
  const h = new Harness();
  const lie = [{ kind: 'host', transport: 'udp', endpoint: VICTIM }, { kind: 'relayed', transport: 'udp', endpoint: VICTIM }] as const;
  const a = h.session('alice', A, { candidates: [...lie] });
  const b = h.session('bob', B, { candidates: [...lie] });
  h.feed({ type: 'connect', transactionId: tx(), session: a, name: 'bob' }, A);
  h.feed({ type: 'join', transactionId: tx(), session: a, room: 'r' }, A);
  h.feed({ type: 'join', transactionId: tx(), session: b, room: 'r' }, B);
  // A frame carrying an address TLV the server does not know of.
  h.feed(Uint8Array.from([...encodeFrame({ type: 'keepalive', transactionId: tx(), session: a }), 0x07, 0, 7, 4, 0, 53, 192, 0, 2, 99].map((v, i) => (i === 5 ? v + 10 : v))), A);
  const destinations = new Set(h.sent.map((s) => s.to));
  assert.deepEqual([...destinations].sort(), [endpointKey(A), endpointKey(B)].sort());
  assert.ok(h.sent.some((s) => s.message.type === 'punch' && s.message.candidates.some((c) => endpointKey(c.endpoint) === endpointKey(VICTIM))));
});

test('an unproven source never gets more bytes than it sent', () => {
  const h = new Harness();
  // A bare HELLO is smaller than the CHALLENGE: dropped.
  const r = h.feed({ type: 'hello', transactionId: tx() }, A);
  assert.equal(r.drop, 'hello-too-small');
  // A header-only frame of an unknown type: the ERROR would be larger, so nothing.
  assert.equal(h.feed(Uint8Array.from([0xd0, 1, 0x7f, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8]), A).drop, 'amplification');
  // Every answer so far and later is at most the input's size, unless to a registered address.
  const version2 = Uint8Array.from([0xd0, 2, 0x01, 0, 0, 20, 1, 2, 3, 4, 5, 6, 7, 8, ...new Array<number>(20).fill(0)]);
  const v = h.feed(version2, A);
  assert.equal(errorOf(v.messages[0]), 'version-unsupported');
  assert.ok(v.messages[0]?.type === 'error');
  assert.deepEqual(v.messages[0].versions, { min: 1, max: 1 });
  assert.ok(v.sends[0]!.data.length <= version2.length);
  assert.equal(h.feed(Uint8Array.from([0x00, 0x01, 0, 0]), A).drop, 'malformed');
  assert.equal(h.feed({ type: 'ok', transactionId: tx() }, A).drop, 'unexpected');
});

test('per-source rate limit drops; the introduction limit answers rate-limited', () => {
  const h = new Harness({ rateLimit: { ratePerS: 1, burst: 5 }, introductionLimit: { ratePerS: 1, burst: 2 } });
  for (let i = 0; i < 5; i++) h.feed({ type: 'hello', transactionId: tx(), padding: 40 }, VICTIM);
  assert.equal(h.feed({ type: 'hello', transactionId: tx(), padding: 40 }, VICTIM).drop, 'rate-limited');
  assert.equal(h.core.stats.dropped['rate-limited'], 1);
  const a = h.session('alice', A);
  h.session('bob', B);
  h.now += 10_000;
  const connect = (): RendezvousMessage | undefined => h.feed({ type: 'connect', transactionId: tx(), session: a, name: 'bob' }, A).messages[0];
  assert.equal(connect()?.type, 'punch');
  assert.equal(connect()?.type, 'punch');
  assert.equal(errorOf(connect()), 'rate-limited');
});

test('tables are bounded: registrations and rooms', () => {
  const h = new Harness({ maxRegistrations: 2, maxRooms: 1, maxRoomsPerPeer: 1 });
  const a = h.session('a', A);
  h.session('b', B);
  assert.equal(errorOf(h.register('c', C)), 'capacity');
  assert.equal(h.feed({ type: 'join', transactionId: tx(), session: a, room: 'one' }, A).messages[0]?.type, 'ok');
  assert.equal(errorOf(h.feed({ type: 'join', transactionId: tx(), session: a, room: 'two' }, A).messages[0]), 'capacity');
  h.now += 31_000;
  assert.equal(h.register('c', C).type, 'registered');
  assert.equal(h.core.roomCount, 0);
});

test('UNREGISTER frees the name at once for another key and leaves the rooms', () => {
  const h = new Harness();
  const a = h.session('alice', A);
  const b = h.session('bob', B);
  assert.equal(h.feed({ type: 'join', transactionId: tx(), session: a, room: 'pool' }, A).messages[0]?.type, 'ok');
  assert.equal(errorOf(h.register('alice', C, 'mallory')), 'name-taken');
  const txid = tx();
  const r = h.feed({ type: 'unregister', transactionId: txid, session: a }, A);
  assert.deepEqual(r.messages, [{ type: 'ok', transactionId: txid }]);
  assert.deepEqual(r.sends.map((s) => endpointKey(s.to)), [endpointKey(A)]);
  assert.equal(h.core.stats.unregistered, 1);
  assert.equal(h.core.registrationCount, 1);
  assert.equal(h.core.roomCount, 0);
  // No waiting for the lease: another key takes the name now; the old session is dead.
  assert.equal(errorOf(h.feed({ type: 'connect', transactionId: tx(), session: b, name: 'alice' }, B).messages[0]), 'not-found');
  assert.equal(h.register('alice', C, 'mallory').type, 'registered');
  assert.equal(errorOf(h.feed({ type: 'keepalive', transactionId: tx(), session: a }, A).messages[0]), 'not-registered');
  assert.equal(errorOf(h.feed({ type: 'unregister', transactionId: tx(), session: a }, A).messages[0]), 'not-registered');
  assert.equal(h.core.stats.unregistered, 1);
});

test('UNREGISTER from another address, link or session is refused and frees nothing', () => {
  const h = new Harness();
  const a = h.session('alice', A);
  const b = h.session('bob', B);
  const tcp = h.session('carol', C, { link: 'stream-1', transport: 'tcp' });
  const cases: { name: string; session: Uint8Array; from: Endpoint; link?: string }[] = [
    { name: 'alice\'s session from bob\'s address', session: a, from: B },
    { name: 'alice\'s session from another address', session: a, from: VICTIM },
    { name: 'alice\'s session on another link', session: a, from: A, link: 'udp1' },
    { name: 'bob\'s session from alice\'s address', session: b, from: A },
    { name: 'an unknown session', session: new Uint8Array(16).fill(0xee), from: A },
    { name: 'carol\'s session over UDP from her TCP address', session: tcp, from: C },
  ];
  for (const c of cases) {
    assert.equal(errorOf(h.feed({ type: 'unregister', transactionId: tx(), session: c.session }, c.from, c.link).messages[0]), 'not-registered', c.name);
  }
  assert.equal(h.core.stats.unregistered, 0);
  assert.equal(h.core.registrationCount, 3);
  assert.equal(errorOf(h.register('alice', VICTIM, 'mallory')), 'name-taken');
  // Over its own stream, carol's UNREGISTER counts.
  assert.equal(h.feed({ type: 'unregister', transactionId: tx(), session: tcp }, C, 'stream-1', 'tcp').messages[0]?.type, 'ok');
  assert.equal(h.core.registrationCount, 2);
});

test('a TCP registration ends with its stream', () => {
  const h = new Harness();
  h.session('alice', A, { link: 'stream-1', transport: 'tcp' });
  assert.equal(h.core.registrationCount, 1);
  h.core.linkClosed('stream-1');
  assert.equal(h.core.registrationCount, 0);
});
