// natkit's TurnServer (RFC 8656) on 127.0.0.1 for the TURN benchmark: UDP only, relay
// sockets on 127.0.0.1 (allow-listed as peers: the default policy denies loopback), one
// user bench:benchpass, no per-source rate limit (one load source makes every allocation),
// quotas raised for the allocation count; everything else at its defaults.
import { nodeEnv } from '../../src/net/node/index.ts';
import { TurnServer } from '../../src/turn/index.ts';
import { announceReady, childOptions, onStop } from './lifecycle.ts';

const { port } = childOptions();
const server = await TurnServer.start({
  env: nodeEnv(), listen: [{ address: '127.0.0.1', port, transports: ['udp'] }], relayAddresses: ['127.0.0.1'], realm: 'bench',
  users: { bench: 'benchpass' }, allowPeers: ['127.0.0.0/8'], rateLimit: false, maxAllocations: 100_000, maxAllocationsPerUser: 100_000,
});
announceReady(server.endpoints[0]!.local.port);

onStop(async () => {
  const stats = structuredClone(server.stats);
  await server.close();
  return stats;
});
