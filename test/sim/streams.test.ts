// Simulated streams beyond the compliance suite: through NAT (the server sees the
// router's mapping), into NAT (refused without a forward), the modelled TLS trust check,
// and what a host's Env holds; closing the world closes everything.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { endpoint, type StreamSocket } from '../../src/net/index.ts';
import { World } from '../../src/net/sim/index.ts';
import { isNatkitError } from '../../src/util/index.ts';
import { simTest } from '../helpers/sim.ts';

test('a stream from behind a NAT: the server sees the router\'s TCP mapping', simTest({}, async (world) => {
  const server = world.addHost({ name: 'server' });
  const home = world.addRouter({ name: 'home', nat: { portAllocation: { kind: 'sequential', start: 33_000 } } });
  const alice = home.addHost({ name: 'alice' });
  let accepted: StreamSocket | undefined;
  await using listener = await server.network.listenStream({ address: server.address(), port: 80 }, (s) => {
    accepted = s;
    s.onData((d) => s.write(d));
  });
  const stream = await world.run(alice.network.connectStream(listener.local));
  const echoed: string[] = [];
  stream.onData((d) => echoed.push(new TextDecoder().decode(d)));
  stream.write(new TextEncoder().encode('through the NAT'));
  await world.elapse(10);
  assert.deepEqual(echoed, ['through the NAT']);
  assert.deepEqual(stream.local.address, alice.address());
  assert.deepEqual(accepted?.remote, endpoint(home.wanAddress(), 33_000));
  assert.deepEqual(home.mappings({ proto: 'tcp' }).map((m) => m.external), [accepted?.remote]);
  await stream.close();
}));

test('a stream into a NAT: no route to the LAN address, filtered at the WAN address, accepted through a forward', simTest({}, async (world) => {
  const outsider = world.addHost({ name: 'outsider' });
  const home = world.addRouter({ name: 'home' });
  const alice = home.addHost({ name: 'alice' });
  const accepted: StreamSocket[] = [];
  await using listener = await alice.network.listenStream({ port: 8080 }, (s) => accepted.push(s));
  const timeout = (err: unknown): boolean => isNatkitError(err, 'ERR_TIMEOUT');
  const port = listener.local.port;
  await assert.rejects(world.run(outsider.network.connectStream(endpoint(alice.address(), port), { timeoutMs: 500 })), timeout);
  await assert.rejects(world.run(outsider.network.connectStream(endpoint(home.wanAddress(), port), { timeoutMs: 500 })), timeout);
  const reasons = world.trace.entries().filter((e) => e.event === 'drop' && e.flag === 'SYN').map((e) => e.reason);
  assert.deepEqual(reasons, ['no-route', 'no-mapping']);
  home.forwardPort({ proto: 'tcp', internal: endpoint(alice.address(), port), externalPort: 80 });
  const stream = await world.run(outsider.network.connectStream(endpoint(home.wanAddress(), 80)));
  assert.equal(accepted.length, 1);
  assert.deepEqual(accepted[0]?.remote, stream.local, 'a forward translates only the destination');
  await stream.close();
  await world.elapse(10);
  assert.equal(accepted[0]?.closed, false, 'the listener\'s stream sees the end only once it reads');
  accepted[0]?.onData(() => undefined);
  await world.elapse(0);
  assert.equal(accepted[0]?.closed, true);
}));

test('TLS: the server is trusted when the CA is its certificate, or when verification is off', simTest({}, async (world) => {
  const server = world.addHost({ name: 'server' });
  const client = world.addHost({ name: 'client' });
  const tls = { cert: 'server cert', key: 'server key' };
  const accepted: StreamSocket[] = [];
  await using listener = await server.network.listenStream({ port: 443, tls }, (s) => accepted.push(s));
  const target = endpoint(server.address(), listener.local.port);
  const untrusted = world.run(client.network.connectStream(target, { tls: { ca: 'another CA' } }));
  await assert.rejects(untrusted, (err: unknown) => isNatkitError(err, 'ERR_SOCKET') && (err.cause as { code?: string }).code === 'CERT_UNTRUSTED');
  const trusted = await world.run(client.network.connectStream(target, { tls: { ca: new TextEncoder().encode('server cert') } }));
  const unchecked = await world.run(client.network.connectStream(target, { tls: { rejectUnauthorized: false } }));
  assert.equal(trusted.secure, true);
  assert.equal(unchecked.secure, true);
  await world.elapse(0); // the last Finished is still on its way
  assert.equal(accepted.length, 2, 'only completed handshakes reach the application');
  assert.ok(accepted.every((s) => s.secure));
  await trusted.close();
  await unchecked.close();
}));

test('a host\'s Env: its network, the world\'s clock, its own seeded random stream, a logger naming it', async () => {
  const records: Record<string, unknown>[] = [];
  const log = (msg: string, fields?: Readonly<Record<string, unknown>>): void => void records.push({ msg, ...fields });
  const make = (): World => new World({ seed: 5, logger: { debug: log, info: log, warn: log } });
  await using world = make();
  const a = world.addHost({ name: 'a' });
  const b = world.addHost({ name: 'b' });
  assert.equal(a.env.network, a.network);
  assert.equal(a.env.clock, world.clock);
  assert.notDeepEqual(a.env.random.bytes(8), b.env.random.bytes(8));
  await using again = make();
  assert.deepEqual(again.addHost({ name: 'a' }).env.random.bytes(16), new World({ seed: 5 }).addHost({ name: 'a' }).env.random.bytes(16));
  world.clock.advance(42);
  a.env.logger.info('hello', { n: 1 });
  assert.deepEqual(records, [{ msg: 'hello', host: 'a', timeMs: 42, n: 1 }]);
  assert.throws(() => world.addHost({ name: 'a' }), /taken/);
  assert.throws(() => world.addHost({ addresses: [a.address()] }), /already in use/);
  assert.equal(world.node('b'), b);
});

test('closing the world closes every socket and drops every event', async () => {
  const world = new World();
  const server = world.addHost({ name: 'server' });
  const alice = world.addRouter({ name: 'home' }).addHost({ name: 'alice' });
  const udp = await alice.network.bindUdp();
  await server.network.listenStream({ port: 80 }, () => undefined);
  const stream = await world.run(alice.network.connectStream(endpoint(server.address(), 80)));
  udp.send(new Uint8Array(1), endpoint(server.address(), 9));
  assert.deepEqual(world.openSockets(), { udp: 1, listeners: 1, streams: 2 });
  await world.close();
  assert.deepEqual(world.openSockets(), { udp: 0, listeners: 0, streams: 0 });
  assert.equal(world.clock.pending, 0);
  assert.equal(udp.closed, true);
  assert.equal(stream.closed, true);
  await world.close();
});
