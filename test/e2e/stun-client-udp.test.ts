// StunClient on real loopback sockets (NodeNetwork) against tiny responders written here
// with the codec: UDP over IPv4 and IPv6, lost requests, timeout, abort, a legacy
// RFC 3489 exchange, the application's own socket, TCP with the answer dribbled out one
// byte at a time, and TLS. The natkit server is tested against this client elsewhere.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { setImmediate as nextTurn } from 'node:timers/promises';
import {
  CHANGED_ADDRESS, MAPPED_ADDRESS, OTHER_ADDRESS, RESPONSE_ORIGIN, SOURCE_ADDRESS, StunClass, StunClient,
  XOR_MAPPED_ADDRESS, attr, decodeMessage, encodeMessage, type AttrEntry, type StunMessage,
} from '../../src/stun/index.ts';
import { endpoint, type Endpoint, type Env, type PacketSocket } from '../../src/net/index.ts';
import { nodeEnv } from '../../src/net/node/index.ts';
import { noLeaks } from '../helpers/leaks.ts';
import { hasOpenssl, selfSignedCertificate } from '../helpers/tls.ts';

const env = nodeEnv();
const FAST = { rtoMs: 20, maxTransmissions: 4, lastWaitMultiplier: 2 } as const;

/** The answer to a Binding request, in the dialect the request speaks. */
function answer(req: StunMessage, from: Endpoint, self: Endpoint): Uint8Array {
  const other: Endpoint = { ...self, port: self.port + 1 };
  const attributes: AttrEntry[] = req.isLegacy
    ? [attr(MAPPED_ADDRESS, from), attr(SOURCE_ADDRESS, self), attr(CHANGED_ADDRESS, other)]
    : [attr(XOR_MAPPED_ADDRESS, from), attr(RESPONSE_ORIGIN, self), attr(OTHER_ADDRESS, other)];
  return encodeMessage({ method: req.method, cls: StunClass.SUCCESS, transactionId: req.transactionId, attributes });
}

/** A UDP Binding responder that drops the first `drop` requests (Infinity: all). */
async function udpResponder(address: string, drop = 0): Promise<{ socket: PacketSocket; seen: () => number }> {
  const socket = await env.network.bindUdp({ address, port: 0 });
  let seen = 0;
  socket.onPacket((data, from) => {
    seen += 1;
    if (seen <= drop) return;
    socket.send(answer(decodeMessage(data), from, socket.local), from);
  });
  return { socket, seen: () => seen };
}

for (const [family, address] of [[4, '127.0.0.1'], [6, '::1']] as const) {
  test(`UDP IPv${family}: the mapped address is the client's own`, noLeaks(async () => {
    const server = await udpResponder(address);
    try {
      await using client = await StunClient.create({ env, server: server.socket.local, localAddress: address, ...FAST });
      const r = await client.binding();
      assert.ok(r.ok);
      assert.deepEqual(r.mapped, client.local);
      assert.equal(r.mapped.family, family);
      assert.equal(r.isXorMapped, true);
      assert.deepEqual(r.from, server.socket.local);
      assert.deepEqual(r.responseOrigin, server.socket.local);
      assert.equal(r.otherAddress?.port, server.socket.local.port + 1);
      // One send on an idle machine; a loaded one may stall the loop past FAST's first RTO.
      assert.ok(r.transmissions === 1 || r.transmissions === 2, `${r.transmissions} transmissions`);
      assert.ok(r.rttMs >= 0 && r.rttMs < 1000);
    } finally {
      await server.socket.close();
    }
  }));
}

test('UDP: the first two requests are lost; the third is answered', noLeaks(async () => {
  const server = await udpResponder('127.0.0.1', 2);
  try {
    // RTO 50: the answer to the third send has 200 ms before a fourth would go, even on a busy machine.
    const rtoMs = 50;
    await using client = await StunClient.create({ env, server: server.socket.local, localAddress: '127.0.0.1', ...FAST, rtoMs });
    const r = await client.binding();
    assert.ok(r.ok);
    assert.equal(r.transmissions, 3);
    assert.equal(server.seen(), 3);
    assert.ok(r.rttMs >= 3 * rtoMs - 5, `rtt ${r.rttMs} covers the RTO and 2·RTO waits`);
  } finally {
    await server.socket.close();
  }
}));

test('UDP: no answer at all ends in ERR_TIMEOUT after Rc transmissions', noLeaks(async () => {
  const server = await udpResponder('127.0.0.1', Infinity);
  try {
    await using client = await StunClient.create({ env, server: server.socket.local, localAddress: '127.0.0.1', rtoMs: 10, maxTransmissions: 3, lastWaitMultiplier: 2 });
    const started = performance.now();
    await assert.rejects(client.binding(), { code: 'ERR_TIMEOUT' });
    const took = performance.now() - started;
    assert.equal(server.seen(), 3);
    assert.ok(took >= 45 && took < 2000, `sends at 0, 10, 30 and the end at 50 ms; took ${took}`);
  } finally {
    await server.socket.close();
  }
}));

test('UDP: abort while waiting rejects with ERR_ABORTED and leaves no timer', noLeaks(async () => {
  const server = await udpResponder('127.0.0.1', Infinity);
  try {
    await using client = await StunClient.create({ env, server: server.socket.local, localAddress: '127.0.0.1' });
    const ac = new AbortController();
    const pending = client.binding({ signal: ac.signal });
    while (server.seen() === 0) await nextTurn();
    ac.abort();
    await assert.rejects(pending, { code: 'ERR_ABORTED' });
    assert.equal(client.pending, 0);
  } finally {
    await server.socket.close();
  }
}));

test('UDP: legacy RFC 3489 request and answer', noLeaks(async () => {
  const server = await udpResponder('127.0.0.1');
  try {
    await using client = await StunClient.create({ env, server: server.socket.local, localAddress: '127.0.0.1', ...FAST });
    const r = await client.binding({ legacy: true });
    assert.ok(r.ok);
    assert.equal(r.message.isLegacy, true);
    assert.equal(r.isXorMapped, false);
    assert.deepEqual(r.mapped, client.local);
    assert.deepEqual(r.responseOrigin, server.socket.local);
    assert.equal(r.otherAddress?.port, server.socket.local.port + 1);
  } finally {
    await server.socket.close();
  }
}));

test("UDP: on the application's socket the mapping is that socket's, and the socket survives the client", noLeaks(async () => {
  const server = await udpResponder('127.0.0.1');
  const app = await env.network.bindUdp({ address: '127.0.0.1' });
  try {
    const client = await StunClient.create({ env, server: server.socket.local, socket: app, ...FAST });
    const r = await client.binding();
    assert.ok(r.ok);
    assert.deepEqual(r.mapped, app.local);
    await client.close();
    assert.equal(app.closed, false);
  } finally {
    await app.close();
    await server.socket.close();
  }
}));

/** A TCP responder that writes each answer one byte per loop turn, so the client sees it in pieces. */
async function tcpResponder(): Promise<{ server: ReturnType<typeof createServer>; at: Endpoint; close: () => Promise<void> }> {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.setNoDelay(true);
    socket.on('close', () => sockets.delete(socket));
    let buffered = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      while (buffered.length >= 20) {
        const size = 20 + buffered.readUInt16BE(2);
        if (buffered.length < size) break;
        const req = decodeMessage(Uint8Array.from(buffered.subarray(0, size)));
        buffered = buffered.subarray(size);
        const from = endpoint(socket.remoteAddress!, socket.remotePort!);
        const bytes = answer(req, from, endpoint(socket.localAddress!, socket.localPort!));
        void (async () => {
          for (const b of bytes) {
            if (socket.destroyed) return;
            socket.write(Uint8Array.of(b));
            await nextTurn();
          }
        })();
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    server,
    at: endpoint('127.0.0.1', port),
    close: () => new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    }),
  };
}

test('TCP: an answer written one byte at a time is framed and accepted', noLeaks(async () => {
  const tcp = await tcpResponder();
  // Count the chunks the client is handed, to be sure the answers really came in pieces.
  let chunks = 0;
  const counting: Env = {
    ...env,
    network: {
      ...env.network,
      bindUdp: (o) => env.network.bindUdp(o),
      listenStream: (o, h) => env.network.listenStream(o, h),
      connectStream: async (to, o) => {
        const stream = await env.network.connectStream(to, o);
        const onData = stream.onData.bind(stream);
        stream.onData = (h) => onData(h && ((d) => {
          chunks += 1;
          h(d);
        }));
        return stream;
      },
    },
  };
  try {
    await using client = await StunClient.create({ env: counting, server: tcp.at, transport: 'tcp', streamTimeoutMs: 5000 });
    const first = await client.binding();
    const second = await client.binding({ fingerprint: true });
    for (const r of [first, second]) {
      assert.ok(r.ok);
      assert.deepEqual(r.mapped, client.local);
      assert.deepEqual(r.from, tcp.at);
      assert.equal(r.transmissions, 1);
    }
    assert.ok(chunks > 10, `answers arrived in ${chunks} chunks`);
  } finally {
    await tcp.close();
  }
}));

test('TCP: the server closing the connection fails the pending request with ERR_CLOSED', noLeaks(async () => {
  const sockets: Socket[] = [];
  const server = createServer((s) => {
    sockets.push(s);
    s.on('data', () => s.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    await using client = await StunClient.create({ env, server: endpoint('127.0.0.1', (server.address() as AddressInfo).port), transport: 'tcp' });
    await assert.rejects(client.binding(), { code: 'ERR_CLOSED' });
  } finally {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}));

test('TLS: binding over a verified TLS connection', async (t) => {
  if (!(await hasOpenssl())) {
    t.skip('openssl CLI not available');
    return;
  }
  const cert = await selfSignedCertificate();
  await noLeaks(async () => {
    const listener = await env.network.listenStream({ address: '127.0.0.1', port: 0, tls: cert }, (stream) => {
      stream.onData((chunk) => {
        // Small requests arrive whole on loopback; a real server frames with StreamFramer.
        const req = decodeMessage(Uint8Array.from(chunk));
        stream.write(answer(req, stream.remote, stream.local));
      });
    });
    try {
      await using client = await StunClient.create({
        env, server: listener.local, transport: 'tls', tls: { ca: cert.cert, servername: 'localhost' },
      });
      const r = await client.binding();
      assert.ok(r.ok);
      assert.deepEqual(r.mapped, client.local);
    } finally {
      await listener.close();
    }
  })();
});
