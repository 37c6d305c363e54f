// Lab runner on a LAN host: natkit's NAT-PMP and PCP clients against the router's
// gateway (miniupnpd). Echo sockets listen on --ports ("echo:" + what came). Commands on
// stdin, one per line, "ID COMMAND ARGS…"; each answer is one JSON line {"id": ID, …}
// (a failure: {"id", "error": code, "message"}). Byte arrays print as hex.
//   natpmp-external | natpmp-map PORT SUGGESTED LIFETIME | natpmp-delete PORT
//   pcp-announce | pcp-map PORT SUGGESTED LIFETIME [prefer-failure] | pcp-delete PORT | exit
// Usage: portmap-client.ts --gateway ADDR --ports N[,N…]
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { endpoint } from '../../../src/net/index.ts';
import { localAddressToward, nodeEnv } from '../../../src/net/node/index.ts';
import { NatPmpClient, PcpClient } from '../../../src/portmap/index.ts';
import { isNatkitError } from '../../../src/util/index.ts';

const { values } = parseArgs({ options: { gateway: { type: 'string' }, ports: { type: 'string' } }, strict: true });
if (values.gateway === undefined || values.ports === undefined) {
  process.stderr.write('usage: portmap-client.ts --gateway ADDR --ports N[,N…]\n');
  process.exit(2);
}
const env = nodeEnv();
const gateway = endpoint(values.gateway, 5351);
const print = (v: unknown): void =>
  void process.stdout.write(`${JSON.stringify(v, (_k, x: unknown) => (x instanceof Uint8Array ? Buffer.from(x).toString('hex') : x))}\n`);

const echoes = await Promise.all(values.ports.split(',').map(async (p) => {
  const s = await env.network.bindUdp({ address: '0.0.0.0', port: Number(p) });
  s.onPacket((data, from) => s.send(Buffer.concat([Buffer.from('echo:'), data]), from));
  return s;
}));
// RFC 6887 §7.1: PCP requests name our address; the kernel's choice toward the gateway.
const clientAddress = await localAddressToward(gateway);
const natpmp = await NatPmpClient.create({ env, gateway });
const pcp = await PcpClient.create({ env, gateway, clientAddress, timers: { initialMs: 500, maxDurationMs: 10_000 } });
print({ id: 'ready', clientAddress });

const commands: Record<string, (args: readonly number[], flags: readonly string[]) => Promise<unknown>> = {
  'natpmp-external': () => natpmp.externalAddress(),
  'natpmp-map': ([port, suggested, lifetimeS]) => natpmp.map({ protocol: 'udp', internalPort: port!, suggestedExternalPort: suggested!, lifetimeS: lifetimeS! }),
  'natpmp-delete': ([port]) => natpmp.delete({ protocol: 'udp', internalPort: port! }),
  'pcp-announce': () => pcp.announce(),
  'pcp-map': ([port, suggested, lifetimeS], flags) =>
    pcp.map({ protocol: 'udp', internalPort: port!, suggestedExternalPort: suggested!, lifetimeS: lifetimeS!, preferFailure: flags.includes('prefer-failure') }),
  'pcp-delete': ([port]) => pcp.delete({ protocol: 'udp', internalPort: port! }),
};

for await (const line of createInterface({ input: process.stdin })) {
  const [id, command, ...rest] = line.trim().split(/\s+/);
  if (command === 'exit' || id === undefined) break;
  const run = command === undefined ? undefined : commands[command];
  if (run === undefined) {
    print({ id, error: 'ERR_USAGE', message: `unknown command ${String(command)}` });
    continue;
  }
  try {
    print({ id, ...(await run(rest.filter((a) => /^\d+$/.test(a)).map(Number), rest.filter((a) => !/^\d+$/.test(a))) as object) });
  } catch (err) {
    print({ id, error: isNatkitError(err) ? err.code : 'ERR_UNKNOWN', message: err instanceof Error ? err.message : String(err) });
  }
}
await Promise.all([natpmp.close(), pcp.close(), ...echoes.map((s) => s.close())]);
