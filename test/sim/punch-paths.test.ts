// Paths beyond the matrix: peers on one LAN meet through host candidates; peers behind
// one hairpinning carrier-grade NAT meet through their reflexive addresses (RFC 4787 §6);
// a direct path whose NAT mapping is flushed is declared dead (RFC 7675 §5.1), replaced
// by the relay, and upgraded back to direct once the controlling side retries; a port
// mapping makes a symmetric NAT reachable; a silent peer, an abort and a dead path without
// a relay end with their typed errors and leave nothing behind.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { endpoint } from '../../src/net/index.ts';
import { NAT_PRESETS, type SimHost, type World } from '../../src/net/sim/index.ts';
import { PortMapGatewayServer, PortMapper } from '../../src/portmap/index.ts';
import { pairCredentials, punch, type PunchConnection, type PunchedPath, type PunchOptions } from '../../src/punch/index.ts';
import type { Candidate } from '../../src/rendezvous/index.ts';
import { isNatkitError } from '../../src/util/index.ts';
import { simTest } from '../helpers/sim.ts';
import { addPeer, flushMappings, gather, startServers, type Peer, type Servers } from './punch-world.ts';

const utf8 = new TextEncoder();
const KEY_A = utf8.encode('a'.repeat(32));
const KEY_B = utf8.encode('b'.repeat(32));
const PAIR_ID = Uint8Array.of(9, 8, 7, 6, 5, 4, 3, 2);

/** Punches between two gathered peers, `a` controlling. */
async function connect(world: World, pa: Peer, pb: Peer, extra: Partial<PunchOptions> = {}): Promise<[PunchConnection, PunchConnection]> {
  const startAtMs = world.clock.now() + 100;
  const side = (me: Peer, other: Peer, controlling: boolean): Promise<PunchConnection> => punch({
    ...extra, env: me.host.env, socket: me.socket, ...(me.relay && { relay: me.relay }), local: me.offer, remote: other.offer, controlling, startAtMs,
    credentials: pairCredentials({ pairId: PAIR_ID, localKey: controlling ? KEY_A : KEY_B, remoteKey: controlling ? KEY_B : KEY_A }),
  });
  return world.run(Promise.all([side(pa, pb, true), side(pb, pa, false)]));
}

/** Sends one datagram each way; returns what arrived, as text. */
async function exchange(world: World, ca: PunchConnection, cb: PunchConnection, label: string): Promise<string[]> {
  const got: string[] = [];
  ca.onMessage((d) => got.push(`a got ${new TextDecoder().decode(d)}`));
  cb.onMessage((d) => got.push(`b got ${new TextDecoder().decode(d)}`));
  ca.send(utf8.encode(label));
  cb.send(utf8.encode(label));
  await world.elapse(500);
  return got.sort();
}

async function closeAll(world: World, conns: readonly PunchConnection[], peers: readonly Peer[], servers: Servers): Promise<void> {
  await world.run(Promise.all(conns.map((c) => c.close())));
  await world.run(Promise.all(peers.map((p) => p.close())));
  await world.run(servers.close());
}

test('same LAN, no hairpinning: the peers meet through their host candidates', simTest({ seed: 11 }, async (world) => {
  const servers = await startServers(world);
  const home = world.addRouter({ name: 'home', nat: NAT_PRESETS['port-restricted-cone'], ipv6: 'off' });
  const pa = await gather(world, home.addHost({ name: 'a', ipv6: false }), servers, 'a');
  const pb = await gather(world, home.addHost({ name: 'b', ipv6: false }), servers, 'b');
  const [ca, cb] = await connect(world, pa, pb);
  assert.deepEqual([ca.path.method, cb.path.method], ['host', 'host']);
  assert.deepEqual(ca.path.remote, pb.socket.local);
  assert.deepEqual(await exchange(world, ca, cb, 'lan'), ['a got lan', 'b got lan']);
  await closeAll(world, [ca, cb], [pa, pb], servers);
}));

test('two homes behind one hairpinning CGN: the reflexive pair hairpins (RFC 4787 §6)', simTest({ seed: 12 }, async (world) => {
  const servers = await startServers(world);
  const cgn = world.addRouter({ name: 'cgn', ipv6: 'off', nat: { kind: 'nat', mapping: 'endpoint-independent', filtering: 'address-and-port-dependent', portAllocation: { kind: 'random' }, hairpinning: true } });
  const home = (name: string): SimHost => cgn.addRouter({ name: `${name}-home`, nat: NAT_PRESETS['port-restricted-cone'], ipv6: 'off' }).addHost({ name, ipv6: false });
  const pa = await gather(world, home('a'), servers, 'a');
  const pb = await gather(world, home('b'), servers, 'b');
  const [ca, cb] = await connect(world, pa, pb);
  assert.deepEqual([ca.path.kind, ca.path.method, cb.path.method], ['direct', 'reflexive', 'reflexive']);
  assert.equal(ca.path.remote.address, cgn.wanAddress());
  assert.ok(world.trace.entries().some((e) => e.event === 'hairpin'), 'the checks hairpinned at the CGN');
  assert.deepEqual(await exchange(world, ca, cb, 'hairpin'), ['a got hairpin', 'b got hairpin']);
  await closeAll(world, [ca, cb], [pa, pb], servers);
}));

test('a flushed mapping kills the direct path: relay within the dead-path time, direct again at the next upgrade round', simTest({ seed: 13 }, async (world) => {
  const servers = await startServers(world);
  const pa = await gather(world, addPeer(world, 'a', 'port-restricted'), servers, 'a');
  // Random ports: after the flush, b's mapping comes back on another port, which a's filter does not know.
  const bRouter = world.addRouter({ name: 'b-home', nat: { ...NAT_PRESETS['port-restricted-cone'], portAllocation: { kind: 'random' } }, ipv6: 'off' });
  const pb = await gather(world, bRouter.addHost({ name: 'b', ipv6: false }), servers, 'b', { relay: false });
  const timers = { keepaliveMs: 5000, deadAfterMs: 15_000, upgradeIntervalMs: 20_000 };
  const [ca, cb] = await connect(world, pa, pb, timers);
  assert.deepEqual([ca.path.kind, cb.path.kind], ['direct', 'direct']);
  const changes: { readonly who: string; readonly kind: string; readonly atMs: number }[] = [];
  const watch = (who: string) => (p: PunchedPath): void => void changes.push({ who, kind: p.kind, atMs: world.clock.now() });
  const told = (): string => JSON.stringify(changes);
  ca.onPathChange(watch('a'));
  cb.onPathChange(watch('b'));

  // A minute of keepalives holds the mappings.
  await world.elapse(60_000);
  assert.equal(changes.length, 0, told());
  assert.deepEqual(await exchange(world, ca, cb, 'before'), ['a got before', 'b got before']);

  // The router reloads: every mapping goes (as SimRouter.unforwardPort removes it).
  const flushedAt = world.clock.now();
  flushMappings(bRouter);
  await world.elapse(timers.deadAfterMs + 5000);
  assert.deepEqual([ca.path.kind, cb.path.kind], ['relay', 'relay'], told());
  // Silence is noticed after deadAfterMs (plus the last keepalive's age), then the relay pairs answer within a second.
  for (const c of changes) assert.ok(c.atMs - flushedAt >= timers.deadAfterMs - timers.keepaliveMs && c.atMs - flushedAt <= timers.deadAfterMs + 1000, told());
  assert.deepEqual(await exchange(world, ca, cb, 'relayed'), ['a got relayed', 'b got relayed']);

  // The controlling side's next upgrade round finds b's new mapping (learnt through the relay).
  await world.elapse(timers.upgradeIntervalMs + 2000);
  assert.deepEqual([ca.path.kind, cb.path.kind], ['direct', 'direct'], told());
  assert.deepEqual(await exchange(world, ca, cb, 'upgraded'), ['a got upgraded', 'b got upgraded']);
  const kinds = (who: string): string[] => changes.filter((c) => c.who === who).map((c) => c.kind);
  assert.deepEqual([kinds('a'), kinds('b')], [['relay', 'direct'], ['relay', 'direct']], told());
  assert.equal(ca.stats.pathChanges, 2);
  assert.equal(cb.stats.pathChanges, 2);
  await closeAll(world, [ca, cb], [pa, pb], servers);
}));


test('a silent peer: punch() rejects with ERR_TIMEOUT at timeoutMs, and its 256 birthday sockets are closed', simTest({ seed: 14 }, async (world) => {
  const servers = await startServers(world);
  const pa = await gather(world, addPeer(world, 'a', 'symmetric-random'), servers, 'a', { relay: false });
  const pb = await gather(world, addPeer(world, 'b', 'port-restricted'), servers, 'b', { relay: false });
  const before = world.openSockets().udp;
  const startedAt = world.clock.now();
  const attempt = punch({
    env: pa.host.env, socket: pa.socket, local: pa.offer, remote: pb.offer, controlling: true, timeoutMs: 5000,
    credentials: pairCredentials({ pairId: PAIR_ID, localKey: KEY_A, remoteKey: KEY_B }),
  });
  await assert.rejects(world.run(attempt), (err: unknown) => isNatkitError(err, 'ERR_TIMEOUT'));
  assert.equal(world.clock.now() - startedAt, 5000);
  assert.equal(world.openSockets().udp, before, 'the birthday sockets are gone');
  await world.run(Promise.all([pa.close(), pb.close(), servers.close()]));
}));

test('abort: punch() rejects with ERR_ABORTED and stops sending', simTest({ seed: 15 }, async (world) => {
  const servers = await startServers(world);
  const pa = await gather(world, addPeer(world, 'a', 'port-restricted'), servers, 'a', { relay: false });
  const pb = await gather(world, addPeer(world, 'b', 'port-restricted'), servers, 'b', { relay: false });
  const controller = new AbortController();
  const attempt = punch({
    env: pa.host.env, socket: pa.socket, local: pa.offer, remote: pb.offer, controlling: true, signal: controller.signal,
    credentials: pairCredentials({ pairId: PAIR_ID, localKey: KEY_A, remoteKey: KEY_B }),
  });
  world.clock.setTimer(300, () => controller.abort());
  await assert.rejects(world.run(attempt), (err: unknown) => isNatkitError(err, 'ERR_ABORTED'));
  const sent = pa.socket.stats.packetsOut;
  await world.elapse(5000);
  assert.equal(pa.socket.stats.packetsOut, sent, 'nothing sent after the abort');
  await world.run(Promise.all([pa.close(), pb.close(), servers.close()]));
}));

test('without any relay, a dead path that does not come back ends the connection with ERR_TIMEOUT', simTest({ seed: 16 }, async (world) => {
  const servers = await startServers(world);
  const pa = await gather(world, addPeer(world, 'a', 'port-restricted'), servers, 'a', { relay: false });
  const bRouter = world.addRouter({ name: 'b-home', nat: { ...NAT_PRESETS['port-restricted-cone'], portAllocation: { kind: 'random' } }, ipv6: 'off' });
  const pb = await gather(world, bRouter.addHost({ name: 'b', ipv6: false }), servers, 'b', { relay: false });
  const [ca, cb] = await connect(world, pa, pb, { keepaliveMs: 5000, deadAfterMs: 15_000, timeoutMs: 10_000 });
  const ended: unknown[] = [];
  ca.onClose((err) => ended.push(err));
  flushMappings(bRouter);
  await world.elapse(30_000);
  assert.equal(ended.length, 1);
  assert.ok(isNatkitError(ended[0], 'ERR_TIMEOUT'), String(ended[0]));
  assert.equal(ca.closed, true);
  await closeAll(world, [ca, cb], [pa, pb], servers);
}));

test('a port mapping (PortMapper through the router\'s PCP) makes a random-port symmetric NAT reachable: direct, not relay', simTest({ seed: 17 }, async (world) => {
  const servers = await startServers(world);
  const aRouter = world.addRouter({ name: 'a-home', nat: NAT_PRESETS.symmetric, ipv6: 'off' });
  const aHost = aRouter.addHost({ name: 'a', ipv6: false });
  await using gateway = await world.run(PortMapGatewayServer.start({
    env: aRouter.host.env, backend: aRouter, externalAddress: aRouter.wanAddress(), lanAddress: aRouter.lanAddress(), upnp: false,
  }));
  const gathered = await gather(world, aHost, servers, 'a', { relay: false });
  await using mapper = await world.run(PortMapper.create({ env: aHost.env, gateway: aRouter.lanAddress(), localAddress: aHost.address() }));
  const m = await world.run(mapper.map({ protocol: 'udp', internalPort: gathered.socket.local.port }));
  const mapped: Candidate = { kind: 'port-mapped', transport: 'udp', endpoint: endpoint(m.externalAddress, m.externalPort) };
  const pa: Peer = { ...gathered, offer: { ...gathered.offer, candidates: [...gathered.offer.candidates, mapped] } };
  const pb = await gather(world, addPeer(world, 'b', 'symmetric-random'), servers, 'b', { relay: false });
  const [ca, cb] = await connect(world, pa, pb);
  assert.equal(ca.plan.outcome, 'direct', ca.plan.reason);
  assert.deepEqual([ca.path.kind, cb.path.kind, cb.path.method], ['direct', 'direct', 'mapped']);
  assert.deepEqual(cb.path.remote, mapped.endpoint);
  assert.deepEqual(await exchange(world, ca, cb, 'mapped'), ['a got mapped', 'b got mapped']);
  await world.run(mapper.close());
  await world.run(gateway.close());
  await closeAll(world, [ca, cb], [pa, pb], servers);
}));
