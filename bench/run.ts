// `npm run bench`: STUN Binding throughput on UDP loopback (DESIGN.md §4 Benchmarks).
// One load generator (bench/native/stun-load.c) against several servers in one run,
// one server at a time — the bare Node dgram responder (the reference), natkit's
// StunServer and coturn — each a child process on its own CPU, the generator on another
// (taskset). Prints responses/s, loss, p50/p99 latency and the ratios to the reference.
// Then the sections: NAT discovery in the namespace lab (bench/lib/nat-check.ts), the
// TURN relay, natkit's TurnServer vs coturn (bench/lib/turn.ts), and the NAT matrix in the
// namespace lab (bench/lib/punch.ts), and the secure session vs plain UDP on loopback
// (bench/lib/session.ts).
// Every child is started through one registry and killed by PID on stop, error,
// Ctrl-C or exit. Exit codes: 0 ok, 1 a server or the generator failed, 2 usage, 130 interrupted.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync } from 'node:fs';
import { availableParallelism, cpus, release } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ChildRegistry, processCpuSeconds } from './lib/children.ts';
import { prepareGenerator, runLoad, type Generator } from './lib/generator.ts';
import { USAGE, UsageError, parseBenchArgs, type BenchOptions } from './lib/options.ts';
import { formatProfile, summariseProfile, type ProfileSummary } from './lib/profile.ts';
import { checkBenchUnavailable, formatCheckBench, runCheckBench } from './lib/nat-check.ts';
import { formatTurnBench, prepareTurnLoad, runTurnBench } from './lib/turn.ts';
import { punchSection } from './lib/punch.ts';
import { formatSessionBench, runSessionBench } from './lib/session.ts';
import { addRatios, formatTable, medianMetrics, ratio, type Ratios, type ServerResult } from './lib/report.ts';
import { SERVERS, coturnPackageVersion } from './lib/servers.ts';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const PROFILE_DIR = fileURLToPath(new URL('./native/build/profiles/', import.meta.url));
/** The issue's target: natkit's full server at ≥ 0.9× the bare responder. */
const TARGET_VS_BARE = 0.9;

const progress = (msg: string): void => {
  process.stderr.write(`[bench] ${msg}\n`);
};

/** CPUs for server and generator, or why there is no pinning. */
interface Pinning {
  readonly server: string | undefined;
  readonly generator: string | undefined;
  readonly description: string;
}

/** The CPUs this process may run on, from `taskset -pc`. */
function allowedCpus(): number[] | undefined {
  const r = spawnSync('taskset', ['-pc', String(process.pid)], { encoding: 'utf8' });
  if (r.error !== undefined || r.status !== 0) return undefined;
  const list = /list:\s*([\d,\-\s]+)$/m.exec(r.stdout)?.[1]?.trim();
  if (list === undefined) return undefined;
  const out: number[] = [];
  for (const part of list.split(',')) {
    const [a, b] = part.split('-').map(Number);
    if (a === undefined || !Number.isInteger(a)) return undefined;
    for (let c = a; c <= (b ?? a) && out.length < 1024; c++) out.push(c);
  }
  return out;
}

function choosePinning(wanted: boolean): Pinning {
  const none = (why: string): Pinning => ({ server: undefined, generator: undefined, description: `no pinning (${why}); server and generator share the CPUs` });
  if (!wanted) return none('--no-pin');
  const allowed = allowedCpus();
  if (allowed === undefined) return none('taskset not available');
  if (allowed.length < 2 || availableParallelism() < 2) return none('fewer than 2 CPUs');
  const [server, generator] = [String(allowed[0]), String(allowed[1])];
  if (spawnSync('taskset', ['-c', server, 'true']).status !== 0) return none('taskset refused');
  return { server, generator, description: `taskset: server on CPU ${server}, generator on CPU ${generator}` };
}

interface Environment {
  readonly node: string;
  readonly kernel: string;
  readonly cpu: string;
  readonly cpus: number;
  readonly coturn: string | undefined;
}

function environment(opts: BenchOptions): Environment {
  return {
    node: process.version,
    kernel: release(),
    cpu: cpus()[0]?.model ?? 'unknown',
    cpus: availableParallelism(),
    coturn: (opts.only.includes('coturn') && SERVERS.coturn.unavailable() === undefined) || opts.check !== 'off' || opts.turn !== 'off' ? coturnPackageVersion() : undefined,
  };
}

async function measure(
  opts: BenchOptions, gen: Generator, pin: Pinning, children: ChildRegistry, signal: AbortSignal,
): Promise<{ results: ServerResult[]; profileDir: string | undefined }> {
  const results: ServerResult[] = opts.only.map((id) => {
    const spec = SERVERS[id];
    const why = spec.unavailable();
    return { id, label: spec.label, note: spec.note, status: why === undefined ? 'ok' : 'not installed', runs: [] };
  });
  let profileDir: string | undefined;
  if (opts.profile) {
    profileDir = join(PROFILE_DIR, new Date().toISOString().replace(/[:.]/g, '-'));
    mkdirSync(profileDir, { recursive: true });
  }
  for (let run = 1; run <= opts.runs; run++) {
    for (const result of results) {
      if (result.status !== 'ok') continue;
      signal.throwIfAborted();
      const spec = SERVERS[result.id];
      const tag = `run ${run}/${opts.runs} ${result.id}`;
      const profiled = profileDir !== undefined && result.id !== 'coturn';
      const nodeFlags = profiled
        ? ['--cpu-prof', '--cpu-prof-interval=200', `--cpu-prof-dir=${profileDir}`, `--cpu-prof-name=${result.id}-run${run}.cpuprofile`]
        : [];
      try {
        progress(`${tag}: starting${profiled ? ' (under --cpu-prof)' : ''}`);
        const server = await spec.start({ children, cpu: pin.server, nodeFlags, signal });
        progress(`${tag}: pid ${server.pid} on 127.0.0.1:${server.port}; ${opts.warmupS} s warm-up + ${opts.durationS} s load, window ${opts.window}`);
        const cpu0 = processCpuSeconds(server.pid);
        const t0 = performance.now();
        let stats: unknown;
        let load;
        try {
          load = await runLoad(gen, {
            port: server.port, durationS: opts.durationS, warmupS: opts.warmupS, window: opts.window, timeoutMs: opts.timeoutMs,
            fingerprint: opts.fingerprint, spinUs: opts.spinUs, cpu: pin.generator,
          }, children, signal);
        } finally {
          const cpu1 = processCpuSeconds(server.pid);
          const wallS = (performance.now() - t0) / 1000;
          stats = await server.stop();
          if (load !== undefined) {
            const serverCpuPct = cpu0 === undefined || cpu1 === undefined ? undefined : (100 * (cpu1 - cpu0)) / wallS;
            result.runs.push({ run, load, serverCpuPct, serverStats: stats });
          }
        }
        const last = result.runs.at(-1);
        if (last !== undefined) {
          const l = last.load;
          progress(
            `${tag}: ${Math.round(l.rps).toLocaleString('en-US')} responses/s, loss ${l.loss_pct.toFixed(2)} %, ` +
            `p50 ${l.p50_us} µs, p99 ${l.p99_us} µs, server CPU ${last.serverCpuPct?.toFixed(0) ?? '?'} %` +
            (l.invalid + l.error_responses > 0 ? `, ${l.invalid} invalid and ${l.error_responses} error answers` : ''),
          );
          const drops = rateLimited(stats);
          if (drops !== undefined && drops > 0) progress(`${tag}: WARNING: natkit rate-limited ${drops} requests`);
        }
      } catch (err) {
        if (signal.aborted) throw err;
        result.status = 'failed';
        result.error = (err instanceof Error ? err.message : String(err)).split('\n')[0] ?? '';
        progress(`${tag}: FAILED: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
  }
  for (const r of results) {
    const m = r.status === 'ok' ? medianMetrics(r.runs) : undefined;
    if (m !== undefined) r.median = m;
  }
  addRatios(results);
  return { results, profileDir };
}

/** natkit's rate-limited drop count from its stats line. */
function rateLimited(stats: unknown): number | undefined {
  if (typeof stats !== 'object' || stats === null || !('dropped' in stats)) return undefined;
  const dropped = (stats as { dropped?: Record<string, number> }).dropped;
  return dropped?.['rate-limited'];
}

function ratios(a: ServerResult | undefined, b: ServerResult | undefined): Ratios | undefined {
  const ma = a?.median;
  const mb = b?.median;
  const rps = ratio(ma?.rps, mb?.rps);
  const p50 = ratio(ma?.p50Us, mb?.p50Us);
  const p99 = ratio(ma?.p99Us, mb?.p99Us);
  return rps === undefined || p50 === undefined || p99 === undefined ? undefined : { rps, p50, p99 };
}

/** Datagrams a server child said it handled (its stats line's `received`). */
function packetsHandled(stats: unknown): number | undefined {
  if (typeof stats !== 'object' || stats === null || !('received' in stats)) return undefined;
  const n = (stats as { received?: unknown }).received;
  return typeof n === 'number' ? n : undefined;
}

function summariseProfiles(dir: string | undefined, results: readonly ServerResult[]): ProfileSummary[] {
  if (dir === undefined) return [];
  const out: ProfileSummary[] = [];
  for (const f of readdirSync(dir).filter((x) => x.endsWith('.cpuprofile')).sort()) {
    const m = /^(.+)-run(\d+)\.cpuprofile$/.exec(f);
    const record = results.find((r) => r.id === m?.[1])?.runs.find((r) => r.run === Number(m?.[2]));
    const packets = packetsHandled(record?.serverStats);
    try {
      out.push(summariseProfile(join(dir, f), ROOT, packets === undefined ? {} : { packets }));
    } catch (err) {
      progress(`could not read profile ${f}: ${String(err)}`);
    }
  }
  return out;
}

async function main(argv: readonly string[], children: ChildRegistry, signal: AbortSignal): Promise<number> {
  let opts: BenchOptions;
  try {
    opts = parseBenchArgs(argv);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`${err.message}\n\n${USAGE}`);
    return 2;
  }
  if (opts.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const env = environment(opts);
  if (Number(process.versions.node.split('.')[0]) < 24) {
    progress(`WARNING: running on Node ${process.version}; the project's Node 24 is node_modules/.bin/node (npm run bench uses it)`);
  }
  const sections: Section[] = [];
  if (opts.only.length > 0) sections.push(await throughputSection(opts, env, children, signal));
  const check = await checkSection(opts, env, signal);
  if (check !== undefined) sections.push(check);
  const turn = await turnSection(opts, env, children, signal);
  if (turn !== undefined) sections.push(turn);
  if (opts.punch !== 'off') {
    const about = `node ${env.node}, Linux ${env.kernel}, ${env.cpus} × ${env.cpu}`;
    sections.push(await punchSection({ runs: opts.runs, signal, progress, required: opts.punch === 'on', about }));
  }
  if (opts.session !== 'off') sections.push(await sessionSection(opts, env, children, signal));
  if (opts.json) {
    process.stdout.write(`${JSON.stringify(Object.assign({}, ...sections.map((x) => x.json)), null, 2)}\n`);
  } else {
    process.stdout.write(`${sections.map((x) => x.text).join('\n\n')}\n`);
  }
  return sections.some((x) => x.failed) ? 1 : 0;
}

/** One part of the output: text for people, keys for --json, and whether something failed. */
interface Section {
  readonly text: string;
  readonly json: Record<string, unknown>;
  readonly failed: boolean;
}

/**
 * NAT discovery in the namespace lab: run when --only names it (failing without root),
 * or by default when root is available (else one line says it was skipped).
 */
async function checkSection(opts: BenchOptions, env: Environment, signal: AbortSignal): Promise<Section | undefined> {
  if (opts.check === 'off') return undefined;
  const why = checkBenchUnavailable();
  if (why !== undefined) {
    if (opts.check === 'on') progress(`check: cannot run: ${why}`);
    return { text: 'NAT discovery (natkit check vs turnutils_natdiscovery): skipped: needs root (namespaces)', json: { natCheck: { skipped: why } }, failed: opts.check === 'on' };
  }
  const result = await runCheckBench({ nats: opts.checkNats, runs: opts.runs, signal, progress });
  const about = `node ${env.node}, Linux ${env.kernel}, ${env.cpus} × ${env.cpu}${env.coturn === undefined ? '' : `, coturn ${env.coturn}`}`;
  return {
    text: `${formatCheckBench(result)}\n${about}`,
    json: { environment: env, natCheck: result },
    failed: result.rows.some((r) => r.status === 'failed'),
  };
}

/**
 * TURN relay throughput and memory, natkit vs coturn: run when --only names it (failing
 * when the load tool cannot be built), or by default when it can (else one line says why not).
 */
async function turnSection(opts: BenchOptions, env: Environment, children: ChildRegistry, signal: AbortSignal): Promise<Section | undefined> {
  if (opts.turn === 'off') return undefined;
  const why = prepareTurnLoad(progress);
  if (why !== undefined) {
    if (opts.turn === 'on') progress(`turn: cannot run: ${why}`);
    return { text: `TURN relay (natkit TurnServer vs coturn): skipped: ${why}`, json: { turn: { skipped: why } }, failed: opts.turn === 'on' };
  }
  const pinning = choosePinning(opts.pin);
  progress(`turn: ${pinning.description}`);
  const result = await runTurnBench({
    durationS: opts.durationS, warmupS: opts.warmupS, window: opts.window, timeoutMs: opts.timeoutMs, runs: opts.runs, pinning, children, signal, progress,
  });
  const about = `node ${env.node}, Linux ${env.kernel}, ${env.cpus} × ${env.cpu}`;
  return {
    text: `${formatTurnBench(result)}\n${about}`,
    json: { environment: env, turn: result },
    failed: result.servers.some((s) => s.status === 'failed'),
  };
}

/** The secure session next to plain UDP on loopback: it needs nothing beyond Node, so it runs unless another --only leaves it out. */
async function sessionSection(opts: BenchOptions, env: Environment, children: ChildRegistry, signal: AbortSignal): Promise<Section> {
  const pinning = choosePinning(opts.pin);
  const description = sessionPinning(pinning);
  progress(`session: ${description}`);
  const result = await runSessionBench({
    durationS: opts.sessionDurationS, warmupS: opts.warmupS, runs: opts.runs, profile: opts.profile,
    pinning: { ...pinning, description }, children, signal, progress,
  });
  const about = `node ${env.node}, Linux ${env.kernel}, ${env.cpus} × ${env.cpu}`;
  return {
    text: `${formatSessionBench(result)}\n${about}`,
    json: { environment: env, session: result },
    failed: result.paths.some((p) => p.status === 'failed'),
  };
}

/** The pinning line in the session section's words: its receiver takes the server CPU, its sender the generator's. */
function sessionPinning(p: Pinning): string {
  return p.server === undefined ? p.description.replace('server and generator', 'receiver and sender') : `taskset: receiver on CPU ${p.server}, sender on CPU ${p.generator ?? '?'}`;
}

/** The STUN throughput section: its text, its JSON and whether a server failed. */
async function throughputSection(
  opts: BenchOptions, env: Environment, children: ChildRegistry, signal: AbortSignal,
): Promise<Section> {
  const gen = prepareGenerator(opts.nodeGenerator, progress);
  const pin = choosePinning(opts.pin);
  progress(`generator: ${gen.label}`);
  progress(pin.description);

  const { results, profileDir } = await measure(opts, gen, pin, children, signal);
  const byId = (id: string): ServerResult | undefined => results.find((r) => r.id === id && r.median !== undefined);
  const natkitVsBare = ratios(byId('natkit'), byId('bare'));
  const natkitVsCoturn = ratios(byId('natkit'), byId('coturn'));
  const profiles = summariseProfiles(profileDir, results);
  const spinning = gen.kind === 'c' && pin.generator !== undefined && opts.spinUs > 0;
  const config = {
    durationS: opts.durationS, warmupS: opts.warmupS, window: opts.window, timeoutMs: opts.timeoutMs, runs: opts.runs,
    fingerprint: opts.fingerprint, generator: gen.kind, generatorLabel: gen.label, pinning: pin.description,
    generatorSpinUs: spinning ? opts.spinUs : 0, profiled: opts.profile,
  };

  const json = {
    config, environment: env, results,
    natkitVsBare, natkitVsCoturn,
    target: { natkitVsBareRps: TARGET_VS_BARE, met: natkitVsBare === undefined ? null : natkitVsBare.rps >= TARGET_VS_BARE },
    profiles,
  };
  const lines: string[] = [];
  lines.push('STUN Binding over UDP loopback (127.0.0.1): one load generator, one server at a time');
  lines.push(`generator: ${gen.label}`);
  lines.push(
    `load: window ${opts.window} in flight, ${opts.durationS} s measured after ${opts.warmupS} s warm-up, timeout ${opts.timeoutMs} ms, ` +
    `${opts.fingerprint ? 'requests with FINGERPRINT' : '20-byte requests (no attributes)'}; ${opts.runs} run${opts.runs > 1 ? 's' : ''} per server, medians shown`,
  );
  lines.push(`pinning: ${pin.description}${spinning ? ` (generator busy-polls up to ${opts.spinUs} µs)` : ''}`);
  lines.push(`node ${env.node}, Linux ${env.kernel}, ${env.cpus} × ${env.cpu}${env.coturn === undefined ? '' : `, coturn ${env.coturn}`}`);
  lines.push('');
  lines.push(formatTable(results));
  lines.push('');
  for (const r of results) lines.push(`  ${r.note}`);
  lines.push('');
  if (natkitVsBare !== undefined) {
    const met = natkitVsBare.rps >= TARGET_VS_BARE;
    lines.push(
      `natkit / bare   : ${natkitVsBare.rps.toFixed(2)}× responses/s (target ≥ ${TARGET_VS_BARE.toFixed(2)}×: ${met ? 'met' : 'NOT met'}), ` +
      `p50 ${natkitVsBare.p50.toFixed(2)}×, p99 ${natkitVsBare.p99.toFixed(2)}×`,
    );
  }
  if (natkitVsCoturn !== undefined) {
    lines.push(`natkit / coturn : ${natkitVsCoturn.rps.toFixed(2)}× responses/s, p50 ${natkitVsCoturn.p50.toFixed(2)}×, p99 ${natkitVsCoturn.p99.toFixed(2)}×`);
  }
  for (const r of results) {
    const m = r.median;
    if (m?.serverCpuPct !== undefined && m.serverCpuPct < 85) {
      lines.push(`note: ${r.id} used only ${m.serverCpuPct.toFixed(0)} % of its CPU: it was not saturated (window or generator bound).`);
    }
    if (m !== undefined && m.lossPct > 0) lines.push(`note: ${r.id} lost ${m.lossPct.toFixed(2)} % of requests (timeout ${opts.timeoutMs} ms).`);
  }
  if (gen.kind === 'node') lines.push('note: Node load generator — every figure is bounded by the generator, not the server.');
  if (opts.profile) lines.push('note: the Node servers ran under --cpu-prof: their figures include the profiler\'s overhead.');
  if (profiles.length > 0) {
    lines.push('');
    for (const p of profiles) lines.push(formatProfile(p), '');
  }
  return { text: lines.join('\n'), json, failed: results.some((r) => r.status === 'failed') };
}

const children = new ChildRegistry();
const controller = new AbortController();
process.on('exit', () => children.killAll());
let interrupts = 0;
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(sig, () => {
    interrupts++;
    progress(`${sig}: stopping every child`);
    children.killAll();
    controller.abort(new Error(`interrupted by ${sig}`));
    if (interrupts > 1) process.exit(130);
  });
}

main(process.argv.slice(2), children, controller.signal).then(
  (code) => {
    process.exitCode = controller.signal.aborted ? 130 : code;
  },
  (err: unknown) => {
    children.killAll();
    if (controller.signal.aborted) {
      process.exitCode = 130;
      return;
    }
    progress(`failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    process.exitCode = 1;
  },
);
