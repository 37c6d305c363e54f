// PortMapper over PCP and NAT-PMP against the fake gateway in memory, on a manual clock:
// the probe, the order and fallback, renewal between 1/2 and 5/8 of the lifetime (RFC
// 6886 §3.3, RFC 6887 §11.2.1) with the PCP nonce repeated, backoff on failure, lost and
// restored mappings, re-mapping everything after a gateway reset (RFC 6886 §3.6, RFC 6887
// §8.5, §14.1.1 ANNOUNCE), and close() deleting what it made.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  PortMapper, PcpOpcode, decodeNatPmpRequest, decodePcpRequest, encodePcpResponse, PCP_VERSION,
  type MappingChange, type PortMapperOptions,
} from '../../src/portmap/index.ts';
import { isNatkitError } from '../../src/util/index.ts';
import { GATEWAY, LOCAL, PortmapWorld } from '../helpers/portmap-world.ts';

const CALL_MS = 1000;

async function mapper(w: PortmapWorld, options: Partial<PortMapperOptions> = {}): Promise<PortMapper> {
  return PortMapper.create({
    env: w.env, gateway: GATEWAY, localAddress: LOCAL.address, order: ['pcp', 'natpmp'], instance: 'test',
    timeouts: { probeMs: 500, callMs: CALL_MS }, renewal: { retryMinMs: 2000, retryMaxMs: 16_000, maxLostAttempts: 3 },
    ...options,
  });
}

/** Runs a promise while advancing the manual clock, so retransmission timers fire. */
async function run<T>(w: PortmapWorld, p: Promise<T>, stepMs = 50, maxMs = 30_000): Promise<T> {
  let done = false;
  // Settled into a value at once, so a rejection is not "unhandled" while the clock runs.
  const outcome = p.then((value) => ({ value }), (error: unknown) => ({ error })).finally(() => (done = true));
  for (let t = 0; !done && t < maxMs; t += stepMs) await w.advance(stepMs);
  const r = await outcome;
  if ('error' in r) throw r.error;
  return r.value;
}

/** A mapper closed with the clock running (its deletes retransmit on it), even when the test fails. */
async function open(w: PortmapWorld, options: Partial<PortMapperOptions> = {}): Promise<PortMapper & AsyncDisposable> {
  const m = await mapper(w, options);
  return Object.assign(m, { [Symbol.asyncDispose]: async () => void (await run(w, m.close())) });
}

/** The MAP requests the gateway heard, decoded: [time index, protocol, internal port, lifetime]. */
function pcpMaps(w: PortmapWorld): { internalPort: number; lifetimeS: number; nonce: string }[] {
  return w.gateway.received.filter((r) => r.data[0] === PCP_VERSION).map((r) => decodePcpRequest(r.data))
    .flatMap((r) => (r.opcode === PcpOpcode.MAP ? [{ internalPort: r.map.internalPort, lifetimeS: r.lifetimeS, nonce: Buffer.from(r.map.nonce).toString('hex') }] : []));
}

test('probe: PCP and NAT-PMP answer with the external address; UPnP not in order', async () => {
  const w = new PortmapWorld({ externalAddress: '198.51.100.5' });
  await using m = await open(w);
  const p = await run(w, m.probe());
  assert.deepEqual([p.pcp.available, p.pcp.externalAddress, p.natpmp.available, p.natpmp.externalAddress], [true, '198.51.100.5', true, '198.51.100.5']);
  assert.deepEqual([p.upnp.available, p.upnp.error], [false, 'not in order']);
  assert.deepEqual(p.available, ['pcp', 'natpmp']);
  assert.equal(p.gateway, '192.168.1.1:5351');
  assert.equal(w.gateway.mappings.size, 0, 'the PCP probe deletes its mapping');
});

test('order: the first protocol that answers maps and is remembered; a NAT-PMP-only gateway gets NAT-PMP', async () => {
  const w = new PortmapWorld({ pcp: false });
  await using m = await open(w);
  const a = await run(w, m.map({ protocol: 'udp', internalPort: 5000, lifetimeS: 600 }));
  assert.deepEqual([a.via, a.externalAddress, a.lifetimeS, m.via], ['natpmp', '203.0.113.7', 600, 'natpmp']);
  const before = w.gateway.received.length;
  await run(w, m.map({ protocol: 'tcp', internalPort: 5001, lifetimeS: 600 }));
  assert.ok(w.gateway.received.slice(before).every((r) => r.data[0] === 0), 'no PCP (and no probe) once NAT-PMP is known to work');
  await assert.rejects(m.map({ protocol: 'udp', internalPort: 0 }), (e) => isNatkitError(e, 'ERR_INVALID_ARGUMENT'));
  await assert.rejects(m.map({ protocol: 'udp', internalPort: 1, via: 'upnp' }), (e) => isNatkitError(e, 'ERR_INVALID_ARGUMENT'));
});

test('nothing answers: ERR_PORTMAP_UNAVAILABLE names each protocol', async () => {
  const w = new PortmapWorld();
  w.answering = false;
  await using m = await open(w);
  await assert.rejects(run(w, m.map({ protocol: 'udp', internalPort: 5000 })), (e) => isNatkitError(e, 'ERR_PORTMAP_UNAVAILABLE') && /pcp: ERR_TIMEOUT; natpmp: ERR_TIMEOUT/.test(e.message));
});

for (const [name, byte, fraction] of [['low draw', 0x00, 0.5], ['high draw', 0xff, 0.625]] as const) {
  test(`renewal at ${fraction} of the lifetime (${name}), the PCP nonce repeated (RFC 6887 §11.2.1)`, async () => {
    const w = new PortmapWorld();
    await using m = await open(w, { order: ['pcp'] });
    const a = await run(w, m.map({ protocol: 'udp', internalPort: 5000, lifetimeS: 1000 }));
    w.randomBytes = (n) => new Uint8Array(n).fill(byte);
    const mappedAt = w.clock.now();
    // The renewal timer was drawn at map() time with the counter randomness: re-draw by renewing once.
    const maps = (): number => pcpMaps(w).filter((r) => r.internalPort === 5000).length;
    await w.advance(630_000, 1000);
    assert.equal(maps(), 2, 'renewed once within 5/8 of the lifetime');
    const renewedAt = w.sendTimes.at(-1)!;
    assert.ok(renewedAt - mappedAt >= 500_000 && renewedAt - mappedAt <= 625_000, `renewed ${renewedAt - mappedAt} ms after the map`);
    // The next one comes from the fixed draw: exactly `fraction` of the 1000 s lifetime.
    await w.advance(700_000, 1000);
    const gap = w.sendTimes.at(-1)! - renewedAt;
    assert.ok(Math.abs(gap - fraction * 1_000_000) <= 1000 + (byte === 0xff ? 2000 : 0), `second renewal ${gap} ms later`);
    assert.equal(new Set(pcpMaps(w).filter((r) => r.internalPort === 5000).map((r) => r.nonce)).size, 1, 'one nonce throughout');
    assert.equal(a.state, 'active');
    assert.ok(a.expiresAt > w.clock.now());
  });
}

test('a failing renewal: retried with growing backoff, lost at expiry, restored when the gateway answers again', async () => {
  const w = new PortmapWorld();
  const changes: MappingChange[] = [];
  await using m = await open(w, { order: ['natpmp'], onChange: (c) => changes.push(c), renewal: { retryMinMs: 2000, retryMaxMs: 16_000, maxLostAttempts: 10 } });
  const a = await run(w, m.map({ protocol: 'udp', internalPort: 5000, lifetimeS: 60 }));
  w.answering = false;
  const silentFrom = w.sendTimes.length;
  await w.advance(120_000, 100);
  // Each attempt is a NAT-PMP request retransmitted until CALL_MS; attempts start after the backoff.
  const starts = w.sendTimes.slice(silentFrom).filter((t, i, all) => i === 0 || t - all[i - 1]! > CALL_MS);
  assert.ok(starts[0]! >= 30_000 && starts[0]! <= 37_500, `first renewal at ${starts[0]} ms`);
  const beforeExpiry = starts.filter((t) => t < 60_000);
  assert.ok(beforeExpiry.length >= 4, `several tries before the lifetime ends: ${beforeExpiry.join(', ')}`);
  // Before expiry no wait exceeds half the time left (plus the call and jitter).
  beforeExpiry.slice(1).forEach((t, i) => assert.ok(t - beforeExpiry[i]! <= Math.max(2000 * 1.2, (60_000 - beforeExpiry[i]! - CALL_MS) / 2) + CALL_MS + 200, `try at ${t} of ${starts.join(', ')}`));
  const lost = starts.filter((t) => t >= 60_000);
  const gaps = lost.slice(1).map((t, i) => t - lost[i]!);
  assert.ok(gaps.length >= 3, `attempts after the loss: ${lost.join(', ')}`);
  assert.ok(gaps.slice(1).every((g, i) => g > gaps[i]! || g >= 16_000 * 0.8), `backoff grows to retryMaxMs once lost: ${gaps.join(', ')}`);
  assert.deepEqual(changes.map((c) => c.kind), ['lost']);
  assert.equal(a.state, 'lost');
  w.answering = true;
  await w.advance(40_000, 100);
  assert.deepEqual(changes.map((c) => c.kind), ['lost', 'restored']);
  assert.equal(a.state, 'active');
  assert.equal(w.gateway.mappings.size, 1);
});

test('a lost mapping is given up after maxLostAttempts', async () => {
  const w = new PortmapWorld();
  const changes: MappingChange[] = [];
  await using m = await open(w, { order: ['natpmp'], onChange: (c) => changes.push(c) });
  const a = await run(w, m.map({ protocol: 'udp', internalPort: 5000, lifetimeS: 20 }));
  w.answering = false;
  await w.advance(200_000, 200);
  assert.deepEqual(changes.map((c) => c.kind), ['lost', 'failed']);
  assert.equal(a.state, 'removed');
  assert.deepEqual(m.mappings, []);
  assert.equal(w.clock.pendingTimers, 0, 'no timer left for it');
});

for (const via of ['pcp', 'natpmp'] as const) {
  test(`${via}: a gateway reset seen on one renewal re-maps every mapping at once, and a new port is reported`, async () => {
    const w = new PortmapWorld();
    const changes: MappingChange[] = [];
    await using m = await open(w, { order: [via], onChange: (c) => changes.push(c) });
    const a = await run(w, m.map({ protocol: 'udp', internalPort: 5000, lifetimeS: 100 }));
    const b = await run(w, m.map({ protocol: 'udp', internalPort: 5001, lifetimeS: 10_000 }));
    await w.advance(10_000, 1000);
    w.gateway.reboot(w.clock.now());
    w.gateway.takenPorts.add(b.externalPort); // after the reboot, b's old port is someone else's
    // a renews by 62.5 s; its answer carries the new epoch; b (not due for an hour) follows at once.
    await w.advance(55_000, 500);
    assert.equal(w.gateway.mappings.size, 2, 'both mappings exist again');
    assert.notEqual(b.externalPort, 0);
    assert.deepEqual(changes.map((c) => [c.kind, c.mapping.internalPort]), [['changed', 5001]]);
    assert.notEqual(changes[0]!.previous.externalPort, b.externalPort);
    assert.equal(a.state, 'active');
  });
}

test('PCP ANNOUNCE with a new epoch (RFC 6887 §14.1.1) re-maps at once', async () => {
  const w = new PortmapWorld();
  await using m = await open(w, { order: ['pcp'] });
  await run(w, m.map({ protocol: 'udp', internalPort: 5000, lifetimeS: 10_000 }));
  await w.advance(20_000, 1000);
  w.gateway.reboot(w.clock.now());
  const before = pcpMaps(w).length;
  w.socket.deliver(encodePcpResponse({ version: PCP_VERSION, opcode: PcpOpcode.ANNOUNCE, resultCode: 0, lifetimeS: 0, epochS: 0, options: [] }), GATEWAY);
  await w.advance(1000, 100);
  assert.equal(pcpMaps(w).length, before + 1, 'one MAP right after the announcement');
  assert.equal(w.gateway.mappings.size, 1);
});

test('unmap, release and close: deletes with the PCP nonce and NAT-PMP lifetime 0; idempotent; no timers left', async () => {
  const w = new PortmapWorld();
  const m = await mapper(w);
  const a = await run(w, m.map({ protocol: 'udp', internalPort: 5000, lifetimeS: 600 }));
  const b = await run(w, m.map({ protocol: 'tcp', internalPort: 5001, lifetimeS: 600, via: 'natpmp' }));
  const c = await run(w, m.map({ protocol: 'udp', internalPort: 5002, lifetimeS: 600 }));
  const d = await run(w, m.map({ protocol: 'udp', internalPort: 5003, lifetimeS: 600 }));
  assert.deepEqual([a.via, b.via, c.via], ['pcp', 'natpmp', 'pcp']);
  await run(w, m.unmap(c));
  assert.equal(c.state, 'removed');
  const kept = m.release(d);
  assert.equal(d.state, 'released');
  assert.equal(kept.nonce?.length, 24);
  const report = await run(w, m.close());
  assert.deepEqual(report.removed.map((r) => r.internalPort).sort(), [5000, 5001]);
  assert.deepEqual(report.failed, []);
  assert.equal(await m.close(), report, 'idempotent');
  assert.deepEqual([...w.gateway.mappings.values()].map((x) => x.internalPort), [5003], 'only the released mapping stays');
  const deletes = pcpMaps(w).filter((r) => r.lifetimeS === 0 && r.internalPort === 5000);
  assert.equal(deletes.length, 1);
  assert.equal(deletes[0]!.nonce, pcpMaps(w).find((r) => r.internalPort === 5000)!.nonce, 'RFC 6887 §15: the delete repeats the nonce');
  const natpmpDelete = w.gateway.received.filter((r) => r.data[0] === 0 && r.data.length === 12).map((r) => decodeNatPmpRequest(r.data)).at(-1);
  assert.deepEqual(natpmpDelete, { op: 'map', protocol: 'tcp', internalPort: 5001, suggestedExternalPort: 0, lifetimeS: 0 });
  assert.equal(w.clock.pendingTimers, 0);
  await assert.rejects(m.map({ protocol: 'udp', internalPort: 1 }), (e) => isNatkitError(e, 'ERR_CLOSED'));
});

test('closeOn: an aborted signal closes the mapper and deletes its mappings', async () => {
  const w = new PortmapWorld();
  const exit = new AbortController();
  const m = await mapper(w, { closeOn: exit.signal, order: ['natpmp'] });
  await run(w, m.map({ protocol: 'udp', internalPort: 5000 }));
  exit.abort();
  const report = await run(w, m.closed);
  assert.equal(report.removed.length, 1);
  assert.equal(w.gateway.mappings.size, 0);
});

test('create: bad options are ERR_INVALID_ARGUMENT', async () => {
  const w = new PortmapWorld();
  for (const bad of [{ order: [] }, { order: ['pcp', 'pcp'] }, { instance: 'a b' }, { description: '' }, { localAddress: undefined }] as Partial<PortMapperOptions>[]) {
    await assert.rejects(PortMapper.create({ env: w.env, gateway: GATEWAY, localAddress: LOCAL.address, ...bad }), (e) => isNatkitError(e, 'ERR_INVALID_ARGUMENT'), JSON.stringify(bad));
  }
});
