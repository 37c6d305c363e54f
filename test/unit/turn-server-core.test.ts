// The sans-I/O TURN core against RFC 8656 message flows: Allocate (§7.2), Refresh (§7.5),
// CreatePermission (§9), Send/Data (§10), ChannelBind and ChannelData (§11, §12), long-term
// credentials (RFC 8489 §9.2), the peer policy and quotas. Each test checks the numbers
// that matter: lifetimes, error codes, and that no datagram crosses without a permission.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import {
  BINDING, MESSAGE_INTEGRITY, MESSAGE_INTEGRITY_SHA256, NONCE, PASSWORD_ALGORITHM, PASSWORD_ALGORITHMS, PasswordAlgorithm, REALM,
  StunClass, UNKNOWN_ATTRIBUTES, USERHASH, XOR_MAPPED_ADDRESS, attr, checkIntegrity, decodeMessage, encodeMessage, longTermKey, userhash,
  type AttrEntry,
} from '../../src/stun/index.ts';
import {
  ADDITIONAL_ADDRESS_FAMILY, ADDRESS_ERROR_CODE, ALLOCATE, CHANNEL_BIND, CHANNEL_NUMBER, CREATE_PERMISSION, DATA, DATA_ATTRIBUTE,
  DONT_FRAGMENT, EVEN_PORT, LIFETIME, PortPoolAllocator, REFRESH, REQUESTED_ADDRESS_FAMILY, REQUESTED_TRANSPORT, RESERVATION_TOKEN, SEND,
  XOR_PEER_ADDRESS, XOR_RELAYED_ADDRESS, allOf, encodeChannelData, type TurnResult,
} from '../../src/turn/index.ts';
import type { Endpoint } from '../../src/net/index.ts';
import {
  PEER, PEER2, PEER_V6, REALM_TEXT, RELAY_V4, RELAY_V6, TestClient, errorOf, fixedRandom, makeCore, newId, rawAttribute, replyOf,
} from '../fixtures/turn/harness.ts';

const UDP = attr(REQUESTED_TRANSPORT, 17);
const S = 1000;

/** An allocation for `c`; returns its relayed endpoints. */
function allocate(c: TestClient, extra: readonly AttrEntry[] = []): Endpoint[] {
  const reply = c.request(ALLOCATE, [UDP, ...extra]);
  assert.equal(errorOf(reply), undefined, `Allocate failed with ${errorOf(reply)}`);
  return allOf(reply, XOR_RELAYED_ADDRESS);
}

/** What a peer datagram to `relayed` produces. */
function fromPeer(c: TestClient, peer: Endpoint, relayed: Endpoint, data = Uint8Array.of(1, 2, 3)): TurnResult {
  return c.core.handlePeer({ data, peer, relayed, now: c.now });
}

function sendIndication(c: TestClient, peer: Endpoint, data: Uint8Array, extra: readonly AttrEntry[] = []): TurnResult {
  return c.send(encodeMessage({ method: SEND, cls: StunClass.INDICATION, transactionId: newId(), attributes: [attr(XOR_PEER_ADDRESS, peer), attr(DATA_ATTRIBUTE, data), ...extra] }));
}

const permit = (c: TestClient, ...peers: Endpoint[]): number | undefined =>
  errorOf(c.request(CREATE_PERMISSION, peers.map((p) => attr(XOR_PEER_ADDRESS, p))));

const bind = (c: TestClient, channel: number, peer: Endpoint): number | undefined =>
  errorOf(c.request(CHANNEL_BIND, [attr(CHANNEL_NUMBER, channel), attr(XOR_PEER_ADDRESS, peer)]));

const hex4 = (n: number): string => `0x${n.toString(16).padStart(4, '0')}`;

test('401 challenge: REALM, a nonce with the RFC 8489 cookie, PASSWORD-ALGORITHMS SHA-256 then MD5, no integrity', () => {
  const c = new TestClient(makeCore());
  const reply = c.request(ALLOCATE, [UDP], { anonymous: true });
  assert.equal(errorOf(reply), 401);
  assert.equal(reply.get(REALM), REALM_TEXT);
  assert.match(reply.get(NONCE) ?? '', /^obMatJos2wAAA[A-Za-z0-9_-]+$/);
  assert.deepEqual(reply.get(PASSWORD_ALGORITHMS)?.map((e) => e.algorithm), [PasswordAlgorithm.SHA256, PasswordAlgorithm.MD5]);
  assert.equal(reply.has(MESSAGE_INTEGRITY), false);
  assert.equal(c.core.allocationCount, 0);
});

test('Allocate: relayed IPv4 address in 49152–65535, LIFETIME 600, XOR-MAPPED-ADDRESS of the client, integrity', () => {
  const c = new TestClient(makeCore());
  const reply = c.request(ALLOCATE, [UDP]);
  assert.equal(reply.cls, StunClass.SUCCESS);
  const relayed = reply.get(XOR_RELAYED_ADDRESS)!;
  assert.equal(relayed.address, RELAY_V4);
  assert.ok(relayed.port >= 49152 && relayed.port <= 65535);
  assert.equal(reply.get(LIFETIME), 600);
  assert.deepEqual(reply.get(XOR_MAPPED_ADDRESS), c.tuple.client);
  assert.equal(checkIntegrity(reply, c.key), 'ok');
  assert.equal(c.core.allocationCount, 1);
});

const lifetimes: readonly { asked: number | undefined; max?: number; granted: number }[] = [
  { asked: undefined, granted: 600 },
  { asked: 0, granted: 600 },
  { asked: 60, granted: 600 },
  { asked: 1200, granted: 1200 },
  { asked: 99999, granted: 3600 },
  { asked: 5000, max: 1800, granted: 1800 },
];
for (const l of lifetimes) {
  test(`Allocate LIFETIME ${l.asked ?? 'absent'} (max ${l.max ?? 3600}) → ${l.granted} s, and it expires then (RFC 8656 §7.2)`, () => {
    const c = new TestClient(makeCore(l.max === undefined ? {} : { maxLifetimeS: l.max }));
    const reply = c.request(ALLOCATE, l.asked === undefined ? [UDP] : [UDP, attr(LIFETIME, l.asked)]);
    assert.equal(reply.get(LIFETIME), l.granted);
    const [relayed] = allOf(reply, XOR_RELAYED_ADDRESS);
    assert.equal(permit(c, PEER), undefined);
    c.now = l.granted * S - 1;
    c.core.expire(c.now);
    assert.equal(c.core.allocationCount, 1);
    c.now = l.granted * S;
    assert.equal(c.core.nextTimerAt(), l.granted * S);
    c.core.expire(c.now);
    assert.equal(c.core.allocationCount, 0);
    assert.equal(fromPeer(c, PEER, relayed!).drop, 'unknown-relay');
    assert.equal(c.core.stats.allocationsExpired, 1);
  });
}

test('a second Allocate on the 5-tuple gets 437; a retransmission gets the same success bytes', () => {
  const c = new TestClient(makeCore());
  const id = newId();
  const first = c.request(ALLOCATE, [UDP], { id });
  const again = c.request(ALLOCATE, [UDP], { id });
  assert.deepEqual(again.raw, first.raw);
  assert.equal(errorOf(c.request(ALLOCATE, [UDP])), 437);
  assert.equal(c.core.allocationCount, 1);
});

test('REQUESTED-TRANSPORT: missing → 400, TCP (6) → 442 (RFC 8656 §7.2)', () => {
  const c = new TestClient(makeCore());
  assert.equal(errorOf(c.request(ALLOCATE, [])), 400);
  assert.equal(errorOf(c.request(ALLOCATE, [attr(REQUESTED_TRANSPORT, 6)])), 442);
  assert.equal(c.core.allocationCount, 0);
});

test('DONT-FRAGMENT: 420 naming it unless the driver can set DF; then Send passes the flag on', () => {
  const c = new TestClient(makeCore());
  const refused = c.request(ALLOCATE, [UDP, attr(DONT_FRAGMENT, true)]);
  assert.equal(errorOf(refused), 420);
  assert.deepEqual(refused.get(UNKNOWN_ATTRIBUTES), [DONT_FRAGMENT.type]);
  const d = new TestClient(makeCore({ dontFragment: true }));
  allocate(d, [attr(DONT_FRAGMENT, true)]);
  permit(d, PEER);
  const out = sendIndication(d, PEER, Uint8Array.of(9), [attr(DONT_FRAGMENT, true)]).output;
  assert.ok(out?.kind === 'peer' && out.dontFragment);
  // Without driver support a Send with DONT-FRAGMENT is discarded (unknown comprehension-required).
  allocate(c);
  permit(c, PEER);
  assert.equal(sendIndication(c, PEER, Uint8Array.of(9), [attr(DONT_FRAGMENT, true)]).drop, 'bad-indication');
});

test('credentials: wrong password → 401; stale nonce → 438 (signed, after the MAC check) with a fresh one; a nonce from another address → 438', () => {
  const core = makeCore();
  const wrong = new TestClient(core, 'alice', 'nope');
  assert.equal(errorOf(wrong.request(ALLOCATE, [UDP])), 401);
  const unknown = new TestClient(core, 'mallory', 'x');
  assert.equal(errorOf(unknown.request(ALLOCATE, [UDP])), 401);

  const c = new TestClient(core);
  c.request(REFRESH, []); // learns a nonce (437: no allocation yet)
  const nonce = c.nonce;
  c.now = 600 * S;
  const impostor = new TestClient(core, 'alice', 'guess');
  impostor.now = c.now;
  impostor.nonce = nonce;
  assert.equal(errorOf(impostor.requestRaw(ALLOCATE, [UDP])), 401, 'no 438 without the password');
  const stale = c.requestRaw(ALLOCATE, [UDP]);
  assert.equal(errorOf(stale), 438);
  assert.equal(checkIntegrity(stale, c.key), 'ok');
  assert.notEqual(stale.get(NONCE), nonce);
  assert.equal(stale.get(REALM), REALM_TEXT);
  assert.equal(core.allocationCount, 0);

  const other = new TestClient(core, 'alice', 'alice-pw', { address: '198.18.9.9', port: 1, family: 4 });
  other.now = c.now;
  other.nonce = stale.get(NONCE);
  assert.equal(errorOf(other.requestRaw(ALLOCATE, [UDP])), 438);
  assert.equal(errorOf(c.request(ALLOCATE, [UDP])), undefined);
});

test('integrity without USERNAME, REALM or NONCE → 400', () => {
  const c = new TestClient(makeCore());
  const m = encodeMessage({ method: ALLOCATE, cls: StunClass.REQUEST, transactionId: newId(), attributes: [UDP, attr(REALM, REALM_TEXT)] }, { key: c.key });
  assert.equal(errorOf(replyOf(c.send(m))), 400);
});

test('SHA-256 key with PASSWORD-ALGORITHMS and PASSWORD-ALGORITHM: MESSAGE-INTEGRITY-SHA256 back; a choice without the list → 400', () => {
  const c = new TestClient(makeCore());
  c.request(REFRESH, []);
  const key = longTermKey({ username: 'alice', realm: REALM_TEXT, password: 'alice-pw', algorithm: PasswordAlgorithm.SHA256 });
  const algorithms = [
    { algorithm: PasswordAlgorithm.SHA256, parameters: new Uint8Array(0) },
    { algorithm: PasswordAlgorithm.MD5, parameters: new Uint8Array(0) },
  ];
  const build = (withList: boolean): Uint8Array => encodeMessage({
    method: ALLOCATE, cls: StunClass.REQUEST, transactionId: newId(),
    attributes: [
      UDP, attr(PASSWORD_ALGORITHM, algorithms[0]!), ...(withList ? [attr(PASSWORD_ALGORITHMS, algorithms)] : []),
      attr(USERHASH, userhash('alice', REALM_TEXT)), attr(REALM, REALM_TEXT), attr(NONCE, c.nonce!),
    ],
  }, { key, integrity: 'sha256' });
  assert.equal(errorOf(replyOf(c.send(build(false)))), 400);
  const reply = replyOf(c.send(build(true)));
  assert.equal(errorOf(reply), undefined);
  assert.ok(reply.has(MESSAGE_INTEGRITY_SHA256));
  assert.equal(checkIntegrity(reply, key), 'ok');
});

test('TURN REST API: expiry:user with base64(HMAC-SHA1(secret, username)); rotation; expired or wrong secret → 401', () => {
  const epochOffsetMs = 1_800_000_000_000;
  const core = makeCore({ auth: { realm: REALM_TEXT, sharedSecrets: ['new-secret', 'old-secret'], epochOffsetMs } });
  const rest = (expiry: number, secret: string, port: number): TestClient => {
    const username = `${expiry}:carol`;
    return new TestClient(core, username, createHmac('sha1', secret).update(username).digest('base64'), { address: '198.18.3.3', port, family: 4 });
  };
  const valid = epochOffsetMs / 1000 + 3600;
  assert.equal(errorOf(rest(valid, 'new-secret', 1).request(ALLOCATE, [UDP])), undefined);
  assert.equal(errorOf(rest(valid, 'old-secret', 2).request(ALLOCATE, [UDP])), undefined);
  assert.equal(errorOf(rest(valid, 'other-secret', 3).request(ALLOCATE, [UDP])), 401);
  assert.equal(errorOf(rest(epochOffsetMs / 1000, 'new-secret', 4).request(ALLOCATE, [UDP])), 401);
});

test('Refresh: LIFETIME extends (clamped like Allocate), 0 deletes and frees the relayed port; then 437', () => {
  const allocator = new PortPoolAllocator({ addresses: { 4: RELAY_V4 }, random: fixedRandom(3) });
  const c = new TestClient(makeCore({ allocator }));
  const [relayed] = allocate(c);
  c.now = 590 * S;
  assert.equal(c.request(REFRESH, [attr(LIFETIME, 30)]).get(LIFETIME), 600);
  assert.equal(c.request(REFRESH, [attr(LIFETIME, 90000)]).get(LIFETIME), 3600);
  c.now = 1190 * S;
  c.core.expire(c.now);
  assert.equal(c.core.allocationCount, 1, 'refreshed past the first 600 s');
  const deleted = c.request(REFRESH, [attr(LIFETIME, 0)]);
  assert.equal(deleted.get(LIFETIME), 0);
  assert.equal(c.core.allocationCount, 0);
  assert.equal(allocator.inUse(4), 0);
  assert.equal(errorOf(c.request(REFRESH, [])), 437);
  assert.equal(fromPeer(c, PEER, relayed!).drop, 'unknown-relay');
  assert.equal(c.core.stats.allocationsDeleted, 1);
});

test('441: a request on the allocation\'s 5-tuple with another user\'s credentials', () => {
  const core = makeCore();
  const alice = new TestClient(core);
  allocate(alice);
  const bob = new TestClient(core, 'bob', 'bob-pw', alice.tuple.client);
  assert.equal(errorOf(bob.request(REFRESH, [])), 441);
  assert.equal(errorOf(bob.request(CREATE_PERMISSION, [attr(XOR_PEER_ADDRESS, PEER)])), 441);
  assert.equal(errorOf(bob.request(ALLOCATE, [UDP])), 437);
});

test('CreatePermission: several peers at once; per IP, any port; others stay out; Data indication carries peer and data', () => {
  const c = new TestClient(makeCore());
  const [relayed] = allocate(c);
  assert.equal(fromPeer(c, PEER, relayed!).drop, 'no-permission');
  assert.equal(permit(c, PEER, PEER2), undefined);
  for (const peer of [PEER, PEER2, { ...PEER, port: 9 }]) {
    const out = fromPeer(c, peer, relayed!, Uint8Array.of(7, 7)).output;
    assert.ok(out?.kind === 'client');
    assert.deepEqual(out.to, c.tuple);
    const m = decodeMessage(out.data);
    assert.equal(m.method, DATA);
    assert.equal(m.cls, StunClass.INDICATION);
    assert.deepEqual(m.get(XOR_PEER_ADDRESS), peer);
    assert.deepEqual(m.get(DATA_ATTRIBUTE), Uint8Array.of(7, 7));
  }
  assert.equal(fromPeer(c, { address: '198.18.0.99', port: 5000, family: 4 }, relayed!).drop, 'no-permission');
  assert.equal(errorOf(c.request(CREATE_PERMISSION, [])), 400);
});

test('permissions last 300 s, refreshed by CreatePermission only, not by Send or peer traffic (RFC 8656 §9)', () => {
  const c = new TestClient(makeCore());
  const [relayed] = allocate(c);
  permit(c, PEER);
  c.now = 299 * S;
  assert.equal(sendIndication(c, PEER, Uint8Array.of(1)).output?.kind, 'peer');
  assert.equal(fromPeer(c, PEER, relayed!).output?.kind, 'client');
  c.now = 300 * S;
  assert.equal(fromPeer(c, PEER, relayed!).drop, 'no-permission');
  assert.equal(sendIndication(c, PEER, Uint8Array.of(1)).drop, 'no-permission');
  permit(c, PEER);
  c.now = 599 * S;
  assert.equal(fromPeer(c, PEER, relayed!).output?.kind, 'client');
});

const forbidden: readonly Endpoint[] = [
  { address: '127.0.0.1', port: 80, family: 4 },
  { address: '10.1.2.3', port: 80, family: 4 },
  { address: '172.16.0.1', port: 80, family: 4 },
  { address: '192.168.1.1', port: 80, family: 4 },
  { address: '100.64.0.1', port: 80, family: 4 },
  { address: '169.254.169.254', port: 80, family: 4 },
  { address: '224.0.0.251', port: 5353, family: 4 },
  { address: '0.0.0.0', port: 80, family: 4 },
  { address: '255.255.255.255', port: 80, family: 4 },
  { address: RELAY_V4, port: 50000, family: 4 },
];
for (const peer of forbidden) {
  test(`peer ${peer.address} → 403, and nothing is installed with it (RFC 8656 §9.1)`, () => {
    const c = new TestClient(makeCore());
    const [relayed] = allocate(c);
    assert.equal(permit(c, PEER, peer), 403);
    assert.equal(bind(c, 0x4000, peer), 403);
    assert.equal(fromPeer(c, PEER, relayed!).drop, 'no-permission', 'all or nothing');
    assert.equal(fromPeer(c, peer, relayed!).drop, 'no-permission');
    assert.equal(sendIndication(c, peer, Uint8Array.of(1)).drop, 'no-permission');
  });
}

const forbiddenV6 = ['::1', '::', 'fe80::1', 'fd00::1', 'ff02::1', '::ffff:a00:1', '64:ff9b::a9fe:a9fe', '2001:db8::99', RELAY_V6];
for (const address of forbiddenV6) {
  test(`IPv6 peer ${address} → 403`, () => {
    const c = new TestClient(makeCore());
    allocate(c, [attr(REQUESTED_ADDRESS_FAMILY, 0x02)]);
    assert.equal(permit(c, { address, port: 80, family: 6 }), 403);
  });
}

test('the allow-list admits a private peer; the default policy denies the lab internet', () => {
  const open = new TestClient(makeCore({ peerPolicy: { allow: ['10.0.0.0/8'] } }));
  allocate(open);
  assert.equal(permit(open, { address: '10.1.2.3', port: 1, family: 4 }), undefined);
  const strict = new TestClient(makeCore({ peerPolicy: {} }));
  allocate(strict);
  assert.equal(permit(strict, PEER), 403);
  assert.equal(permit(strict, { address: '8.8.8.8', port: 53, family: 4 }), undefined);
});

test('the relay\'s own addresses are denied as peers even when otherwise public (no relay loops)', () => {
  const c = new TestClient(makeCore({ allocator: new PortPoolAllocator({ addresses: { 4: '8.8.4.4' }, random: fixedRandom() }), peerPolicy: {} }));
  allocate(c);
  assert.equal(permit(c, { address: '8.8.4.4', port: 50000, family: 4 }), 403);
  assert.equal(permit(c, { address: '8.8.8.8', port: 53, family: 4 }), undefined);
});

test('peer family without a relayed address of that family → 443 (RFC 8656 §9.1, §11.2)', () => {
  const c = new TestClient(makeCore());
  allocate(c);
  assert.equal(permit(c, PEER_V6), 443);
  assert.equal(bind(c, 0x4001, PEER_V6), 443);
  assert.equal(errorOf(c.request(REFRESH, [attr(REQUESTED_ADDRESS_FAMILY, 0x02)])), 443);
});

test('Send: to the peer from the relayed address; dropped without allocation, permission, or DATA', () => {
  const c = new TestClient(makeCore());
  assert.equal(sendIndication(c, PEER, Uint8Array.of(1)).drop, 'no-allocation');
  const [relayed] = allocate(c);
  assert.equal(sendIndication(c, PEER, Uint8Array.of(1)).drop, 'no-permission');
  permit(c, PEER);
  const out = sendIndication(c, PEER, Uint8Array.of(4, 5, 6)).output;
  assert.deepEqual(out, { kind: 'peer', from: relayed, to: PEER, data: Uint8Array.of(4, 5, 6), dontFragment: false });
  const noData = encodeMessage({ method: SEND, cls: StunClass.INDICATION, transactionId: newId(), attributes: [attr(XOR_PEER_ADDRESS, PEER)] });
  assert.equal(c.send(noData).drop, 'bad-indication');
  assert.equal(c.core.stats.toPeerPackets, 1);
  assert.equal(c.core.stats.toPeerBytes, 3);
});

test('ChannelBind: numbers outside 0x4000–0x4FFF → 400; bound channel carries ChannelData both ways and installs a permission', () => {
  const c = new TestClient(makeCore());
  const [relayed] = allocate(c);
  for (const bad of [0x0000, 0x3fff, 0x5000, 0xffff]) assert.equal(bind(c, bad, PEER), 400, `0x${bad.toString(16)}`);
  assert.equal(errorOf(c.request(CHANNEL_BIND, [attr(CHANNEL_NUMBER, 0x4000)])), 400);
  assert.equal(bind(c, 0x4000, PEER), undefined);
  assert.deepEqual(c.send(encodeChannelData({ channel: 0x4000, data: Uint8Array.of(8) })).output, {
    kind: 'peer', from: relayed, to: PEER, data: Uint8Array.of(8), dontFragment: false,
  });
  const back = fromPeer(c, PEER, relayed!, Uint8Array.of(1, 2, 3)).output;
  assert.ok(back?.kind === 'client');
  assert.deepEqual(back.data, Uint8Array.of(0x40, 0x00, 0x00, 0x03, 1, 2, 3), 'unpadded over UDP');
  // The permission is per IP: another port of the peer arrives as a Data indication.
  const other = fromPeer(c, { ...PEER, port: 6000 }, relayed!).output;
  assert.ok(other?.kind === 'client');
  assert.equal(decodeMessage(other.data).method, DATA);
  assert.equal(c.send(encodeChannelData({ channel: 0x4001, data: Uint8Array.of(8) })).drop, 'unbound-channel');
});

const channelRanges: readonly { name: string; legacyChannels: boolean; accepted: readonly number[]; refused: readonly number[] }[] = [
  { name: 'strict (RFC 8656 §12)', legacyChannels: false, accepted: [0x4000, 0x4fff], refused: [0x3fff, 0x5000, 0x7fff, 0x8000] },
  { name: 'legacyChannels (RFC 5766 §11)', legacyChannels: true, accepted: [0x4000, 0x4fff, 0x5000, 0x7fff], refused: [0x3fff, 0x8000, 0xffff] },
];
for (const r of channelRanges) {
  test(`ChannelBind range, ${r.name}: ${r.accepted.map(hex4).join(', ')} bound; ${r.refused.map(hex4).join(', ')} → 400`, () => {
    const c = new TestClient(makeCore({ legacyChannels: r.legacyChannels }));
    allocate(c, [attr(LIFETIME, 3600)]);
    // One peer per number: a peer is bound to one channel at a time (RFC 8656 §11).
    for (const [i, channel] of r.accepted.entries()) assert.equal(bind(c, channel, { ...PEER, port: 7000 + i }), undefined, hex4(channel));
    for (const channel of r.refused) assert.equal(bind(c, channel, PEER2), 400, hex4(channel));
  });
}

test('legacyChannels: ChannelData on 0x7fff is relayed both ways, over UDP and (padded) over TCP', () => {
  for (const transport of ['udp', 'tcp'] as const) {
    const framing = transport === 'udp' ? 'udp' : 'stream';
    const c = new TestClient(makeCore({ legacyChannels: true }), 'alice', 'alice-pw', { address: '198.18.1.2', port: 40000, family: 4 }, transport);
    const [relayed] = allocate(c);
    assert.equal(bind(c, 0x7fff, PEER), undefined);
    assert.deepEqual(c.send(encodeChannelData({ channel: 0x7fff, data: Uint8Array.of(8) }, framing, { legacyChannels: true })).output, {
      kind: 'peer', from: relayed, to: PEER, data: Uint8Array.of(8), dontFragment: false,
    }, transport);
    const back = fromPeer(c, PEER, relayed!, Uint8Array.of(1, 2, 3)).output;
    assert.ok(back?.kind === 'client');
    assert.deepEqual(back.data, encodeChannelData({ channel: 0x7fff, data: Uint8Array.of(1, 2, 3) }, framing, { legacyChannels: true }), transport);
  }
});

test('strict: ChannelData with a number past 0x4fff is malformed, not relayed', () => {
  const c = new TestClient(makeCore());
  allocate(c);
  assert.equal(c.send(Uint8Array.of(0x50, 0x00, 0x00, 0x01, 8)).drop, 'malformed');
});

test('channel rebind rules (RFC 8656 §11): same pair refreshes; other pairings → 400 until 5 minutes after expiry', () => {
  const c = new TestClient(makeCore());
  allocate(c, [attr(LIFETIME, 3600)]);
  assert.equal(bind(c, 0x4000, PEER), undefined);
  assert.equal(bind(c, 0x4000, PEER2), 400, 'number bound to another peer');
  assert.equal(bind(c, 0x4001, PEER), 400, 'peer bound to another number');
  c.now = 500 * S;
  assert.equal(bind(c, 0x4000, PEER), undefined, 'refresh');
  c.now = 1100 * S; // expired at 1100 s
  assert.equal(c.send(encodeChannelData({ channel: 0x4000, data: Uint8Array.of(1) })).drop, 'unbound-channel');
  assert.equal(bind(c, 0x4000, PEER2), 400, 'quarantined');
  c.now = 1400 * S;
  assert.equal(bind(c, 0x4000, PEER2), undefined);
  assert.equal(bind(c, 0x4001, PEER), undefined);
});

test('ChannelData over TCP is padded to 4 bytes both ways (RFC 8656 §12.5)', () => {
  const c = new TestClient(makeCore(), 'alice', 'alice-pw', { address: '198.18.1.2', port: 40000, family: 4 }, 'tcp');
  const [relayed] = allocate(c);
  bind(c, 0x4abc, PEER);
  const out = fromPeer(c, PEER, relayed!, Uint8Array.of(1)).output;
  assert.ok(out?.kind === 'client');
  assert.deepEqual(out.data, Uint8Array.of(0x4a, 0xbc, 0, 1, 1, 0, 0, 0));
  assert.equal(c.send(Uint8Array.of(0x4a, 0xbc, 0, 1, 1)).drop, 'malformed', 'an unpadded frame on a stream');
  assert.equal(c.send(Uint8Array.of(0x4a, 0xbc, 0, 1, 1, 0, 0, 0)).output?.kind, 'peer');
});

test('EVEN-PORT with R: even port, RESERVATION-TOKEN; the token gets port + 1 once, within 30 s', () => {
  const core = makeCore();
  const a = new TestClient(core);
  const reply = a.request(ALLOCATE, [UDP, attr(EVEN_PORT, { reserveNext: true })]);
  const relayed = reply.get(XOR_RELAYED_ADDRESS)!;
  assert.equal(relayed.port % 2, 0);
  const token = reply.get(RESERVATION_TOKEN)!;
  assert.equal(token.length, 8);
  const b = new TestClient(core, 'alice', 'alice-pw', { address: '198.18.1.2', port: 40001, family: 4 });
  assert.equal(errorOf(b.request(ALLOCATE, [UDP, attr(RESERVATION_TOKEN, token), attr(EVEN_PORT, { reserveNext: false })])), 400);
  assert.equal(errorOf(b.request(ALLOCATE, [UDP, attr(RESERVATION_TOKEN, token), attr(REQUESTED_ADDRESS_FAMILY, 1)])), 400);
  assert.deepEqual(b.request(ALLOCATE, [UDP, attr(RESERVATION_TOKEN, token)]).get(XOR_RELAYED_ADDRESS), { ...relayed, port: relayed.port + 1 });
  const d = new TestClient(core, 'bob', 'bob-pw', { address: '198.18.1.3', port: 1, family: 4 });
  assert.equal(errorOf(d.request(ALLOCATE, [UDP, attr(RESERVATION_TOKEN, token)])), 508, 'used up');

  const late = a.request(ALLOCATE, [UDP, attr(EVEN_PORT, { reserveNext: true })], {});
  assert.equal(errorOf(late), 437);
  const e = new TestClient(core, 'bob', 'bob-pw', { address: '198.18.1.4', port: 1, family: 4 });
  const t2 = e.request(ALLOCATE, [UDP, attr(EVEN_PORT, { reserveNext: true })]).get(RESERVATION_TOKEN)!;
  d.now = 30 * S;
  core.expire(d.now);
  assert.equal(errorOf(d.request(ALLOCATE, [UDP, attr(RESERVATION_TOKEN, t2)])), 508, 'expired');
});

test('REQUESTED-ADDRESS-FAMILY: IPv6 relay; unknown family or unsupported family → 440', () => {
  const c = new TestClient(makeCore());
  assert.equal(errorOf(c.request(ALLOCATE, [UDP, attr(REQUESTED_ADDRESS_FAMILY, 0x03)])), 440);
  const [relayed] = allocate(c, [attr(REQUESTED_ADDRESS_FAMILY, 0x02)]);
  assert.deepEqual({ address: relayed!.address, family: relayed!.family }, { address: RELAY_V6, family: 6 });
  assert.equal(permit(c, PEER_V6), undefined);
  assert.equal(fromPeer(c, PEER_V6, relayed!).output?.kind, 'client');
  const v4only = new TestClient(makeCore({ allocator: new PortPoolAllocator({ addresses: { 4: RELAY_V4 }, random: fixedRandom() }) }));
  assert.equal(errorOf(v4only.request(ALLOCATE, [UDP, attr(REQUESTED_ADDRESS_FAMILY, 0x02)])), 440);
});

test('ADDITIONAL-ADDRESS-FAMILY: dual allocation; IPv6 failing alone gives ADDRESS-ERROR-CODE 440; misuse → 400', () => {
  const c = new TestClient(makeCore());
  assert.equal(errorOf(c.request(ALLOCATE, [UDP, attr(ADDITIONAL_ADDRESS_FAMILY, 0x01)])), 400);
  assert.equal(errorOf(c.request(ALLOCATE, [UDP, attr(ADDITIONAL_ADDRESS_FAMILY, 0x02), attr(REQUESTED_ADDRESS_FAMILY, 0x01)])), 400);
  const relays = allocate(c, [attr(ADDITIONAL_ADDRESS_FAMILY, 0x02)]);
  assert.deepEqual(relays.map((r) => r.family), [4, 6]);
  permit(c, PEER, PEER_V6);
  assert.equal(fromPeer(c, PEER_V6, relays[1]!).output?.kind, 'client');
  // Deleting the IPv6 half keeps the IPv4 one (RFC 8656 §7.5).
  assert.equal(c.request(REFRESH, [attr(LIFETIME, 0), attr(REQUESTED_ADDRESS_FAMILY, 0x02)]).get(LIFETIME), 0);
  assert.equal(fromPeer(c, PEER_V6, relays[1]!).drop, 'unknown-relay');
  assert.equal(fromPeer(c, PEER, relays[0]!).output?.kind, 'client');
  assert.equal(errorOf(c.request(REFRESH, [attr(REQUESTED_ADDRESS_FAMILY, 0x02)])), 443);

  const v4only = new TestClient(makeCore({ allocator: new PortPoolAllocator({ addresses: { 4: RELAY_V4 }, random: fixedRandom() }) }));
  const reply = v4only.request(ALLOCATE, [UDP, attr(ADDITIONAL_ADDRESS_FAMILY, 0x02)]);
  assert.equal(errorOf(reply), undefined);
  assert.equal(allOf(reply, XOR_RELAYED_ADDRESS).length, 1);
  assert.deepEqual(reply.get(ADDRESS_ERROR_CODE), { family: 0x02, code: 440, reason: 'Address Family not Supported' });
});

test('quotas: per user → 486, total → 508; a deleted allocation frees its slot', () => {
  const core = makeCore({ maxAllocationsPerUser: 2, maxAllocations: 3 });
  const clients = [1, 2, 3].map((port) => new TestClient(core, 'alice', 'alice-pw', { address: '198.18.1.2', port, family: 4 }));
  allocate(clients[0]!);
  allocate(clients[1]!);
  assert.equal(errorOf(clients[2]!.request(ALLOCATE, [UDP])), 486);
  allocate(new TestClient(core, 'bob', 'bob-pw', { address: '198.18.1.3', port: 1, family: 4 }));
  assert.equal(errorOf(new TestClient(core, 'bob', 'bob-pw', { address: '198.18.1.3', port: 2, family: 4 }).request(ALLOCATE, [UDP])), 508);
  clients[0]!.request(REFRESH, [attr(LIFETIME, 0)]);
  allocate(clients[2]!);
  assert.equal(core.stats.errors[486], 1);
  assert.equal(core.stats.errors[508], 1);
});

test('ports run out → 508', () => {
  const allocator = new PortPoolAllocator({ addresses: { 4: RELAY_V4 }, minPort: 50000, maxPort: 50001, random: fixedRandom() });
  const core = makeCore({ allocator });
  allocate(new TestClient(core, 'alice', 'alice-pw', { address: '198.18.1.2', port: 1, family: 4 }));
  allocate(new TestClient(core, 'alice', 'alice-pw', { address: '198.18.1.2', port: 2, family: 4 }));
  assert.equal(errorOf(new TestClient(core, 'bob', 'bob-pw', { address: '198.18.1.2', port: 3, family: 4 }).request(ALLOCATE, [UDP])), 508);
});

test('Binding is answered without credentials; responses and other indications are dropped', () => {
  const c = new TestClient(makeCore());
  const reply = c.request(BINDING, [], { anonymous: true });
  assert.equal(reply.cls, StunClass.SUCCESS);
  assert.deepEqual(reply.get(XOR_MAPPED_ADDRESS), c.tuple.client);
  assert.equal(c.send(encodeMessage({ method: ALLOCATE, cls: StunClass.SUCCESS, transactionId: newId() })).drop, 'unexpected-class');
  assert.equal(c.send(encodeMessage({ method: DATA, cls: StunClass.INDICATION, transactionId: newId() })).drop, 'unexpected-class');
  assert.equal(c.send(encodeMessage({ method: 0x00a, cls: StunClass.REQUEST, transactionId: newId() })).drop, 'unknown-method');
});

test('a Binding indication is a keepalive: no response, counted, not a drop (RFC 8489 §6.3.2)', () => {
  const core = makeCore();
  const c = new TestClient(core);
  for (const fingerprint of [false, true]) {
    const r = c.send(encodeMessage({ method: BINDING, cls: StunClass.INDICATION, transactionId: newId() }, { fingerprint }));
    assert.deepEqual(r, { keepalive: true });
  }
  assert.equal(core.stats.keepalives, 2);
  assert.equal(core.stats.received, 2);
  assert.equal(core.stats.replies, 0);
  assert.ok(Object.values(core.stats.dropped).every((n) => n === 0));
});

test('unknown comprehension-required attribute → 420 after authentication, with integrity', () => {
  const c = new TestClient(makeCore());
  const reply = c.request(ALLOCATE, [UDP, attr(rawAttribute(0x7777), Uint8Array.of(1, 2, 3, 4))]);
  assert.equal(errorOf(reply), 420);
  assert.deepEqual(reply.get(UNKNOWN_ATTRIBUTES), [0x7777]);
});
