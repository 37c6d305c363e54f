// Lab runner: natkit's TurnClient driven by JSON lines on stdin, for tests that need the
// relayed address before they know where to send (relay to relay). Prints
// `{"relayed":"A:P","mapped":"A:P"}` once allocated, then `{"from":"A:P","text":…}` for
// every datagram a peer sends; reads `{"to":"A:P","text":…}` lines and relays each text as
// one datagram. At end of stdin (or SIGTERM) it deletes the allocation, prints
// `{"stats":{…}}` (the client core's counters) and exits 0; 1 when the allocation fails.
// Usage: turn-client.ts --server A:P [--user NAME:PASSWORD] [--transport udp|tcp]
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { formatEndpoint, parseEndpoint } from '../../../src/net/index.ts';
import { nodeEnv } from '../../../src/net/node/index.ts';
import { TurnClient } from '../../../src/turn/index.ts';

const { values } = parseArgs({
  options: { server: { type: 'string', default: '' }, user: { type: 'string', default: 'lab:labpass' }, transport: { type: 'string', default: 'udp' } },
  strict: true,
});
const [username, password] = values.user.split(':') as [string, string];
const transport = values.transport === 'tcp' ? 'tcp' : 'udp';
const relay = await TurnClient.allocate({ env: nodeEnv(), server: parseEndpoint(values.server, 3478), transport, username, password });
const print = (v: unknown): void => void process.stdout.write(`${JSON.stringify(v)}\n`);
print({ relayed: formatEndpoint(relay.local), mapped: relay.allocation.mapped === undefined ? null : formatEndpoint(relay.allocation.mapped) });
relay.onPacket((data, from) => print({ from: formatEndpoint(from), text: Buffer.from(data).toString() }));

const finish = async (): Promise<void> => {
  await relay.close();
  print({ stats: relay.core.stats });
  process.exit(0);
};
process.on('SIGTERM', () => void finish());
const lines = createInterface({ input: process.stdin });
lines.on('line', (line) => {
  const { to, text } = JSON.parse(line) as { to: string; text: string };
  relay.send(Buffer.from(text), parseEndpoint(to));
});
lines.on('close', () => void finish());
