// Lab runner: a UDP peer on the lab internet. Answers every datagram with "echo " and the
// datagram, and prints `{"from":"A:P","text":…}` for each; prints `{"ready":true,"port":N}`
// once bound; stops on SIGTERM, SIGINT or end of stdin.
// Usage: udp-echo.ts --address A [--port P]
import { parseArgs } from 'node:util';
import { formatEndpoint } from '../../../src/net/index.ts';
import { nodeEnv } from '../../../src/net/node/index.ts';
import { announceReady, onStop } from '../../../bench/servers/lifecycle.ts';

const { values } = parseArgs({ options: { address: { type: 'string', default: '0.0.0.0' }, port: { type: 'string', default: '0' } }, strict: true });
const socket = await nodeEnv().network.bindUdp({ address: values.address, port: Number(values.port) });
socket.onPacket((data, from) => {
  process.stdout.write(`${JSON.stringify({ from: formatEndpoint(from), text: Buffer.from(data).toString() })}\n`);
  socket.send(Buffer.concat([Buffer.from('echo '), data]), from);
});
announceReady(socket.local.port);

onStop(async () => {
  const stats = { ...socket.stats };
  await socket.close();
  return stats;
});
