// Lab runner for the cleanup tests: builds a small lab (a server host with natkit's STUN
// server, a router, a client), prints `{"namespaces":[…],"pids":[…]}` and then ends the
// way --end says, without calling close(): `wait` (until a signal, at most 30 s),
// `exit` (process.exit), `throw` (an uncaught exception). The lab's exit and signal
// handlers must still remove everything.
import { parseArgs } from 'node:util';
import { startStunServer } from '../lib/probes.ts';
import { Lab } from '../lib/topology.ts';

const { values } = parseArgs({ options: { end: { type: 'string', default: 'wait' } }, strict: true });
const lab = await Lab.create();
const server = await lab.publicHost('server', { addresses: 2 });
const router = await lab.router('router', { preset: 'port-restricted-cone' });
await lab.client('client', router);
const stun = await startStunServer(lab, server);
process.stdout.write(`${JSON.stringify({ namespaces: lab.namespaceNames, pids: [stun.child.pid] })}\n`);

if (values.end === 'exit') process.exit(0);
if (values.end === 'throw') throw new Error('hold-lab: thrown on purpose');
// Bounded: a test that never signals does not leave this running.
setTimeout(() => process.exit(3), 30_000);
