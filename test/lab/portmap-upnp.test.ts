// UPnP IGD in the real lab: Debian's miniupnpd (nftables backend) on a NAT router, natkit's
// UPnP client on a LAN host behind it. The client discovers the gateway by SSDP (unicast
// and multicast), maps a UDP port; a host on the lab internet then reaches the LAN host
// through the mapping; after DeletePortMapping the same probe gets nothing.
// Needs root: without it every test fails with the reason (CI runs as root).
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';
import { waitForLine, type Child } from '../../bench/lib/children.ts';
import { miniupnpdSite, type LabMiniupnpd } from './lib/miniupnpd.ts';
import { Lab, type Host, type Router } from './lib/topology.ts';

const BIN = fileURLToPath(new URL('./bin/', import.meta.url));
const NEVER = new AbortController().signal;
const INTERNAL_PORT = 41641;

let lab: Lab | undefined;
let router: Router;
let client: Host;
let outside: Host;
let miniupnpd: LabMiniupnpd;
let upnp: Child;

const labOf = (): Lab => {
  assert.ok(lab, 'the lab was built');
  return lab;
};

/** The next JSON line of the client runner whose step is `step`. */
async function step<T extends Record<string, unknown>>(name: string, timeoutMs = 15_000): Promise<T> {
  const got = await waitForLine(upnp, (line) => {
    try {
      const v = JSON.parse(line) as Record<string, unknown>;
      return v.step === name || v.step === 'setup' ? v : undefined;
    } catch {
      return undefined;
    }
  }, timeoutMs, NEVER);
  assert.equal(got.error, undefined, `${name}: ${String(got.error)} ${String(got.message)}\nminiupnpd: ${miniupnpd.child.stderrTail()}`);
  upnp.lines.splice(0, upnp.lines.indexOf(upnp.lines.find((l) => l.includes(`"step":"${name}"`))!) + 1);
  return got as T;
}

/** Sends a datagram from a fresh port of the outside host to `to`; the echo's text, or null. */
async function probe(to: string, payload: string): Promise<string | null> {
  const child = labOf().spawn(outside.ns, 'udp-probe', process.execPath, [join(BIN, 'udp-probe.ts'), '--to', to, '--payload', payload]);
  const status = await child.exited;
  assert.equal(status, 0, `udp-probe: ${child.stderrTail()}`);
  return (JSON.parse(child.lines.find((l) => l.startsWith('{')) ?? '{}') as { reply: string | null }).reply;
}

before(async () => {
  lab = await Lab.create();
  let gateway: string;
  ({ router, client, outside, miniupnpd, gateway } = await miniupnpdSite(lab, 'upnp'));
  upnp = lab.spawn(client.ns, 'upnp-client', process.execPath, [join(BIN, 'upnp-client.ts'), '--gateway', gateway, '--port', String(INTERNAL_PORT)]);
});

after(async () => {
  upnp?.process.stdin?.end('exit\n');
  const names = lab?.namespaceNames ?? [];
  await lab?.close();
  assert.deepEqual(names.filter((n) => existsSync(`/run/netns/${n}`)), [], 'the lab removed every namespace it made');
});

test('miniupnpd: discovered by unicast and by multicast M-SEARCH, IGD:2 description', async () => {
  const d = await step<{ location: string; serviceType: string; localAddress: string; server: string }>('discover');
  assert.equal(d.location, miniupnpd.location);
  assert.equal(d.serviceType, 'urn:schemas-upnp-org:service:WANIPConnection:2');
  assert.equal(d.localAddress, client.address);
  assert.match(d.server, /MiniUPnPd\/2\.3/);
  const m = await step<{ location: string; from: string }>('discover-multicast');
  assert.equal(m.location, miniupnpd.location);
  const ext = await step<{ address: string }>('external-ip');
  assert.equal(ext.address, router.publicAddress);
});

test('a mapped UDP port lets a host on the internet reach the LAN host; deleting it closes it', async () => {
  const mapped = await step<{ externalPort: number; internalClient: string; action: string; leaseS: number }>('map');
  assert.equal(mapped.internalClient, client.address);
  assert.equal(mapped.action, 'AddAnyPortMapping');
  const to = `${router.publicAddress}:${mapped.externalPort}`;

  assert.equal(await probe(to, 'hello through upnp'), 'echo:hello through upnp', `the outside host reaches ${client.address}:${INTERNAL_PORT} via ${to}`);

  upnp.process.stdin?.write('list\n');
  const list = await step<{ entries: { externalPort: number; internalClient: string; internalPort: number; description: string }[] }>('list');
  assert.ok(list.entries.some((e) => e.externalPort === mapped.externalPort && e.internalClient === client.address && e.internalPort === INTERNAL_PORT && e.description === 'natkit-lab'),
    `miniupnpd lists the mapping: ${JSON.stringify(list.entries)}`);

  upnp.process.stdin?.write(`delete ${mapped.externalPort}\n`);
  const deleted = await step<{ entry: unknown }>('delete');
  assert.equal(deleted.entry, null, 'GetSpecificPortMappingEntry finds nothing after DeletePortMapping');
  assert.equal(await probe(to, 'after delete'), null, 'the port is closed again');
});
