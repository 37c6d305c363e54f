// The real NAT lab (DESIGN.md §3.3): kernel NATs built with nftables in network
// namespaces, natkit's STUN server on a public host with two addresses × two ports, and a
// natkit STUN client behind each router. For every router preset, NAT behind NAT (CGNAT)
// and hairpinning, what the client measures must be the router's configured truth
// (nat-rules.ts NAT_TRUTH, RFC 4787 terms). coturn answers too, as a reference server.
// Needs root: without it every test fails with the reason (CI runs as root).
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import type { Endpoint } from '../../src/net/index.ts';
import { chainTruth, NAT_TRUTH, type NatPreset, type NatTruth } from './lib/nat-rules.ts';
import { startCoturn, startStunServer, stunQuery, type LabStunServer, type QueryReport, type QueryStep, type StepResult } from './lib/probes.ts';
import { Lab, type Host, type Site } from './lib/topology.ts';
import { noLeaks } from '../helpers/leaks.ts';

const PRESETS = Object.keys(NAT_TRUTH) as NatPreset[];

/** NAT behind NAT: a CGN router, then a home router behind it. */
const CHAINS: readonly (readonly [NatPreset, NatPreset])[] = [
  ['port-restricted-cone', 'port-restricted-cone'],
  ['port-restricted-cone', 'symmetric'],
  ['full-cone', 'full-cone'],
];

let lab: Lab | undefined;
let stun: LabStunServer;
let server: Host;
const sites = new Map<string, Site>();

const labOf = (): Lab => {
  assert.ok(lab, 'the lab was built');
  return lab;
};
const site = (name: string): Site => {
  const s = sites.get(name);
  assert.ok(s, `site ${name} was built`);
  return s;
};

before(async () => {
  lab = await Lab.create();
  server = await lab.publicHost('server', { addresses: 2 });
  for (const preset of PRESETS) {
    const router = await lab.router(preset, { preset });
    sites.set(preset, { routers: [router], client: await lab.client(`${preset}-c`, router) });
  }
  for (const [i, [outer, inner]] of CHAINS.entries()) {
    const cgn = await lab.router(`cgn${i}`, { preset: outer });
    const home = await lab.router(`cgn${i}-home`, { preset: inner, behind: cgn });
    sites.set(`${outer}+${inner}`, { routers: [cgn, home], client: await lab.client(`cgn${i}-c`, home) });
  }
  const hairpin = await lab.router('hairpin', { preset: 'port-restricted-cone', hairpinning: true });
  sites.set('hairpin', { routers: [hairpin], client: await lab.client('hairpin-c', hairpin) });
  const moved = await lab.router('reload', { preset: 'port-restricted-cone' });
  sites.set('reload', { routers: [moved], client: await lab.client('reload-c', moved) });
  stun = await startStunServer(lab, server);
});

after(async () => {
  const names = lab?.namespaceNames ?? [];
  await lab?.close();
  assert.deepEqual(names.filter((n) => existsSync(`/run/netns/${n}`)), [], 'the lab removed every namespace it made');
});

/** The server's endpoints by RFC 5780 role: A1:P1, A1:P2, A2:P1, A2:P2. */
const role = (i: 0 | 1 | 2 | 3): Endpoint => {
  const e = stun.endpoints[i];
  assert.ok(e, `server role ${i}`);
  return e;
};

/**
 * The RFC 5780 §4.3/§4.4 measurements, on one socket, in an order that keeps them apart:
 * the filtering tests come before anything is sent to A2 (an address-dependent filter
 * would otherwise let A2's answers in).
 */
const behaviourSteps = (): QueryStep[] => [
  { kind: 'binding', to: role(0) }, // 0: mapping toward A1:P1
  { kind: 'binding', to: role(0), change: { changeIp: true, changePort: true } }, // 1: answer from A2:P2
  { kind: 'binding', to: role(0), change: { changeIp: false, changePort: true } }, // 2: answer from A1:P2
  { kind: 'binding', to: role(2) }, // 3: mapping toward A2:P1
  { kind: 'binding', to: role(3) }, // 4: mapping toward A2:P2
  { kind: 'hairpin' }, // 5: to our own mapping
];

type Binding = Extract<StepResult, { kind: 'binding' }>;
type Answered = Extract<Binding, { ok: true }>;

function binding(report: QueryReport, i: number): Binding {
  const s = report.steps[i];
  assert.ok(s?.kind === 'binding', `step ${i} is a binding`);
  return s;
}

function answered(report: QueryReport, i: number): Answered {
  const s = binding(report, i);
  assert.ok(s.ok, `step ${i} to ${s.to.address}:${s.to.port} answered; got ${s.ok ? '' : `${s.error}: ${s.message}`}`);
  return s;
}

function timedOut(report: QueryReport, i: number, why: string): void {
  const s = binding(report, i);
  assert.ok(!s.ok, `step ${i} must go unanswered (${why}); an answer came from ${s.ok ? `${s.from.address}:${s.from.port}` : ''}`);
  assert.equal(s.error, 'ERR_TIMEOUT', `step ${i} failed by timing out (${why}), not ${s.error}: ${s.message}`);
}

/** Asserts that what the client measured is `truth`, seen from the internet as `publicAddress`. */
function assertBehaviour(report: QueryReport, truth: NatTruth, publicAddress: string): void {
  if (!truth.udp) {
    for (const i of [0, 1, 2, 3, 4]) timedOut(report, i, 'UDP is blocked');
    return;
  }
  const [m0, m3, m4] = [0, 3, 4].map((i) => answered(report, i).mapped) as [Endpoint, Endpoint, Endpoint];
  for (const m of [m0, m3, m4]) assert.equal(m.address, publicAddress, 'the mapped address is the outermost router\'s public address');
  if (!truth.natted) assert.deepEqual(m0, report.local, 'without NAT the mapped address is the local one');
  if (truth.ports === 'preserving') assert.equal(m0.port, report.local.port, 'the external port is the local port');
  if (truth.ports === 'sequential') assert.deepEqual([m3.port, m4.port], [m0.port + 1, m0.port + 2], 'each new mapping takes the next port');

  switch (truth.mapping) {
    case undefined:
    case 'endpoint-independent':
      assert.deepEqual([m3, m4], [m0, m0], 'one mapping toward every server address and port');
      break;
    case 'address-dependent':
      assert.notEqual(m3.port, m0.port, 'a new mapping toward the other address');
      assert.deepEqual(m4, m3, 'the same mapping toward another port of the same address');
      break;
    case 'address-and-port-dependent':
      assert.equal(new Set([m0.port, m3.port, m4.port]).size, 3, `a new mapping per destination: ports ${m0.port}, ${m3.port}, ${m4.port}`);
      break;
  }

  // RFC 5780 §4.4: test II (other address and port), test III (other port only).
  const passesOtherAddress = truth.filtering === undefined || truth.filtering === 'endpoint-independent';
  const passesOtherPort = passesOtherAddress || truth.filtering === 'address-dependent';
  if (passesOtherAddress) assert.deepEqual(answered(report, 1).from, role(3), 'CHANGE-REQUEST ip+port answered from A2:P2');
  else timedOut(report, 1, `${truth.filtering} filtering drops A2:P2`);
  if (passesOtherPort) assert.deepEqual(answered(report, 2).from, role(1), 'CHANGE-REQUEST port answered from A1:P2');
  else timedOut(report, 2, `${truth.filtering} filtering drops A1:P2`);
}

function hairpinOf(report: QueryReport): Extract<StepResult, { kind: 'hairpin' }> {
  const s = report.steps.at(-1);
  assert.ok(s?.kind === 'hairpin', 'the last step is the hairpin probe');
  return s;
}

describe('one router: the client measures the behaviour the router was given', () => {
  for (const preset of PRESETS) {
    const truth = NAT_TRUTH[preset];
    test(`${preset}: mapping ${truth.mapping ?? 'none'}, filtering ${truth.filtering ?? 'none'}${truth.udp ? '' : ', UDP blocked'}`, noLeaks(async () => {
      const { routers, client } = site(preset);
      const report = await stunQuery(labOf(), client, behaviourSteps());
      assertBehaviour(report, truth, truth.natted ? routers[0]!.publicAddress : client.address);
      // Stock Linux NAT does not hairpin: the datagram to our own mapping never comes back.
      if (truth.natted && truth.udp) assert.equal(hairpinOf(report).received, false, 'no hairpinning');
    }));
  }
});

describe('NAT behind NAT (CGNAT): the CGN\'s address, and the stricter behaviour of the two', () => {
  for (const [outer, inner] of CHAINS) {
    const truth = chainTruth([outer, inner]);
    test(`CGN ${outer}, home ${inner}: mapping ${truth.mapping ?? 'none'}, filtering ${truth.filtering ?? 'none'}`, noLeaks(async () => {
      const { routers: [cgn, home], client } = site(`${outer}+${inner}`);
      assert.ok(cgn && home);
      assert.equal(home.publicAddress, cgn.address);
      assert.match(home.address, /^100\.64\./, 'the home router\'s WAN is in the CGN\'s access LAN');
      const report = await stunQuery(labOf(), client, behaviourSteps());
      assertBehaviour(report, truth, cgn.address);
    }));
  }
});

test('hairpinning on (RFC 4787 REQ-9): a datagram to our own mapping comes back from the mapping', noLeaks(async () => {
  const { routers: [router], client } = site('hairpin');
  const report = await stunQuery(labOf(), client, behaviourSteps());
  assertBehaviour(report, NAT_TRUTH['port-restricted-cone'], router!.publicAddress);
  const h = hairpinOf(report);
  assert.equal(h.received, true, 'the hairpinned datagram arrived');
  assert.deepEqual(h.from, answered(report, 0).mapped, 'it arrives from the external address, not the LAN one (REQ-9: translated source)');
}));

test('a router reloaded with another preset behaves as the new one; old mappings are flushed', noLeaks(async () => {
  const l = labOf();
  const { routers: [router], client } = site('reload');
  // One local port throughout, so a mapping that survived a reload would show.
  const port = { port: 40_000 };
  assertBehaviour(await stunQuery(l, client, behaviourSteps(), port), NAT_TRUTH['port-restricted-cone'], router!.publicAddress);
  const full = await l.loadRules(router!, { preset: 'full-cone' });
  assertBehaviour(await stunQuery(l, client, behaviourSteps(), port), NAT_TRUTH['full-cone'], full.publicAddress);
  const symmetric = await l.loadRules(full, { preset: 'symmetric' });
  const report = await stunQuery(l, client, behaviourSteps(), port);
  assertBehaviour(report, NAT_TRUTH.symmetric, symmetric.publicAddress);
  assert.notEqual(answered(report, 0).mapped.port, port.port, 'the port-preserving mapping toward A1:P1 did not survive the reload');
}));

test('coturn in the server host, asked from behind NATs: the same mapping as natkit\'s server sees', noLeaks(async () => {
  const l = labOf();
  const coturn = await startCoturn(l, server);
  try {
    const steps: QueryStep[] = [
      { kind: 'binding', to: role(0) },
      { kind: 'binding', to: coturn.primary },
      { kind: 'binding', to: coturn.primary, change: { changeIp: true, changePort: true } },
    ];
    const full = site('full-cone');
    const a = await stunQuery(l, full.client, steps);
    const ours = answered(a, 0);
    const theirs = answered(a, 1);
    assert.match(theirs.software ?? '', /^Coturn/, 'coturn answered');
    assert.deepEqual(theirs.mapped, ours.mapped, 'endpoint-independent mapping: coturn and natkit see one mapping');
    assert.equal(theirs.mapped.address, full.routers[0]!.publicAddress);
    assert.deepEqual(theirs.otherAddress, coturn.alternate, 'coturn offers its RFC 5780 alternate address');
    assert.deepEqual(answered(a, 2).from, coturn.alternate, 'a full cone lets coturn\'s changed answer in');

    const restricted = site('port-restricted-cone');
    const b = await stunQuery(l, restricted.client, steps);
    assert.deepEqual(answered(b, 1).mapped, answered(b, 0).mapped);
    assert.equal(answered(b, 1).mapped.address, restricted.routers[0]!.publicAddress);
    timedOut(b, 2, 'a port-restricted cone drops coturn\'s changed answer');

    const cgn = site('port-restricted-cone+port-restricted-cone');
    const c = await stunQuery(l, cgn.client, steps.slice(0, 2));
    assert.equal(answered(c, 1).mapped.address, cgn.routers[0]!.address, 'behind CGNAT coturn sees the CGN\'s address');
    assert.deepEqual(answered(c, 1).mapped, answered(c, 0).mapped);
  } finally {
    await coturn.stop();
  }
}));
