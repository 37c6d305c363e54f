// The TURN server driver on real loopback sockets (NodeNetwork), driven by a hand-built
// client (test/fixtures/turn/wire-client.ts) and real UDP peers: RFC 8656 §7 Allocate,
// §9 CreatePermission, §10 Send/Data, §11–§12 ChannelBind and ChannelData over UDP and
// TCP (padded), §7.5 Refresh 0 freeing the relay port, expiry on the clock, the peer
// policy (§21.3), metrics, and a garbage flood after which a valid client is still served
// and every count is back to its baseline. Every test checks that nothing is left open.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { connect as netConnect } from 'node:net';
import { once } from 'node:events';
import { setImmediate as nextImmediate, setTimeout as sleep } from 'node:timers/promises';
import { endpoint, endpointKey, type Endpoint, type Env, type PacketSocket } from '../../src/net/index.ts';
import { nodeEnv } from '../../src/net/node/index.ts';
import { BINDING, StunClass, attr, encodeMessage } from '../../src/stun/index.ts';
import { ALLOCATE, REQUESTED_TRANSPORT, TRANSPORT_UDP, TurnServer, renderMetrics, type TurnServerOptions } from '../../src/turn/index.ts';
import { noLeaks } from '../helpers/leaks.ts';
import { ManualClock } from '../helpers/manual-clock.ts';
import { hasOpenssl, selfSignedCertificate } from '../helpers/tls.ts';
import { TurnWireClient, type Credentials, type Delivered } from '../fixtures/turn/wire-client.ts';

const LOOPBACK = '127.0.0.1';
const CREDS: Credentials = { username: 'alice', password: 'alice-pw', realm: 'natkit.test' };
const text = (s: string): Uint8Array => new TextEncoder().encode(s);
const decode = (b: Uint8Array): string => new TextDecoder().decode(b);
const bindingRequest = (): Uint8Array => encodeMessage({ method: BINDING, cls: StunClass.REQUEST, transactionId: randomBytes(12), attributes: [] });

const start = (o: Partial<TurnServerOptions> = {}, env: Env = nodeEnv()): Promise<TurnServer> => TurnServer.start({
  env,
  listen: [{ address: LOOPBACK, port: 0, transports: ['udp'] }, { address: LOOPBACK, port: 0, transports: ['tcp'] }],
  relayAddresses: [LOOPBACK],
  realm: CREDS.realm,
  users: { [CREDS.username]: CREDS.password },
  allowPeers: ['127.0.0.0/8'],
  spareRelaySockets: 4,
  ...o,
});

const where = (server: TurnServer, transport: 'udp' | 'tcp' | 'tls'): Endpoint => {
  const e = server.endpoints.find((x) => x.transport === transport);
  assert.ok(e, `server listens on ${transport}`);
  return e.local;
};

const client = (server: TurnServer, transport: 'udp' | 'tcp'): Promise<TurnWireClient> =>
  transport === 'udp' ? TurnWireClient.udp(nodeEnv(), where(server, 'udp'), CREDS, LOOPBACK) : TurnWireClient.tcp(nodeEnv(), where(server, 'tcp'), CREDS);

/** A real UDP peer on loopback that records what arrives. */
async function peer(): Promise<{ socket: PacketSocket; got: { data: string; from: Endpoint }[]; next: () => Promise<{ data: string; from: Endpoint }> }> {
  const socket = await nodeEnv().network.bindUdp({ address: LOOPBACK });
  const got: { data: string; from: Endpoint }[] = [];
  let wake: (() => void) | undefined;
  socket.onPacket((data, from) => {
    got.push({ data: decode(data), from });
    wake?.();
  });
  const next = async (): Promise<{ data: string; from: Endpoint }> => {
    for (let i = 0; i < 100 && got.length === 0; i++) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 20);
        wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
    const first = got.shift();
    assert.ok(first, 'the peer received a datagram');
    return first;
  };
  return { socket, got, next };
}

const delivered = (d: Delivered | undefined): { text: string; peer?: string; channel?: number } => {
  assert.ok(d, 'the client received relayed data');
  return { text: decode(d.data), ...(d.peer && { peer: endpointKey(d.peer) }), ...(d.channel !== undefined && { channel: d.channel }) };
};

for (const transport of ['udp', 'tcp'] as const) {
  test(`${transport}: Allocate, CreatePermission, Send → peer → Data; ChannelBind, ChannelData both ways`, noLeaks(async () => {
    await using server = await start();
    await using c = await client(server, transport);
    const p = await peer();
    try {
      const relayed = await c.allocate();
      assert.equal(relayed.address, LOOPBACK);
      assert.ok(relayed.port >= 49152, `relay port ${relayed.port} in 49152–65535`);
      // Without a permission the Send is dropped (RFC 8656 §10.2).
      c.send(p.socket.local, text('too early'));
      assert.equal(await c.permit(p.socket.local), 0);
      c.send(p.socket.local, text('hello peer'));
      const first = await p.next();
      assert.equal(first.data, 'hello peer');
      assert.deepEqual(first.from, relayed, 'the peer sees the relayed address (RFC 8656 §10.2)');
      p.socket.send(text('hello client'), relayed);
      assert.deepEqual(delivered(await c.next()), { text: 'hello client', peer: endpointKey(p.socket.local) });

      assert.equal(await c.bind(0x4001, p.socket.local), 0);
      // Odd lengths: over TCP ChannelData is padded to a multiple of 4 (RFC 8656 §12.5).
      c.sendChannel(0x4001, text('odd'));
      assert.equal((await p.next()).data, 'odd');
      p.socket.send(text('x'), relayed);
      assert.deepEqual(delivered(await c.next()), { text: 'x', channel: 0x4001 });

      const s = server.stats;
      assert.equal(s.dropped['no-permission'], 1);
      assert.deepEqual([s.toPeerPackets, s.toPeerBytes, s.toClientPackets, s.toClientBytes], [2, 13, 2, 13]);
      assert.deepEqual([s.allocations, s.permissions, s.channels, s.relay.inUse], [1, 1, 1, 1]);
      const [info] = server.allocations();
      assert.ok(info);
      assert.deepEqual(info.counters, { toPeerPackets: 2, toPeerBytes: 13, toClientPackets: 2, toClientBytes: 13 });
      assert.equal(info.fiveTuple.transport, transport);
      assert.equal(info.username, 'alice');
    } finally {
      await p.socket.close();
    }
  }));
}

test('Refresh with lifetime 0 deletes the allocation and frees its relay port (RFC 8656 §7.5)', noLeaks(async () => {
  await using server = await start();
  await using c = await client(server, 'udp');
  const relayed = await c.allocate();
  assert.equal(await c.refresh(0), 0);
  assert.deepEqual([server.stats.allocations, server.stats.relay.inUse, server.stats.allocationsDeleted], [0, 0, 1]);
  // The socket closes asynchronously: the port binds again within a few tries.
  let rebound: PacketSocket | undefined;
  for (let i = 0; i < 20 && rebound === undefined; i++) {
    rebound = await nodeEnv().network.bindUdp({ address: LOOPBACK, port: relayed.port }).catch(() => undefined);
    if (rebound === undefined) await sleep(10);
  }
  assert.ok(rebound, `relay port ${relayed.port} is free again`);
  await rebound.close();
  assert.equal(await c.refresh(600), 437, 'no allocation left on the 5-tuple');
}));

test('an allocation expires on the server\'s clock and its relay socket closes (RFC 8656 §7)', noLeaks(async () => {
  const clock = new ManualClock();
  await using server = await start({}, nodeEnv({ clock }));
  await using c = await client(server, 'tcp');
  await c.allocate();
  assert.equal(server.stats.relay.inUse, 1);
  clock.advance(599_000);
  assert.equal(server.stats.allocations, 1);
  clock.advance(1_000);
  assert.deepEqual([server.stats.allocations, server.stats.allocationsExpired, server.stats.relay.inUse], [0, 1, 0]);
  assert.equal(clock.pendingTimers, 0, 'no expiry timer without allocations, and the idle connection was closed');
  assert.equal(server.stats.streams.idleClosed, 1);
}));

test('a TCP client that hangs up takes its allocation with it', noLeaks(async () => {
  await using server = await start();
  const c = await client(server, 'tcp');
  await c.allocate();
  await c.close();
  for (let i = 0; i < 100 && server.stats.allocations > 0; i++) await sleep(10);
  assert.deepEqual([server.stats.allocations, server.stats.allocationsDisconnected, server.stats.relay.inUse], [0, 1, 0]);
}));

test('peers in 127.0.0.0/8 are refused with 403 unless allow-listed (RFC 8656 §21.3)', noLeaks(async () => {
  await using server = await start({ allowPeers: [] });
  await using c = await client(server, 'udp');
  await c.allocate();
  assert.equal(await c.permit(endpoint('127.0.0.1', 9)), 403);
  assert.equal(await c.bind(0x4000, endpoint('127.0.0.2', 9)), 403);
  assert.equal(await c.permit(endpoint('8.8.8.8', 53)), 0);
  assert.equal(server.stats.errors[403], 2);
  const metrics = renderMetrics(server.stats);
  assert.match(metrics, /^natkit_turn_peer_denied_total 2$/m);
  assert.match(metrics, /^natkit_turn_allocations 1$/m);
  assert.match(metrics, /^natkit_turn_permissions 1$/m);
}));

test('metrics: Prometheus text with bounded labels', noLeaks(async () => {
  await using server = await start();
  await using c = await client(server, 'udp');
  await c.allocate();
  const metrics = renderMetrics(server.stats);
  const lines = metrics.trimEnd().split('\n');
  for (const line of lines) {
    assert.match(line, /^(# (HELP|TYPE) natkit_turn_[a-z_]+ .+|natkit_turn_[a-z_]+(\{[a-z]+="[a-z0-9-]+"\})? \d+)$/, line);
  }
  assert.match(metrics, /^natkit_turn_allocations_created_total 1$/m);
  assert.match(metrics, /^natkit_turn_error_responses_total\{code="401"\} 1$/m);
  assert.match(metrics, /^natkit_turn_dropped_total\{reason="rate-limited"\} 0$/m);
  assert.match(metrics, /^natkit_turn_keepalives_total 0$/m);
  assert.match(metrics, /^natkit_turn_relayed_bytes_total\{direction="to-peer"\} 0$/m);
  assert.ok(!metrics.includes('alice') && !metrics.includes('127.0.0.1'), 'no user or address in a label');
}));

test('a garbage flood (UDP and TCP) leaves the server serving and every count at its baseline', noLeaks(async () => {
  await using server = await start({ rateLimit: { ratePerS: 50, burst: 100 } });
  const udpAt = where(server, 'udp');
  const tcpAt = where(server, 'tcp');
  const baseline = server.stats;
  const flooder = await nodeEnv().network.bindUdp({ address: LOOPBACK });
  const PACKETS = 5000;
  const started = performance.now();
  try {
    for (let i = 0; i < PACKETS; i++) {
      const junk = randomBytes(1 + (i % 200));
      // A third STUN-shaped (first byte 0–3), a third ChannelData-shaped, a third anything;
      // every tenth a valid Binding request, which the per-source budget cuts off.
      if (i % 3 === 0) junk[0] = i % 4;
      else if (i % 3 === 1) junk[0] = 0x40 | (i % 16);
      flooder.send(i % 10 === 9 ? bindingRequest() : junk, udpAt);
      if (i % 500 === 499) await nextImmediate();
    }
    // TCP: connections that send random bytes (closed as garbage) or nothing and hang up.
    for (let i = 0; i < 50; i++) {
      const socket = netConnect({ host: tcpAt.address, port: tcpAt.port });
      await once(socket, 'connect');
      socket.end(randomBytes(64 + i));
      await once(socket, 'close');
    }
    // Everything sent has arrived once received counts stop moving.
    let received = -1;
    for (let i = 0; i < 100 && received !== server.stats.received; i++) {
      received = server.stats.received;
      await sleep(20);
    }
    const seconds = (performance.now() - started) / 1000;
    const s = server.stats;
    assert.ok(s.received - baseline.received >= PACKETS * 0.9, `most of the flood arrived: ${s.received - baseline.received}`);
    assert.equal(s.internalErrors, 0);
    assert.ok(s.dropped['rate-limited'] >= 300, `Binding requests over the budget dropped: ${s.dropped['rate-limited']}`);
    assert.deepEqual([s.allocations, s.relay.inUse, s.streams.active], [0, 0, 0]);
    assert.equal(s.streams.accepted, 50);
    process.stdout.write(`# flood: ${s.received - baseline.received} datagrams in ${seconds.toFixed(2)} s (${Math.round(PACKETS / seconds)}/s sent), ` +
      `dropped ${JSON.stringify(Object.fromEntries(Object.entries(s.dropped).filter(([, n]) => n > 0)))}, streams ${JSON.stringify(s.streams)}\n`);

    // A valid client from another source is still served end to end.
    await using c = await TurnWireClient.udp(nodeEnv(), udpAt, CREDS, '127.0.0.3');
    const p = await peer();
    try {
      const relayed = await c.allocate();
      assert.equal(await c.permit(p.socket.local), 0);
      c.send(p.socket.local, text('still here'));
      assert.equal((await p.next()).data, 'still here');
      p.socket.send(text('back'), relayed);
      assert.equal(delivered(await c.next()).text, 'back');
      assert.equal(await c.refresh(0), 0);
    } finally {
      await p.socket.close();
    }
    assert.deepEqual([server.stats.allocations, server.stats.relay.inUse], [0, 0]);
  } finally {
    await flooder.close();
  }
}));

test('TLS: Allocate, ChannelBind and ChannelData both ways over a TLS connection (RFC 8656 §3.1)', noLeaks(async () => {
  if (!(await hasOpenssl())) assert.fail('openssl is not on PATH: install openssl (the TLS tests make their certificate with it)');
  const { cert, key } = await selfSignedCertificate();
  await using server = await start({ listen: [{ address: LOOPBACK, port: 0, transports: ['tls'], tls: { cert, key } }] });
  const at = where(server, 'tls');
  await using c = await TurnWireClient.tcp(nodeEnv(), at, CREDS, { ca: cert, servername: 'localhost' });
  const p = await peer();
  try {
    const relayed = await c.allocate();
    assert.equal(await c.bind(0x4fff, p.socket.local), 0);
    c.sendChannel(0x4fff, text('over tls'));
    assert.equal((await p.next()).data, 'over tls');
    p.socket.send(text('back'), relayed);
    assert.deepEqual(delivered(await c.next()), { text: 'back', channel: 0x4fff });
    assert.equal(server.allocations()[0]?.fiveTuple.transport, 'tls');
  } finally {
    await p.socket.close();
  }
}));

test('bandwidth: a per-allocation token bucket drops what exceeds it (RFC 8656 §21.1.4)', noLeaks(async () => {
  await using server = await start({ bandwidth: { bytesPerS: 100, burstBytes: 2500 } });
  await using c = await client(server, 'udp');
  const p = await peer();
  try {
    await c.allocate();
    assert.equal(await c.bind(0x4000, p.socket.local), 0);
    for (let i = 0; i < 5; i++) c.sendChannel(0x4000, new Uint8Array(1000));
    await p.next();
    await p.next();
    await sleep(100);
    assert.equal(p.got.length, 0, 'only the burst got through');
    assert.deepEqual([server.stats.toPeerPackets, server.stats.dropped.bandwidth], [2, 3]);
  } finally {
    await p.socket.close();
  }
}));

test('externalAddress: XOR-RELAYED-ADDRESS advertises it while the relay socket binds locally (1:1 NAT)', noLeaks(async () => {
  await using server = await start({ externalAddress: '203.0.113.7' });
  await using c = await client(server, 'udp');
  const p = await peer();
  try {
    const relayed = await c.allocate();
    assert.equal(relayed.address, '203.0.113.7');
    assert.equal(await c.permit(p.socket.local), 0);
    // What the NAT would forward: the same port on the local relay address.
    p.socket.send(text('through the nat'), endpoint(LOOPBACK, relayed.port));
    assert.deepEqual(delivered(await c.next()), { text: 'through the nat', peer: endpointKey(p.socket.local) });
    // The advertised address is the server's own: never a peer (no relay loops, RFC 8656 §21.3).
    await using strict = await start({ externalAddress: '203.0.113.7', allowPeers: ['8.8.8.8'] });
    await using d = await client(strict, 'udp');
    await d.allocate();
    assert.equal(await d.permit(endpoint('203.0.113.7', 9)), 403);
  } finally {
    await p.socket.close();
  }
}));

test('users come from a loader hook and reload; quotas answer 486 and 508', noLeaks(async () => {
  const file: Record<string, string> = { carol: 'carol-pw' };
  await using server = await start({ users: {}, loadUsers: () => Promise.resolve({ ...file }), maxAllocations: 2, maxAllocationsPerUser: 1 });
  const dave: Credentials = { ...CREDS, username: 'dave', password: 'dave-pw' };
  await using c1 = await TurnWireClient.udp(nodeEnv(), where(server, 'udp'), { ...CREDS, username: 'carol', password: 'carol-pw' }, LOOPBACK);
  await using c2 = await TurnWireClient.udp(nodeEnv(), where(server, 'udp'), { ...CREDS, username: 'carol', password: 'carol-pw' }, LOOPBACK);
  await using d1 = await TurnWireClient.udp(nodeEnv(), where(server, 'udp'), dave, LOOPBACK);
  await using d2 = await TurnWireClient.udp(nodeEnv(), where(server, 'udp'), dave, LOOPBACK);
  await c1.allocate();
  assert.equal(await c2.codeOf(ALLOCATE, [attr(REQUESTED_TRANSPORT, TRANSPORT_UDP)]), 486);
  assert.equal(await d1.codeOf(ALLOCATE, [attr(REQUESTED_TRANSPORT, TRANSPORT_UDP)]), 401, 'dave is unknown before the reload');
  file.dave = 'dave-pw';
  await server.reloadUsers();
  await d1.allocate();
  assert.equal(await d2.codeOf(ALLOCATE, [attr(REQUESTED_TRANSPORT, TRANSPORT_UDP)]), 486);
  assert.equal(server.stats.authFailures, 1);
  file.erin = 'erin-pw';
  await server.reloadUsers();
  await using e = await TurnWireClient.udp(nodeEnv(), where(server, 'udp'), { ...CREDS, username: 'erin', password: 'erin-pw' }, LOOPBACK);
  assert.equal(await e.codeOf(ALLOCATE, [attr(REQUESTED_TRANSPORT, TRANSPORT_UDP)]), 508, 'maxAllocations reached');
}));

test('relay throughput: ChannelData over UDP to a peer, paced bursts', noLeaks(async () => {
  await using server = await start();
  await using c = await client(server, 'udp');
  const p = await peer();
  try {
    await c.allocate();
    assert.equal(await c.bind(0x4000, p.socket.local), 0);
    const PACKETS = 20_000;
    const payload = new Uint8Array(1000);
    const started = performance.now();
    for (let i = 0; i < PACKETS; i++) {
      c.sendChannel(0x4000, payload);
      if (i % 50 === 49) await sleep(1);
    }
    // Until arrivals stop for 20 ms (at most 2 s).
    let last = performance.now();
    for (let i = 0, seen = -1; i < 100 && seen !== p.got.length; i++) {
      seen = p.got.length;
      last = performance.now();
      await sleep(20);
    }
    const seconds = (last - started) / 1000;
    const got = p.got.length;
    const relayed = server.stats.toPeerPackets;
    process.stdout.write(`# relay: ${relayed}/${PACKETS} relayed, ${got} received, 1000 B each, in ${seconds.toFixed(2)} s: ` +
      `${Math.round(got / seconds)} packets/s, ${(got * 8e-3 / seconds).toFixed(1)} Mbit/s\n`);
    // UDP on a busy host loses datagrams in socket buffers; the server relays what it reads.
    assert.ok(got >= PACKETS * 0.5 && got <= relayed, `most datagrams relayed: ${got} of ${relayed}`);
    assert.equal(server.stats.internalErrors, 0);
  } finally {
    await p.socket.close();
  }
}));
