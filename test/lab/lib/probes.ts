// natkit and coturn inside lab namespaces, as child processes: the STUN server runner
// (test/lab/bin/stun-server.ts), the Binding query runner (test/lab/bin/stun-query.ts)
// and coturn's turnserver; plus the JSON both runners print, typed.
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Endpoint } from '../../../src/net/index.ts';
import type { ChangeRequest } from '../../../src/stun/index.ts';
import { waitForLine, type Child } from '../../../bench/lib/children.ts';
import { assertLabAvailable } from './command.ts';
import type { Host, Lab } from './topology.ts';

const BIN = fileURLToPath(new URL('../bin/', import.meta.url));
const READY_MS = 10_000;
/** waitForLine wants a signal; its own timeout bounds the wait. */
const NEVER = new AbortController().signal;

/** One step of a query run, all on one socket. */
export type QueryStep =
  /** A Binding request to `to`, optionally with CHANGE-REQUEST. */
  | { readonly kind: 'binding'; readonly to: Endpoint; readonly change?: ChangeRequest }
  /** A datagram to the mapped address of the last successful Binding: does it come back (RFC 4787 REQ-9)? */
  | { readonly kind: 'hairpin' };

/** What one step measured. */
export type StepResult =
  | {
    readonly kind: 'binding'; readonly to: Endpoint; readonly change: ChangeRequest | undefined; readonly ok: true;
    readonly mapped: Endpoint; readonly from: Endpoint; readonly otherAddress: Endpoint | undefined;
    readonly software: string | undefined; readonly transmissions: number;
  }
  /** An error response (`error`: its code) or a failure (`error`: ERR_TIMEOUT, …). */
  | { readonly kind: 'binding'; readonly to: Endpoint; readonly change: ChangeRequest | undefined; readonly ok: false; readonly error: string; readonly message: string }
  | { readonly kind: 'hairpin'; readonly to: Endpoint | undefined; readonly received: boolean; readonly from: Endpoint | undefined };

/** The query runner's output. */
export interface QueryReport {
  /** The socket every step used. */
  readonly local: Endpoint;
  readonly steps: readonly StepResult[];
}

/** The STUN server runner's ready line. */
export interface ServerReady {
  readonly ready: true;
  readonly endpoints: readonly { readonly role: number; readonly local: Endpoint }[];
}

/** Timers of a query run. */
export interface QueryOptions {
  /** First retransmission timeout. @default 100 */
  readonly rtoMs?: number;
  /** Transmissions per request; the last waits 2 × rtoMs. @default 3 */
  readonly transmissions?: number;
  /** How long a hairpin datagram may take. @default 300 */
  readonly hairpinWaitMs?: number;
  /** Local port (0: the system chooses). @default 0 */
  readonly port?: number;
}

/** A running natkit STUN server in a lab host. */
export interface LabStunServer {
  readonly child: Child;
  /** Endpoints by role: A1:P1, A1:P2, A2:P1, A2:P2 (RFC 5780 §6). */
  readonly endpoints: readonly Endpoint[];
  stop(): Promise<void>;
}

/** Starts natkit's StunServer (UDP) on the host's first two addresses × `ports`. */
export async function startStunServer(lab: Lab, host: Host, ports: readonly [number, number] = [3478, 3479]): Promise<LabStunServer> {
  const addresses = host.addresses.slice(0, 2);
  const child = lab.spawn(host.ns, 'stun-server', process.execPath, [
    join(BIN, 'stun-server.ts'), '--addresses', addresses.join(','), '--ports', ports.join(','),
  ]);
  try {
    const ready = await waitForLine(child, (line) => parseJson<ServerReady>(line, (v) => v.ready === true), READY_MS, NEVER);
    const endpoints = [...ready.endpoints].sort((a, b) => a.role - b.role).map((e) => e.local);
    return { child, endpoints, stop: () => lab.stop(child) };
  } catch (err) {
    await lab.stop(child);
    throw err;
  }
}

/** Runs `steps` on one fresh socket bound to the host's address and returns what each measured. */
export async function stunQuery(lab: Lab, host: Host, steps: readonly QueryStep[], options: QueryOptions = {}): Promise<QueryReport> {
  const rtoMs = options.rtoMs ?? 100;
  const transmissions = options.transmissions ?? 3;
  const hairpinWaitMs = options.hairpinWaitMs ?? 300;
  const child = lab.spawn(host.ns, 'stun-query', process.execPath, [
    join(BIN, 'stun-query.ts'), '--bind', host.address, '--port', String(options.port ?? 0), '--rto-ms', String(rtoMs),
    '--transmissions', String(transmissions), '--hairpin-wait-ms', String(hairpinWaitMs), '--plan', JSON.stringify(steps),
  ]);
  // Bounded: start-up, plus every step waiting its whole schedule.
  const limitMs = READY_MS + steps.length * (rtoMs * (2 ** transmissions) + hairpinWaitMs);
  const timer = setTimeout(() => void lab.stop(child, 0), limitMs);
  try {
    const status = await child.exited;
    if (status !== 0) throw new Error(`stun-query in ${host.ns.role} ended with ${status} (limit ${limitMs} ms): ${child.stderrTail().trim() || 'no stderr'}`);
    const report = child.lines.map((l) => parseJson<QueryReport>(l, (v) => Array.isArray(v.steps))).find((r) => r !== undefined);
    if (report === undefined) throw new Error(`stun-query in ${host.ns.role} printed no report: ${child.lines.join('\n')}`);
    return report;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Sends one datagram from a fresh port of `host` to `to` (`ADDR:PORT`) with
 * test/lab/bin/udp-probe.ts: the answer's text, or null when none came (a fresh port, so
 * no earlier conntrack entry lets it through).
 */
export async function udpProbe(lab: Lab, host: Host, to: string, payload: string): Promise<string | null> {
  const child = lab.spawn(host.ns, 'udp-probe', process.execPath, [join(BIN, 'udp-probe.ts'), '--to', to, '--payload', payload]);
  const status = await child.exited;
  if (status !== 0) throw new Error(`udp-probe in ${host.ns.role} ended with ${status}: ${child.stderrTail().trim() || 'no stderr'}`);
  const answer = child.lines.map((l) => parseJson<{ reply: string | null }>(l, (v) => 'reply' in v)).find((r) => r !== undefined);
  if (answer === undefined) throw new Error(`udp-probe in ${host.ns.role} printed no answer: ${child.lines.join('\n')}`);
  return answer.reply;
}

/** A running coturn turnserver in a lab host. */
export interface LabCoturn {
  readonly child: Child;
  /** Primary and alternate listening endpoint (A1:P1, A2:P2). */
  readonly primary: Endpoint;
  readonly alternate: Endpoint;
  stop(): Promise<void>;
}

/**
 * Starts coturn on the host's first two addresses (RFC 5780 mode switches itself on with
 * two listening addresses), UDP and TCP, no TLS/DTLS/CLI, its own pid file and database
 * in the lab's temp directory (shared/lab/NAT-RECIPES.md "coturn as a reference server").
 */
export async function startCoturn(lab: Lab, host: Host, ports: readonly [number, number] = [3490, 3491]): Promise<LabCoturn> {
  const [a1, a2] = host.addresses;
  if (a1 === undefined || a2 === undefined) throw new Error(`coturn needs two addresses, ${host.ns.role} has ${host.addresses.join(', ')}`);
  assertLabAvailable({ tools: [['turnserver', 'coturn']] });
  const dir = lab.tempDir();
  const child = lab.spawn(host.ns, 'turnserver', 'turnserver', [
    '-n', '-v', `--listening-ip=${a1}`, `--listening-ip=${a2}`, `--listening-port=${ports[0]}`, `--alt-listening-port=${ports[1]}`,
    '--min-port=49152', '--max-port=49999', '--lt-cred-mech', '--user=lab:labpass', '--realm=lab', '--fingerprint',
    '--no-tls', '--no-dtls', '--no-cli', `--userdb=${join(dir, `turndb-${host.ns.role}`)}`, `--pidfile=${join(dir, `turnserver-${host.ns.role}.pid`)}`,
    '--log-file=stdout', '--simple-log',
  ]);
  try {
    // With -v coturn logs each UDP listener it opens ("IPv4. UDP listener opened on: A:P").
    for (const address of [a1, a2]) {
      for (const port of ports) {
        const want = `UDP listener opened on: ${address}:${port}`;
        await waitForLine(child, (line) => (line.includes(want) ? true : undefined), READY_MS, NEVER);
      }
    }
    return {
      child,
      primary: { address: a1, port: ports[0], family: 4 },
      alternate: { address: a2, port: ports[1], family: 4 },
      stop: () => lab.stop(child),
    };
  } catch (err) {
    await lab.stop(child);
    throw err;
  }
}

/** `line` as JSON when it is an object that `accept` takes, else undefined. */
export function parseJson<T>(line: string, accept: (v: Partial<T> & Record<string, unknown>) => boolean): T | undefined {
  try {
    const v = JSON.parse(line) as unknown;
    return typeof v === 'object' && v !== null && accept(v as Partial<T> & Record<string, unknown>) ? (v as T) : undefined;
  } catch {
    return undefined;
  }
}
