// NAT-PMP (RFC 6886) and PCP (RFC 6887) in the real lab: Debian's miniupnpd (nftables
// backend) on a NAT router, natkit's clients on a LAN host behind it. Each protocol maps a
// UDP port; a host on the lab internet then reaches the LAN host through the mapping;
// after the delete (NAT-PMP lifetime 0; PCP lifetime 0 with the same nonce) the same probe
// gets nothing. Also PREFER_FAILURE, and the epoch check across a miniupnpd restart. Needs root: without it every test fails with the reason (CI runs as root).
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';
import { waitForLine, type Child } from '../../bench/lib/children.ts';
import type { Endpoint } from '../../src/net/index.ts';
import { miniupnpdSite, startMiniupnpd, type LabMiniupnpd } from './lib/miniupnpd.ts';
import { udpProbe } from './lib/probes.ts';
import { Lab, type Host, type Router } from './lib/topology.ts';

const BIN = fileURLToPath(new URL('./bin/', import.meta.url));
const NEVER = new AbortController().signal;
/** Internal ports of the LAN host's echo sockets: NAT-PMP, PCP, the PREFER_FAILURE contender. */
const PORTS = { natpmp: 42_001, pcp: 42_002, contender: 42_003 } as const;

let lab: Lab | undefined;
let router: Router;
let client: Host;
let outside: Host;
let stunEndpoint: Endpoint;
let miniupnpd: LabMiniupnpd;
let runner: Child;
let nextId = 0;

const labOf = (): Lab => {
  assert.ok(lab, 'the lab was built');
  return lab;
};

/** Sends a command to the client runner and waits for its JSON answer. */
async function call<T>(command: string, timeoutMs = 20_000): Promise<T & { error?: string; message?: string }> {
  const id = String(++nextId);
  runner.process.stdin?.write(`${id} ${command}\n`);
  return waitForLine(runner, (line) => {
    try {
      const v = JSON.parse(line) as { id?: string };
      return v.id === id ? (v as T & { error?: string; message?: string }) : undefined;
    } catch {
      return undefined;
    }
  }, timeoutMs, NEVER);
}

/** A command that must not fail locally (its result may still be a refusal). */
async function ok<T>(command: string): Promise<T & { ok: boolean; result: string }> {
  const r = await call<T & { ok: boolean; result: string }>(command);
  assert.equal(r.error, undefined, `${command}: ${String(r.error)} ${String(r.message)}\nminiupnpd: ${miniupnpd.child.stderrTail()}`);
  return r;
}

const probe = (to: string, payload: string): Promise<string | null> => udpProbe(labOf(), outside, to, payload);

before(async () => {
  lab = await Lab.create();
  let gateway: string;
  ({ router, client, outside, stun: stunEndpoint, miniupnpd, gateway } = await miniupnpdSite(lab, 'pmp', { natpmp: true }));
  runner = lab.spawn(client.ns, 'portmap-client', process.execPath, [join(BIN, 'portmap-client.ts'), '--gateway', gateway, '--ports', Object.values(PORTS).join(',')]);
  const ready = await waitForLine(runner, (l) => (l.includes('"ready"') ? (JSON.parse(l) as { clientAddress: string }) : undefined), 10_000, NEVER);
  assert.equal(ready.clientAddress, client.address);
});

after(async () => {
  runner?.process.stdin?.end('0 exit\n');
  const names = lab?.namespaceNames ?? [];
  await lab?.close();
  assert.deepEqual(names.filter((n) => existsSync(`/run/netns/${n}`)), [], 'the lab removed every namespace it made');
});

test('NAT-PMP: external address, a mapping the internet can reach, deleted and closed again', async () => {
  const ext = await ok<{ externalAddress: string }>('natpmp-external');
  assert.ok(ext.ok, `external address: ${ext.result}`);
  assert.equal(ext.externalAddress, router.publicAddress);

  const m = await ok<{ externalPort: number; internalPort: number; lifetimeS: number }>(`natpmp-map ${PORTS.natpmp} ${PORTS.natpmp} 600`);
  assert.ok(m.ok, `map: ${m.result}`);
  assert.equal(m.internalPort, PORTS.natpmp);
  assert.ok(m.lifetimeS > 0 && m.lifetimeS <= 600);
  const to = `${router.publicAddress}:${m.externalPort}`;
  assert.equal(await probe(to, 'hello through nat-pmp'), 'echo:hello through nat-pmp', `the outside host reaches ${client.address}:${PORTS.natpmp} via ${to}`);

  const d = await ok<{ externalPort: number; lifetimeS: number }>(`natpmp-delete ${PORTS.natpmp}`);
  assert.ok(d.ok, `delete: ${d.result}`);
  assert.equal(d.lifetimeS, 0);
  assert.equal(await probe(to, 'after delete'), null, 'the port is closed again');
});

test('PCP: ANNOUNCE, MAP with a nonce, reachable, deleted with the same nonce and closed again', async () => {
  const a = await ok('pcp-announce');
  assert.ok(a.ok, `announce: ${a.result}`);

  const m = await ok<{ mapping: { externalAddress: string; externalPort: number; internalPort: number; nonce: string; lifetimeS: number } }>(`pcp-map ${PORTS.pcp} ${PORTS.pcp} 600`);
  assert.ok(m.ok, `map: ${m.result}`);
  assert.equal(m.mapping.externalAddress, router.publicAddress);
  assert.equal(m.mapping.internalPort, PORTS.pcp);
  assert.match(m.mapping.nonce, /^[0-9a-f]{24}$/);
  const to = `${router.publicAddress}:${m.mapping.externalPort}`;
  assert.equal(await probe(to, 'hello through pcp'), 'echo:hello through pcp', `the outside host reaches ${client.address}:${PORTS.pcp} via ${to}`);

  const d = await ok<{ mapping: { nonce: string; lifetimeS: number } }>(`pcp-delete ${PORTS.pcp}`);
  assert.ok(d.ok, `delete: ${d.result}`);
  assert.equal(d.mapping.nonce, m.mapping.nonce, 'RFC 6887 §15: the delete repeats the nonce');
  assert.equal(d.mapping.lifetimeS, 0);
  assert.equal(await probe(to, 'after delete'), null, 'the port is closed again');
});

test('PCP PREFER_FAILURE: a port the gateway will not give is CANNOT_PROVIDE_EXTERNAL, not another port', async () => {
  // miniupnpd's permission rules (lib/miniupnpd.ts) allow external ports 1024–65535 only.
  const r = await ok<{ resultCode: number }>(`pcp-map ${PORTS.pcp} 999 600 prefer-failure`);
  assert.equal(r.ok, false, `no mapping on another port: ${JSON.stringify(r)}`);
  assert.equal(r.result, 'CANNOT_PROVIDE_EXTERNAL');
});

test('PCP PREFER_FAILURE against a port already mapped: never that port (miniupnpd 2.3.1 quirk: it moves on)', async () => {
  const held = await ok<{ externalPort: number }>(`natpmp-map ${PORTS.contender} ${PORTS.contender} 600`);
  assert.ok(held.ok, `contender: ${held.result}`);
  try {
    const r = await ok<{ mapping?: { externalPort: number } }>(`pcp-map ${PORTS.pcp} ${held.externalPort} 600 prefer-failure`);
    // RFC 6887 §13.2 asks for CANNOT_PROVIDE_EXTERNAL. miniupnpd 2.3.1 (Debian bookworm)
    // checks PREFER_FAILURE on its permission and rule paths but not on its port-in-use
    // path (CHECK_PORTINUSE), where it logs "port … already in use" and maps the next
    // port. Either way the taken port is not given twice, and natkit reports what came.
    if (r.ok) {
      assert.notEqual(r.mapping?.externalPort, held.externalPort);
      assert.ok((await ok(`pcp-delete ${PORTS.pcp}`)).ok);
    } else {
      assert.equal(r.result, 'CANNOT_PROVIDE_EXTERNAL');
    }
  } finally {
    assert.ok((await ok(`natpmp-delete ${PORTS.contender}`)).ok);
  }
});

test('epoch: a restarted miniupnpd is reported as a gateway reset (RFC 6886 §3.6, RFC 6887 §8.5)', async () => {
  const before1 = await ok<{ gatewayReset: boolean }>('natpmp-external');
  const before2 = await ok<{ gatewayReset: boolean }>('pcp-announce');
  assert.deepEqual([before1.gatewayReset, before2.gatewayReset], [false, false]);
  await new Promise((resolve) => setTimeout(resolve, 3000)); // let both epochs grow past the slack
  await miniupnpd.stop();
  miniupnpd = await startMiniupnpd(labOf(), router, { stun: stunEndpoint, natpmp: true });
  const after1 = await ok<{ gatewayReset: boolean; epochS: number }>('natpmp-external');
  const after2 = await ok<{ gatewayReset: boolean; epochS: number }>('pcp-announce');
  assert.equal(after1.gatewayReset, true, `NAT-PMP epoch ${after1.epochS} after the restart`);
  assert.equal(after2.gatewayReset, true, `PCP epoch ${after2.epochS} after the restart`);
});
