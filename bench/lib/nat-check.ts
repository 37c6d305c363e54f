// `npm run bench -- --only check`: NAT discovery in the namespace lab (issue 3,
// "Performance"). A client behind a kernel NAT (test/lab presets) runs a full
// `natkit check --json` (mapping, filtering, hairpinning, port allocation, the port-mapping
// probe), the same without port allocation and port mapping (`--samples 0 --no-portmap`:
// the reference's three tests), and coturn's
// `turnutils_natdiscovery -m -f -H`, interleaved, against the same natkit STUN server
// on two addresses × two ports in the server namespace. Time is the wall time of each
// program, spawned alike through `ip netns exec`; packets are the UDP datagrams through
// the client's interface both ways, counted by nft counters in the client's namespace,
// which sees every packet of every program (hairpin probes included: they go out to the
// router and back). Needs root, like the lab.
import { buildPackage } from './build.ts';
import { NAT_TRUTH, type Dependence, type NatPreset } from '../../test/lab/lib/nat-rules.ts';
import { labUnavailable } from '../../test/lab/lib/command.ts';
import { startStunServer } from '../../test/lab/lib/probes.ts';
import { Lab, type Host, type Router } from '../../test/lab/lib/topology.ts';
import type { NatReport } from '../../src/nat/index.ts';
import type { Endpoint } from '../../src/net/index.ts';
import { alignColumns, median, ratio } from './report.ts';

const REFERENCE = 'turnutils_natdiscovery';
/** turnutils_natdiscovery waits about 3 s per unanswered request, and a run has up to four. */
const RUN_LIMIT_MS = 60_000;
/** The goal: the complete report in under a second at lab latency… */
export const CHECK_GOAL_MS = 1000;

/** The programs compared: natkit's full check, natkit's check of what the reference checks, the reference. */
export type CheckTool = 'natkit' | 'natkit-same' | 'reference';
const TOOLS: readonly CheckTool[] = ['natkit', 'natkit-same', 'reference'];

/** NATs the benchmark can use: every preset that translates and passes UDP. */
export const CHECK_NATS = (Object.keys(NAT_TRUTH) as NatPreset[]).filter((p) => NAT_TRUTH[p].natted && NAT_TRUTH[p].udp);
/** NATs measured when --check-nats is not given. */
export const DEFAULT_CHECK_NATS: readonly NatPreset[] = ['port-restricted-cone', 'symmetric'];

/** Why the NAT discovery benchmark cannot run here, or undefined. */
export function checkBenchUnavailable(): string | undefined {
  return labUnavailable();
}

/** What one program found and what it cost. */
export interface CheckRun {
  readonly run: number;
  /** Wall time of the program, spawn to exit. */
  readonly wallMs: number;
  /** UDP datagrams through the client's interface, out and in. */
  readonly sent: number;
  readonly received: number;
  readonly mapping: Dependence | undefined;
  readonly filtering: Dependence | undefined;
  readonly hairpinning: boolean | undefined;
  /** natkit: its report's own duration and packet counts. */
  readonly self?: { readonly durationMs: number; readonly sent: number; readonly received: number };
}

/** Medians of one program on one NAT. */
export interface CheckMedian {
  readonly wallMs: number;
  readonly packets: number;
  readonly sent: number;
  readonly received: number;
  readonly selfMs: number | undefined;
}

/** One program on one NAT. */
export interface CheckRow {
  readonly nat: NatPreset;
  readonly tool: CheckTool;
  readonly label: string;
  status: 'ok' | 'not installed' | 'failed';
  error?: string;
  readonly runs: CheckRun[];
  median?: CheckMedian;
  /** Every run found the NAT's RFC 4787 mapping and filtering (NAT_TRUTH), and no hairpinning (off in the bench). */
  correct?: boolean;
}

/** natkit's figures over the reference's, on one NAT. */
export interface CheckRatio {
  readonly nat: NatPreset;
  readonly tool: Exclude<CheckTool, 'reference'>;
  readonly time: number;
  readonly packets: number;
}

export interface CheckBenchResult {
  readonly runs: number;
  readonly rows: CheckRow[];
  readonly ratios: CheckRatio[];
  /**
   * The goal on every NAT: the full check's median time under CHECK_GOAL_MS, and
   * fewer packets than the reference, for the full check and for the same tests alone.
   */
  readonly goal: { readonly time: boolean; readonly packets: boolean; readonly packetsSameTests: boolean | undefined } | undefined;
}

export interface CheckBenchOptions {
  readonly nats: readonly NatPreset[];
  readonly runs: number;
  readonly signal: AbortSignal;
  readonly progress: (msg: string) => void;
}

const ARGS: Readonly<Record<CheckTool, readonly string[]>> = {
  natkit: ['check', '--json'],
  'natkit-same': ['check', '--samples', '0', '--no-portmap', '--json'],
  reference: ['-m', '-f', '-H'],
};
const label = (tool: CheckTool): string => `${tool === 'reference' ? REFERENCE : 'natkit'} ${ARGS[tool].join(' ')}`;

const COUNTERS = `table ip nkbench {
  counter sent { }
  counter received { }
  chain out { type filter hook output priority 0; policy accept; oifname "eth0" meta l4proto udp counter name "sent"; }
  chain in { type filter hook input priority 0; policy accept; iifname "eth0" meta l4proto udp counter name "received"; }
}
`;

/** Reads and zeroes the client's counters. */
async function takeCounters(client: Host): Promise<{ sent: number; received: number }> {
  const out = await client.ns.exec('nft', ['-j', 'reset', 'counters', 'table', 'ip', 'nkbench']);
  const items = (JSON.parse(out) as { nftables: { counter?: { name: string; packets: number } }[] }).nftables;
  const count = (name: string): number => items.find((i) => i.counter?.name === name)?.counter?.packets ?? NaN;
  return { sent: count('sent'), received: count('received') };
}

const DEPENDENCE: Readonly<Record<string, Dependence>> = {
  'Endpoint Independent': 'endpoint-independent',
  'Address Dependent': 'address-dependent',
  'Address and Port Dependent': 'address-and-port-dependent',
};

/** The verdicts in turnutils_natdiscovery's output ("NAT with … Mapping!", "No NAT! …"). */
export function parseNatDiscovery(out: string): Pick<CheckRun, 'mapping' | 'filtering' | 'hairpinning'> {
  const verdict = (what: string): Dependence | undefined => {
    const m = new RegExp(`NAT with (.+?) ${what}!`).exec(out)?.[1];
    return m === undefined ? (what === 'Mapping' && out.includes('No NAT!') ? 'endpoint-independent' : undefined) : DEPENDENCE[m];
  };
  return { mapping: verdict('Mapping'), filtering: verdict('Filtering'), hairpinning: out.includes('successful hairpinning') };
}

async function runTool(tool: CheckTool, cli: string, client: Host, server: Endpoint, run: number): Promise<CheckRun> {
  await takeCounters(client);
  const t0 = performance.now();
  const out = tool === 'reference'
    ? await client.ns.exec(REFERENCE, [...ARGS[tool], '-p', String(server.port), server.address], { timeoutMs: RUN_LIMIT_MS })
    : await client.ns.exec(process.execPath, [cli, ...ARGS[tool], '--server', `${server.address}:${server.port}`], { timeoutMs: RUN_LIMIT_MS });
  const wallMs = performance.now() - t0;
  const packets = await takeCounters(client);
  if (tool === 'reference') return { run, wallMs, ...packets, ...parseNatDiscovery(out) };
  const r = JSON.parse(out) as NatReport;
  const known = (b: NatReport['mapping']): Dependence | undefined => (b === 'unknown' ? undefined : b);
  return {
    run, wallMs, ...packets, mapping: known(r.mapping), filtering: known(r.filtering), hairpinning: r.hairpinning,
    self: { durationMs: r.durationMs, sent: r.packets.sent, received: r.packets.received },
  };
}

function summarise(row: CheckRow): void {
  const runs = row.runs;
  if (runs.length === 0) return;
  const selfMs = runs.flatMap((r) => (r.self === undefined ? [] : [r.self.durationMs]));
  row.median = {
    wallMs: median(runs.map((r) => r.wallMs)),
    packets: median(runs.map((r) => r.sent + r.received)),
    sent: median(runs.map((r) => r.sent)),
    received: median(runs.map((r) => r.received)),
    selfMs: selfMs.length === 0 ? undefined : median(selfMs),
  };
  const truth = NAT_TRUTH[row.nat];
  row.correct = runs.every((r) => r.mapping === truth.mapping && r.filtering === truth.filtering && r.hairpinning === false);
}

/** Builds the lab, runs both programs `runs` times on each NAT (interleaved), and tears the lab down. */
export async function runCheckBench(o: CheckBenchOptions): Promise<CheckBenchResult> {
  const referenceMissing = labUnavailable({ tools: [[REFERENCE, 'coturn']] }) !== undefined;
  const rows: CheckRow[] = o.nats.flatMap((nat) => TOOLS.map((tool): CheckRow => ({
    nat, tool, label: label(tool), status: tool === 'reference' && referenceMissing ? 'not installed' : 'ok', runs: [],
  })));
  // natkit as installed: the built JavaScript, not the sources' type stripping at start-up.
  o.progress('check: building the package (tsc)');
  await using built = await buildPackage();
  const lab = await Lab.create({ signal: o.signal });
  try {
    const serverHost = await lab.publicHost('server', { addresses: 2 });
    let router: Router = await lab.router('nat', { preset: o.nats[0] ?? 'port-restricted-cone' });
    const client = await lab.client('client', router);
    await client.ns.exec('nft', ['-f', '-'], { input: COUNTERS });
    const stun = await startStunServer(lab, serverHost);
    const server = stun.endpoints[0]!;
    o.progress(`check: lab ${lab.id}: natkit STUN server on ${serverHost.addresses.join(', ')} × ${stun.endpoints[0]!.port}, ${stun.endpoints[1]!.port}`);
    for (const nat of o.nats) {
      for (let run = 1; run <= o.runs; run++) {
        for (const row of rows.filter((r) => r.nat === nat && r.status === 'ok')) {
          o.signal.throwIfAborted();
          // A fresh NAT per run: rules reloaded, conntrack flushed.
          router = await lab.loadRules(router, { preset: nat, hairpinning: false });
          try {
            const r = await runTool(row.tool, built.path('dist/cli/main.js'), client, server, run);
            row.runs.push(r);
            o.progress(
              `check: ${nat} run ${run}/${o.runs} ${row.tool}: ${Math.round(r.wallMs)} ms, ${r.sent} sent, ${r.received} received; ` +
              `mapping ${r.mapping ?? '?'}, filtering ${r.filtering ?? '?'}`,
            );
          } catch (err) {
            if (o.signal.aborted) throw err;
            row.status = 'failed';
            row.error = (err instanceof Error ? err.message : String(err)).split('\n')[0] ?? '';
            o.progress(`check: ${nat} ${row.tool}: FAILED: ${row.error}`);
          }
        }
      }
    }
  } finally {
    await lab.close();
  }
  for (const row of rows) if (row.status === 'ok') summarise(row);
  const ratios: CheckRatio[] = [];
  const medianOf = (nat: NatPreset, tool: CheckTool): CheckMedian | undefined => rows.find((r) => r.nat === nat && r.tool === tool)?.median;
  for (const nat of o.nats) {
    for (const tool of ['natkit', 'natkit-same'] as const) {
      const time = ratio(medianOf(nat, tool)?.wallMs, medianOf(nat, 'reference')?.wallMs);
      const packets = ratio(medianOf(nat, tool)?.packets, medianOf(nat, 'reference')?.packets);
      if (time !== undefined && packets !== undefined) ratios.push({ nat, tool, time, packets });
    }
  }
  const full = ratios.filter((r) => r.tool === 'natkit');
  const same = ratios.filter((r) => r.tool === 'natkit-same');
  const goal = full.length < o.nats.length
    ? undefined
    : {
      time: o.nats.every((nat) => medianOf(nat, 'natkit')!.wallMs < CHECK_GOAL_MS),
      packets: full.every((r) => r.packets < 1),
      packetsSameTests: same.length < o.nats.length ? undefined : same.every((r) => r.packets < 1),
    };
  return { runs: o.runs, rows, ratios, goal };
}

const short: Readonly<Record<Dependence, string>> = {
  'endpoint-independent': 'EI',
  'address-dependent': 'AD',
  'address-and-port-dependent': 'APD',
};

/** The section people read. */
export function formatCheckBench(r: CheckBenchResult): string {
  const lines: string[] = [
    'NAT discovery in the namespace lab: a client behind a kernel NAT, natkit\'s STUN server on 2 addresses × 2 ports',
    `${r.runs} run${r.runs > 1 ? 's' : ''} per program and NAT, interleaved, medians; time = wall time of the program (natkit: the built package, Node start-up included;`,
    'natkit\'s own ms = its report\'s durationMs); `--samples 0 --no-portmap` drops port allocation and the port-mapping probe, leaving the reference\'s three tests;',
    'packets = UDP datagrams through the client\'s interface, both ways (nft counters); result: RFC 4787 mapping/filtering found',
    '',
  ];
  const table: string[][] = [['NAT', 'program', 'time ms', 'packets', 'sent', 'recv', 'natkit\'s own ms', 'result']];
  for (const row of r.rows) {
    const m = row.median;
    if (row.status !== 'ok' || m === undefined) {
      table.push([`${row.nat}: ${row.label}`, row.status === 'failed' ? `failed: ${row.error ?? '?'}` : row.status]);
      continue;
    }
    const last = row.runs.at(-1)!;
    const found = `${last.mapping === undefined ? '?' : short[last.mapping]}/${last.filtering === undefined ? '?' : short[last.filtering]}`;
    table.push([
      row.nat, row.label, Math.round(m.wallMs).toLocaleString('en-US'), String(m.packets), String(m.sent), String(m.received),
      m.selfMs === undefined ? '' : String(Math.round(m.selfMs)), `${found} ${row.correct === true ? 'right' : 'WRONG'}`,
    ]);
  }
  lines.push(alignColumns(table, [0, 1, 7]), '');
  for (const x of r.ratios) {
    lines.push(`${label(x.tool)} / reference, ${x.nat}: time ${x.time.toFixed(3)}×, packets ${x.packets.toFixed(2)}×`);
  }
  if (r.goal !== undefined) {
    const met = (yes: boolean): string => (yes ? 'met' : 'NOT met');
    lines.push(`goal (issue 3), full check: complete report in < ${CHECK_GOAL_MS} ms: ${met(r.goal.time)}; fewer packets than the reference: ${met(r.goal.packets)}`);
    if (r.goal.packetsSameTests !== undefined) lines.push(`the reference's tests alone (--samples 0): fewer packets than the reference: ${met(r.goal.packetsSameTests)}`);
  }
  return lines.join('\n');
}
