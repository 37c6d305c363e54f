// natkit's TurnClient against natkit's TurnServer on real loopback sockets: UDP, TCP and
// TLS (a throwaway certificate), the RFC 8489 credential path (PASSWORD-ALGORITHMS with
// SHA-256 and MESSAGE-INTEGRITY-SHA256, USERHASH), Send/Data then ChannelData with a real
// UDP peer, and close() deleting the allocation (RFC 8656 §7.5). Nothing may be left open.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Endpoint, Env, PacketSocket } from '../../src/net/index.ts';
import { nodeEnv } from '../../src/net/node/index.ts';
import { MESSAGE_INTEGRITY, MESSAGE_INTEGRITY_SHA256, PASSWORD_ALGORITHM, PasswordAlgorithm, USERHASH, USERNAME, decodeMessage, looksLikeStun } from '../../src/stun/index.ts';
import { ALLOCATE, TurnClient, TurnServer, type RelayedSocket, type TurnListen } from '../../src/turn/index.ts';
import { noLeaks } from '../helpers/leaks.ts';
import { hasOpenssl, selfSignedCertificate } from '../helpers/tls.ts';

const LOOPBACK = '127.0.0.1';
const env = nodeEnv();

/** The real Env, its UDP sockets recording every datagram they send. */
function recordingEnv(sent: Uint8Array[]): Env {
  return {
    ...env,
    network: {
      listenStream: (options, onConnection) => env.network.listenStream(options, onConnection),
      connectStream: (to, options) => env.network.connectStream(to, options),
      bindUdp: async (options) => {
        const socket = await env.network.bindUdp(options);
        const send = socket.send.bind(socket);
        return Object.assign(socket, { send: (data: Uint8Array, to: Endpoint) => { sent.push(Uint8Array.from(data)); send(data, to); } });
      },
    },
  };
}

/** Polls `check` every 5 ms for at most 5 s. */
async function until(check: () => boolean, what: string): Promise<void> {
  for (let waited = 0; !check(); waited += 5) {
    if (waited >= 5000) assert.fail(`no ${what} within 5 s`);
    await sleep(5);
  }
}

/** Records what `socket` receives, as text. */
function record(socket: PacketSocket): { text: string; from: Endpoint }[] {
  const got: { text: string; from: Endpoint }[] = [];
  socket.onPacket((data, from) => got.push({ text: Buffer.from(data).toString(), from }));
  return got;
}

/** Three datagrams each way between the relayed socket and a UDP peer. */
async function talk(relay: RelayedSocket): Promise<void> {
  await using peer = await env.network.bindUdp({ address: LOOPBACK });
  const atPeer = record(peer);
  const atRelay = record(relay);
  for (let i = 0; i < 3; i++) {
    relay.send(Buffer.from(`out ${i}`), peer.local);
    await until(() => atPeer.length > i, `datagram ${i} at the peer`);
    peer.send(Buffer.from(`in ${i}`), relay.local);
    await until(() => atRelay.length > i, `datagram ${i} through the relay`);
    if (i === 0) await until(() => relay.core.stats.channelsBound === 1, 'channel');
  }
  assert.deepEqual(atPeer.map((g) => g.text), ['out 0', 'out 1', 'out 2']);
  assert.ok(atPeer.every((g) => g.from.port === relay.local.port));
  assert.deepEqual(atRelay, ['in 0', 'in 1', 'in 2'].map((text) => ({ text, from: peer.local })));
  assert.deepEqual([relay.core.stats.indicationsSent, relay.core.stats.channelDataSent], [1, 2]);
}

for (const transport of ['udp', 'tcp', 'tls'] as const) {
  test(`${transport}: allocate with SHA-256 credentials and USERHASH, relay both ways, close() deletes`, noLeaks(async () => {
    let listen: TurnListen = { address: LOOPBACK, port: 0, transports: [transport] };
    let ca: string | undefined;
    if (transport === 'tls') {
      if (!(await hasOpenssl())) assert.fail('openssl is not on PATH: install openssl (the TLS tests make their certificate with it)');
      const { cert, key } = await selfSignedCertificate();
      listen = { ...listen, tls: { cert, key } };
      ca = cert;
    }
    await using server = await TurnServer.start({
      env, listen: [listen], relayAddresses: [LOOPBACK], realm: 'natkit.test', users: { alice: 'alice-pw' }, allowPeers: ['127.0.0.0/8'], spareRelaySockets: 2,
    });
    const at = server.endpoints[0]!.local;
    const sent: Uint8Array[] = [];
    const relay = await TurnClient.allocate({
      env: recordingEnv(sent), server: at, transport, username: 'alice', password: 'alice-pw', userhash: true, ...(ca !== undefined && { tls: { ca, servername: 'localhost' } }),
    });
    try {
      assert.equal(relay.local.address, LOOPBACK);
      assert.equal(server.stats.allocations, 1);
      if (transport === 'udp') {
        // natkit's server offers SHA-256 and username anonymity (RFC 8489 §9.2): the signed Allocate takes both.
        const allocates = sent.filter(looksLikeStun).map((b) => decodeMessage(b)).filter((m) => m.method === ALLOCATE);
        assert.equal(allocates.length, 2);
        const signed = allocates[1]!;
        assert.deepEqual([signed.has(USERNAME), signed.has(USERHASH), signed.has(MESSAGE_INTEGRITY), signed.has(MESSAGE_INTEGRITY_SHA256)], [false, true, false, true]);
        assert.equal(signed.get(PASSWORD_ALGORITHM)?.algorithm, PasswordAlgorithm.SHA256);
      }
      await talk(relay);
    } finally {
      await relay.close();
    }
    assert.equal(server.stats.allocations, 0);
  }));
}
