// What net/node promises beyond the Network contract: separate IPv4/IPv6 sockets,
// normalised bind addresses, resolveEndpoint, the clock, randomness, loggers, nodeEnv —
// and a check that the leak helper the suites rely on does catch leaks.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { endpoint } from '../../src/net/index.ts';
import { NodeNetwork, consoleLogger, cryptoRandom, nodeEnv, resolveEndpoint, silentLogger, systemClock } from '../../src/net/node/index.ts';
import { isNatkitError, type NatkitErrorCode } from '../../src/util/index.ts';
import { assertNoLeaks, noLeaks, trackResources } from '../helpers/leaks.ts';

const net = new NodeNetwork();

test('bind: "::" is IPv6-only, so "0.0.0.0" can take the same port', noLeaks(async () => {
  const v6 = await net.bindUdp({ address: '::' });
  try {
    assert.equal(v6.local.family, 6);
    const v4 = await net.bindUdp({ address: '0.0.0.0', port: v6.local.port });
    assert.deepEqual(v4.local, endpoint('0.0.0.0', v6.local.port));
    await v4.close();
  } finally {
    await v6.close();
  }
}));

test('bind: an IPv4-mapped bind address makes an IPv4 socket', noLeaks(async () => {
  const s = await net.bindUdp({ address: '::ffff:127.0.0.1' });
  try {
    assert.equal(s.local.family, 4);
    assert.equal(s.local.address, '127.0.0.1');
  } finally {
    await s.close();
  }
}));

const resolveCases: { text: string; port?: number; family?: 4 | 6; want: string }[] = [
  { text: '192.0.2.1:3478', want: '192.0.2.1:3478' },
  { text: '[2001:db8::1]:5349', want: '[2001:db8::1]:5349' },
  { text: '2001:db8::1', port: 3478, want: '[2001:db8::1]:3478' },
  { text: '::ffff:192.0.2.1', port: 1, want: '192.0.2.1:1' },
  { text: 'localhost:7', family: 4, want: '127.0.0.1:7' },
  { text: 'localhost', port: 9, family: 4, want: '127.0.0.1:9' },
  { text: '192.0.2.1:1', family: 6, want: 'ERR_INVALID_ARGUMENT' },
  { text: 'localhost', want: 'ERR_INVALID_ARGUMENT' },
  { text: 'localhost:99999', want: 'ERR_INVALID_ARGUMENT' },
  { text: 'bad host:1', want: 'ERR_INVALID_ARGUMENT' },
  { text: ':1', want: 'ERR_INVALID_ARGUMENT' },
];

for (const c of resolveCases) {
  test(`resolveEndpoint ${c.text}${c.family === undefined ? '' : ` (IPv${c.family})`} → ${c.want}`, async () => {
    const run = resolveEndpoint(c.text, c.port, c.family === undefined ? {} : { family: c.family });
    if (c.want.startsWith('ERR_')) {
      await assert.rejects(run, (err: unknown) => isNatkitError(err, c.want as NatkitErrorCode));
    } else {
      const e = await run;
      assert.equal(e.family === 6 ? `[${e.address}]:${e.port}` : `${e.address}:${e.port}`, c.want);
    }
  });
}

test('resolveEndpoint: a name the resolver does not know rejects with ERR_SOCKET and the resolver error as cause', async () => {
  const notFound = Object.assign(new Error('getaddrinfo ENOTFOUND stun.example'), { code: 'ENOTFOUND' });
  const asked: [string, number][] = [];
  const lookup = (host: string, family: number): Promise<{ address: string }> => {
    asked.push([host, family]);
    return Promise.reject(notFound);
  };
  await assert.rejects(resolveEndpoint('stun.example:3478', undefined, { lookup, family: 6 }), (err: unknown) => isNatkitError(err, 'ERR_SOCKET') && err.cause === notFound);
  assert.deepEqual(asked, [['stun.example', 6]]);
});

test('resolveEndpoint: the resolver answer is normalised; IP literals never reach it', async () => {
  const asked: string[] = [];
  const lookup = (host: string): Promise<{ address: string }> => {
    asked.push(host);
    return Promise.resolve({ address: '::ffff:203.0.113.5' });
  };
  assert.deepEqual(await resolveEndpoint('stun.example', 3478, { lookup }), endpoint('203.0.113.5', 3478));
  await resolveEndpoint('[2001:db8::1]:1', undefined, { lookup });
  await resolveEndpoint('192.0.2.1:1', undefined, { lookup });
  assert.deepEqual(asked, ['stun.example']);
});

test('resolveEndpoint: an aborted signal rejects with ERR_ABORTED, before or during the lookup', async () => {
  const never = (): Promise<{ address: string }> => new Promise(() => undefined);
  await assert.rejects(resolveEndpoint('localhost:1', undefined, { signal: AbortSignal.abort() }), (err: unknown) => isNatkitError(err, 'ERR_ABORTED'));
  const controller = new AbortController();
  const pending = resolveEndpoint('stun.example:1', undefined, { signal: controller.signal, lookup: never });
  controller.abort();
  await assert.rejects(pending, (err: unknown) => isNatkitError(err, 'ERR_ABORTED'));
});

test('systemClock: monotonic now(), timers fire once and cancel', noLeaks(async () => {
  const t0 = systemClock.now();
  let fired = 0;
  await new Promise<void>((resolve) => systemClock.setTimer(5, () => {
    fired++;
    resolve();
  }));
  assert.ok(systemClock.now() - t0 >= 4, 'at least about the delay passed');
  const cancelled = systemClock.setTimer(1, () => fired++);
  cancelled.cancel();
  cancelled.cancel();
  await new Promise((resolve) => setTimeout(resolve, 10));
  assert.equal(fired, 1);
}));

test('cryptoRandom: n bytes, different each call', () => {
  const a = cryptoRandom.bytes(12);
  const b = cryptoRandom.bytes(12);
  assert.ok(a instanceof Uint8Array);
  assert.equal(a.length, 12);
  assert.notDeepEqual(a, b);
  assert.equal(cryptoRandom.bytes(0).length, 0);
});

test('consoleLogger: JSON lines at or above its level, fields kept, odd values made safe', () => {
  const lines: string[] = [];
  const log = consoleLogger('info', (l) => lines.push(l));
  log.debug('hidden');
  log.info('bound', { local: endpoint('::1', 5), n: 10n, err: new Error('boom'), bytes: Uint8Array.of(1, 255) });
  const circular: Record<string, unknown> = {};
  circular.self = circular;
  log.warn('circular', { circular });
  assert.equal(lines.length, 2);
  assert.ok(lines.every((l) => l.endsWith('\n')));
  const first = JSON.parse(lines[0]!) as Record<string, unknown>;
  assert.equal(first.level, 'info');
  assert.equal(first.msg, 'bound');
  assert.equal(typeof first.time, 'string');
  assert.deepEqual(first.local, { address: '::1', port: 5, family: 6 });
  assert.equal(first.n, '10');
  assert.deepEqual(first.err, { name: 'Error', message: 'boom' });
  assert.equal(first.bytes, '01ff');
  const second = JSON.parse(lines[1]!) as Record<string, unknown>;
  assert.equal(second.msg, 'circular');
  assert.equal(typeof second.fieldsError, 'string');
});

test('nodeEnv: real defaults, each replaceable', () => {
  const env = nodeEnv();
  assert.ok(env.network instanceof NodeNetwork);
  assert.equal(env.clock, systemClock);
  assert.equal(env.random, cryptoRandom);
  assert.equal(env.logger, silentLogger);
  const clock = { now: () => 1, setTimer: (ms: number, fn: () => void) => systemClock.setTimer(ms, fn) };
  assert.equal(nodeEnv({ clock }).clock, clock);
});

test('the leak helper sees a socket and a timer left open', async () => {
  const before = trackResources();
  const s = await net.bindUdp({ address: '127.0.0.1' });
  const timer = setTimeout(() => undefined, 10_000);
  await assert.rejects(assertNoLeaks(before, { settleMs: 20 }), /UDPWrap×1, Timeout×1/);
  clearTimeout(timer);
  await s.close();
  await assertNoLeaks(before);
});
