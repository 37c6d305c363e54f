// natkit's full STUN server (StunServer over NodeNetwork from nodeEnv()) on 127.0.0.1,
// with its real defaults (SOFTWARE, RFC 3489 support, TCP listener, 4 MiB UDP buffers)
// except the per-source rate limit, which a single load source would hit at once:
//   --mode raised  the limiter runs on every packet, with a budget no load reaches (default)
//   --mode off     rateLimit: false (the limiter is skipped)
import { nodeEnv } from '../../src/net/node/index.ts';
import { StunServer, type StunServerOptions } from '../../src/stun/index.ts';
import { announceReady, childOptions, onStop } from './lifecycle.ts';

/** A token bucket far above any loopback load: the limiter's per-packet cost stays in the measurement. */
const RAISED = { ratePerS: 1e9, burst: 1e9 } as const;

const { port, mode } = childOptions();
if (mode !== '' && mode !== 'raised' && mode !== 'off') {
  process.stderr.write(`--mode: expected raised or off, got ${mode}\n`);
  process.exit(2);
}
const rateLimit: StunServerOptions['rateLimit'] = mode === 'off' ? false : RAISED;

const server = await StunServer.create({ env: nodeEnv(), addresses: ['127.0.0.1'], ports: [port], rateLimit });
const udp = server.endpoints.find((e) => e.transport === 'udp');
if (udp === undefined) {
  process.stderr.write('natkit server has no UDP endpoint\n');
  await server.close();
  process.exit(1);
}
announceReady(udp.local.port);

onStop(async () => {
  const stats = server.stats;
  await server.close();
  return { ...stats, rateLimit: mode === 'off' ? 'off' : RAISED };
});
