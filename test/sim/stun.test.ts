// The real StunClient against the real StunServer inside the simulated world, through
// simulated NATs, without a change to either: the seam (Env) is all they share with it.
// XOR-MAPPED-ADDRESS must be the router's public mapping; RFC 5780 CHANGE-REQUEST answers
// pass or are filtered as the router's filtering knob says; a lossy link costs
// retransmissions, the same ones for the same seed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { endpoint, type Endpoint } from '../../src/net/index.ts';
import { NAT_PRESETS, type SimHost, type World } from '../../src/net/sim/index.ts';
import { StunClient, StunServer } from '../../src/stun/index.ts';
import { isNatkitError } from '../../src/util/index.ts';
import { simTest } from '../helpers/sim.ts';

const A1 = '198.18.0.10';
const A2 = '198.18.0.11';

/** Where `server` listens on its primary address and port for `transport`. */
function primary(server: StunServer, transport: 'udp' | 'tcp' = 'udp'): Endpoint {
  const found = server.endpoints.find((e) => e.transport === transport && e.role === 0);
  assert.ok(found !== undefined);
  return found.local;
}

/** natkit's STUN server on two addresses × two ports (RFC 5780 §6), UDP and TCP. */
async function stunServer(world: World): Promise<{ host: SimHost; server: StunServer }> {
  const host = world.addHost({ name: 'stun', addresses: [A1, A2] });
  const server = await world.run(StunServer.create({ env: host.env, addresses: [A1, A2], ports: [3478, 3479] }));
  return { host, server };
}

test('StunClient through a port-restricted cone NAT: XOR-MAPPED-ADDRESS is the router\'s public mapping', simTest({}, async (world) => {
  await using stun = (await stunServer(world)).server;
  const home = world.addRouter({ name: 'home', nat: NAT_PRESETS['port-restricted-cone'] });
  const alice = home.addHost({ name: 'alice' });
  await using client = await world.run(StunClient.create({ env: alice.env, server: primary(stun) }));
  const r = await world.run(client.binding());
  assert.ok(r.ok);
  assert.equal(r.isXorMapped, true);
  const [mapping] = home.mappings();
  assert.ok(mapping !== undefined);
  assert.deepEqual(mapping.internal, endpoint(alice.address(), client.local.port));
  assert.deepEqual(r.mapped, mapping.external);
  assert.equal(r.mapped.address, home.wanAddress());
  assert.deepEqual(r.otherAddress, endpoint(A2, 3479));
  assert.equal(r.transmissions, 1);

  // Port-restricted: the answer from the other address and port is filtered (RFC 5780 §4.4 test II).
  const changed = world.run(client.binding({ changeRequest: { changeIp: true, changePort: true }, timers: { rtoMs: 100, maxTransmissions: 2 } }));
  await assert.rejects(changed, (err: unknown) => isNatkitError(err, 'ERR_TIMEOUT'));
  assert.ok(world.trace.entries().some((e) => e.at === 'home' && e.reason === 'filtered' && e.src.address === A2));
}));

test('StunClient through a full cone NAT: the CHANGE-REQUEST answer comes in from the other address and port', simTest({}, async (world) => {
  await using stun = (await stunServer(world)).server;
  const alice = world.addRouter({ name: 'home', nat: NAT_PRESETS['full-cone'] }).addHost({ name: 'alice' });
  await using client = await world.run(StunClient.create({ env: alice.env, server: primary(stun) }));
  const r = await world.run(client.binding({ changeRequest: { changeIp: true, changePort: true } }));
  assert.ok(r.ok);
  assert.deepEqual(r.from, endpoint(A2, 3479));
}));

test('StunClient over TCP behind a CGN: the mapped address is the outer router\'s TCP mapping', simTest({}, async (world) => {
  await using stun = (await stunServer(world)).server;
  const cgn = world.addRouter({ name: 'cgn' });
  const alice = cgn.addRouter({ name: 'home' }).addHost({ name: 'alice' });
  await using client = await world.run(StunClient.create({ env: alice.env, server: primary(stun, 'tcp'), transport: 'tcp' }));
  const r = await world.run(client.binding());
  assert.ok(r.ok);
  assert.deepEqual([r.mapped], cgn.mappings({ proto: 'tcp' }).map((m) => m.external));
}));

test('a lossy link costs retransmissions (RFC 8489 §6.2.1), the same ones for the same seed', async () => {
  const transmissions = async (seed: number): Promise<number[]> => {
    const counts: number[] = [];
    await simTest({ seed }, async (world) => {
      await using stun = (await stunServer(world)).server;
      const alice = world.addRouter({ name: 'home', link: { lossRate: 0.4, delayMs: 20 } }).addHost({ name: 'alice' });
      await using client = await world.run(StunClient.create({ env: alice.env, server: primary(stun), rtoMs: 100 }));
      for (let i = 0; i < 10; i++) {
        const r = await world.run(client.binding());
        counts.push(r.transmissions);
      }
    })();
    return counts;
  };
  const first = await transmissions(1);
  assert.ok(first.some((n) => n > 1), `some requests were retransmitted: ${first.join(', ')}`);
  assert.deepEqual(await transmissions(1), first);
});
