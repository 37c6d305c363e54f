// Lab runner on a LAN host: natkit's UPnP client against the router's miniupnpd. It
// discovers the gateway (unicast and multicast M-SEARCH, then multicast alone), reads the
// external address, maps a UDP port to an echo socket and prints one JSON line per step;
// then waits for commands on stdin: "list", "delete", "exit". Every answer is one JSON
// line ({"step": …}); a failure prints {"step": …, "error": code, "message": …}.
// Usage: upnp-client.ts --gateway ADDR --port N [--description TEXT]
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { endpoint } from '../../../src/net/index.ts';
import { nodeEnv } from '../../../src/net/node/index.ts';
import { UpnpGateway } from '../../../src/portmap/upnp-index.ts';
import { isNatkitError } from '../../../src/util/index.ts';

const { values } = parseArgs({
  options: { gateway: { type: 'string' }, port: { type: 'string' }, description: { type: 'string', default: 'natkit-lab' } },
  strict: true,
});
if (values.gateway === undefined || values.port === undefined) {
  process.stderr.write('usage: upnp-client.ts --gateway ADDR --port N\n');
  process.exit(2);
}
const env = nodeEnv();
const port = Number(values.port);
const print = (v: unknown): void => void process.stdout.write(`${JSON.stringify(v)}\n`);
const fail = (step: string, err: unknown): void => print({ step, error: isNatkitError(err) ? err.code : 'ERR_UNKNOWN', message: err instanceof Error ? err.message : String(err) });

// The application's socket: echoes every datagram with a prefix.
await using echo = await env.network.bindUdp({ address: '0.0.0.0', port });
echo.onPacket((data, from) => echo.send(Buffer.concat([Buffer.from('echo:'), data]), from));

let gw: UpnpGateway;
try {
  gw = await UpnpGateway.discover({ env, unicast: [endpoint(values.gateway, 1900)], timeoutMs: 4000 });
  print({ step: 'discover', location: gw.location.href, serviceType: gw.service.serviceType, localAddress: gw.localAddress, bootId: gw.ssdp?.bootId, server: gw.ssdp?.server });
  const multicast = await UpnpGateway.discover({ env, timeoutMs: 4000 });
  print({ step: 'discover-multicast', location: multicast.location.href, from: multicast.ssdp?.from.address });
  print({ step: 'external-ip', address: await gw.getExternalIPAddress() });
  const mapped = await gw.mapPort({ protocol: 'UDP', internalPort: port, description: values.description, leaseS: 600 });
  print({ step: 'map', ...mapped });
} catch (err) {
  fail('setup', err);
  process.exit(1);
}

for await (const line of createInterface({ input: process.stdin })) {
  const [command, arg] = line.trim().split(' ');
  try {
    if (command === 'list') {
      print({ step: 'list', entries: await gw.listPortMappings() });
    } else if (command === 'delete') {
      await gw.deletePortMapping({ externalPort: Number(arg), protocol: 'UDP' });
      print({ step: 'delete', entry: (await gw.getSpecificPortMappingEntry({ externalPort: Number(arg), protocol: 'UDP' })) ?? null });
    } else if (command === 'exit') {
      break;
    }
  } catch (err) {
    fail(command ?? '', err);
  }
}
