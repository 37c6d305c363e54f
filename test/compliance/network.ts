// The Network compliance suite (DESIGN.md §3, STYLE.md "reusable compliance suites"):
// every Network implementation — net/node on real sockets, net/sim in the simulated
// world — must pass it. It checks the contract written in src/net/types.ts, not any one
// implementation; refused socket calls carry the OS's errno code as `cause.code` in both.
import { after, before, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { endpoint, sameEndpoint } from '../../src/net/index.ts';
import type { Endpoint, Network, PacketSocket, StreamSocket } from '../../src/net/index.ts';
import { isNatkitError, type NatkitErrorCode } from '../../src/util/index.ts';
import { noLeaks } from '../helpers/leaks.ts';

/** One host of the network under test. */
export interface HostUnderTest {
  readonly network: Network;
  /** Address the host binds to; the other host can reach it. */
  readonly address: string;
}

/** What a suite run needs: two hosts that can reach each other (may share one Network). */
export interface NetworkUnderTest {
  readonly a: HostUnderTest;
  readonly b: HostUnderTest;
  /** A certificate (its own CA) valid for b.address; the TLS cases are skipped without it. */
  readonly tls?: { readonly cert: string; readonly key: string };
  /** Tears the world down after the suite. */
  close?(): Promise<void>;
}

/** Longest wait for anything a test expects to happen. */
const WAIT_MS = 5000;

/** Resolves with what `arm` reports, or rejects after WAIT_MS; `arm` returns its cleanup. */
function waitFor<T>(what: string, arm: (done: (value: T) => void) => () => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => {
      disarm();
      reject(new Error(`timed out after ${WAIT_MS} ms waiting for ${what}`));
    }, WAIT_MS);
    const disarm = arm((value) => {
      clearTimeout(timer);
      disarm();
      resolve(value);
    });
  });
}

/** Resolves once `condition()` holds (polled: counters have no events). */
function until(what: string, condition: () => boolean): Promise<void> {
  return waitFor(what, (done) => {
    const poll = setInterval(() => condition() && done(undefined), 2);
    return () => clearInterval(poll);
  });
}

/** The next datagram on `socket` (copied). */
function nextPacket(socket: PacketSocket): Promise<{ data: Uint8Array; from: Endpoint }> {
  return waitFor(`a datagram on ${socket.local.address}:${socket.local.port}`, (done) => {
    socket.onPacket((data, from) => done({ data: Uint8Array.from(data), from }));
    return () => socket.onPacket(undefined);
  });
}

/** Resolves once `stream` has received `n` bytes, with all of them. */
function readBytes(stream: StreamSocket, n: number): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let got = 0;
  return waitFor(`${n} bytes on a stream`, (done) => {
    stream.onData((chunk) => {
      chunks.push(Uint8Array.from(chunk));
      got += chunk.length;
      if (got >= n) done(Uint8Array.from(Buffer.concat(chunks)));
    });
    return () => stream.onData(undefined);
  });
}

/** Resolves with the close handler's argument. */
function closedWith(stream: StreamSocket): Promise<Error | undefined> {
  return waitFor('a stream to close', (done) => {
    stream.onClose((error) => done(error));
    return () => undefined;
  });
}

/** Asserts that `promise` rejects with a NatkitError of `code`, caused by an error with `errno` as its code when given. */
async function rejectsWith(promise: Promise<unknown>, code: NatkitErrorCode, errno?: string): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(isNatkitError(err, code), `expected ${code}, got ${String(err)}`);
    if (errno !== undefined) assert.equal((err.cause as { code?: unknown } | undefined)?.code, errno, `cause of ${err.message}`);
    return true;
  });
}

const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);

/** Registers the suite as `describe(name)`; `makeNetwork` runs once before it. */
export function networkCompliance(name: string, makeNetwork: () => NetworkUnderTest | Promise<NetworkUnderTest>): void {
  describe(name, () => {
    let world!: NetworkUnderTest;
    before(async () => {
      world = await makeNetwork();
    });
    after(async () => {
      await world.close?.();
    });
    const bindA = (): Promise<PacketSocket> => world.a.network.bindUdp({ address: world.a.address });
    const bindB = (): Promise<PacketSocket> => world.b.network.bindUdp({ address: world.b.address });
    /** An endpoint of the family the hosts do not use. */
    const otherFamily = (): Endpoint => (endpoint(world.a.address, 0).family === 4 ? endpoint('::1', 9) : endpoint('127.0.0.1', 9));

    test('bindUdp: bound socket with a normalised local endpoint and zero stats', noLeaks(async () => {
      const s = await bindA();
      try {
        assert.deepEqual(s.local, endpoint(world.a.address, s.local.port));
        assert.ok(s.local.port > 0, 'port 0 is replaced by the chosen port');
        assert.equal(s.closed, false);
        assert.deepEqual({ ...s.stats }, { packetsIn: 0, packetsOut: 0, bytesIn: 0, bytesOut: 0, sendErrors: 0 });
      } finally {
        await s.close();
      }
    }));

    test('bindUdp: a port in use rejects with ERR_SOCKET (EADDRINUSE); a name rejects with ERR_INVALID_ARGUMENT', noLeaks(async () => {
      const s = await bindA();
      try {
        await rejectsWith(world.a.network.bindUdp({ address: world.a.address, port: s.local.port }), 'ERR_SOCKET', 'EADDRINUSE');
        await rejectsWith(world.a.network.bindUdp({ address: 'localhost' }), 'ERR_INVALID_ARGUMENT');
      } finally {
        await s.close();
      }
    }));

    test('bindUdp and listenStream: an address the host does not have rejects with ERR_SOCKET (EADDRNOTAVAIL)', noLeaks(async () => {
      // Documentation addresses (RFC 5737, RFC 3849 space no test host is given).
      const foreign = endpoint(world.a.address, 0).family === 4 ? '192.0.2.1' : '2001:db8:ffff::1';
      await rejectsWith(world.a.network.bindUdp({ address: foreign }), 'ERR_SOCKET', 'EADDRNOTAVAIL');
      await rejectsWith(world.a.network.listenStream({ address: foreign }, () => undefined), 'ERR_SOCKET', 'EADDRNOTAVAIL');
    }));

    test('listenStream: a port in use rejects with ERR_SOCKET (EADDRINUSE)', noLeaks(async () => {
      const l = await world.b.network.listenStream({ address: world.b.address }, () => undefined);
      try {
        await rejectsWith(world.b.network.listenStream({ address: world.b.address, port: l.local.port }, () => undefined), 'ERR_SOCKET', 'EADDRINUSE');
      } finally {
        await l.close();
      }
    }));

    test('udp: datagrams flow both ways, the source is the sender\'s local endpoint', noLeaks(async () => {
      const a = await bindA();
      const b = await bindB();
      try {
        const atB = nextPacket(b);
        a.send(bytes('ping'), b.local);
        const got = await atB;
        assert.deepEqual(got.data, bytes('ping'));
        assert.ok(sameEndpoint(got.from, a.local), `from ${JSON.stringify(got.from)}`);
        assert.deepEqual(got.from, a.local);

        const atA = nextPacket(a);
        b.send(bytes('pong!'), got.from);
        const back = await atA;
        assert.deepEqual(back.data, bytes('pong!'));
        assert.deepEqual(back.from, b.local);
      } finally {
        await a.close();
        await b.close();
      }
    }));

    test('udp: stats count packets and bytes each way', noLeaks(async () => {
      const a = await bindA();
      const b = await bindB();
      try {
        for (const size of [1, 100, 1200]) {
          const atB = nextPacket(b);
          a.send(new Uint8Array(size).fill(7), b.local);
          assert.equal((await atB).data.length, size);
        }
        assert.deepEqual({ ...b.stats }, { packetsIn: 3, packetsOut: 0, bytesIn: 1301, bytesOut: 0, sendErrors: 0 });
        // Send completion may be reported after the peer already has the datagram.
        await until('send completions', () => a.stats.packetsOut === 3);
        assert.deepEqual({ ...a.stats }, { packetsIn: 0, packetsOut: 3, bytesIn: 0, bytesOut: 1301, sendErrors: 0 });
      } finally {
        await a.close();
        await b.close();
      }
    }));

    test('udp: onPacket replaces the handler; undefined drops but still counts', noLeaks(async () => {
      const a = await bindA();
      const b = await bindB();
      try {
        const first: string[] = [];
        const second: string[] = [];
        b.onPacket((d) => first.push(new TextDecoder().decode(d)));
        let arrived = until('1 datagram in', () => b.stats.packetsIn >= 1);
        a.send(bytes('one'), b.local);
        await arrived;
        b.onPacket((d) => second.push(new TextDecoder().decode(d)));
        arrived = until('2 datagrams in', () => b.stats.packetsIn >= 2);
        a.send(bytes('two'), b.local);
        await arrived;
        b.onPacket(undefined);
        arrived = until('3 datagrams in', () => b.stats.packetsIn >= 3);
        a.send(bytes('three'), b.local);
        await arrived;
        assert.deepEqual(first, ['one']);
        assert.deepEqual(second, ['two']);
      } finally {
        await a.close();
        await b.close();
      }
    }));

    test('udp: close is idempotent and asyncDispose closes', noLeaks(async () => {
      const a = await bindA();
      await Promise.all([a.close(), a.close()]);
      await a.close();
      assert.equal(a.closed, true);
      const b = await bindA();
      await b[Symbol.asyncDispose]();
      assert.equal(b.closed, true);
      await b.close();
    }));

    test('udp: send after close, to the other family or to port 0 is counted, never thrown', noLeaks(async () => {
      const a = await bindA();
      const b = await bindB();
      try {
        a.send(bytes('x'), otherFamily());
        assert.equal(a.stats.sendErrors, 1);
        a.send(bytes('x'), { ...b.local, port: 0 });
        await until('the port-0 send to be refused', () => a.stats.sendErrors === 2);
        await a.close();
        a.send(bytes('x'), b.local);
        assert.equal(a.stats.sendErrors, 3);
        assert.equal(a.stats.packetsOut, 0);
      } finally {
        await a.close();
        await b.close();
      }
    }));

    test('stream: TCP echo; endpoints agree on both sides', noLeaks(async () => {
      await echo(false);
    }));

    test('stream: TLS echo with a verified certificate', noLeaks(async (t: TestContext) => {
      if (world.tls === undefined) {
        t.skip('no TLS certificate for this network');
        return;
      }
      await echo(true);
    }));

    /** Listens on b, connects from a, echoes, checks endpoints, closes everything. */
    async function echo(secure: boolean): Promise<void> {
      const tls = world.tls;
      let accepted: StreamSocket | undefined;
      const listener = await world.b.network.listenStream(
        { address: world.b.address, ...(secure && tls ? { tls: { cert: tls.cert, key: tls.key } } : {}) },
        (s) => {
          accepted = s;
          s.onData((d) => s.write(d));
        },
      );
      try {
        assert.deepEqual(listener.local, endpoint(world.b.address, listener.local.port));
        const c = await world.a.network.connectStream(listener.local, {
          ...(secure && tls ? { tls: { ca: tls.cert } } : {}),
        });
        try {
          assert.equal(c.secure, secure);
          assert.deepEqual(c.remote, listener.local);
          assert.equal(c.local.address, endpoint(world.a.address, 0).address);
          const message = new Uint8Array(100_000).map((_, i) => i % 251);
          const reply = readBytes(c, message.length);
          assert.equal(typeof c.write(message), 'boolean');
          assert.deepEqual(await reply, message);
          assert.ok(accepted, 'the listener saw the connection');
          assert.equal(accepted.secure, secure);
          assert.deepEqual(accepted.remote, c.local);
          assert.deepEqual(accepted.local, c.remote);
        } finally {
          await c.close();
        }
      } finally {
        await listener.close();
      }
    }

    test('stream: closing one side notifies the other exactly once, without error', noLeaks(async () => {
      const server = acceptOne(world);
      const listener = await server.listening;
      try {
        const c = await world.a.network.connectStream(listener.local);
        const s = await server.accepted;
        let calls = 0;
        const peerClosed = waitFor<Error | undefined>('the peer to see the close', (done) => {
          s.onClose((error) => {
            calls++;
            done(error);
          });
          return () => undefined;
        });
        s.onData(() => undefined);
        const mine = closedWith(c);
        await Promise.all([c.close(), c.close()]);
        assert.equal(c.closed, true);
        assert.equal(await mine, undefined, 'own close handler called without error');
        assert.equal(await peerClosed, undefined);
        assert.equal(s.closed, true);
        await s.close();
        await new Promise((resolve) => setImmediate(resolve));
        assert.equal(calls, 1);
        assert.equal(c.write(bytes('late')), false, 'write after close returns false');
      } finally {
        await listener.close();
      }
    }));

    test('stream: bytes that arrive before onData wait for it; onClose set late is still told', noLeaks(async () => {
      const server = acceptOne(world);
      const listener = await server.listening;
      try {
        const c = await world.a.network.connectStream(listener.local);
        const s = await server.accepted;
        s.write(bytes('early'));
        await s.close();
        // Give the bytes and the FIN time to arrive with nobody reading.
        await new Promise((resolve) => setTimeout(resolve, 50));
        assert.deepEqual(await readBytes(c, 5), bytes('early'));
        c.onData(() => undefined);
        await until('the client to see the end', () => c.closed);
        let calls = 0;
        const late = waitFor<Error | undefined>('a late onClose', (done) => {
          c.onClose((error) => {
            calls++;
            done(error);
          });
          return () => undefined;
        });
        assert.equal(await late, undefined);
        await c.close();
        assert.equal(calls, 1);
      } finally {
        await listener.close();
      }
    }));

    test('stream: listener close ends accepted streams', noLeaks(async () => {
      const server = acceptOne(world);
      const listener = await server.listening;
      const c = await world.a.network.connectStream(listener.local);
      try {
        await server.accepted;
        c.onData(() => undefined);
        const ended = closedWith(c);
        await Promise.all([listener.close(), listener.close()]);
        await ended;
        assert.equal(c.closed, true);
      } finally {
        await c.close();
      }
    }));

    test('stream: write reports backpressure when the peer does not read', noLeaks(async () => {
      const server = acceptOne(world);
      const listener = await server.listening;
      try {
        const c = await world.a.network.connectStream(listener.local);
        const s = await server.accepted;
        try {
          const chunk = new Uint8Array(1 << 20);
          let writes = 0;
          while (c.write(chunk)) {
            writes++;
            assert.ok(writes < 256, 'write returned true for 256 MiB the peer never read');
          }
        } finally {
          // The reader goes first: it has nothing queued, so its close is immediate and
          // resets the writer, whose queue would otherwise wait for the grace period.
          await s.close();
          await c.close();
        }
      } finally {
        await listener.close();
      }
    }));

    test('connectStream: a closed port rejects with ERR_SOCKET (ECONNREFUSED)', noLeaks(async () => {
      const listener = await world.b.network.listenStream({ address: world.b.address }, () => undefined);
      const closedPort = listener.local;
      await listener.close();
      await rejectsWith(world.a.network.connectStream(closedPort, { timeoutMs: 2000 }), 'ERR_SOCKET', 'ECONNREFUSED');
    }));

    test('abort: an aborted signal rejects bindUdp, listenStream and connectStream with ERR_ABORTED', noLeaks(async () => {
      const signal = AbortSignal.abort(new Error('test'));
      await rejectsWith(world.a.network.bindUdp({ address: world.a.address, signal }), 'ERR_ABORTED');
      await rejectsWith(world.b.network.listenStream({ address: world.b.address, signal }, () => undefined), 'ERR_ABORTED');
      await rejectsWith(world.a.network.connectStream(endpoint(world.b.address, 9), { signal }), 'ERR_ABORTED');
    }));

    test('connectStream: abort and timeoutMs during a TLS handshake that never completes', noLeaks(async (t: TestContext) => {
      if (world.tls === undefined) {
        t.skip('no TLS certificate for this network');
        return;
      }
      // A plain TCP listener never answers the ClientHello.
      const silent: StreamSocket[] = [];
      const listener = await world.b.network.listenStream({ address: world.b.address }, (s) => silent.push(s));
      try {
        const tls = { ca: world.tls.cert };
        const controller = new AbortController();
        const aborted = world.a.network.connectStream(listener.local, { tls, signal: controller.signal });
        setTimeout(() => controller.abort(new Error('test')), 50);
        await rejectsWith(aborted, 'ERR_ABORTED');
        await rejectsWith(world.a.network.connectStream(listener.local, { tls, timeoutMs: 100 }), 'ERR_TIMEOUT');
      } finally {
        await listener.close();
      }
    }));
  });
}

/** A plain listener on b whose first accepted stream resolves `accepted`. */
function acceptOne(world: NetworkUnderTest): { listening: ReturnType<Network['listenStream']>; accepted: Promise<StreamSocket> } {
  let resolveAccepted!: (s: StreamSocket) => void;
  const accepted = new Promise<StreamSocket>((resolve) => {
    resolveAccepted = resolve;
  });
  const listening = world.b.network.listenStream({ address: world.b.address }, (s) => resolveAccepted(s));
  return { listening, accepted };
}
