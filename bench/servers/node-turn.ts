// node-turn (npm `node-turn` 0.0.6, pure JavaScript, the best-known Node TURN server) on
// 127.0.0.1 for the TURN benchmark, configured like natkit-turn.ts: UDP on 127.0.0.1, relay
// sockets on 127.0.0.1, long-term credentials with one user bench:benchpass, realm bench,
// logging off. It has no peer address policy (loopback peers are allowed as they are), no
// per-source rate limit and no allocation quota (`checkQuota` always passes); everything else
// at its defaults. It cannot listen on port 0 (`listeningPort || 3478`), so with `--port 0`
// this picks a free port first (and another if that one is taken before node-turn binds it).
import { createRequire } from 'node:module';
import type { Socket } from 'node:dgram';
import { freeUdpPort } from '../lib/stun-probe.ts';
import { announceReady, childOptions, onStop } from './lifecycle.ts';

/** The part of node-turn's `lib/server.js` used here. */
interface NodeTurnServer {
  start(): void;
  stop(): void;
  readonly allocations: Readonly<Record<string, unknown>>;
  readonly network: { readonly sockets: readonly Socket[] };
}
interface NodeTurnConfig {
  readonly listeningIps: readonly string[];
  readonly relayIps: readonly string[];
  readonly listeningPort: number;
  readonly authMech: 'none' | 'short-term' | 'long-term';
  readonly credentials: Readonly<Record<string, string>>;
  readonly realm: string;
  readonly debugLevel: string;
  readonly log: (msg: unknown) => void;
}
type NodeTurnConstructor = new (config: NodeTurnConfig) => NodeTurnServer;

const NodeTurn = createRequire(import.meta.url)('node-turn') as NodeTurnConstructor;
const { port: wanted } = childOptions();

/** Starts node-turn on `port`; resolves once its UDP socket listens, rejects on a bind error. */
async function start(port: number): Promise<NodeTurnServer> {
  const server = new NodeTurn({
    listeningIps: ['127.0.0.1'], relayIps: ['127.0.0.1'], listeningPort: port, authMech: 'long-term',
    credentials: { bench: 'benchpass' }, realm: 'bench', debugLevel: 'OFF', log: () => {},
  });
  server.start();
  const socket = server.network.sockets[0]!;
  await new Promise<void>((resolve, reject) => {
    socket.once('listening', resolve);
    socket.once('error', reject);
  });
  return server;
}

/** node-turn on the port asked for, or on a free one (up to 5 tries) with `--port 0`. */
async function startOnFreePort(): Promise<{ server: NodeTurnServer; port: number }> {
  for (let attempt = 1; ; attempt++) {
    const port = wanted === 0 ? await freeUdpPort() : wanted;
    try {
      return { server: await start(port), port };
    } catch (err) {
      if (wanted !== 0 || attempt >= 5) throw err;
    }
  }
}

const { server, port } = await startOnFreePort();
announceReady(port);

onStop(() => {
  const stats = { allocations: Object.keys(server.allocations).length };
  server.stop();
  return Promise.resolve(stats);
});
