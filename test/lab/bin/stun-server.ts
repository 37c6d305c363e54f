// Lab runner: natkit's StunServer over real sockets on two addresses × two ports (UDP
// only), for RFC 5780 CHANGE-REQUEST. Prints `{"ready":true,"endpoints":[{role,local}…]}`
// once it serves, `{"stats":{…}}` when stopped; stops on SIGTERM, SIGINT or end of stdin
// (the lab's process died). Usage: stun-server.ts --addresses A1,A2 --ports P1,P2
import { parseArgs } from 'node:util';
import { nodeEnv } from '../../../src/net/node/index.ts';
import { StunServer } from '../../../src/stun/index.ts';
import { onStop } from '../../../bench/servers/lifecycle.ts';

const { values } = parseArgs({
  options: { addresses: { type: 'string', default: '0.0.0.0' }, ports: { type: 'string', default: '3478,3479' } },
  strict: true,
});
const addresses = values.addresses.split(',');
const ports = values.ports.split(',').map(Number);

const server = await StunServer.create({ env: nodeEnv(), addresses, ports, tcp: false, rateLimit: false });
const endpoints = server.endpoints.filter((e) => e.transport === 'udp').map((e) => ({ role: e.role, local: e.local }));
process.stdout.write(`${JSON.stringify({ ready: true, endpoints })}\n`);

onStop(async () => {
  const stats = server.stats;
  await server.close();
  return stats;
});
