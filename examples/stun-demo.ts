// `npm run demo`: starts a STUN server on two loopback addresses × two ports (the
// RFC 5780 layout), then queries it the ways NAT discovery does and prints what each
// answer says. Everything stays on 127.0.0.1 and 127.0.0.2.
import { StunClient, StunServer, formatEndpoint, nodeEnv, roleName, type BindingOptions, type StunTransport } from '../src/index.ts';

const env = nodeEnv();
await using server = await StunServer.create({ env, addresses: ['127.0.0.1', '127.0.0.2'], ports: [0, 0] });
console.log('STUN server listening on');
for (const e of server.endpoints) console.log(`  ${e.transport.padEnd(4)}${formatEndpoint(e.local).padEnd(18)} ${roleName(e.role)}`);

const primary = (transport: StunTransport) => {
  const found = server.endpoints.find((e) => e.transport === transport && roleName(e.role) === 'A1:P1');
  if (found === undefined) throw new Error(`no ${transport} listener`);
  return found.local;
};

const queries: { title: string; transport: StunTransport; options: BindingOptions }[] = [
  { title: 'Binding over UDP (RFC 8489)', transport: 'udp', options: {} },
  { title: 'CHANGE-REQUEST: other address and port (RFC 5780 §7.2)', transport: 'udp', options: { changeRequest: { changeIp: true, changePort: true } } },
  { title: 'CHANGE-REQUEST: other port only', transport: 'udp', options: { changeRequest: { changeIp: false, changePort: true } } },
  { title: 'classic cookie-less request (RFC 3489)', transport: 'udp', options: { legacy: true } },
  { title: 'Binding over TCP (RFC 8489 §6.2.2)', transport: 'tcp', options: {} },
];

for (const q of queries) {
  await using client = await StunClient.create({ env, server: primary(q.transport), transport: q.transport });
  const r = await client.binding(q.options);
  console.log(`\n${q.title}`);
  console.log(`  sent from     ${formatEndpoint(client.local)} to ${formatEndpoint(client.server)}`);
  if (!r.ok) {
    console.log(`  error         ${r.error.code} ${r.error.reason}`);
    continue;
  }
  console.log(`  mapped        ${formatEndpoint(r.mapped)} (${r.isXorMapped ? 'XOR-MAPPED-ADDRESS' : 'MAPPED-ADDRESS'})`);
  console.log(`  answered from ${formatEndpoint(r.from)}`);
  if (r.otherAddress) console.log(`  other address ${formatEndpoint(r.otherAddress)}`);
  console.log(`  round trip    ${r.rttMs.toFixed(2)} ms`);
}

const s = server.stats;
console.log(`\nserver counters: ${s.received} received, ${s.success} answered, ${s.changed} from a changed address or port, ${s.legacy} RFC 3489`);
console.log('Run your own: npm run natkit -- stun-server --help');
