// checkNat and `natkit check` on loopback sockets against natkit's STUN server (two
// addresses and one), a silent port, a server that ignores CHANGE-REQUEST, and abort.
// Behind-NAT outcomes are tested in the simulated world and the namespace lab.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { commands } from '../../src/cli/commands/index.ts';
import { runCli } from '../../src/cli/run.ts';
import { checkNat, type NatReport } from '../../src/nat/index.ts';
import { nodeEnv } from '../../src/net/node/index.ts';
import { endpoint, type Endpoint } from '../../src/net/index.ts';
import {
  BINDING, CHANGE_REQUEST, OTHER_ADDRESS, StunClass, StunServer, XOR_MAPPED_ADDRESS, attr, decodeMessage, encodeMessage,
} from '../../src/stun/index.ts';
import { isNatkitError } from '../../src/util/index.ts';
import { noLeaks } from '../helpers/leaks.ts';

const env = nodeEnv();
const QUICK = { firstTimers: { rtoMs: 50, maxTransmissions: 2, lastWaitMultiplier: 2 } } as const;

async function server(addresses: string[]) {
  return StunServer.create({ env, addresses, ports: addresses.length === 2 ? [0, 0] : [0], tcp: false, rateLimit: false });
}

const primary = (s: StunServer): Endpoint => s.endpoints[0]!.local;

test('two-address server, no NAT: open internet, every test measured, on the socket we give it', noLeaks(async () => {
  await using s = await server(['127.0.0.1', '127.0.0.2']);
  await using socket = await env.network.bindUdp({ address: '0.0.0.0' });
  const steps: string[] = [];
  const r = await checkNat({ env, server: primary(s), socket, onProgress: (p) => steps.push(p.step) });
  assert.equal(r.udp, true);
  assert.deepEqual(r.local, socket.local, 'the very socket the application will use');
  assert.deepEqual(r.mapped, endpoint('127.0.0.1', socket.local.port));
  assert.equal(r.natted, false, 'told without being given our own address');
  assert.equal(r.classic, 'open-internet');
  assert.equal(r.mapping, 'endpoint-independent');
  assert.equal(r.filtering, 'endpoint-independent');
  assert.equal(r.hairpinning, true);
  assert.equal(r.mappingVariesByDestination, false);
  assert.deepEqual(r.portAllocation, { kind: 'preserving' });
  assert.equal(r.publicIPv4, '127.0.0.1');
  assert.deepEqual(r.notMeasured, []);
  assert.deepEqual(r.otherAddress, s.endpoints.find((e) => e.role === 3)!.local);
  assert.equal(r.serverSoftware, 'natkit');
  for (const step of ['binding', 'filtering', 'allocation', 'mapping', 'hairpinning', 'done']) assert.ok(steps.includes(step), `progress shows ${step}`);
  // 1 + 2 filtering + 3 allocation + 1 hairpin + 1 mapping (test II alone: the mapping is
  // endpoint-independent, RFC 5780 §4.3), nothing retransmitted on loopback.
  assert.deepEqual(r.packets, { sent: 8, received: 8 });
  assert.equal(s.core.stats.changed, 2);

  // The socket is still the application's: open, and free for its own receiver.
  assert.equal(socket.closed, false);
  const echo = await env.network.bindUdp({ address: '127.0.0.1' });
  try {
    const got = new Promise<string>((resolve) => socket.onPacket((d) => resolve(Buffer.from(d).toString())));
    echo.send(Buffer.from('mine again'), endpoint('127.0.0.1', socket.local.port));
    assert.equal(await got, 'mine again');
  } finally {
    socket.onPacket(undefined);
    await echo.close();
  }
}));

test('one-address server: what could not be measured is said, with why', noLeaks(async () => {
  await using s = await server(['127.0.0.1']);
  const r = await checkNat({ env, server: primary(s) });
  assert.equal(r.udp, true);
  assert.equal(r.natted, false);
  assert.equal(r.mapping, 'endpoint-independent', 'no NAT: nothing translates, whatever the destination');
  assert.equal(r.filtering, 'unknown');
  assert.equal(r.classic, 'unknown');
  assert.deepEqual(r.notMeasured.map((n) => n.what), ['filtering']);
  assert.match(r.notMeasured[0]!.why, /no OTHER-ADDRESS/);
  assert.equal(r.hairpinning, true, 'hairpinning needs no second address');
  assert.deepEqual(r.portAllocation, { kind: 'preserving' });
}));

test('natkit check --first-rto-ms: UDP blocked after 4 sends within 11 × that RTO', noLeaks(async () => {
  await using silent = await env.network.bindUdp({ address: '127.0.0.1' });
  let got = 0;
  silent.onPacket(() => void (got += 1));
  const out = { out: '', err: '' };
  const io = { out: (t: string) => void (out.out += t), err: (t: string) => void (out.err += t) };
  const started = performance.now();
  const code = await runCli(commands, ['check', '--json', '--first-rto-ms', '20', '--no-portmap', '--server', `127.0.0.1:${silent.local.port}`], { io, env, signal: AbortSignal.timeout(10_000) });
  const tookMs = performance.now() - started;
  assert.equal(code, 0, out.err);
  const r = JSON.parse(out.out) as NatReport;
  assert.equal(r.classic, 'udp-blocked');
  assert.equal(got, 4, 'the other timers keep their defaults (4 transmissions)');
  assert.ok(tookMs >= 200 && tookMs < 1500, `gave up after about 11 × 20 ms, not 2.75 s (${Math.round(tookMs)} ms)`);
}));

test('nothing answers: UDP blocked after the first request\'s schedule', noLeaks(async () => {
  await using silent = await env.network.bindUdp({ address: '127.0.0.1' });
  const r = await checkNat({ env, server: silent.local, ...QUICK });
  assert.equal(r.udp, false);
  assert.equal(r.classic, 'udp-blocked');
  assert.equal(r.packets.sent, 2);
  assert.ok(r.durationMs >= 150, `waited the whole schedule (${r.durationMs} ms)`);
  assert.match(r.advice.join(' '), /relay over TCP or TLS/);
}));

test('a server that ignores CHANGE-REQUEST cannot fool the filtering test', noLeaks(async () => {
  // Answers every Binding from where it was asked, yet claims an alternate address.
  await using liar = await env.network.bindUdp({ address: '127.0.0.1' });
  liar.onPacket((data, from) => {
    const req = decodeMessage(data);
    liar.send(encodeMessage({
      method: BINDING, cls: StunClass.SUCCESS, transactionId: req.transactionId,
      attributes: [attr(XOR_MAPPED_ADDRESS, from), attr(OTHER_ADDRESS, endpoint('127.0.0.2', liar.local.port + 1))],
    }), from);
  });
  const r = await checkNat({ env, server: liar.local, hairpinning: false, allocationSamples: 0, ...QUICK });
  assert.equal(r.filtering, 'unknown');
  assert.match(r.notMeasured.find((n) => n.what === 'filtering')?.why ?? '', /answered a CHANGE-REQUEST from 127\.0\.0\.1:\d+, not 127\.0\.0\.2:\d+/);
  assert.equal(r.mapping, 'unknown', 'its alternate address never answers');
}));

test('unanswered filtering and hairpin probes wait once, together, on RFC 8489\'s schedule', noLeaks(async () => {
  // A "port-restricted cone": a server on two addresses whose CHANGE-REQUEST answers never
  // arrive, and a mapped address where nothing answers, so the hairpin probes vanish too.
  await using hole = await env.network.bindUdp({ address: '127.0.0.1' });
  await using a = await env.network.bindUdp({ address: '127.0.0.1' });
  await using b = await env.network.bindUdp({ address: '127.0.0.2', port: a.local.port });
  const started = performance.now();
  const holeAt: number[] = [];
  hole.onPacket(() => void holeAt.push(performance.now() - started));
  let filtered = 0;
  for (const s of [a, b]) {
    s.onPacket((data, from) => {
      const req = decodeMessage(data);
      if (req.has(CHANGE_REQUEST)) {
        filtered += 1;
        return;
      }
      s.send(encodeMessage({
        method: BINDING, cls: StunClass.SUCCESS, transactionId: req.transactionId,
        attributes: [attr(XOR_MAPPED_ADDRESS, hole.local), attr(OTHER_ADDRESS, b.local)],
      }), from);
    });
  }
  const r = await checkNat({ env, server: a.local, allocationSamples: 0, probeMinRtoMs: 100 });
  assert.equal(r.classic, 'port-restricted-cone');
  assert.equal(r.hairpinning, false);
  assert.equal(filtered, 4, 'two CHANGE-REQUESTs, two transmissions each');
  // Each probe: sends at 0 and RTO, then Rm × RTO (2 × 100 ms) of waiting: 300 ms.
  assert.equal(holeAt.length, 2);
  const gap = holeAt[1]! - holeAt[0]!;
  assert.ok(gap >= 90, `hairpin probes spaced one RTO (gap ${Math.round(gap)} ms)`);
  assert.ok(r.durationMs >= 290, `waited a whole schedule (${r.durationMs} ms)`);
  assert.ok(r.durationMs < 560, `filtering and hairpinning waited at once, not one after the other (${r.durationMs} ms)`);
  // 1 + 4 filtering + 2 hairpin + 1 mapping (test II alone) sent; the first and test II answered.
  assert.deepEqual(r.packets, { sent: 8, received: 2 });
}));

test('binding lifetime: idle mappings checked at each age through RESPONSE-PORT (RFC 5780 §4.6)', noLeaks(async () => {
  await using s = await server(['127.0.0.1', '127.0.0.2']);
  const r = await checkNat({ env, server: primary(s), lifetimeS: [0.2, 0.4], hairpinning: false, allocationSamples: 0 });
  assert.deepEqual(r.bindingLifetime, { aliveS: 0.4, expiredS: undefined }, 'no NAT: nothing expires');
  assert.equal(s.core.stats.responsePort, 2);
}));

test('abort: rejects with ERR_ABORTED and leaves nothing open', noLeaks(async () => {
  await using silent = await env.network.bindUdp({ address: '127.0.0.1' });
  const controller = new AbortController();
  const p = checkNat({ env, server: silent.local, signal: controller.signal });
  setTimeout(() => controller.abort(), 30);
  await assert.rejects(p, (e) => isNatkitError(e, 'ERR_ABORTED'));
}));

test('natkit check --json prints the same report; the human form reads at a glance', async () => {
  await using s = await server(['127.0.0.1', '127.0.0.2']);
  const io = () => {
    const o = { out: '', err: '' };
    return { o, io: { out: (t: string) => void (o.out += t), err: (t: string) => void (o.err += t) } };
  };
  const a = io();
  const code = await runCli(commands, ['check', '--json', '--server', `127.0.0.1:${primary(s).port}`], { io: a.io, env, signal: AbortSignal.timeout(10_000) });
  assert.equal(code, 0, a.o.err);
  assert.equal(a.o.err, '', '--json keeps stderr quiet');
  const report = JSON.parse(a.o.out) as NatReport;
  assert.equal(report.classic, 'open-internet');
  const b = io();
  assert.equal(await runCli(commands, ['check', '-s', `127.0.0.1:${primary(s).port}`, '--no-hairpin'], { io: b.io, env, signal: AbortSignal.timeout(10_000) }), 0);
  assert.match(b.o.out, /NAT type {10}Open internet/);
  assert.match(b.o.out, /Hairpinning {7}not measured/);
  assert.match(b.o.err, /filtering +asking for answers/, 'progress on stderr');
  const c = io();
  assert.equal(await runCli(commands, ['check', '--lifetime-ages', '5,x'], { io: c.io, env, signal: AbortSignal.timeout(10_000) }), 2);
  assert.equal(await runCli(commands, ['check', '--first-rto-ms', '5'], { io: c.io, env, signal: AbortSignal.timeout(10_000) }), 2);
  assert.match(c.o.err, /--first-rto-ms: expected a whole number in 10–10000, got "5"/);
});
