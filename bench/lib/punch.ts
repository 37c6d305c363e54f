// `npm run bench -- --only punch`: the NAT matrix in the namespace lab (the punch issue's
// "Performance"). `natkit serve` on a public host, two peers behind kernel NATs
// (test/lab/lib/punch-lab.ts: every pair of the lab presets, and two peers behind one
// NAT) connect by name, `--runs` times each, interleaved. Per pair: the outcome the
// matrix table expects, what happened, the path's method on each side, the median time
// from the PUNCH order's start moment to the nominated path (and from the call to
// connect(), registration and gathering included), the datagrams both punch engines sent,
// and the round trip of the messages over the path. Then the issue's goals. Needs root, like the lab.
import { labUnavailable } from '../../test/lab/lib/command.ts';
import {
  buildPunchLab, expectPair, judgePair, pairName, punchPairs, runPair, type PairReports, type PunchExpectation, type PunchPair,
} from '../../test/lab/lib/punch-lab.ts';
import { Lab } from '../../test/lab/lib/topology.ts';
import { alignColumns, median } from './report.ts';

/** The issue's goal: a direct path within this long (plus one round trip) of the start moment. */
export const PUNCH_GOAL_MS = 1000;

/** One connection attempt of a pair: both peers' reports and what was wrong with them, or why it failed. */
export type PunchRun =
  | { readonly run: number; readonly ok: true; readonly reports: PairReports; readonly wrong: readonly string[] }
  | { readonly run: number; readonly ok: false; readonly error: string };

/** Every run of one pair. */
export interface PunchRow {
  readonly pair: PunchPair;
  readonly expected: PunchExpectation;
  readonly runs: PunchRun[];
}

/** Medians over the runs that connected. */
export interface PunchMedian {
  /** Start moment to nomination, the later of the two sides, ms. */
  readonly punchMs: number;
  /** The dialer's connect() call to its connection, ms. */
  readonly totalMs: number;
  /** Datagrams both punch engines sent. */
  readonly packets: number;
  /** Round trip of the messages over the path, ms. */
  readonly rttMs: number;
}

/** What the table shows for a pair. */
export interface PunchRowSummary {
  readonly name: string;
  readonly expected: PunchExpectation;
  readonly runs: number;
  /** Runs where both peers connected and every message was answered. */
  readonly connected: number;
  /** Connected runs on the expected kind of path (and method). */
  readonly right: number;
  /** Path kinds of the connected runs, as seen by a. */
  readonly kinds: readonly ('direct' | 'relay')[];
  /** Distinct "a's method/b's method" of the connected runs. */
  readonly methods: readonly string[];
  readonly median: PunchMedian | undefined;
  /** Errors and mismatches, one line each, with the runs they happened in. */
  readonly problems: readonly string[];
}

/** The issue's goals over the whole matrix; each lists the pairs that miss it. */
export interface PunchGoal {
  readonly everyPairConnects: { readonly met: boolean; readonly missed: readonly string[] };
  readonly noDirectPairOnRelay: { readonly met: boolean; readonly missed: readonly string[] };
  /** Median punch time of each direct pair under PUNCH_GOAL_MS + its path's round trip. */
  readonly directInTime: { readonly met: boolean; readonly missed: readonly string[] };
}

export interface PunchBenchResult {
  readonly runs: number;
  readonly rows: readonly PunchRowSummary[];
  readonly goal: PunchGoal;
}

export interface PunchBenchOptions {
  readonly runs: number;
  readonly signal: AbortSignal;
  readonly progress: (msg: string) => void;
}

/** Why the punch benchmark cannot run here, or undefined. */
export function punchBenchUnavailable(): string | undefined {
  return labUnavailable();
}

const unique = <T>(values: readonly T[]): T[] => [...new Set(values)];

/** The table row of one pair (pure). */
export function summarisePunchRow(row: PunchRow): PunchRowSummary {
  const connected = row.runs.flatMap((r) => (r.ok && r.reports.every((p) => p.messages.answered === p.messages.sent) ? [r] : []));
  // The same problem in several runs is one line naming them.
  const runsOf = new Map<string, number[]>();
  for (const r of row.runs) for (const p of r.ok ? r.wrong : [r.error]) runsOf.set(p, [...(runsOf.get(p) ?? []), r.run]);
  const problems = [...runsOf].map(([p, runs]) => `run${runs.length > 1 ? 's' : ''} ${runs.join(', ')}: ${p}`);
  return {
    name: pairName(row.pair),
    expected: row.expected,
    runs: row.runs.length,
    connected: connected.length,
    right: connected.filter((r) => r.wrong.length === 0).length,
    kinds: unique(connected.map((r) => r.reports[0].path.kind)),
    methods: unique(connected.map((r) => r.reports.map((p) => p.path.method).join('/'))),
    median: connected.length === 0 ? undefined : {
      punchMs: median(connected.map((r) => Math.max(...r.reports.map((p) => p.punchMs)))),
      totalMs: median(connected.map((r) => r.reports[0].totalMs)),
      packets: median(connected.map((r) => r.reports[0].packetsSent + r.reports[1].packetsSent)),
      rttMs: median(connected.map((r) => median(r.reports.map((p) => p.rttMs)))),
    },
    problems,
  };
}

/** The goals over the summarised rows (pure). */
export function punchGoal(rows: readonly PunchRowSummary[]): PunchGoal {
  const goal = (missed: readonly PunchRowSummary[]): { met: boolean; missed: string[] } => ({ met: missed.length === 0, missed: missed.map((r) => r.name) });
  const direct = rows.filter((r) => r.expected.kind === 'direct');
  return {
    everyPairConnects: goal(rows.filter((r) => r.runs === 0 || r.connected < r.runs)),
    noDirectPairOnRelay: goal(direct.filter((r) => r.kinds.includes('relay'))),
    directInTime: goal(direct.filter((r) => r.median === undefined || !(r.median.punchMs < PUNCH_GOAL_MS + r.median.rttMs))),
  };
}

/** Builds the lab, runs every pair `runs` times (interleaved), tears the lab down and summarises. */
export async function runPunchBench(o: PunchBenchOptions): Promise<PunchBenchResult> {
  const rows: PunchRow[] = punchPairs().map((pair) => ({ pair, expected: expectPair(pair), runs: [] }));
  const lab = await Lab.create({ signal: o.signal });
  try {
    const pl = await buildPunchLab(lab);
    o.progress(`punch: lab ${lab.id}: natkit serve on ${pl.server.addresses.join(', ')}; ${rows.length} pairs × ${o.runs} run${o.runs > 1 ? 's' : ''}`);
    for (let run = 1; run <= o.runs; run++) {
      for (const [i, row] of rows.entries()) {
        o.signal.throwIfAborted();
        const tag = `${pairName(row.pair)} run ${run}/${o.runs}`;
        try {
          const reports = await runPair(pl, await pl.configure(row.pair), `${run}-${i}`);
          const wrong = judgePair(row.expected, reports);
          row.runs.push({ run, ok: true, reports, wrong });
          const [a, b] = reports;
          o.progress(`punch: ${tag}: ${a.path.kind} (${a.path.method}/${b.path.method}), ${Math.max(a.punchMs, b.punchMs)} ms, ${a.packetsSent + b.packetsSent} datagrams${wrong.length > 0 ? `; WRONG: ${wrong.join('; ')}` : ''}`);
        } catch (err) {
          if (o.signal.aborted) throw err;
          const error = (err instanceof Error ? err.message : String(err)).split('\n')[0] ?? '';
          row.runs.push({ run, ok: false, error });
          o.progress(`punch: ${tag}: FAILED: ${error}`);
        }
      }
    }
  } finally {
    await lab.close();
  }
  const summaries = rows.map(summarisePunchRow);
  return { runs: o.runs, rows: summaries, goal: punchGoal(summaries) };
}

const LETTER: Readonly<Record<PunchExpectation['outcome'], string>> = { direct: 'direct', 'direct-predicted': 'direct (predicted)', 'direct-birthday': 'direct (birthday)', relay: 'relay' };
const ms = (n: number): string => String(Math.round(n));

/** The section people read (pure). */
export function formatPunchBench(r: PunchBenchResult): string {
  const lines: string[] = [
    'NAT matrix in the namespace lab: natkit serve (STUN 2×2, TURN, rendezvous) on a public host, two peers behind kernel NATs connecting by name',
    `${r.runs} run${r.runs > 1 ? 's' : ''} per pair, interleaved, medians; punch ms = PUNCH start moment to the nominated path (the later side);`,
    'connect() ms = the dialer\'s, from the call (registration, NAT check, TURN allocation, order, punch); packets = datagrams both punch engines sent; rtt = messages over the path',
    '',
  ];
  const table: string[][] = [['pair', 'expected', 'outcome', 'path a/b', 'punch ms', 'connect() ms', 'packets', 'rtt ms']];
  for (const row of r.rows) {
    // Behind one NAT the host candidates decide, whatever the plan.
    const expected = row.expected.method === undefined ? LETTER[row.expected.outcome] : `${row.expected.kind} via ${row.expected.method}`;
    const m = row.median;
    if (m === undefined) {
      table.push([row.name, `expected ${expected}: FAILED ${row.runs - row.connected}/${row.runs}: ${row.problems[0] ?? '?'}`]);
      continue;
    }
    const outcome = `${row.kinds.join('+')} ${row.right}/${row.runs}${row.right < row.runs ? ' WRONG' : ''}`;
    table.push([row.name, expected, outcome, row.methods.join(', '), ms(m.punchMs), ms(m.totalMs), ms(m.packets), m.rttMs.toFixed(2)]);
  }
  lines.push(alignColumns(table, [0, 1, 2, 3]), '');
  for (const row of r.rows) for (const p of row.problems) lines.push(`  ${row.name}: ${p}`);
  const met = (g: { met: boolean; missed: readonly string[] }): string => (g.met ? 'met' : `NOT met (${g.missed.join('; ')})`);
  lines.push(
    `goal: every pair connects: ${met(r.goal.everyPairConnects)}`,
    `goal: no pair that can go direct uses the relay: ${met(r.goal.noDirectPairOnRelay)}`,
    `goal: direct path in < ${PUNCH_GOAL_MS} ms + 1 RTT (median punch ms): ${met(r.goal.directInTime)}`,
  );
  return lines.join('\n');
}

/** One part of the bench output: text for people, keys for --json, and whether something failed. */
export interface PunchSection {
  readonly text: string;
  readonly json: Record<string, unknown>;
  readonly failed: boolean;
}

/**
 * The section for bench/run.ts: `required` (--only names it) fails without root; otherwise
 * one line says it was skipped. `about` describes the machine.
 */
export async function punchSection(o: PunchBenchOptions & { readonly required: boolean; readonly about: string }): Promise<PunchSection> {
  const why = punchBenchUnavailable();
  if (why !== undefined) {
    if (o.required) o.progress(`punch: cannot run: ${why}`);
    return { text: 'NAT matrix (natkit connect in the namespace lab): skipped: needs root (namespaces)', json: { punch: { skipped: why } }, failed: o.required };
  }
  const result = await runPunchBench(o);
  const g = result.goal;
  return { text: `${formatPunchBench(result)}\n${o.about}`, json: { punch: result }, failed: !g.everyPairConnects.met || !g.noDirectPairOnRelay.met };
}
