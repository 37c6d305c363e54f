// Lab runner: natkit's TurnServer (UDP and TCP) on one address, one user, its relay sockets
// on the same address, admitting peers in the lab internet (198.18.0.0/15, which the
// default peer policy denies as a benchmarking range). Prints
// `{"ready":true,"endpoints":[{transport,local}…]}` once it serves, `{"stats":{…}}` when
// stopped; stops on SIGTERM, SIGINT or end of stdin.
// Usage: turn-server.ts --address A [--port P] --user NAME:PASSWORD [--allow-peer CIDR]
import { parseArgs } from 'node:util';
import { nodeEnv } from '../../../src/net/node/index.ts';
import { TurnServer } from '../../../src/turn/index.ts';
import { onStop } from '../../../bench/servers/lifecycle.ts';

const { values } = parseArgs({
  options: {
    address: { type: 'string', default: '0.0.0.0' }, port: { type: 'string', default: '3478' },
    user: { type: 'string', default: 'lab:labpass' }, 'allow-peer': { type: 'string', default: '198.18.0.0/15' },
  },
  strict: true,
});
const [name, password] = values.user.split(':') as [string, string];
const server = await TurnServer.start({
  env: nodeEnv(), listen: [{ address: values.address, port: Number(values.port) }], relayAddresses: [values.address], realm: 'lab',
  users: { [name]: password }, allowPeers: [values['allow-peer']], spareRelaySockets: 4,
});
process.stdout.write(`${JSON.stringify({ ready: true, endpoints: server.endpoints })}\n`);

onStop(async () => {
  const stats = structuredClone(server.stats);
  await server.close();
  return stats;
});
