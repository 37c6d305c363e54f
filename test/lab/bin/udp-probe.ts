// Lab runner: sends one UDP datagram from a fresh socket (a fresh source port, so no
// earlier conntrack entry applies) and prints {"reply": text|null, "from": endpoint|null}
// after the first answer or the wait.
// Usage: udp-probe.ts --to ADDR:PORT --payload TEXT [--wait-ms N] [--tries N]
import { parseArgs } from 'node:util';
import { parseEndpoint } from '../../../src/net/index.ts';
import { nodeEnv } from '../../../src/net/node/index.ts';

const { values } = parseArgs({
  options: { to: { type: 'string' }, payload: { type: 'string', default: 'probe' }, 'wait-ms': { type: 'string', default: '400' }, tries: { type: 'string', default: '3' } },
  strict: true,
});
if (values.to === undefined) {
  process.stderr.write('usage: udp-probe.ts --to ADDR:PORT --payload TEXT\n');
  process.exit(2);
}
const to = parseEndpoint(values.to);
const env = nodeEnv();
await using socket = await env.network.bindUdp({ address: '0.0.0.0' });
const waitMs = Number(values['wait-ms']);
let answer: { reply: string; from: unknown } | undefined;
for (let i = 0; i < Number(values.tries) && answer === undefined; i++) {
  answer = await new Promise((resolve) => {
    const timer = setTimeout(() => resolve(undefined), waitMs);
    socket.onPacket((data, from) => {
      clearTimeout(timer);
      resolve({ reply: Buffer.from(data).toString(), from });
    });
    socket.send(Buffer.from(values.payload), to);
  });
}
process.stdout.write(`${JSON.stringify(answer ?? { reply: null, from: null })}\n`);
