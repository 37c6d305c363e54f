// PcpClient and PortControlClient against the fake gateway in memory, on a manual clock:
// MAP with a nonce, refresh and delete with the same nonce (§11.1, §15), PREFER_FAILURE
// (§13.2), THIRD_PARTY (§13.1), ADDRESS_MISMATCH (§8.2), answers matched by nonce (§11.4),
// unknown options ignored (§7.3), the §8.1.1 schedule, the §8.5 epoch check, unsolicited
// answers, and the §9 fallback to NAT-PMP.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  PCP_VERSION, PcpClient, PcpOpcode, PortControlClient, decodePcpRequest, encodePcpResponse,
  type PcpClientOptions, type PcpRequest, type PcpResponse,
} from '../../src/portmap/index.ts';
import { isNatkitError } from '../../src/util/index.ts';
import { GATEWAY, LOCAL, PortmapWorld } from '../helpers/portmap-world.ts';

async function client(w: PortmapWorld, options: Partial<PcpClientOptions> = {}): Promise<PcpClient> {
  return PcpClient.create({ env: w.env, gateway: GATEWAY, ...options });
}

/** The MAP requests the gateway received. */
function mapRequests(w: PortmapWorld): Extract<PcpRequest, { opcode: 1 }>[] {
  return w.gateway.received.map((r) => decodePcpRequest(r.data)).filter((r): r is Extract<PcpRequest, { opcode: 1 }> => r.opcode === PcpOpcode.MAP);
}

test('MAP: our address in the header (§7.1), a fresh random nonce, the mapping as a value', async () => {
  const w = new PortmapWorld({ externalAddress: '198.51.100.20' });
  await using c = await client(w);
  const r = await c.map({ protocol: 'udp', internalPort: 5000, lifetimeS: 600 });
  assert.ok(r.ok);
  assert.deepEqual({ ...r.mapping, nonce: [...r.mapping.nonce] }, {
    protocol: 17, internalPort: 5000, externalPort: 40_000, externalAddress: '198.51.100.20', lifetimeS: 600, nonce: new Array<number>(12).fill(1),
  });
  const [req] = mapRequests(w);
  assert.equal(req?.clientAddress, LOCAL.address);
  assert.equal(req?.map.externalAddress, '0.0.0.0', 'no preference: ::ffff:0.0.0.0 on the wire (§11.1)');
  assert.equal(req?.lifetimeS, 600);
});

test('refresh and delete repeat the nonce the mapping was made with (§11.1, §15)', async () => {
  const w = new PortmapWorld();
  await using c = await client(w);
  const made = await c.map({ protocol: 'tcp', internalPort: 8080 });
  assert.ok(made.ok);
  const refreshed = await c.map({ protocol: 'tcp', internalPort: 8080 });
  assert.ok(refreshed.ok);
  assert.deepEqual(refreshed.mapping.nonce, made.mapping.nonce);
  const deleted = await c.delete({ protocol: 'tcp', internalPort: 8080 });
  assert.ok(deleted.ok, 'the gateway accepted the delete (it checks the nonce)');
  assert.equal(deleted.mapping.lifetimeS, 0);
  const reqs = mapRequests(w);
  assert.deepEqual(reqs.map((r) => r.lifetimeS), [7200, 7200, 0]);
  for (const r of reqs) assert.deepEqual(r.map.nonce, made.mapping.nonce);
  assert.equal(w.gateway.mappings.size, 0);
  assert.equal(c.nonceOf('tcp', 8080), undefined, 'forgotten after the delete');
  await assert.rejects(c.delete({ protocol: 'tcp', internalPort: 8080 }), (e) => isNatkitError(e, 'ERR_INVALID_ARGUMENT'));
});

test('another nonce cannot touch the mapping: NOT_AUTHORIZED as a value (§11.3)', async () => {
  const w = new PortmapWorld();
  await using c = await client(w);
  assert.ok((await c.map({ protocol: 'udp', internalPort: 9000 })).ok);
  const r = await c.delete({ protocol: 'udp', internalPort: 9000, nonce: new Uint8Array(12).fill(0xee) });
  assert.ok(!r.ok);
  assert.equal(r.result, 'NOT_AUTHORIZED');
  assert.equal(r.lifetimeS, 1800, 'how long the error holds');
  assert.equal(w.gateway.mappings.size, 1);
});

test('PREFER_FAILURE: CANNOT_PROVIDE_EXTERNAL instead of another port (§13.2); without it, another port', async () => {
  const w = new PortmapWorld();
  w.gateway.takenPorts.add(6000);
  await using c = await client(w);
  const strict = await c.map({ protocol: 'udp', internalPort: 5000, suggestedExternalPort: 6000, preferFailure: true });
  assert.ok(!strict.ok);
  assert.equal(strict.result, 'CANNOT_PROVIDE_EXTERNAL');
  assert.equal(w.gateway.mappings.size, 0);
  assert.deepEqual(mapRequests(w)[0]?.options, [{ kind: 'prefer-failure' }]);
  const loose = await c.map({ protocol: 'udp', internalPort: 5000, suggestedExternalPort: 6000 });
  assert.ok(loose.ok);
  assert.notEqual(loose.mapping.externalPort, 6000);
  const free = await c.map({ protocol: 'udp', internalPort: 5001, suggestedExternalPort: 6001, preferFailure: true });
  assert.ok(free.ok && free.mapping.externalPort === 6001, 'a free suggested port is granted');
});

test('THIRD_PARTY and FILTER travel as options (§13.1, §13.3)', async () => {
  const w = new PortmapWorld({ allowThirdParty: true });
  await using c = await client(w);
  const filter = { prefixLength: 32, remotePort: 443, remoteAddress: '203.0.113.9' };
  const r = await c.map({ protocol: 'tcp', internalPort: 22, thirdParty: '192.168.1.50', filters: [filter] });
  assert.ok(r.ok);
  assert.equal(r.mapping.thirdParty, '192.168.1.50');
  assert.deepEqual(mapRequests(w)[0]?.options, [{ kind: 'third-party', address: '192.168.1.50' }, { kind: 'filter', ...filter }]);
  assert.ok(w.gateway.mappings.has('192.168.1.50/6/22'));
  assert.ok(c.nonceOf('tcp', 22, '192.168.1.50'));
});

test('a wrong client address gets ADDRESS_MISMATCH as a value (§8.2)', async () => {
  const w = new PortmapWorld();
  await using c = await client(w, { clientAddress: '10.9.9.9' });
  const r = await c.map({ protocol: 'udp', internalPort: 5000 });
  assert.ok(!r.ok);
  assert.equal(r.result, 'ADDRESS_MISMATCH');
});

test('the client must know its address: a wildcard socket without clientAddress is refused', async () => {
  const w = new PortmapWorld();
  Object.defineProperty(w.socket, 'local', { value: { address: '0.0.0.0', port: 1, family: 4 } });
  await assert.rejects(client(w), (e) => isNatkitError(e, 'ERR_INVALID_ARGUMENT') && /§7\.1/.test((e as Error).message));
  assert.equal(w.socket.closed, true, 'the socket it bound is released');
});

/** A MAP answer for the last request with `change` applied. */
function answerTo(w: PortmapWorld, change: Partial<PcpResponse> = {}): Uint8Array {
  const req = mapRequests(w).at(-1)!;
  return encodePcpResponse({
    version: PCP_VERSION, opcode: PcpOpcode.MAP, resultCode: 0, lifetimeS: 100, epochS: 10, options: [],
    map: { ...req.map, externalPort: 41_000, externalAddress: '192.0.2.33' }, ...change,
  });
}

test('§11.4: an answer with another nonce is not ours; §7.3: unknown options in answers are ignored', async () => {
  const w = new PortmapWorld();
  w.answering = false;
  await using c = await client(w);
  const call = c.map({ protocol: 'udp', internalPort: 5000 });
  w.gateway.handle(w.socket.sent[0]!.data, LOCAL, 0); // record the request only
  const req = mapRequests(w)[0]!;
  w.socket.deliver(answerTo(w, { map: { ...req.map, nonce: new Uint8Array(12) } }), GATEWAY);
  assert.equal(c.stats.unmatched, 1);
  w.socket.deliver(answerTo(w, { options: [{ kind: 'unknown', code: 99, data: Uint8Array.of(1, 2, 3, 4) }] }), GATEWAY);
  const r = await call;
  assert.ok(r.ok);
  assert.equal(r.mapping.externalPort, 41_000);
});

test('§8.1.1 schedule through the driver: 3 s, 6 s, 12 s, 24 s, then ERR_TIMEOUT at MRD 60 s', async () => {
  const w = new PortmapWorld();
  w.answering = false;
  w.randomBytes = (n) => (n === 4 ? Uint8Array.of(0x80, 0, 0, 0) : new Uint8Array(n).fill(7)); // RAND = 0
  await using c = await client(w);
  const failed = assert.rejects(c.announce(), (e) => isNatkitError(e, 'ERR_TIMEOUT'));
  await w.advance(60_000, 1000);
  await failed;
  assert.deepEqual(w.sendTimes, [0, 3000, 9000, 21_000, 45_000]);
  assert.equal(w.clock.pendingTimers, 0);
});

test('§8.5: an epoch that fell behind the client\'s clock is a gateway reset', async () => {
  const w = new PortmapWorld();
  await using c = await client(w);
  assert.equal((await c.announce()).gatewayReset, false);
  await w.advance(50_000);
  const a = await c.map({ protocol: 'udp', internalPort: 5000 });
  assert.ok(a.ok && !a.gatewayReset && a.epochS === 50);
  await w.advance(50_000);
  w.gateway.reboot(w.clock.now());
  const b = await c.map({ protocol: 'udp', internalPort: 5000 });
  assert.ok(b.ok);
  assert.equal(b.gatewayReset, true);
});

test('unsolicited answers reach onUnsolicited after their epoch check (§14)', async () => {
  const w = new PortmapWorld();
  const seen: { opcode: number; gatewayReset: boolean }[] = [];
  await using c = await client(w, { onUnsolicited: (res, info) => seen.push({ opcode: res.opcode, gatewayReset: info.gatewayReset }) });
  await c.announce();
  await w.advance(30_000);
  w.socket.deliver(encodePcpResponse({ version: PCP_VERSION, opcode: PcpOpcode.ANNOUNCE, resultCode: 0, lifetimeS: 0, epochS: 0, options: [] }), GATEWAY);
  w.socket.deliver(Uint8Array.of(2, 0x80, 0), GATEWAY); // garbage: dropped
  assert.deepEqual(seen, [{ opcode: PcpOpcode.ANNOUNCE, gatewayReset: true }]);
});

test('§9: a NAT-PMP-only gateway answers UNSUPP_VERSION; PortControlClient falls back and stays there', async () => {
  const w = new PortmapWorld({ pcp: false, externalAddress: '198.51.100.5' });
  const pc = await PortControlClient.create({ env: w.env, gateway: GATEWAY, retryPcpAfterMs: 60_000 });
  try {
    const direct = await pc.pcp.map({ protocol: 'udp', internalPort: 5000 });
    assert.ok(!direct.ok);
    assert.deepEqual([direct.result, direct.version], ['UNSUPP_VERSION', 0]);
    assert.equal(pc.speaking, 'pcp');
    const r = await pc.map({ protocol: 'udp', internalPort: 5000, lifetimeS: 300 });
    assert.ok(r.ok);
    assert.equal(r.via, 'natpmp');
    assert.deepEqual(r.mapping, { via: 'natpmp', protocol: 'udp', internalPort: 5000, externalPort: 40_000, externalAddress: '198.51.100.5', lifetimeS: 300 });
    assert.equal(pc.speaking, 'natpmp');
    const versions = (): number[] => w.gateway.received.map((p) => p.data[0]!);
    assert.deepEqual(versions(), [2, 2, 0, 0], 'PCP twice, then NAT-PMP MAP and external address');
    assert.ok((await pc.map({ protocol: 'tcp', internalPort: 80 })).ok);
    assert.equal(versions().filter((v) => v === 2).length, 2, 'no PCP while falling back');
    const d = await pc.delete(r.mapping);
    assert.ok(d.ok && d.via === 'natpmp');
    assert.equal(w.gateway.mappings.size, 1);
    await w.advance(60_000);
    assert.equal(pc.speaking, 'pcp', 'PCP is tried again later');
  } finally {
    await pc.close();
  }
  assert.equal(w.socket.closed, true);
});

test('PortControlClient with a PCP gateway stays with PCP and deletes with the nonce', async () => {
  const w = new PortmapWorld({ natpmp: false });
  await using pc = await PortControlClient.create({ env: w.env, gateway: GATEWAY });
  const r = await pc.map({ protocol: 'udp', internalPort: 5000 });
  assert.ok(r.ok && r.via === 'pcp');
  assert.equal(r.mapping.protocol, 'udp');
  assert.ok(r.mapping.nonce);
  assert.ok((await pc.delete(r.mapping)).ok);
  assert.equal(w.gateway.mappings.size, 0);
  assert.ok(w.gateway.received.every((p) => p.data[0] === PCP_VERSION));
});
