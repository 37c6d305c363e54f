// NAT-PMP and PCP clients on real loopback sockets (NodeNetwork) against the fake gateway
// of test/helpers, a real UDP socket answering per RFC 6886 and RFC 6887: map, refresh,
// delete with the same nonce, PREFER_FAILURE, the NAT-PMP fallback, IPv6 PCP, timeout and
// abort; and the node route-table reader on this machine. Nothing is left open.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { localAddressToward, nodeEnv, readRouteTables } from '../../src/net/node/index.ts';
import {
  NatPmpClient, PcpClient, PortControlClient, decodePcpRequest, defaultGateway, parseProcNetIpv6Route, parseProcNetRoute,
} from '../../src/portmap/index.ts';
import { isNatkitError } from '../../src/util/index.ts';
import { noLeaks } from '../helpers/leaks.ts';
import { startFakeGateway } from '../helpers/fake-portmap-gateway.ts';

const env = nodeEnv();
const FAST = { initialMs: 20, maxTransmissions: 3 } as const;

test('NAT-PMP over loopback: external address, map, delete', noLeaks(async () => {
  await using gw = await startFakeGateway({ externalAddress: '198.51.100.1' });
  await using c = await NatPmpClient.create({ env, gateway: gw.endpoint, localAddress: '127.0.0.1' });
  const a = await c.externalAddress();
  assert.ok(a.ok);
  assert.equal(a.externalAddress, '198.51.100.1');
  const m = await c.map({ protocol: 'udp', internalPort: c.local.port, suggestedExternalPort: 45_000, lifetimeS: 60 });
  assert.ok(m.ok);
  assert.deepEqual([m.externalPort, m.lifetimeS], [45_000, 60]);
  assert.equal(gw.core.mappings.get(`127.0.0.1/17/${c.local.port}`)?.externalPort, 45_000);
  const d = await c.delete({ protocol: 'udp', internalPort: c.local.port });
  assert.ok(d.ok);
  assert.equal(gw.core.mappings.size, 0);
}));

test('PCP over loopback: map, refresh and delete with one nonce; PREFER_FAILURE', noLeaks(async () => {
  await using gw = await startFakeGateway({ natpmp: false });
  await using c = await PcpClient.create({ env, gateway: gw.endpoint, localAddress: '127.0.0.1' });
  assert.equal(c.clientAddress, '127.0.0.1');
  const m = await c.map({ protocol: 'tcp', internalPort: 8443, suggestedExternalPort: 443, lifetimeS: 120 });
  assert.ok(m.ok);
  assert.deepEqual([m.mapping.externalPort, m.mapping.externalAddress, m.mapping.lifetimeS], [443, '203.0.113.7', 120]);
  assert.ok((await c.map({ protocol: 'tcp', internalPort: 8443, lifetimeS: 120 })).ok);
  assert.ok((await c.delete(m.mapping)).ok);
  const nonces = gw.core.received.map((r) => decodePcpRequest(r.data)).map((r) => (r.opcode === 1 ? Buffer.from(r.map.nonce).toString('hex') : ''));
  assert.equal(new Set(nonces).size, 1, `one nonce throughout: ${nonces.join(', ')}`);
  gw.core.takenPorts.add(8080);
  const refused = await c.map({ protocol: 'tcp', internalPort: 8080, suggestedExternalPort: 8080, preferFailure: true });
  assert.ok(!refused.ok && refused.result === 'CANNOT_PROVIDE_EXTERNAL');
}));

test('PCP over IPv6 loopback', noLeaks(async () => {
  await using gw = await startFakeGateway({ address: '::1', natpmp: false, externalAddress: '2001:db8::7' });
  await using c = await PcpClient.create({ env, gateway: gw.endpoint, localAddress: '::1' });
  const m = await c.map({ protocol: 'udp', internalPort: 5000 });
  assert.ok(m.ok);
  assert.equal(m.mapping.externalAddress, '2001:db8::7');
  assert.equal(decodePcpRequest(gw.core.received[0]!.data).clientAddress, '::1');
}));

test('PCP falls back to NAT-PMP on one socket when the gateway speaks only NAT-PMP (RFC 6887 §9)', noLeaks(async () => {
  await using gw = await startFakeGateway({ pcp: false, externalAddress: '198.51.100.9' });
  await using pc = await PortControlClient.create({ env, gateway: gw.endpoint, localAddress: '127.0.0.1' });
  const r = await pc.map({ protocol: 'udp', internalPort: 6000 });
  assert.ok(r.ok);
  assert.equal(r.via, 'natpmp');
  assert.equal(r.mapping.externalAddress, '198.51.100.9');
  assert.ok((await pc.delete(r.mapping)).ok);
  assert.equal(new Set(gw.core.received.map((p) => p.from.port)).size, 1, 'one socket for both protocols');
}));

test('a silent gateway: ERR_TIMEOUT after the schedule; abort: ERR_ABORTED', noLeaks(async () => {
  await using gw = await startFakeGateway();
  gw.core.dropNext = Infinity;
  await using c = await NatPmpClient.create({ env, gateway: gw.endpoint, localAddress: '127.0.0.1', timers: FAST });
  await assert.rejects(c.externalAddress(), (e) => isNatkitError(e, 'ERR_TIMEOUT'));
  assert.equal(gw.core.received.length, 3);
  await assert.rejects(c.map({ protocol: 'udp', internalPort: 1, signal: AbortSignal.timeout(30), timers: { initialMs: 1000 } }), (e) => isNatkitError(e, 'ERR_ABORTED'));
}));

test('the route tables of this machine parse; a procDir without them reads as absent', async () => {
  const tables = await readRouteTables();
  const routes = [
    ...(tables.ipv4 === undefined ? [] : parseProcNetRoute(tables.ipv4, tables.endianness)),
    ...(tables.ipv6 === undefined ? [] : parseProcNetIpv6Route(tables.ipv6)),
  ];
  assert.ok(tables.ipv4 === undefined || routes.length > 0);
  const gw = defaultGateway(tables, 4);
  if (gw !== undefined) assert.ok((await localAddressToward({ address: gw.address, port: 5351, family: 4 })) !== '0.0.0.0');
  const dir = mkdtempSync(join(tmpdir(), 'natkit-routes-'));
  try {
    mkdirSync(join(dir, 'net'));
    writeFileSync(join(dir, 'net', 'route'), 'Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\tMTU\tWindow\tIRTT\neth0\t00000000\t0101A8C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n');
    const t = await readRouteTables({ procDir: dir });
    assert.equal(t.ipv6, undefined);
    assert.equal(defaultGateway(t)?.address, t.endianness === 'LE' ? '192.168.1.1' : '1.1.168.192');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('localAddressToward names the source the kernel picks', noLeaks(async () => {
  assert.equal(await localAddressToward({ address: '127.0.0.1', port: 5351, family: 4 }), '127.0.0.1');
  assert.equal(await localAddressToward({ address: '::1', port: 5351, family: 6 }), '::1');
}));
