// A secure session over a punched connection while the path underneath changes by itself:
// the NAT drops its mappings mid-stream (a router reload), the connection declares the
// direct path dead and falls back to the relay, then goes direct again at its next upgrade
// round. Messages keep flowing both ways the whole time; every one arrives once, in order.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NAT_PRESETS, type SimRouter } from '../../src/net/sim/index.ts';
import { pairCredentials, punch, type PunchedPath } from '../../src/punch/index.ts';
import { identityFromSeed } from '../../src/rendezvous/index.ts';
import { SecureSession } from '../../src/session/index.ts';
import { simTest } from '../helpers/sim.ts';
import { addPeer, flushMappings, gather, startServers } from './punch-world.ts';

const utf8 = new TextEncoder();
const text = (b: Uint8Array): string => new TextDecoder().decode(b);

test('a flushed NAT mapping mid-stream: direct → relay → direct, every message once and in order', simTest({ seed: 31 }, async (world) => {
  const servers = await startServers(world);
  const pa = await gather(world, addPeer(world, 'a', 'port-restricted'), servers, 'a');
  // Random ports: after the flush b's mapping comes back on another port, so the old direct path is dead for good.
  const bRouter: SimRouter = world.addRouter({ name: 'b-home', nat: { ...NAT_PRESETS['port-restricted-cone'], portAllocation: { kind: 'random' } }, ipv6: 'off' });
  const pb = await gather(world, bRouter.addHost({ name: 'b', ipv6: false }), servers, 'b');
  const timers = { keepaliveMs: 5000, deadAfterMs: 15_000, upgradeIntervalMs: 20_000 };
  const ia = identityFromSeed(world.random.bytes(32));
  const ib = identityFromSeed(world.random.bytes(32));
  const startAtMs = world.clock.now() + 100;
  const pairId = world.random.bytes(8);
  const [ca, cb] = await world.run(Promise.all([
    punch({ ...timers, env: pa.host.env, socket: pa.socket, ...(pa.relay && { relay: pa.relay }), local: pa.offer, remote: pb.offer, controlling: true, startAtMs, credentials: pairCredentials({ pairId, localKey: ia.publicKey, remoteKey: ib.publicKey }) }),
    punch({ ...timers, env: pb.host.env, socket: pb.socket, ...(pb.relay && { relay: pb.relay }), local: pb.offer, remote: pa.offer, controlling: false, startAtMs, credentials: pairCredentials({ pairId, localKey: ib.publicKey, remoteKey: ia.publicKey }) }),
  ]));
  assert.deepEqual([ca.path.kind, cb.path.kind], ['direct', 'direct']);
  const kinds: string[] = [];
  ca.onPathChange((p: PunchedPath) => kinds.push(p.kind));

  const sa = new SecureSession({ env: pa.host.env, path: ca, role: 'initiator', identity: ia, peerIdentityKey: ib.publicKey });
  const sb = new SecureSession({ env: pb.host.env, path: cb, role: 'responder', identity: ib, peerIdentityKey: ia.publicKey });
  const got: [string[], string[]] = [[], []];
  sa.onMessage((m) => got[0].push(text(m)));
  sb.onMessage((m) => got[1].push(text(m)));
  await world.run(Promise.all([sa.opened(), sb.opened()]));

  // One message each way every 250 ms: 10 s direct, the flush, 40 s through the dead path,
  // the relay and the upgrade, then 10 s direct again.
  const sent: [string[], string[]] = [[], []];
  const tick = (n: number): void => {
    for (const [k, s] of [[0, sa], [1, sb]] as const) {
      const m = `${k === 0 ? 'a' : 'b'} #${n}`;
      sent[k].push(m);
      s.send(utf8.encode(m));
    }
  };
  let n = 0;
  for (; n < 40; n++, await world.elapse(250)) tick(n);
  flushMappings(bRouter);
  for (; n < 240; n++, await world.elapse(250)) tick(n);
  for (let t = 0; t < 30 && (got[0].length < sent[1].length || got[1].length < sent[0].length); t++) await world.elapse(1000);

  assert.deepEqual(kinds, ['relay', 'direct'], 'the connection fell back to the relay, then went direct again');
  assert.deepEqual(got[1], sent[0], 'b got every message of a once, in order');
  assert.deepEqual(got[0], sent[1], 'a got every message of b once, in order');
  assert.ok(sa.stats.reliable.retransmissions + sb.stats.reliable.retransmissions > 0, 'the dead path cost retransmissions');

  await world.run(Promise.all([sa.close(), sb.close()]));
  await world.run(Promise.all([ca.close(), cb.close()]));
  await world.run(Promise.all([pa.close(), pb.close()]));
  await world.run(servers.close());
}));
