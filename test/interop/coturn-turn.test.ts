// Interoperability of natkit's TurnServer with coturn's TURN tools (Debian package coturn,
// which .ci/run installs), on loopback: turnutils_uclient allocates with long-term
// credentials (RFC 8489 §9.2) or TURN REST API credentials, over UDP and TCP, and relays
// through natkit to turnutils_peer (an echo peer) or to its own second client (-y). Its
// totals must show no loss, and our relayed-byte counters must match its byte counts.
//
// uclient runs with -s (Send/Data indications) against a default server, and with channels
// against one started with legacyChannels: its ChannelBind picks numbers in RFC 5766 §11's
// 0x4000–0x7FFF, which RFC 8656 §12 narrowed to 0x4000–0x4FFF (0x5000 and up went to RFC
// 7983 demultiplexing), so a default server answers three in four of its binds with 400.
// Without coturn every test fails and says what to install; nothing is skipped.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { endpoint, type Endpoint } from '../../src/net/index.ts';
import { nodeEnv } from '../../src/net/node/index.ts';
import { TurnServer, type TurnServerStats } from '../../src/turn/index.ts';
import { noLeaks } from '../helpers/leaks.ts';
import { reservePorts, type PortReservation } from '../helpers/ports.ts';
import { TestProgram, requireProgram, runProgram } from '../helpers/process.ts';

const SERVER = '127.0.0.1';
const PEER = '127.0.0.5';
const INSTALL = 'install coturn (apt-get install coturn; .ci/run installs it in CI)';
const USER = 'ninefingers';
const PASSWORD = 'youhavetoberealistic';
const SECRET = 'natkit-rest-secret';
const REALM = 'natkit.test';
const MESSAGES = 20;
const CLIENTS = 2;
const LENGTH = 120;
const TOOL_MS = 30_000;

/** turnutils_peer on a reserved port, echoing once a probe comes back. */
interface Peer {
  readonly program: TestProgram;
  readonly reservation: PortReservation;
  readonly at: Endpoint;
}

async function startPeer(): Promise<Peer> {
  requireProgram('turnutils_peer', INSTALL);
  const reservation = await reservePorts({ addresses: [PEER], count: 1 });
  const at = endpoint(PEER, reservation.ports[0]!);
  const program = TestProgram.start('turnutils_peer', ['-L', PEER, '-p', String(at.port)]);
  try {
    await using probe = await nodeEnv().network.bindUdp({ address: PEER });
    let echoed = false;
    probe.onPacket(() => {
      echoed = true;
    });
    await program.waitFor(() => {
      probe.send(new TextEncoder().encode('probe'), at);
      return echoed ? true : undefined;
    }, { timeoutMs: 10_000, what: 'an echo from turnutils_peer' });
  } catch (err) {
    await program.stop();
    await reservation.release();
    throw err;
  }
  return { program, reservation, at };
}

/** What uclient reported at its end. */
interface Totals {
  readonly sentMsgs: number;
  readonly recvMsgs: number;
  readonly sentBytes: number;
  readonly recvBytes: number;
  readonly lost: number;
}

/** Runs uclient to its end and reads its totals (its last `start_mclient:` lines). */
async function uclient(args: readonly string[]): Promise<Totals> {
  requireProgram('turnutils_uclient', INSTALL);
  const r = await runProgram('turnutils_uclient', args, { timeoutMs: TOOL_MS });
  const out = r.stdout + r.stderr;
  const msgs = [...out.matchAll(/tot_send_msgs=(\d+), tot_recv_msgs=(\d+)\s*$/gm)].at(-1);
  const bytes = [...out.matchAll(/tot_send_bytes ~ (\d+), tot_recv_bytes ~ (\d+)\s*$/gm)].at(-1);
  const lost = /Total lost packets (\d+)/.exec(out);
  assert.ok(msgs && bytes && lost, `turnutils_uclient ${args.join(' ')} printed no totals (exit ${r.status.code}):\n${out.slice(-3000)}`);
  return { sentMsgs: Number(msgs[1]), recvMsgs: Number(msgs[2]), sentBytes: Number(bytes[1]), recvBytes: Number(bytes[2]), lost: Number(lost[1]) };
}

describe('coturn turnutils_uclient → natkit TurnServer', () => {
  let peer: Peer | undefined;
  before(async () => {
    peer = await startPeer();
  });
  after(async () => {
    await peer?.program.stop();
    await peer?.reservation.release();
  });

  const start = (legacyChannels = false): Promise<TurnServer> => TurnServer.start({
    env: nodeEnv(),
    listen: [{ address: SERVER, port: 0 }],
    relayAddresses: [SERVER],
    realm: REALM,
    users: { [USER]: PASSWORD },
    sharedSecrets: [SECRET],
    // REST API usernames carry a Unix expiry: tell the server what its clock's zero is.
    epochOffsetMs: Date.now() - performance.now(),
    allowPeers: ['127.0.0.0/8'],
    legacyChannels,
  });
  const port = (server: TurnServer, transport: 'udp' | 'tcp'): string => String(server.endpoints.find((e) => e.transport === transport)!.local.port);
  const common = ['-n', String(MESSAGES), '-m', String(CLIENTS), '-l', String(LENGTH), '-c', '-z', '5'];
  const longTerm = (p: Endpoint): string[] => ['-u', USER, '-w', PASSWORD, '-e', p.address, '-r', String(p.port)];

  /** `channels`: ChannelBind and ChannelData (server with legacyChannels) instead of -s. */
  const cases: { name: string; transport: 'udp' | 'tcp'; channels: boolean; args: (peerAt: Endpoint) => string[] }[] = [
    { name: 'UDP, long-term credentials, to turnutils_peer', transport: 'udp', channels: false, args: longTerm },
    { name: 'TCP, long-term credentials, to turnutils_peer', transport: 'tcp', channels: false, args: (p) => ['-t', ...longTerm(p)] },
    { name: 'UDP, client to client (-y)', transport: 'udp', channels: false, args: () => ['-y', '-u', USER, '-w', PASSWORD] },
    { name: 'TCP, TURN REST API credentials (-W), to turnutils_peer', transport: 'tcp', channels: false, args: (p) => ['-t', '-W', SECRET, '-u', USER, '-e', p.address, '-r', String(p.port)] },
    { name: 'UDP with channels (legacyChannels), long-term credentials, to turnutils_peer', transport: 'udp', channels: true, args: longTerm },
    { name: 'TCP with channels (legacyChannels), long-term credentials, to turnutils_peer', transport: 'tcp', channels: true, args: (p) => ['-t', ...longTerm(p)] },
  ];
  for (const c of cases) {
    test(c.name, noLeaks(async () => {
      assert.ok(peer, 'turnutils_peer started');
      await using server = await start(c.channels);
      const totals = await uclient([...common, ...(c.channels ? [] : ['-s']), ...c.args(peer.at), '-p', port(server, c.transport), '-L', SERVER, SERVER]);
      const s: TurnServerStats = server.stats;
      assert.equal(totals.lost, 0, 'no message lost');
      assert.equal(totals.sentMsgs, MESSAGES * CLIENTS);
      assert.equal(totals.recvMsgs, MESSAGES * CLIENTS);
      assert.equal(totals.sentBytes, MESSAGES * CLIENTS * LENGTH);
      // What uclient sent went out of our relays; what it received came in through them.
      assert.equal(s.toPeerBytes, totals.sentBytes);
      assert.equal(s.toClientBytes, totals.recvBytes);
      assert.equal(s.toPeerPackets, totals.sentMsgs);
      assert.ok(s.allocationsCreated >= CLIENTS, `allocations: ${s.allocationsCreated}`);
      assert.equal(s.authFailures, 0);
      assert.equal(s.internalErrors, 0);
      // With channels every bind succeeds and the data rides ChannelData: no 400, no Send.
      if (c.channels) {
        assert.equal(s.errors[400] ?? 0, 0, 'no ChannelBind refused');
        assert.equal(s.dropped.malformed, 0);
      }
    }, { settleMs: 3000 }));
  }

  test('a wrong password is refused and counted as an authentication failure', noLeaks(async () => {
    assert.ok(peer, 'turnutils_peer started');
    await using server = await start();
    requireProgram('turnutils_uclient', INSTALL);
    const r = await runProgram('turnutils_uclient', [...common, '-s', '-u', USER, '-w', 'wrong', '-e', PEER, '-r', String(peer.at.port), '-p', port(server, 'udp'), '-L', SERVER, SERVER], { timeoutMs: TOOL_MS });
    assert.notEqual(r.status.code, 0, 'uclient fails');
    assert.ok(server.stats.authFailures >= 1, `auth failures: ${server.stats.authFailures}`);
    assert.equal(server.stats.allocationsCreated, 0);
    assert.equal(server.stats.toPeerPackets, 0);
  }));
});
