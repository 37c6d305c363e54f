// Command-line options of `npm run bench` (bench/run.ts).
import { parseArgs } from 'node:util';
import type { NatPreset } from '../../test/lab/lib/nat-rules.ts';
import { CHECK_NATS, DEFAULT_CHECK_NATS } from './nat-check.ts';

/** Servers the benchmark knows, in the order they run. */
export const SERVER_IDS = ['bare', 'natkit', 'natkit-nolimit', 'coturn'] as const;
export type ServerId = (typeof SERVER_IDS)[number];
/** What runs when --only is not given. */
export const DEFAULT_SERVERS: readonly ServerId[] = ['bare', 'natkit', 'coturn'];
/** The NAT discovery section's name in --only. */
export const CHECK_SECTION = 'check';
/** The TURN relay section's name in --only. */
export const TURN_SECTION = 'turn';
/** The NAT matrix section's name in --only. */
export const PUNCH_SECTION = 'punch';
/** The secure session vs plain UDP section's name in --only. */
export const SESSION_SECTION = 'session';
/** The sections besides STUN throughput, by their name in --only. */
const SECTIONS = [CHECK_SECTION, TURN_SECTION, PUNCH_SECTION, SESSION_SECTION] as const;
/** Measured seconds per case of the session section when --duration-s is not given (8 cases per run). */
export const SESSION_DEFAULT_DURATION_S = 1;

/** Everything a run is configured by. */
export interface BenchOptions {
  /** Machine-readable output on stdout. @default false */
  readonly json: boolean;
  /** Measured interval per server and run, seconds. @default 3 */
  readonly durationS: number;
  /** Warm-up before it (answers not counted), seconds. @default 0.5 */
  readonly warmupS: number;
  /** Requests kept in flight. @default 128 */
  readonly window: number;
  /** A request unanswered this long is lost, milliseconds. @default 200 */
  readonly timeoutMs: number;
  /** Runs per server; the table shows medians. @default 3 */
  readonly runs: number;
  /** Servers to measure. @default bare, natkit, coturn */
  readonly only: readonly ServerId[];
  /**
   * The NAT discovery section (natkit check vs turnutils_natdiscovery in the namespace
   * lab): 'on' when --only names it, 'auto' (run when root, else say skipped) without
   * --only, 'off' otherwise. @default 'auto'
   */
  readonly check: 'on' | 'auto' | 'off';
  /**
   * The TURN relay section (natkit TurnServer vs coturn, bench/lib/turn.ts): 'on' when --only
   * names it, 'auto' (run when the load tool builds, else say skipped) without --only, 'off'
   * otherwise. @default 'auto'
   */
  readonly turn: 'on' | 'auto' | 'off';
  /**
   * The NAT matrix section (natkit connect between kernel NATs in the namespace lab,
   * bench/lib/punch.ts): 'on' when --only names it, 'auto' (run when root, else say
   * skipped) without --only, 'off' otherwise. @default 'auto'
   */
  readonly punch: 'on' | 'auto' | 'off';
  /**
   * The secure session vs plain UDP section (bench/lib/session.ts): 'on' when --only names
   * it, 'auto' (it needs nothing, so it runs) without --only, 'off' otherwise. @default 'auto'
   */
  readonly session: 'on' | 'auto' | 'off';
  /** Measured seconds per case of the session section: --duration-s when given, else 1. */
  readonly sessionDurationS: number;
  /** Lab NAT presets the NAT discovery section runs on. @default port-restricted-cone, symmetric */
  readonly checkNats: readonly NatPreset[];
  /** Requests carry FINGERPRINT (RFC 8489 §14.7), as ICE agents send them. @default false */
  readonly fingerprint: boolean;
  /** Generator busy-polls this long before sleeping, µs (only when pinned). @default 1000 */
  readonly spinUs: number;
  /** Pin server and generator to separate CPUs with taskset when possible. @default true */
  readonly pin: boolean;
  /** Force the Node load generator even when cc works. @default false */
  readonly nodeGenerator: boolean;
  /** Run the Node servers under --cpu-prof and print where the time goes. @default false */
  readonly profile: boolean;
  readonly help: boolean;
}

export const USAGE = `usage: npm run bench -- [options]

STUN Binding throughput over UDP loopback: one load generator against several servers
(one at a time, each on its own CPU when taskset is available), then a table with
responses/s, loss, p50/p99 latency and the ratio of each to the bare Node responder.
Then NAT discovery in the namespace lab (needs root, else skipped): time and packets of
\`natkit check\` and coturn's \`turnutils_natdiscovery -m -f -H\` behind kernel NATs.
Then TURN relay throughput (100- and 1000-byte ChannelData) and memory per allocation of
natkit's TurnServer and coturn, with one native load tool (needs cc and libcrypto).
Then the NAT matrix in the namespace lab (needs root, else skipped): two peers behind every
pair of kernel NATs connect through \`natkit serve\`: outcome, path, time, packets.
Then the secure session vs plain UDP on loopback (two child processes): messages/s and MB/s
of 100 B, 1000 B and 16 KiB messages and the round trip of a 100 B message, with ratios.

options:
  --only LIST        servers, comma-separated: ${SERVER_IDS.join(', ')}; and/or
                     ${CHECK_SECTION} for NAT discovery, ${TURN_SECTION} for the TURN relay, ${PUNCH_SECTION} for the NAT matrix,
                     ${SESSION_SECTION} for the secure session vs plain UDP
                     (default ${DEFAULT_SERVERS.join(',')}, ${TURN_SECTION}, ${SESSION_SECTION}, plus ${CHECK_SECTION} and ${PUNCH_SECTION} when root)
  --check-nats LIST  lab NATs for ${CHECK_SECTION}: ${CHECK_NATS.join(', ')}
                     (default ${DEFAULT_CHECK_NATS.join(',')})
  --duration-s N     measured seconds per run (default 3; ${SESSION_SECTION}: per case, default ${SESSION_DEFAULT_DURATION_S})
  --warmup-s N       warm-up seconds before each measurement (default 0.5)
  --window N         requests in flight (default 128)
  --timeout-ms N     a request unanswered this long is lost (default 200)
  --runs N           runs per server (and per program and NAT, and per pair); medians shown (default 3);
                     ${TURN_SECTION} uses --duration-s, --warmup-s, --timeout-ms and --runs too, and --window
                     for the datagrams in flight; ${SESSION_SECTION} uses --duration-s, --warmup-s, --runs, --profile
  --fingerprint      requests carry FINGERPRINT
  --spin-us N        generator busy-polls N µs before sleeping, when pinned (default 1000)
  --no-pin           do not pin with taskset
  --node-generator   use the Node load generator instead of the native one
  --profile          run the Node servers under --cpu-prof and summarise where
                     their time goes (profiles kept in bench/native/build/profiles/)
  --json             machine-readable results on stdout
  -h, --help         this text
`;

/** A usage error: exit code 2. */
export class UsageError extends Error {}

function num(name: string, text: string | undefined, fallback: number, min: number, max: number, integer = false): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!Number.isFinite(n) || n < min || n > max || (integer && !Number.isInteger(n))) {
    throw new UsageError(`--${name}: expected ${integer ? 'an integer' : 'a number'} in ${min}–${max}, got "${text}"`);
  }
  return n;
}

/** Parses argv; throws UsageError. */
export function parseBenchArgs(argv: readonly string[]): BenchOptions {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: false,
      options: {
        json: { type: 'boolean', default: false },
        'duration-s': { type: 'string' },
        'warmup-s': { type: 'string' },
        window: { type: 'string' },
        'timeout-ms': { type: 'string' },
        runs: { type: 'string' },
        only: { type: 'string' },
        'check-nats': { type: 'string' },
        fingerprint: { type: 'boolean', default: false },
        'spin-us': { type: 'string' },
        'no-pin': { type: 'boolean', default: false },
        'node-generator': { type: 'boolean', default: false },
        profile: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const v = parsed.values;
  let only: ServerId[] = [...DEFAULT_SERVERS];
  const sections: Record<(typeof SECTIONS)[number], 'on' | 'auto' | 'off'> = { check: 'auto', turn: 'auto', punch: 'auto', session: 'auto' };
  if (v.only !== undefined) {
    only = [];
    for (const section of SECTIONS) sections[section] = 'off';
    for (const name of v.only.split(',').map((s) => s.trim()).filter((s) => s !== '')) {
      const section = SECTIONS.find((s) => s === name);
      if (section !== undefined) {
        sections[section] = 'on';
        continue;
      }
      const id = SERVER_IDS.find((s) => s === name);
      if (id === undefined) throw new UsageError(`--only: expected some of ${[...SERVER_IDS, ...SECTIONS].join(', ')}, got "${name}"`);
      if (!only.includes(id)) only.push(id);
    }
    if (only.length === 0 && SECTIONS.every((s) => sections[s] === 'off')) throw new UsageError(`--only: expected at least one server, ${SECTIONS.join(', ')}`);
    only.sort((a, b) => SERVER_IDS.indexOf(a) - SERVER_IDS.indexOf(b));
  }
  const checkNats: NatPreset[] = [];
  for (const name of (v['check-nats'] ?? DEFAULT_CHECK_NATS.join(',')).split(',').map((s) => s.trim()).filter((s) => s !== '')) {
    const nat = CHECK_NATS.find((p) => p === name);
    if (nat === undefined) throw new UsageError(`--check-nats: expected some of ${CHECK_NATS.join(', ')}, got "${name}"`);
    if (!checkNats.includes(nat)) checkNats.push(nat);
  }
  if (checkNats.length === 0) throw new UsageError('--check-nats: expected at least one NAT');
  const durationS = num('duration-s', v['duration-s'], 3, 0.1, 600);
  return {
    json: v.json,
    durationS,
    warmupS: num('warmup-s', v['warmup-s'], 0.5, 0, 60),
    window: num('window', v.window, 128, 1, 65536, true),
    timeoutMs: num('timeout-ms', v['timeout-ms'], 200, 1, 4000, true),
    runs: num('runs', v.runs, 3, 1, 50, true),
    only,
    ...sections,
    sessionDurationS: v['duration-s'] === undefined ? SESSION_DEFAULT_DURATION_S : durationS,
    checkNats,
    fingerprint: v.fingerprint,
    spinUs: num('spin-us', v['spin-us'], 1000, 0, 1_000_000, true),
    pin: !v['no-pin'],
    nodeGenerator: v['node-generator'],
    profile: v.profile,
    help: v.help,
  };
}
