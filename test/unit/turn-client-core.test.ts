// The sans-I/O TURN client against scripted server responses and a manual clock: the
// long-term credential handshake (RFC 8489 §9.2: 401, 438, PASSWORD-ALGORITHMS, USERHASH),
// ALTERNATE-SERVER (§10) once with its loop guard, the Refresh schedule (RFC 8656 §7.4),
// permissions (§9) and channels (§11) made on demand and refreshed, Send/Data and
// ChannelData, TURN error codes as typed errors, deletion on close (§7.5), and Binding
// indications keeping an idle UDP mapping toward the server alive.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ALTERNATE_SERVER, BINDING, ERROR_CODE, NONCE, PASSWORD_ALGORITHM, PASSWORD_ALGORITHMS, PasswordAlgorithm, REALM, StunClass,
  USERHASH, USERNAME, XOR_MAPPED_ADDRESS, attr, decodeMessage, encodeMessage, longTermKey, userhash, type AttrCodec, type AttrEntry, type StunMessage,
} from '../../src/stun/index.ts';
import {
  ADDITIONAL_ADDRESS_FAMILY, ALLOCATE, CHANNEL_BIND, CHANNEL_NUMBER, CREATE_PERMISSION, DATA, DATA_ATTRIBUTE, LIFETIME, REFRESH,
  REQUESTED_TRANSPORT, SEND, TurnClientCore, TurnError, XOR_PEER_ADDRESS, XOR_RELAYED_ADDRESS, decodeChannelData,
  encodeChannelData, type TurnClientAction, type TurnClientCoreOptions,
} from '../../src/turn/index.ts';
import type { Endpoint } from '../../src/net/index.ts';
import { NatkitError } from '../../src/util/index.ts';

const SERVER: Endpoint = { address: '198.51.100.1', port: 3478, family: 4 };
const ALT: Endpoint = { address: '198.51.100.2', port: 3478, family: 4 };
const ALT2: Endpoint = { address: '198.51.100.3', port: 3478, family: 4 };
const RELAYED: Endpoint = { address: '198.51.100.1', port: 50000, family: 4 };
const MAPPED: Endpoint = { address: '203.0.113.9', port: 61000, family: 4 };
const PEER: Endpoint = { address: '198.18.0.7', port: 5000, family: 4 };
const PEER_V6: Endpoint = { address: '2001:db8::7', port: 5000, family: 6 };
const REALM_TEXT = 'natkit.test';
const S = 1000;

type Request = Extract<TurnClientAction, { kind: 'request' }>;

/** A core with counting randomness; its actions queue here until a test takes them by kind. */
class Harness {
  readonly core: TurnClientCore;
  now = 0;
  private counter = 0;
  private queue: TurnClientAction[] = [];

  /** Keepalives are off unless a test sets keepaliveMs or asks for the default: the schedules tested are the allocation's own. */
  constructor({ defaultKeepalive, ...options }: Partial<TurnClientCoreOptions> & { readonly defaultKeepalive?: true } = {}) {
    this.core = new TurnClientCore({
      server: SERVER, username: 'u', password: 'p', random: { bytes: (n) => new Uint8Array(n).fill(++this.counter & 0xff) },
      ...(defaultKeepalive === undefined && { keepaliveMs: 0 }), ...options,
    });
  }

  /** Every action not taken yet, in order. */
  actions(): TurnClientAction[] {
    const out = [...this.queue, ...this.core.takeActions()];
    this.queue = [];
    return out;
  }

  /** Takes the actions of one kind, leaving the others queued. */
  take<K extends TurnClientAction['kind']>(kind: K): Extract<TurnClientAction, { kind: K }>[] {
    const all = this.actions();
    this.queue = all.filter((a) => a.kind !== kind);
    return all.filter((a): a is Extract<TurnClientAction, { kind: K }> => a.kind === kind);
  }

  /** The one request the core asked for. */
  request(): Request {
    const requests = this.take('request');
    assert.equal(requests.length, 1, `one request, got ${requests.length}`);
    return requests[0]!;
  }

  /** The bytes transmitted since last asked. */
  transmitted(): Uint8Array[] {
    return this.take('transmit').map((a) => a.data);
  }

  answer(r: Request, response: StunMessage | NatkitError): void {
    this.core.handleResponse(r.id, response, this.now);
  }

  advance(ms: number): void {
    this.now += ms;
    this.core.handleTimer(this.now);
  }

  /** Runs the 401 handshake and a successful Allocate; returns the authenticated Allocate request. */
  allocate(lifetimeS = 600): Request {
    this.core.start();
    this.answer(this.request(), challenge(401));
    const second = this.request();
    this.answer(second, success(ALLOCATE, [attr(XOR_RELAYED_ADDRESS, RELAYED), attr(XOR_MAPPED_ADDRESS, MAPPED), attr(LIFETIME, lifetimeS)]));
    assert.equal(this.core.state, 'allocated');
    assert.deepEqual(this.actions().map((a) => a.kind), ['allocated']);
    return second;
  }

  /** Sends to `peer` and grants its permission; returns what was transmitted. */
  permit(peer = PEER): Uint8Array[] {
    assert.equal(this.core.send(Uint8Array.of(1, 2, 3), peer, this.now), true);
    const r = this.request();
    assert.equal(r.method, CREATE_PERMISSION);
    this.answer(r, success(CREATE_PERMISSION));
    return this.transmitted();
  }
}

const decode = (method: number, cls: number, attributes: readonly AttrEntry[]): StunMessage =>
  decodeMessage(encodeMessage({ method, cls: cls as StunClass, transactionId: new Uint8Array(12), attributes }));

const success = (method: number, attributes: readonly AttrEntry[] = []): StunMessage => decode(method, StunClass.SUCCESS, attributes);

function errorResponse(code: number, attributes: readonly AttrEntry[] = [], method = ALLOCATE): StunMessage {
  return decode(method, StunClass.ERROR, [attr(ERROR_CODE, { code, reason: `error ${code}` }), ...attributes]);
}

/** A 401 or 438 with REALM and NONCE (plain: an RFC 5389 server) unless `extra` says more. */
const challenge = (code: 401 | 438, nonce = 'nonce-1', extra: readonly AttrEntry[] = [], method = ALLOCATE): StunMessage =>
  errorResponse(code, [attr(REALM, REALM_TEXT), attr(NONCE, nonce), ...extra], method);

const get = <T>(r: Request, codec: AttrCodec<T>): T | undefined => {
  const a = r.attributes.find((e) => e.codec.type === codec.type);
  return a?.value as T | undefined;
};

const failure = (h: Harness): TurnError => {
  const [failed] = h.take('failed');
  assert.ok(failed, 'a failed action');
  assert.ok(failed.error instanceof TurnError);
  return failed.error;
};

test('Allocate: first without credentials, 401, then USERNAME/REALM/NONCE with MESSAGE-INTEGRITY (MD5 key)', () => {
  const h = new Harness();
  h.core.start();
  const first = h.request();
  assert.equal(first.method, ALLOCATE);
  assert.equal(first.sign, undefined, 'RFC 8489 §9.2.3.1: the first request carries no integrity');
  assert.equal(get(first, USERNAME), undefined);
  assert.equal(get(first, REQUESTED_TRANSPORT), 17);
  h.answer(first, challenge(401));
  const second = h.request();
  assert.equal(get(second, USERNAME), 'u');
  assert.equal(get(second, REALM), REALM_TEXT);
  assert.equal(get(second, NONCE), 'nonce-1');
  assert.equal(get(second, PASSWORD_ALGORITHMS), undefined, 'an RFC 5389 server: no algorithms');
  assert.deepEqual(second.sign, { key: longTermKey({ username: 'u', realm: REALM_TEXT, password: 'p' }), integrity: 'sha1' });
  h.answer(second, success(ALLOCATE, [attr(XOR_RELAYED_ADDRESS, RELAYED), attr(XOR_MAPPED_ADDRESS, MAPPED), attr(LIFETIME, 600)]));
  const [allocated] = h.actions();
  assert.deepEqual(allocated, { kind: 'allocated', allocation: { server: SERVER, relayed: [RELAYED], mapped: MAPPED, lifetimeS: 600, addressErrors: [] } });
});

test('RFC 8489 server: PASSWORD-ALGORITHMS echoed, SHA-256 chosen, MESSAGE-INTEGRITY-SHA256, USERHASH when asked', () => {
  const h = new Harness({ userhash: true });
  h.core.start();
  const offer = [{ algorithm: PasswordAlgorithm.SHA256, parameters: new Uint8Array(0) }, { algorithm: PasswordAlgorithm.MD5, parameters: new Uint8Array(0) }];
  h.answer(h.request(), challenge(401, 'obMatJos2wAAAxyz', [attr(PASSWORD_ALGORITHMS, offer)]));
  const r = h.request();
  assert.equal(get(r, USERNAME), undefined);
  assert.deepEqual(get(r, USERHASH), userhash('u', REALM_TEXT));
  assert.deepEqual(get(r, PASSWORD_ALGORITHMS), offer);
  assert.deepEqual(get(r, PASSWORD_ALGORITHM), offer[0]);
  assert.deepEqual(r.sign, { key: longTermKey({ username: 'u', realm: REALM_TEXT, password: 'p', algorithm: PasswordAlgorithm.SHA256 }), integrity: 'sha256' });
});

test('PASSWORD-ALGORITHMS without the nonce feature bit (a bid-down) is ignored: MD5 and MESSAGE-INTEGRITY', () => {
  const h = new Harness({ userhash: true });
  h.core.start();
  h.answer(h.request(), challenge(401, 'plain-nonce', [attr(PASSWORD_ALGORITHMS, [{ algorithm: PasswordAlgorithm.SHA256, parameters: new Uint8Array(0) }])]));
  const r = h.request();
  assert.equal(get(r, PASSWORD_ALGORITHM), undefined);
  assert.equal(get(r, USERNAME), 'u', 'no anonymity feature: USERNAME');
  assert.equal(r.sign?.integrity, 'sha1');
});

test('a second 401 (wrong credentials) fails the allocation with status 401; a 401 without NONCE at once', () => {
  for (const second of [challenge(401, 'nonce-2'), errorResponse(401, [attr(REALM, REALM_TEXT)])]) {
    const h = new Harness();
    h.core.start();
    h.answer(h.request(), challenge(401));
    const r = h.request();
    h.answer(r, second);
    const error = failure(h);
    assert.equal(error.status, 401);
    assert.equal(error.code, 'ERR_PROTOCOL');
    assert.equal(h.core.state, 'failed');
  }
  const h = new Harness();
  h.core.start();
  h.answer(h.request(), errorResponse(401, [attr(REALM, REALM_TEXT)]));
  assert.equal(failure(h).status, 401);
});

test('438 Stale Nonce: retried once with the new nonce; a second 438 is a failure', () => {
  const h = new Harness();
  h.allocate();
  h.advance(540 * S);
  const refresh = h.request();
  assert.equal(refresh.method, REFRESH);
  h.answer(refresh, challenge(438, 'nonce-2', [], REFRESH));
  const retry = h.request();
  assert.equal(get(retry, NONCE), 'nonce-2');
  assert.notEqual(retry.id, refresh.id);
  h.answer(retry, challenge(438, 'nonce-3', [], REFRESH));
  assert.equal(failure(h).status, 438);
  assert.equal(h.core.state, 'failed');
});

test('ALTERNATE-SERVER: followed once, credentials forgotten; the alternate\'s own 300 is not followed', () => {
  const h = new Harness();
  h.core.start();
  h.answer(h.request(), errorResponse(300, [attr(ALTERNATE_SERVER, ALT)]));
  assert.deepEqual(h.actions(), [{ kind: 'redirect', server: ALT }]);
  assert.equal(h.core.state, 'redirecting');
  assert.deepEqual(h.core.server, ALT);
  h.core.start();
  const first = h.request();
  assert.equal(first.sign, undefined, 'a new server challenges afresh');
  h.answer(first, challenge(401));
  h.answer(h.request(), errorResponse(300, [attr(ALTERNATE_SERVER, ALT2)]));
  const error = failure(h);
  assert.equal(error.status, 300);
});

for (const c of [
  { name: 'back to the server itself (a loop)', to: SERVER as Endpoint | undefined },
  { name: 'to another address family', to: { address: '2001:db8::1', port: 3478, family: 6 } as Endpoint },
  { name: 'without ALTERNATE-SERVER', to: undefined },
]) {
  test(`300 ${c.name}: not followed, the allocation fails with status 300`, () => {
    const h = new Harness();
    h.core.start();
    h.answer(h.request(), errorResponse(300, c.to ? [attr(ALTERNATE_SERVER, c.to)] : []));
    assert.equal(failure(h).status, 300);
    assert.deepEqual(h.core.server, SERVER);
  });
}

test('Refresh at lifetime − 60 s with the asked LIFETIME; the new lifetime sets the next one; 3/4 of a short lifetime', () => {
  const h = new Harness({ lifetimeS: 600 });
  const allocate = h.allocate();
  assert.equal(get(allocate, LIFETIME), 600);
  assert.equal(h.core.nextTimerAt(), 540 * S);
  h.advance(539 * S);
  assert.deepEqual(h.actions(), []);
  h.advance(1 * S);
  const refresh = h.request();
  assert.equal(get(refresh, LIFETIME), 600);
  assert.ok(refresh.sign, 'signed');
  assert.equal(h.core.nextTimerAt(), 600 * S, 'while it is in flight only expiry is due');
  h.answer(refresh, success(REFRESH, [attr(LIFETIME, 120)]));
  assert.equal(h.core.nextTimerAt(), (540 + 90) * S, '3/4 of 120 s beats 120 − 60 s');
});

test('a Refresh that gets no answer is retried every 5 s while a retry fits; one left unanswered runs into expiry', () => {
  const h = new Harness();
  h.allocate(100);
  h.advance(75 * S);
  const retries: number[] = [];
  for (let i = 0; i < 10 && h.core.state === 'allocated'; i++) {
    h.answer(h.request(), new NatkitError('ERR_TIMEOUT', 'no response'));
    const next = h.core.nextTimerAt();
    if (next === undefined) break;
    retries.push(next / S);
    h.advance(next - h.now);
  }
  assert.deepEqual(retries, [80, 85, 90, 95]);
  const error = failure(h);
  assert.equal(error.code, 'ERR_TIMEOUT');
  assert.equal(error.status, undefined);

  const silent = new Harness();
  silent.allocate(100);
  silent.advance(75 * S);
  silent.request();
  silent.advance(25 * S);
  assert.match(failure(silent).message, /expired/);
});

test('Send: CreatePermission first (data waits), Send indication, ChannelBind, then ChannelData', () => {
  const h = new Harness();
  h.allocate();
  assert.equal(h.core.send(Uint8Array.of(1), PEER, 0), true);
  assert.equal(h.core.send(Uint8Array.of(2), PEER, 0), true);
  const permission = h.request();
  assert.deepEqual(get(permission, XOR_PEER_ADDRESS), PEER);
  assert.ok(permission.sign);
  h.answer(permission, success(CREATE_PERMISSION));
  const sent = h.transmitted();
  assert.equal(sent.length, 2, 'both queued datagrams go once the permission exists');
  for (const [i, bytes] of sent.entries()) {
    const msg = decodeMessage(bytes);
    assert.equal(msg.method, SEND);
    assert.equal(msg.cls, StunClass.INDICATION);
    assert.deepEqual(msg.get(XOR_PEER_ADDRESS), PEER);
    assert.deepEqual(msg.get(DATA_ATTRIBUTE), Uint8Array.of(i + 1));
  }
  const [bind] = h.take('request');
  assert.ok(bind, 'a ChannelBind after the first datagram (channelAfterPackets 1)');
  assert.equal(bind.method, CHANNEL_BIND);
  assert.equal(get(bind, CHANNEL_NUMBER), 0x4000);
  assert.deepEqual(get(bind, XOR_PEER_ADDRESS), PEER);
  h.core.send(Uint8Array.of(3), PEER, 0);
  assert.equal(decodeMessage(h.transmitted()[0]!).method, SEND, 'indications until the channel is bound');
  h.answer(bind, success(CHANNEL_BIND));
  h.core.send(Uint8Array.of(4), PEER, 0);
  assert.deepEqual(decodeChannelData(h.transmitted()[0]!), { channel: 0x4000, data: Uint8Array.of(4) });
  assert.deepEqual({ ind: h.core.stats.indicationsSent, cd: h.core.stats.channelDataSent }, { ind: 3, cd: 1 });
});

test('channelAfterPackets: Infinity never binds; stream framing pads ChannelData', () => {
  const never = new Harness({ channelAfterPackets: Infinity });
  never.allocate();
  never.permit();
  assert.deepEqual(never.take('request'), []);
  const stream = new Harness({ framing: 'stream', channelAfterPackets: 1 });
  stream.allocate();
  stream.permit();
  const [bind] = stream.take('request');
  stream.answer(bind!, success(CHANNEL_BIND));
  stream.core.send(Uint8Array.of(9), PEER, 0);
  assert.equal(stream.transmitted()[0]!.length, 8, '4-byte header, 1 byte, 3 bytes of padding (RFC 8656 §12.5)');
});

test('permissions refreshed every 240 s and channels 60 s before their 600 s, until close', () => {
  const h = new Harness({ lifetimeS: 3600 });
  h.allocate(3600);
  h.permit();
  const [bind] = h.take('request');
  h.now = 10 * S;
  h.answer(bind!, success(CHANNEL_BIND));
  assert.equal(h.core.nextTimerAt(), 240 * S);
  h.advance(230 * S);
  const refresh = h.request();
  assert.equal(refresh.method, CREATE_PERMISSION);
  assert.deepEqual(get(refresh, XOR_PEER_ADDRESS), PEER);
  h.answer(refresh, success(CREATE_PERMISSION));
  assert.equal(h.core.nextTimerAt(), 480 * S);
  h.advance(240 * S);
  h.answer(h.request(), success(CREATE_PERMISSION));
  assert.equal(h.core.nextTimerAt(), 550 * S, 'the channel, bound at 10 s');
  h.advance(70 * S);
  const rebind = h.request();
  assert.equal(rebind.method, CHANNEL_BIND);
  assert.equal(get(rebind, CHANNEL_NUMBER), 0x4000, 'the same number');
  h.answer(rebind, success(CHANNEL_BIND));
  assert.equal(h.core.nextTimerAt(), 720 * S);
});

test('receive: Data indications only from permitted peers; ChannelData on bound channels', () => {
  const h = new Harness();
  h.allocate();
  const data = (peer: Endpoint): Uint8Array => encodeMessage({
    method: DATA, cls: StunClass.INDICATION, transactionId: new Uint8Array(12), attributes: [attr(XOR_PEER_ADDRESS, peer), attr(DATA_ATTRIBUTE, Uint8Array.of(7))],
  });
  assert.equal(h.core.receive(data(PEER)), undefined, 'no permission yet (RFC 8656 §10.4)');
  h.permit();
  const [bind] = h.take('request');
  assert.deepEqual(h.core.receive(data(PEER)), { data: Uint8Array.of(7), peer: PEER });
  assert.deepEqual(h.core.receive(encodeChannelData({ channel: 0x4000, data: Uint8Array.of(8) })), { data: Uint8Array.of(8), peer: PEER });
  h.answer(bind!, success(CHANNEL_BIND));
  assert.equal(h.core.receive(encodeChannelData({ channel: 0x4001, data: Uint8Array.of(8) })), undefined);
  assert.equal(h.core.receive(Uint8Array.of(0x40, 0, 0, 9)), undefined, 'truncated ChannelData');
  assert.equal(h.core.receive(encodeMessage({ method: SEND, cls: StunClass.INDICATION, transactionId: new Uint8Array(12) })), undefined);
  assert.deepEqual({ d: h.core.stats.dataIndications, c: h.core.stats.channelDataReceived, x: h.core.stats.discarded }, { d: 1, c: 1, x: 3 });
});

test('a refused permission drops what waited and what follows for 30 s, then asks again', () => {
  const h = new Harness();
  h.allocate();
  h.core.send(Uint8Array.of(1), PEER, 0);
  h.answer(h.request(), errorResponse(403, [], CREATE_PERMISSION));
  assert.equal(h.core.state, 'allocated', 'a refused permission does not end the allocation');
  assert.equal(h.core.send(Uint8Array.of(2), PEER, 29 * S), false);
  assert.equal(h.core.stats.dropped, 2);
  assert.equal(h.core.send(Uint8Array.of(3), PEER, 30 * S), true);
  assert.equal(h.request().method, CREATE_PERMISSION);
});

test('sends are dropped: wrong family, oversize, full queue, before allocation', () => {
  const h = new Harness({ maxQueuedPerPeer: 2 });
  assert.equal(h.core.send(Uint8Array.of(1), PEER, 0), false, 'not allocated');
  h.allocate();
  assert.equal(h.core.send(Uint8Array.of(1), PEER_V6, 0), false, 'an IPv4 relay cannot reach an IPv6 peer');
  assert.equal(h.core.send(new Uint8Array(0xffff), PEER, 0), false);
  assert.deepEqual([1, 2, 3].map((i) => h.core.send(Uint8Array.of(i), PEER, 0)), [true, true, false]);
  assert.equal(h.core.stats.dropped, 4);
});

for (const c of [
  { code: 441, name: 'Wrong Credentials' },
  { code: 442, name: 'Unsupported Transport Protocol' },
  { code: 486, name: 'Allocation Quota Reached' },
  { code: 508, name: 'Insufficient Capacity' },
  { code: 437, name: 'Allocation Mismatch' },
]) {
  test(`Allocate answered ${c.code} ${c.name}: a TurnError with status ${c.code}`, () => {
    const h = new Harness();
    h.core.start();
    h.answer(h.request(), challenge(401));
    h.answer(h.request(), errorResponse(c.code));
    const error = failure(h);
    assert.equal(error.status, c.code);
    assert.match(error.message, new RegExp(`Allocate at 198\\.51\\.100\\.1:3478: ${c.code}`));
    assert.equal(h.core.state, 'failed');
  });
}

for (const method of [REFRESH, CREATE_PERMISSION, CHANNEL_BIND]) {
  test(`437 on ${method === REFRESH ? 'Refresh' : method === CREATE_PERMISSION ? 'CreatePermission' : 'ChannelBind'}: the allocation is gone`, () => {
    const h = new Harness();
    h.allocate();
    let r;
    if (method === REFRESH) {
      h.advance(540 * S);
      r = h.request();
    } else if (method === CREATE_PERMISSION) {
      h.core.send(Uint8Array.of(1), PEER, 0);
      r = h.request();
    } else {
      h.permit();
      r = h.take('request')[0]!;
    }
    h.answer(r, errorResponse(437, [], method));
    assert.equal(failure(h).status, 437);
    assert.equal(h.core.nextTimerAt(), undefined);
  });
}

test('a ChannelBind refused with 508 leaves the peer on Send indications', () => {
  const h = new Harness();
  h.allocate();
  h.permit();
  h.answer(h.take('request')[0]!, errorResponse(508, [], CHANNEL_BIND));
  h.core.send(Uint8Array.of(5), PEER, 0);
  h.core.send(Uint8Array.of(6), PEER, 0);
  assert.deepEqual(h.transmitted().map((b) => decodeMessage(b).method), [SEND, SEND]);
  assert.deepEqual(h.take('request'), [], 'no second ChannelBind');
});

test('dual allocation asks ADDITIONAL-ADDRESS-FAMILY IPv6; both relayed addresses are reported', () => {
  const h = new Harness({ addressFamily: 'dual' });
  h.core.start();
  const r = h.request();
  assert.equal(get(r, ADDITIONAL_ADDRESS_FAMILY), 2);
  const v6: Endpoint = { address: '2001:db8::1', port: 50000, family: 6 };
  h.answer(r, success(ALLOCATE, [attr(XOR_RELAYED_ADDRESS, RELAYED), attr(XOR_RELAYED_ADDRESS, v6), attr(LIFETIME, 600)]));
  assert.deepEqual(h.core.allocation?.relayed, [RELAYED, v6]);
  assert.equal(h.core.send(Uint8Array.of(1), PEER_V6, 0), true, 'the IPv6 relay reaches IPv6 peers');
});

test('a success response without XOR-RELAYED-ADDRESS fails with ERR_STUN_DECODE', () => {
  const h = new Harness();
  h.core.start();
  h.answer(h.request(), success(ALLOCATE, [attr(LIFETIME, 600)]));
  assert.equal(failure(h).code, 'ERR_STUN_DECODE');
});

test('close: Refresh with LIFETIME 0, signed; closed on success, on 437 and on timeout; idempotent', () => {
  for (const answer of [success(REFRESH, [attr(LIFETIME, 0)]), errorResponse(437, [], REFRESH), new NatkitError('ERR_TIMEOUT', 'x')]) {
    const h = new Harness();
    h.allocate();
    h.permit();
    h.take('request');
    h.core.close();
    const del = h.request();
    assert.equal(del.method, REFRESH);
    assert.equal(get(del, LIFETIME), 0);
    assert.ok(del.sign?.key);
    assert.equal(h.core.send(Uint8Array.of(1), PEER, 0), false);
    h.core.close();
    h.answer(del, answer);
    assert.deepEqual(h.actions(), [{ kind: 'closed' }]);
    assert.equal(h.core.state, 'closed');
    assert.equal(h.core.nextTimerAt(), undefined);
  }
});

test('keepalive over UDP: a Binding indication after keepaliveMs without sending, postponed by traffic, none once closed', () => {
  const h = new Harness({ keepaliveMs: 15 * S });
  h.now = 1 * S;
  h.allocate();
  assert.equal(h.core.nextTimerAt(), 16 * S, 'counted from the allocation');
  h.advance(15 * S - 1);
  assert.deepEqual(h.transmitted(), []);
  h.advance(1);
  const [keepalive, ...more] = h.transmitted();
  assert.equal(more.length, 0);
  const msg = decodeMessage(keepalive!);
  assert.deepEqual([msg.method, msg.cls, msg.attributes.length], [BINDING, StunClass.INDICATION, 0]);
  assert.equal(h.core.stats.keepalives, 1);
  assert.equal(h.core.nextTimerAt(), 31 * S);
  // Relaying at 20 s (a CreatePermission, then a Send indication) moves the next keepalive to 35 s.
  h.advance(4 * S);
  h.permit();
  assert.equal(h.core.nextTimerAt(), 35 * S);
  h.advance(11 * S);
  assert.deepEqual(h.transmitted(), [], 'not due at 31 s any more');
  h.advance(4 * S);
  assert.equal(h.transmitted().length, 1);
  assert.equal(h.core.stats.keepalives, 2);
  h.core.close();
  assert.equal(h.core.nextTimerAt(), undefined);
  h.advance(60 * S);
  assert.deepEqual(h.transmitted(), []);
});

test('keepalive: off with keepaliveMs 0 and over a stream (the connection holds the mapping); a bad value is refused', () => {
  for (const options of [{ keepaliveMs: 0 }, { framing: 'stream' as const, keepaliveMs: 15 * S }, { framing: 'stream' as const }]) {
    const h = new Harness(options);
    h.allocate();
    assert.equal(h.core.nextTimerAt(), 540 * S, JSON.stringify(options));
    h.advance(500 * S);
    assert.deepEqual(h.transmitted(), []);
    assert.equal(h.core.stats.keepalives, 0);
  }
  assert.equal(new Harness({ defaultKeepalive: true }).core.nextTimerAt(), undefined, 'nothing before the allocation');
  for (const keepaliveMs of [-1, 1.5, NaN]) {
    assert.throws(() => new Harness({ keepaliveMs }), (e: unknown) => e instanceof NatkitError && e.code === 'ERR_INVALID_ARGUMENT');
  }
});

test('keepalive by default over UDP: every 15 s', () => {
  const h = new Harness({ defaultKeepalive: true });
  h.allocate();
  assert.equal(h.core.nextTimerAt(), 15 * S);
});
