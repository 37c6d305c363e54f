// connect() on real loopback sockets against `natkit serve` run in-process: two peers on
// 127.0.0.1, one listening and one dialing by name, meet on a direct path (their host
// candidates) and exchange datagrams; closing releases every socket, timer and allocation.
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { test } from 'node:test';
import { parseEndpoint, type Endpoint } from '../../src/net/index.ts';
import { nodeEnv } from '../../src/net/node/index.ts';
import { connect, type ConnectOptions, type PeerConnection } from '../../src/punch/index.ts';
import { identityFromKey } from '../../src/rendezvous/index.ts';
import { noLeaks } from '../helpers/leaks.ts';
import { startServerCommand } from '../helpers/server-command.ts';

const env = nodeEnv();
const HOST = '127.0.0.1';
// Two addresses: the RFC 5780 layout, so checkNat can tell there is no NAT (a one-address server measures no filtering, and unmeasured reads as the strictest).
const SECOND = '127.0.0.2';

interface Announced {
  readonly listening: readonly { transport: string; address: string; serves: string[] }[];
}

/** The endpoint serving `what` over `transport`. */
function at(info: Announced, transport: string, what: string): Endpoint {
  const l = info.listening.find((e) => e.transport === transport && e.serves.some((s) => s.startsWith(what)) && parseEndpoint(e.address).address === HOST);
  assert.ok(l, `${transport} ${what} in ${JSON.stringify(info.listening)}`);
  return parseEndpoint(l.address);
}

test('two connect() peers on loopback meet directly through natkit serve and exchange datagrams', noLeaks(async () => {
  const serve = await startServerCommand<Announced>(env, 'serve', ['-l', HOST, '-l', SECOND, '-p', '0', '--alt-port', '0', '--rendezvous-port', '0', '-u', 'peer:peer-pw', '--allow-peer', '127.0.0.0/8']);
  try {
    const udp = at(serve.info, 'udp', 'rendezvous');
    const base = (name: string): ConnectOptions => ({
      env, name, identity: identityFromKey(generateKeyPairSync('ed25519').privateKey), localAddress: HOST, signal: AbortSignal.timeout(20_000),
      rendezvous: udp, rendezvousTcp: at(serve.info, 'tcp', 'rendezvous'), turn: { server: udp, username: 'peer', password: 'peer-pw' },
    });
    const bob = await connect(base('bob'));
    try {
      const answered = new Promise<PeerConnection>((resolve) => bob.onConnection(resolve));
      const alice = await connect({ ...base('alice'), peer: 'bob' });
      try {
        const bobConn = await answered;
        assert.equal(alice.path.kind, 'direct', JSON.stringify(alice.path));
        assert.equal(bobConn.path.kind, 'direct', JSON.stringify(bobConn.path));
        assert.deepEqual([alice.peer.name, bobConn.peer.name], ['bob', 'alice']);
        assert.ok(bob.relay !== undefined && bob.offer.candidates.some((c) => c.kind === 'relayed'), 'bob allocated a relay from its socket and offered it');
        const got = new Promise<string>((resolve) => bobConn.onMessage((d) => resolve(new TextDecoder().decode(d))));
        const back = new Promise<string>((resolve) => alice.onMessage((d) => resolve(new TextDecoder().decode(d))));
        alice.send(new TextEncoder().encode('ping'));
        assert.equal(await got, 'ping');
        bobConn.send(new TextEncoder().encode('pong'));
        assert.equal(await back, 'pong');
      } finally {
        await alice.close();
      }
    } finally {
      await bob.close();
    }
  } finally {
    await serve.stop();
  }
}));
