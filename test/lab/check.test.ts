// `natkit check` in the real NAT lab (issue 3): natkit's STUN server (or coturn) on a
// public host with two addresses × two ports, the CLI (src/cli/main.ts check --json)
// spawned in a LAN host, and the NatReport compared with what the routers were told to
// do (nat-rules.ts NAT_TRUTH, chainTruth for NAT behind NAT). One lab serves every row:
// each row reloads its routers' rules (one nftables transaction, conntrack flushed).
// Needs root: without it every test fails with the reason (CI runs as root).
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import type { Behaviour, ClassicType, NatReport, NotMeasured, PortAllocation } from '../../src/nat/index.ts';
import type { Endpoint } from '../../src/net/index.ts';
import { chainTruth, hasPublicLan, SEQUENTIAL_PORTS, type NatPreset } from './lib/nat-rules.ts';
import { startCoturn, startStunServer, type LabStunServer } from './lib/probes.ts';
import { Lab, type Host, type Router, type Site } from './lib/topology.ts';
import { noLeaks } from '../helpers/leaks.ts';

const CLI = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
const EI = 'endpoint-independent';
const AD = 'address-dependent';
const APD = 'address-and-port-dependent';

/** The report fields a row expects. */
interface Expected {
  readonly classic: ClassicType;
  readonly natted: boolean | undefined;
  readonly mapping: Behaviour;
  readonly filtering: Behaviour;
  readonly hairpinning: boolean | undefined;
  readonly portAllocation: PortAllocation;
  readonly mappingVariesByDestination: boolean | undefined;
  /** Whom the server sees: the client itself (no NAT), the outermost router, or nobody (no UDP). */
  readonly publicIPv4: 'client' | 'router' | undefined;
  readonly notMeasured: readonly NotMeasured['what'][];
}

/** One `natkit check` run and what it must report. */
interface Row {
  /** Router presets, outermost first: one router, or a CGN and the home router behind it. */
  readonly presets: readonly [NatPreset] | readonly [NatPreset, NatPreset];
  /** RFC 4787 REQ-9 on every router of the row. */
  readonly hairpin: boolean;
  /** The server asked. @default 'natkit' */
  readonly server?: 'natkit' | 'coturn';
  /** More `natkit check` flags. @default none */
  readonly flags?: readonly string[];
  readonly expect: Expected;
}

const PRESERVING = { kind: 'preserving' } as const;
const RANDOM = { kind: 'random' } as const;
const SEQUENTIAL = { kind: 'sequential', step: 1 } as const;
/** Without NAT our public address is our own: a datagram to it always comes back. */
const OPEN = { natted: false, hairpinning: true, mapping: EI, portAllocation: PRESERVING, mappingVariesByDestination: false, publicIPv4: 'client', notMeasured: [] } as const;
const CONE = { natted: true, hairpinning: false, mapping: EI, portAllocation: PRESERVING, mappingVariesByDestination: false, publicIPv4: 'router', notMeasured: [] } as const;
const SYMMETRIC = { classic: 'symmetric', natted: true, hairpinning: false, filtering: APD, mappingVariesByDestination: true, publicIPv4: 'router', notMeasured: [] } as const;

const ROWS: readonly Row[] = [
  { presets: ['open'], hairpin: false, expect: { ...OPEN, classic: 'open-internet', filtering: EI } },
  { presets: ['firewall'], hairpin: false, expect: { ...OPEN, classic: 'symmetric-udp-firewall', filtering: APD } },
  { presets: ['full-cone'], hairpin: false, expect: { ...CONE, classic: 'full-cone', filtering: EI } },
  { presets: ['restricted-cone'], hairpin: false, expect: { ...CONE, classic: 'restricted-cone', filtering: AD } },
  // The hairpin probe overlaps the filtering test: it must not open the filter.
  { presets: ['restricted-cone'], hairpin: true, expect: { ...CONE, classic: 'restricted-cone', filtering: AD, hairpinning: true } },
  { presets: ['port-restricted-cone'], hairpin: false, expect: { ...CONE, classic: 'port-restricted-cone', filtering: APD } },
  { presets: ['port-restricted-cone'], hairpin: true, expect: { ...CONE, classic: 'port-restricted-cone', filtering: APD, hairpinning: true } },
  { presets: ['address-dependent-mapping'], hairpin: false, expect: { ...SYMMETRIC, mapping: AD, portAllocation: RANDOM } },
  { presets: ['symmetric'], hairpin: false, expect: { ...SYMMETRIC, mapping: APD, portAllocation: RANDOM } },
  { presets: ['symmetric'], hairpin: true, expect: { ...SYMMETRIC, mapping: APD, portAllocation: RANDOM, hairpinning: true } },
  { presets: ['symmetric-sequential'], hairpin: false, expect: { ...SYMMETRIC, mapping: APD, portAllocation: SEQUENTIAL } },
  {
    // Silence is the finding: a short first-request schedule (11 × 20 ms) keeps it quick.
    presets: ['udp-blocked'], hairpin: false, flags: ['--first-rto-ms', '20'],
    expect: {
      classic: 'udp-blocked', natted: undefined, mapping: 'unknown', filtering: 'unknown', hairpinning: undefined,
      portAllocation: { kind: 'unknown' }, mappingVariesByDestination: undefined, publicIPv4: undefined, notMeasured: ['nat'],
    },
  },
  // NAT behind NAT: the CGN's address; the CGN's filtering, through a full-cone home router…
  { presets: ['restricted-cone', 'full-cone'], hairpin: false, expect: { ...CONE, classic: 'restricted-cone', filtering: AD } },
  // …and the home router's mapping and sequential ports, through a port-preserving CGN.
  { presets: ['full-cone', 'symmetric-sequential'], hairpin: false, expect: { ...SYMMETRIC, mapping: APD, portAllocation: SEQUENTIAL } },
  { presets: ['port-restricted-cone'], hairpin: false, server: 'coturn', expect: { ...CONE, classic: 'port-restricted-cone', filtering: APD } },
];

function rowName(row: Row): string {
  const [outer, inner] = row.presets;
  const where = inner === undefined ? outer : `CGN ${outer}, home ${inner}`;
  return `${where}${row.hairpin ? ', hairpinning on' : ''}${row.server === 'coturn' ? ', against coturn' : ''}: ${row.expect.classic}`;
}

test('every row states its routers\' truth (NAT_TRUTH, chainTruth) in the report\'s terms', () => {
  for (const row of ROWS) {
    const t = chainTruth(row.presets);
    const e = row.expect;
    const name = rowName(row);
    if (!t.udp) {
      assert.equal(e.classic, 'udp-blocked', name);
      continue;
    }
    // Without NAT there is no mapping to vary, and without a filter nothing is filtered.
    assert.equal(e.natted, t.natted, name);
    assert.equal(e.mapping, t.mapping ?? EI, name);
    assert.equal(e.filtering, t.filtering ?? EI, name);
    assert.equal(e.mappingVariesByDestination, (t.mapping ?? EI) !== EI, name);
    assert.equal(e.portAllocation.kind, t.ports, name);
    assert.equal(e.hairpinning, !t.natted || row.hairpin, name);
    assert.equal(e.publicIPv4, t.natted ? 'router' : 'client', name);
    assert.deepEqual(e.notMeasured, [], `${name}: a two-address server lets every test run`);
  }
});

let lab: Lab | undefined;
let server: Host;
let stun: LabStunServer;
const sites = new Map<'nat' | 'public' | 'cgnat', Site>();

before(async () => {
  lab = await Lab.create();
  server = await lab.publicHost('server', { addresses: 2 });
  const nat = await lab.router('nat', { preset: 'port-restricted-cone' });
  sites.set('nat', { routers: [nat], client: await lab.client('nat-c', nat) });
  const open = await lab.router('public', { preset: 'open' });
  sites.set('public', { routers: [open], client: await lab.client('public-c', open) });
  const cgn = await lab.router('cgn', { preset: 'port-restricted-cone' });
  const home = await lab.router('cgn-home', { preset: 'port-restricted-cone', behind: cgn });
  sites.set('cgnat', { routers: [cgn, home], client: await lab.client('cgnat-c', home) });
  stun = await startStunServer(lab, server);
});

after(async () => {
  const names = lab?.namespaceNames ?? [];
  await lab?.close();
  assert.deepEqual(names.filter((n) => existsSync(`/run/netns/${n}`)), [], 'the lab removed every namespace it made');
});

/** Loads the row's presets into the site that can hold them and returns that site. */
async function configure(l: Lab, row: Row): Promise<Site> {
  const key = row.presets.length === 2 ? 'cgnat' : hasPublicLan(row.presets[0]) ? 'public' : 'nat';
  const site = sites.get(key);
  assert.ok(site, `site ${key} was built`);
  const routers: Router[] = [];
  for (const [i, router] of site.routers.entries()) {
    routers.push(await l.loadRules(router, { preset: row.presets[i]!, hairpinning: row.hairpin }));
  }
  return { routers, client: site.client };
}

/** Runs `natkit check --json` in `client`'s namespace; a non-zero exit rejects with its stderr. */
async function natkitCheck(client: Host, target: Endpoint, flags: readonly string[]): Promise<NatReport> {
  const out = await client.ns.exec(process.execPath, [CLI, 'check', '--server', `${target.address}:${target.port}`, '--json', ...flags], { timeoutMs: 20_000 });
  return JSON.parse(out) as NatReport;
}

describe('natkit check in a LAN host reports what its routers do', () => {
  for (const row of ROWS) {
    test(rowName(row), noLeaks(async () => {
      assert.ok(lab, 'the lab was built');
      const l = lab;
      const { routers, client } = await configure(l, row);
      const coturn = row.server === 'coturn' ? await startCoturn(l, server) : undefined;
      try {
        const [primary, alternate] = coturn === undefined ? [stun.endpoints[0], stun.endpoints[3]] : [coturn.primary, coturn.alternate];
        assert.ok(primary && alternate, 'the server listens on A1:P1 and A2:P2');
        const report = await natkitCheck(client, primary, row.flags ?? []);
        const e = row.expect;
        const publicIPv4 = e.publicIPv4 === 'client' ? client.address : e.publicIPv4 === 'router' ? routers[0]!.publicAddress : undefined;
        assert.deepEqual({
          udp: report.udp, classic: report.classic, natted: report.natted, mapping: report.mapping, filtering: report.filtering,
          hairpinning: report.hairpinning, portAllocation: report.portAllocation, mappingVariesByDestination: report.mappingVariesByDestination,
          publicIPv4: report.publicIPv4, notMeasured: report.notMeasured.map((n) => n.what),
        }, {
          udp: e.classic !== 'udp-blocked', classic: e.classic, natted: e.natted, mapping: e.mapping, filtering: e.filtering,
          hairpinning: e.hairpinning, portAllocation: e.portAllocation, mappingVariesByDestination: e.mappingVariesByDestination,
          publicIPv4, notMeasured: e.notMeasured,
        }, `report: ${JSON.stringify(report)}`);
        if (!report.udp) return;
        assert.deepEqual(report.otherAddress, alternate, 'the server\'s RFC 5780 OTHER-ADDRESS');
        assert.match(report.serverSoftware ?? '', coturn === undefined ? /^natkit/ : /^Coturn/);
        const mapped = report.mapped;
        assert.ok(mapped !== undefined && mapped.address === publicIPv4, `the mapped address ${JSON.stringify(mapped)} is the public one, ${publicIPv4}`);
        const port = mapped.port;
        if (e.portAllocation.kind === 'preserving') assert.equal(port, report.local.port, 'the NAT kept our port');
        if (e.portAllocation.kind === 'sequential') {
          assert.ok(port >= SEQUENTIAL_PORTS.first && port < SEQUENTIAL_PORTS.first + SEQUENTIAL_PORTS.count, `port ${port} from the sequential range`);
        }
      } finally {
        await coturn?.stop();
      }
    }));
  }
});
