// `natkit map` and `natkit check` in the real lab: Debian's miniupnpd (UPnP IGD, NAT-PMP
// and PCP) on a NAT router, the natkit binary in a LAN host behind it. For each protocol:
// `natkit map add` → a host on the lab internet reaches the LAN host through the mapping
// → `natkit map remove` in a later process → closed again. `--keep` removes its mapping
// on SIGTERM. A UPnP mapping left by an earlier natkit (no state entry) is found by its
// description and removed. `natkit check` reports all three protocols with miniupnpd's
// external address. Needs root: without it every test fails with the reason.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';
import { waitForLine, type Child } from '../../bench/lib/children.ts';
import type { Endpoint } from '../../src/net/index.ts';
import { miniupnpdSite, type LabMiniupnpd } from './lib/miniupnpd.ts';
import { udpProbe } from './lib/probes.ts';
import { Lab, type Host, type Router } from './lib/topology.ts';

const CLI = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
const BIN = fileURLToPath(new URL('./bin/', import.meta.url));
const NEVER = new AbortController().signal;
/** Internal ports with an echo socket on the LAN host. */
const PORTS = { upnp: 42_101, natpmp: 42_102, pcp: 42_103, keep: 42_104, stale: 42_105 } as const;

let lab: Lab | undefined;
let router: Router;
let client: Host;
let outside: Host;
let stun: Endpoint;
let miniupnpd: LabMiniupnpd;
let gateway: string;
let echo: Child;
let stateA: string;
let stateB: string;
/** Wall time of `natkit map add` per protocol, for the report. */
const timings: Record<string, number> = {};

const labOf = (): Lab => {
  assert.ok(lab, 'the lab was built');
  return lab;
};

interface Mapped {
  readonly event: 'mapped';
  readonly mapping: { readonly via: string; readonly externalAddress: string; readonly externalPort: number; readonly internalPort: number };
  readonly tookMs: number;
}

/** Runs the natkit binary in the LAN host; a non-zero exit rejects with its stderr. */
function natkit(args: readonly string[], timeoutMs = 20_000): Promise<string> {
  return client.ns.exec(process.execPath, [CLI, ...args], { timeoutMs });
}

async function mapAdd(port: number, via: string, state: string): Promise<Mapped> {
  const started = performance.now();
  const out = await natkit(['map', 'add', String(port), '--via', via, '--lease', '600', '--state', state, '--json']);
  timings[via] = Math.round(performance.now() - started);
  return JSON.parse(out) as Mapped;
}

const probe = (to: string, payload: string): Promise<string | null> => udpProbe(labOf(), outside, to, payload);

before(async () => {
  lab = await Lab.create();
  ({ router, client, outside, stun, miniupnpd, gateway } = await miniupnpdSite(lab, 'map', { natpmp: true }));
  // portmap-client.ts keeps echo sockets on --ports ("echo:" + what came); its own clients stay idle.
  echo = lab.spawn(client.ns, 'echo', process.execPath, [join(BIN, 'portmap-client.ts'), '--gateway', gateway, '--ports', Object.values(PORTS).join(',')]);
  await waitForLine(echo, (l) => (l.includes('"ready"') ? true : undefined), 10_000, NEVER);
  stateA = join(lab.tempDir(), 'state-a');
  stateB = join(lab.tempDir(), 'state-b');
});

after(async () => {
  echo?.process.stdin?.end('0 exit\n');
  process.stderr.write(`natkit map add wall time per protocol (ms): ${JSON.stringify(timings)}\n`);
  const names = lab?.namespaceNames ?? [];
  await lab?.close();
  assert.deepEqual(names.filter((n) => existsSync(`/run/netns/${n}`)), [], 'the lab removed every namespace it made');
});

for (const via of ['upnp', 'natpmp', 'pcp'] as const) {
  test(`natkit map add --via ${via}: reachable from the internet; natkit map remove (a later process): closed again`, async () => {
    const port = PORTS[via];
    const m = await mapAdd(port, via, stateA);
    assert.deepEqual([m.event, m.mapping.via, m.mapping.internalPort, m.mapping.externalAddress], ['mapped', via, port, router.publicAddress], miniupnpd.child.stderrTail());
    const to = `${router.publicAddress}:${m.mapping.externalPort}`;
    assert.equal(await probe(to, `hello via ${via}`), `echo:hello via ${via}`, `the outside host reaches ${client.address}:${port} via ${to}`);
    const removed = await natkit(['map', 'remove', String(port), '--state', stateA]);
    assert.match(removed, new RegExp(`removed: udp \\S+:${m.mapping.externalPort} -> ${client.address}:${port} via ${via}`));
    assert.equal(await probe(to, 'after remove'), null, 'the port is closed again');
  });
}

test('natkit map add --keep: renewing until SIGTERM, then the mapping is removed', async () => {
  const child = labOf().spawn(client.ns, 'map-keep', process.execPath, [CLI, 'map', 'add', String(PORTS.keep), '--keep', '--via', 'pcp', '--state', stateA, '--json']);
  const m = await waitForLine(child, (l) => (l.includes('"mapped"') ? (JSON.parse(l) as Mapped) : undefined), 20_000, NEVER);
  const to = `${router.publicAddress}:${m.mapping.externalPort}`;
  assert.equal(await probe(to, 'kept'), 'echo:kept');
  await labOf().stop(child, 10_000);
  assert.equal(await child.exited, 0, child.stderrTail());
  assert.ok(child.lines.some((l) => l.includes('"removed"')), child.lines.join('\n'));
  assert.equal(await probe(to, 'after SIGTERM'), null, 'removed on SIGTERM');
});

test('a UPnP mapping an earlier natkit left (no state entry here) is found by its description and removed', async () => {
  const m = await mapAdd(PORTS.stale, 'upnp', stateA);
  const to = `${router.publicAddress}:${m.mapping.externalPort}`;
  const listed = JSON.parse(await natkit(['map', 'list', '--state', stateB, '--json'])) as { mappings: { externalPort: number; ours: boolean; description: string }[]; state: unknown[] };
  const entry = listed.mappings.find((e) => e.externalPort === m.mapping.externalPort);
  assert.ok(entry?.ours, `listed as natkit's: ${JSON.stringify(listed)}`);
  assert.match(entry.description, /^natkit [0-9a-f]{8}$/);
  assert.deepEqual(listed.state, [], 'state B knows nothing of it');
  const removed = await natkit(['map', 'remove', String(PORTS.stale), '--state', stateB]);
  assert.match(removed, /removed: udp/);
  assert.equal(await probe(to, 'stale'), null, 'the stale mapping is gone');
});

test('natkit check reports UPnP, NAT-PMP and PCP with miniupnpd\'s external address', async () => {
  const started = performance.now();
  const report = JSON.parse(await natkit(['check', '--server', `${stun.address}:${stun.port}`, '--json'])) as {
    udp: boolean; portMapping: { available: string[]; pcp: { externalAddress?: string }; natpmp: { externalAddress?: string }; upnp: { externalAddress?: string } };
  };
  const tookMs = Math.round(performance.now() - started);
  assert.equal(report.udp, true);
  assert.deepEqual(report.portMapping.available, ['pcp', 'natpmp', 'upnp'], JSON.stringify(report.portMapping));
  for (const p of ['pcp', 'natpmp', 'upnp'] as const) assert.equal(report.portMapping[p].externalAddress, router.publicAddress, p);
  process.stderr.write(`natkit check with port mapping: ${tookMs} ms\n`);
});
