// NatPmpClient against the fake gateway in memory, on a manual clock: requests as RFC
// 6886 lays them out, the §3.1 schedule through the driver, answers only from the gateway,
// result codes as values, timeouts, garbled answers, abort and close as errors, and the
// §3.6 reboot check.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NatPmpClient, decodeNatPmpRequest, type NatPmpClientOptions } from '../../src/portmap/index.ts';
import { isNatkitError } from '../../src/util/index.ts';
import { hex } from '../helpers/hex.ts';
import { GATEWAY, PortmapWorld } from '../helpers/portmap-world.ts';

async function client(w: PortmapWorld, options: Partial<NatPmpClientOptions> = {}): Promise<NatPmpClient> {
  return NatPmpClient.create({ env: w.env, gateway: GATEWAY, ...options });
}

test('external address: §3.2 request, the address as a value', async () => {
  const w = new PortmapWorld({ externalAddress: '198.51.100.77' });
  await using c = await client(w);
  const r = await c.externalAddress();
  assert.ok(r.ok);
  assert.equal(r.externalAddress, '198.51.100.77');
  assert.equal(r.transmissions, 1);
  assert.equal(r.gatewayReset, false);
  assert.deepEqual(w.socket.sent.map((p) => [p.data, p.to]), [[hex('0000'), GATEWAY]]);
});

test('map, then delete with lifetime 0 and suggested port 0 (§3.3, §3.4)', async () => {
  const w = new PortmapWorld();
  await using c = await client(w);
  const m = await c.map({ protocol: 'udp', internalPort: 5000, suggestedExternalPort: 6000, lifetimeS: 600 });
  assert.ok(m.ok);
  assert.deepEqual([m.protocol, m.internalPort, m.externalPort, m.lifetimeS], ['udp', 5000, 6000, 600]);
  assert.equal(w.gateway.mappings.size, 1);
  const d = await c.delete({ protocol: 'udp', internalPort: 5000 });
  assert.ok(d.ok);
  assert.deepEqual([d.externalPort, d.lifetimeS], [0, 0]);
  assert.equal(w.gateway.mappings.size, 0);
  assert.deepEqual(decodeNatPmpRequest(w.socket.sent[1]!.data), { op: 'map', protocol: 'udp', internalPort: 5000, suggestedExternalPort: 0, lifetimeS: 0 });
});

test('the default lifetime is 7200 s (§3.3)', async () => {
  const w = new PortmapWorld();
  await using c = await client(w);
  await c.map({ protocol: 'tcp', internalPort: 80 });
  assert.deepEqual(decodeNatPmpRequest(w.socket.sent[0]!.data), { op: 'map', protocol: 'tcp', internalPort: 80, suggestedExternalPort: 0, lifetimeS: 7200 });
});

test('a refusal is a value: NOT_AUTHORIZED in the §3.5 8-byte form', async () => {
  const w = new PortmapWorld();
  w.gateway.authorized = false;
  await using c = await client(w);
  const r = await c.map({ protocol: 'udp', internalPort: 5000 });
  assert.ok(!r.ok);
  assert.equal(r.result, 'NOT_AUTHORIZED');
  assert.equal(r.resultCode, 2);
});

test('§3.1 schedule through the driver: nine transmissions, then ERR_TIMEOUT at 127.75 s', async () => {
  const w = new PortmapWorld();
  w.answering = false;
  await using c = await client(w);
  const call = c.externalAddress();
  const failed = assert.rejects(call, (e) => isNatkitError(e, 'ERR_TIMEOUT') && /9 transmissions/.test((e as Error).message));
  await w.advance(127_749, 250);
  assert.equal(w.sendTimes.length, 9);
  w.clock.advance(1);
  await failed;
  assert.deepEqual(w.sendTimes, [0, 250, 750, 1750, 3750, 7750, 15_750, 31_750, 63_750]);
  assert.equal(w.clock.pendingTimers, 0);
});

test('lost requests are sent again; the answer to the third counts', async () => {
  const w = new PortmapWorld();
  w.gateway.dropNext = 2;
  await using c = await client(w);
  const call = c.map({ protocol: 'udp', internalPort: 7000 });
  await w.advance(1000, 250);
  const r = await call;
  assert.ok(r.ok);
  assert.equal(r.transmissions, 3);
  assert.equal(r.rttMs, 750);
});

test('answers from anywhere but the gateway\'s address and port 5351 are dropped (§3.1)', async () => {
  const w = new PortmapWorld();
  w.answering = false;
  await using c = await client(w, { timers: { maxTransmissions: 1 } });
  const call = c.externalAddress();
  const answer = hex('00 80 0000 00000001 01020304');
  w.socket.deliver(answer, { ...GATEWAY, port: 5350 });
  w.socket.deliver(answer, { ...GATEWAY, address: '192.168.1.254' });
  assert.equal(c.stats.notFromGateway, 2);
  w.socket.deliver(answer, GATEWAY);
  const r = await call;
  assert.ok(r.ok);
  assert.equal(r.externalAddress, '1.2.3.4');
});

test('an answer for another internal port is not ours; garbage alone ends in ERR_NATPMP_DECODE', async () => {
  const w = new PortmapWorld();
  w.answering = false;
  await using c = await client(w, { timers: { initialMs: 100, maxTransmissions: 2 } });
  const call = c.map({ protocol: 'udp', internalPort: 5000 });
  const failed = assert.rejects(call, (e) => isNatkitError(e, 'ERR_NATPMP_DECODE') && (e as Error).cause !== undefined);
  w.socket.deliver(hex('00 81 0000 00000001 1389 9c40 00000e10'), GATEWAY); // internal port 5001
  w.socket.deliver(hex('00 81 0000 00000001 1388'), GATEWAY); // cut short
  assert.equal(c.stats.unmatched, 1);
  assert.equal(c.stats.malformed, 1);
  await w.advance(300, 100);
  await failed;
});

test('abort rejects with ERR_ABORTED and stops retransmitting', async () => {
  const w = new PortmapWorld();
  w.answering = false;
  await using c = await client(w);
  const ac = new AbortController();
  const call = c.externalAddress({ signal: ac.signal });
  ac.abort(new Error('user'));
  await assert.rejects(call, (e) => isNatkitError(e, 'ERR_ABORTED'));
  assert.equal(w.clock.pendingTimers, 0);
  await assert.rejects(c.externalAddress({ signal: ac.signal }), (e) => isNatkitError(e, 'ERR_ABORTED'));
});

test('close rejects pending calls with ERR_CLOSED, closes its socket, and is idempotent', async () => {
  const w = new PortmapWorld();
  w.answering = false;
  const c = await client(w);
  const call = c.externalAddress();
  await c.close();
  await assert.rejects(call, (e) => isNatkitError(e, 'ERR_CLOSED'));
  await c.close();
  assert.equal(w.socket.closed, true);
  assert.equal(w.clock.pendingTimers, 0);
  await assert.rejects(c.map({ protocol: 'udp', internalPort: 1 }), (e) => isNatkitError(e, 'ERR_CLOSED'));
});

test('a socket given to the client is not closed by it', async () => {
  const w = new PortmapWorld();
  const c = await client(w, { socket: w.socket });
  await c.close();
  assert.equal(w.socket.closed, false);
});

test('§3.6: a gateway reboot (epoch back to 0) is reported; normal progress is not', async () => {
  const w = new PortmapWorld();
  await using c = await client(w);
  assert.equal((await c.map({ protocol: 'udp', internalPort: 5000 })).gatewayReset, false, 'first answer');
  await w.advance(100_000);
  assert.equal((await c.map({ protocol: 'udp', internalPort: 5000 })).gatewayReset, false, '100 s later, epoch 100');
  await w.advance(100_000);
  w.gateway.reboot(w.clock.now());
  const r = await c.externalAddress();
  assert.equal(r.epochS, 0);
  assert.equal(r.gatewayReset, true, 'epoch 0 where at least 185 was expected');
});

test('NAT-PMP is IPv4 only', async () => {
  const w = new PortmapWorld();
  await assert.rejects(client(w, { gateway: '[fe80::1]' }), (e) => isNatkitError(e, 'ERR_INVALID_ARGUMENT'));
});
