// natkit's NAT discovery (checkNat) in the simulated world, for every classic preset and
// the variants the namespace lab runs (test/lab/check.test.ts): the report must state the
// router's configured truth. The same table as the lab, in milliseconds of real time.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkNat, type NatReport } from '../../src/nat/index.ts';
import type { Endpoint } from '../../src/net/index.ts';
import { NAT_PRESETS, type NatOptions, type SimRouter, type World } from '../../src/net/sim/index.ts';
import { StunServer } from '../../src/stun/index.ts';
import { simTest } from '../helpers/sim.ts';

const A1 = '198.18.0.10';
const A2 = '198.18.0.11';
const V6 = '2001:db8::10';
const EI = 'endpoint-independent';
const AD = 'address-dependent';
const APD = 'address-and-port-dependent';

type Expected = Pick<NatReport, 'classic' | 'natted' | 'mapping' | 'filtering' | 'hairpinning' | 'portAllocation' | 'mappingVariesByDestination'> & {
  /** Whose address the server sees: the client's own (no NAT) or the outermost router's. */
  readonly seen: 'client' | 'router' | undefined;
};

interface Row {
  readonly name: string;
  /** Routers, outermost first. */
  readonly routers: readonly NatOptions[];
  readonly hairpinning?: boolean;
  readonly expect: Expected;
}

const OPEN = { natted: false, hairpinning: true, mapping: EI, portAllocation: { kind: 'preserving' }, mappingVariesByDestination: false, seen: 'client' } as const;
const CONE = { natted: true, hairpinning: false, mapping: EI, portAllocation: { kind: 'preserving' }, mappingVariesByDestination: false, seen: 'router' } as const;
const SYMMETRIC = { classic: 'symmetric', natted: true, hairpinning: false, filtering: APD, mappingVariesByDestination: true, seen: 'router' } as const;
const SEQUENTIAL: NatOptions = { ...NAT_PRESETS.symmetric, portAllocation: { kind: 'sequential', step: 1 } };

const ROWS: readonly Row[] = [
  { name: 'open-internet', routers: [NAT_PRESETS['open-internet']], expect: { ...OPEN, classic: 'open-internet', filtering: EI } },
  { name: 'symmetric-udp-firewall', routers: [NAT_PRESETS['symmetric-udp-firewall']], expect: { ...OPEN, classic: 'symmetric-udp-firewall', filtering: APD } },
  { name: 'full-cone', routers: [NAT_PRESETS['full-cone']], expect: { ...CONE, classic: 'full-cone', filtering: EI } },
  { name: 'restricted-cone', routers: [NAT_PRESETS['restricted-cone']], expect: { ...CONE, classic: 'restricted-cone', filtering: AD } },
  { name: 'restricted-cone', routers: [NAT_PRESETS['restricted-cone']], hairpinning: true, expect: { ...CONE, classic: 'restricted-cone', filtering: AD, hairpinning: true } },
  { name: 'port-restricted-cone', routers: [NAT_PRESETS['port-restricted-cone']], expect: { ...CONE, classic: 'port-restricted-cone', filtering: APD } },
  { name: 'port-restricted-cone', routers: [NAT_PRESETS['port-restricted-cone']], hairpinning: true, expect: { ...CONE, classic: 'port-restricted-cone', filtering: APD, hairpinning: true } },
  {
    name: 'address-dependent mapping, random ports',
    routers: [{ ...NAT_PRESETS.symmetric, mapping: AD }],
    expect: { ...SYMMETRIC, mapping: AD, portAllocation: { kind: 'random' } },
  },
  { name: 'symmetric, random ports', routers: [NAT_PRESETS.symmetric], expect: { ...SYMMETRIC, mapping: APD, portAllocation: { kind: 'random' } } },
  { name: 'symmetric, random ports', routers: [NAT_PRESETS.symmetric], hairpinning: true, expect: { ...SYMMETRIC, mapping: APD, portAllocation: { kind: 'random' }, hairpinning: true } },
  { name: 'symmetric, sequential ports', routers: [SEQUENTIAL], expect: { ...SYMMETRIC, mapping: APD, portAllocation: { kind: 'sequential', step: 1 } } },
  {
    name: 'udp-blocked',
    routers: [NAT_PRESETS['udp-blocked']],
    expect: {
      classic: 'udp-blocked', natted: undefined, mapping: 'unknown', filtering: 'unknown', hairpinning: undefined,
      portAllocation: { kind: 'unknown' }, mappingVariesByDestination: undefined, seen: undefined,
    },
  },
  // NAT behind NAT: the CGN's filtering through a full-cone home router…
  { name: 'CGN restricted-cone, home full-cone', routers: [NAT_PRESETS['restricted-cone'], NAT_PRESETS['full-cone']], expect: { ...CONE, classic: 'restricted-cone', filtering: AD } },
  // …and the home router's mapping and sequential ports through a port-preserving CGN.
  { name: 'CGN full-cone, home symmetric sequential', routers: [NAT_PRESETS['full-cone'], SEQUENTIAL], expect: { ...SYMMETRIC, mapping: APD, portAllocation: { kind: 'sequential', step: 1 } } },
];

/** Where `server` listens on its primary address and port. */
function primary(server: StunServer): Endpoint {
  const found = server.endpoints[0];
  assert.ok(found !== undefined);
  return found.local;
}

/** natkit's STUN server on two addresses × two ports. */
async function startServer(world: World, addresses: readonly string[]): Promise<StunServer> {
  const host = world.addHost({ name: `stun-${addresses.length}`, addresses });
  return world.run(StunServer.create({ env: host.env, addresses, ports: addresses.length === 2 ? [3478, 3479] : [3478], tcp: false, rateLimit: false }));
}

for (const row of ROWS) {
  test(`checkNat behind ${row.name}${row.hairpinning === true ? ', hairpinning on' : ''}: ${row.expect.classic}`, simTest({}, async (world) => {
    await using stun = await startServer(world, [A1, A2]);
    let outer: SimRouter | undefined;
    let site: World | SimRouter = world;
    for (const nat of row.routers) {
      site = site.addRouter({ nat: { ...nat, hairpinning: row.hairpinning ?? false } });
      outer ??= site;
    }
    const client = site.addHost({ name: 'client' });
    const report = await world.run(checkNat({ env: client.env, server: primary(stun) }));
    const { seen, ...fields } = row.expect;
    assert.deepEqual({
      classic: report.classic, natted: report.natted, mapping: report.mapping, filtering: report.filtering, hairpinning: report.hairpinning,
      portAllocation: report.portAllocation, mappingVariesByDestination: report.mappingVariesByDestination,
    }, fields);
    const want = seen === undefined ? undefined : seen === 'client' ? client.address() : outer?.wanAddress();
    assert.equal(report.publicIPv4, want);
    assert.deepEqual(report.notMeasured.map((n) => n.what), seen === undefined ? ['nat'] : []);
  }));
}

test('checkNat learns the public IPv6 address: behind a NAT router, IPv6 is untranslated', simTest({}, async (world) => {
  await using stun = await startServer(world, [A1, A2]);
  await using stun6 = await startServer(world, [V6]);
  const home = world.addRouter({ name: 'home' });
  const client = home.addHost({ name: 'client' });
  const report = await world.run(checkNat({ env: client.env, server: primary(stun), server6: primary(stun6) }));
  assert.equal(report.publicIPv4, home.wanAddress());
  assert.equal(report.publicIPv6, client.address(6));
}));
