// Results of a benchmark run: medians over runs, ratios to the reference (the bare Node
// dgram responder) and the table people read.
import type { LoadResult } from './generator.ts';
import type { ServerId } from './options.ts';

/** One generator run against one server. */
export interface RunRecord {
  readonly run: number;
  readonly load: LoadResult;
  /** CPU the server process used over the generator run, % of one core. */
  readonly serverCpuPct: number | undefined;
  /** What the server printed when it stopped (natkit: its counters). */
  readonly serverStats: unknown;
}

/** The figures the table shows. */
export interface Metrics {
  readonly rps: number;
  readonly lossPct: number;
  readonly p50Us: number;
  readonly p99Us: number;
  readonly serverCpuPct: number | undefined;
  readonly generatorCpuPct: number;
}

/** Ratios to the reference: rps (higher is better), latencies (lower is better). */
export interface Ratios {
  readonly rps: number;
  readonly p50: number;
  readonly p99: number;
}

/** Everything about one server. */
export interface ServerResult {
  readonly id: ServerId;
  readonly label: string;
  readonly note: string;
  status: 'ok' | 'not installed' | 'failed';
  error?: string;
  readonly runs: RunRecord[];
  median?: Metrics;
  vsBare?: Ratios;
}

/** Median of `values` (NaN when empty). */
export function median(values: readonly number[]): number {
  const v = [...values].sort((a, b) => a - b);
  const n = v.length;
  if (n === 0) return NaN;
  return n % 2 === 1 ? v[(n - 1) / 2]! : (v[n / 2 - 1]! + v[n / 2]!) / 2;
}

/** Median of each figure over the runs (each figure on its own). */
export function medianMetrics(runs: readonly RunRecord[]): Metrics | undefined {
  if (runs.length === 0) return undefined;
  const cpu = runs.map((r) => r.serverCpuPct).filter((x): x is number => x !== undefined);
  return {
    rps: median(runs.map((r) => r.load.rps)),
    lossPct: median(runs.map((r) => r.load.loss_pct)),
    p50Us: median(runs.map((r) => r.load.p50_us)),
    p99Us: median(runs.map((r) => r.load.p99_us)),
    serverCpuPct: cpu.length === 0 ? undefined : median(cpu),
    generatorCpuPct: median(runs.map((r) => r.load.generator_cpu_pct)),
  };
}

/** a / b as a ratio, undefined when either is missing. */
export function ratio(a: number | undefined, b: number | undefined): number | undefined {
  return a === undefined || b === undefined || !(b > 0) ? undefined : a / b;
}

/** Fills `vsBare` of every measured server. */
export function addRatios(results: ServerResult[]): void {
  const bare = results.find((r) => r.id === 'bare')?.median;
  for (const r of results) {
    const m = r.median;
    if (m === undefined || bare === undefined) continue;
    r.vsBare = { rps: m.rps / bare.rps, p50: m.p50Us / bare.p50Us, p99: m.p99Us / bare.p99Us };
  }
}

const int = (n: number): string => Math.round(n).toLocaleString('en-US');
const fix = (n: number | undefined, d: number): string => (n === undefined || Number.isNaN(n) ? '—' : n.toFixed(d));

/** The table: one row per server. */
export function formatTable(results: readonly ServerResult[]): string {
  const head = ['server', 'responses/s', 'loss %', 'p50 µs', 'p99 µs', 'server CPU %', 'rps ×bare', 'p50 ×bare', 'p99 ×bare'];
  const rows: string[][] = [head];
  for (const r of results) {
    const m = r.median;
    if (r.status !== 'ok' || m === undefined) {
      rows.push([r.label, r.status === 'failed' ? `failed: ${r.error ?? '?'}` : r.status]);
      continue;
    }
    rows.push([
      r.label, int(m.rps), fix(m.lossPct, 2), int(m.p50Us), int(m.p99Us), fix(m.serverCpuPct, 0),
      fix(r.vsBare?.rps, 2), fix(r.vsBare?.p50, 2), fix(r.vsBare?.p99, 2),
    ]);
  }
  return alignColumns(rows);
}

/**
 * Aligns a table whose first row is the head: columns in `left` (default the first)
 * padded on the right, the others on the left; a row shorter than the head is a note,
 * its second cell printed after the first column as is.
 */
export function alignColumns(rows: readonly (readonly string[])[], left: readonly number[] = [0]): string {
  const width = rows[0]?.length ?? 0;
  const full = rows.filter((r) => r.length === width);
  const widths = Array.from({ length: width }, (_, i) => Math.max(...full.map((r) => r[i]!.length)));
  return rows
    .map((r) => {
      if (r.length !== width) return `${r[0]!.padEnd(widths[0]!)}  ${r[1] ?? ''}`;
      return r.map((cell, i) => (left.includes(i) ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  ').trimEnd();
    })
    .join('\n');
}
