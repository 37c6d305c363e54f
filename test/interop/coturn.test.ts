// Interoperability with coturn (Debian package coturn, which .ci/run installs), on
// loopback with 127.0.0.1 and 127.0.0.2 as the two RFC 5780 §6 addresses:
// 1. natkit's StunClient against coturn's turnserver (--stun-only): Binding over UDP and
//    TCP (RFC 8489 §6.2), RESPONSE-ORIGIN and OTHER-ADDRESS (RFC 5780 §7.3–§7.4),
//    CHANGE-REQUEST (§7.2), an RFC 3489 cookie-less request, FINGERPRINT (RFC 8489 §14.7).
// 2. coturn's turnutils_stunclient and turnutils_natdiscovery against natkit's StunServer
//    (two addresses × two ports): the reflexive, origin and other addresses they print,
//    checked against the sources our server's sockets saw and the server's layout.
// Without coturn every test fails and says what to install; nothing is skipped silently.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  FINGERPRINT, MAPPED_ADDRESS, StunClient, StunServer, XOR_MAPPED_ADDRESS, checkFingerprint,
  type BindingResult, type ServerRole, type StunServerOptions,
} from '../../src/stun/index.ts';
import { endpoint, endpointKey, sameEndpoint, type Endpoint, type Env, type PacketSocket } from '../../src/net/index.ts';
import { nodeEnv } from '../../src/net/node/index.ts';
import { noLeaks } from '../helpers/leaks.ts';
import { reservePorts, type PortReservation } from '../helpers/ports.ts';
import { TestProgram, requireProgram, runProgram } from '../helpers/process.ts';

const A1 = '127.0.0.1';
const A2 = '127.0.0.2';
const INSTALL = 'install coturn (apt-get install coturn; .ci/run installs it in CI)';
/** Start-up of turnserver, and the run of one turnutils tool. */
const READY_MS = 10_000;
const TOOL_MS = 10_000;
/** Loopback answers in well under a millisecond: 100 + 200 + 400 ms before giving up. */
const QUICK = { rtoMs: 100, maxTransmissions: 3, lastWaitMultiplier: 4 } as const;
const ROLES: readonly ServerRole[] = [0, 1, 2, 3];
const ROLE_NAMES = ['A1:P1', 'A1:P2', 'A2:P1', 'A2:P2'] as const;
const env = nodeEnv();

/** RFC 5780 §6.1 table 1: the role answering a request at `role` with these CHANGE-REQUEST flags. */
const changed = (role: ServerRole, changeIp: boolean, changePort: boolean): ServerRole =>
  ((role ^ (changeIp ? 2 : 0)) ^ (changePort ? 1 : 0)) as ServerRole;

const assertOk: (r: BindingResult) => asserts r is Extract<BindingResult, { ok: true }> = (r) => {
  assert.ok(r.ok, `expected a success response, got ${r.ok ? '' : `${r.error.code} ${r.error.reason}`}`);
};

// ---------------------------------------------------------------- 1. natkit → coturn

/** A running turnserver and what it listens on. */
interface Coturn {
  readonly program: TestProgram;
  readonly reservation: PortReservation;
  readonly dir: string;
  /** Endpoints by RFC 5780 role: A1:P1, A1:P2, A2:P1, A2:P2 (UDP and TCP alike). */
  readonly roles: readonly Endpoint[];
}

const escape = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * Starts turnserver as a STUN-only server on A1 and A2 × two reserved ports, its pid file
 * and SQLite database in a temp directory of its own. With two listening addresses coturn
 * switches RFC 5780 on by itself. Ready when -v has logged every UDP and TCP listener and
 * a Binding request is answered; a port lost to another program between the reservation
 * and coturn's bind ("Cannot bind", which coturn retries for ever) means another try.
 */
async function startCoturn(): Promise<Coturn> {
  requireProgram('turnserver', INSTALL);
  const dir = await mkdtemp(join(tmpdir(), 'natkit-coturn-'));
  const failures: string[] = [];
  try {
    for (let attempt = 0; attempt < 3; attempt++) {
      const reservation = await reservePorts({ addresses: [A1, A2], count: 2 });
      const [p1, p2] = reservation.ports as [number, number];
      const pidFile = join(dir, 'turnserver.pid');
      const program = TestProgram.start('turnserver', [
        '-n', '-v', `--listening-ip=${A1}`, `--listening-ip=${A2}`, `--listening-port=${p1}`, `--alt-listening-port=${p2}`,
        '--stun-only', '--no-tls', '--no-dtls', '--no-cli', `--pidfile=${pidFile}`, `--db=${join(dir, 'turndb')}`,
        '--log-file=stdout', '--simple-log',
      ]);
      const roles = [endpoint(A1, p1), endpoint(A1, p2), endpoint(A2, p1), endpoint(A2, p2)];
      const listeners = roles.flatMap((r) => ['UDP', 'TCP'].map((t) => new RegExp(`${t} listener opened on\\s*:\\s*${escape(endpointKey(r))}\\b`)));
      try {
        const outcome = await program.waitFor(
          () => /Cannot bind/.test(program.stdout + program.stderr) ? 'bind-failed' : listeners.every((l) => l.test(program.stdout)) ? 'listening' : undefined,
          { timeoutMs: READY_MS, what: 'its four UDP and four TCP listeners' },
        );
        if (outcome === 'listening') {
          await program.waitFor(() => answers(roles[0]!), { timeoutMs: READY_MS, what: 'a Binding answer' });
          // The pid file names the very process we started, and will stop by its PID.
          assert.equal(Number((await readFile(pidFile, 'utf8')).trim()), program.pid, 'turnserver runs as the process we started');
          return { program, reservation, dir, roles };
        }
        failures.push(program.describe());
      } catch (err) {
        await program.stop();
        await reservation.release();
        throw err;
      }
      await program.stop();
      await reservation.release();
    }
    throw new Error(`turnserver could not bind its ports in 3 tries:\n${failures.join('\n\n')}`);
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}

/** True when a Binding request to `to` gets a success response. */
async function answers(to: Endpoint): Promise<true | undefined> {
  await using client = await StunClient.create({ env, server: to, localAddress: A1, ...QUICK, maxTransmissions: 1 });
  const r = await client.binding().catch(() => undefined);
  return r?.ok === true ? true : undefined;
}

describe('natkit StunClient → coturn turnserver', () => {
  let coturn: Coturn | undefined;
  before(async () => {
    coturn = await startCoturn();
  });
  after(async () => {
    if (coturn === undefined) return;
    const { program, reservation, dir } = coturn;
    await program.stop();
    await reservation.release();
    await rm(dir, { recursive: true, force: true });
  });

  const role = (i: ServerRole): Endpoint => {
    assert.ok(coturn, 'turnserver started');
    return coturn.roles[i]!;
  };
  const udpClient = (): Promise<StunClient> => StunClient.create({ env, server: role(0), localAddress: A1, ...QUICK });

  test('UDP Binding: XOR-MAPPED-ADDRESS is our socket\'s local endpoint', noLeaks(async () => {
    await using client = await udpClient();
    const r = await client.binding();
    assertOk(r);
    assert.equal(r.isXorMapped, true);
    assert.deepEqual(r.mapped, client.local);
    // coturn adds MAPPED-ADDRESS for old clients (RFC 8489 §14.1); it must say the same.
    assert.deepEqual(r.message.get(MAPPED_ADDRESS), client.local);
    assert.deepEqual(r.from, role(0));
    assert.match(r.software ?? '', /^Coturn-/);
    assert.equal(r.transmissions, 1);
  }));

  test('TCP Binding: XOR-MAPPED-ADDRESS is our connection\'s local endpoint; RESPONSE-ORIGIN and OTHER-ADDRESS', noLeaks(async () => {
    await using client = await StunClient.create({ env, server: role(0), transport: 'tcp', localAddress: A1 });
    const r = await client.binding();
    assertOk(r);
    assert.deepEqual(r.mapped, client.local);
    assert.equal(r.isXorMapped, true);
    assert.deepEqual(r.responseOrigin, role(0));
    assert.deepEqual(r.otherAddress, role(3));
  }));

  test('TCP CHANGE-REQUEST: a 400 error response, as a value, its reason free of coturn\'s NUL padding', noLeaks(async () => {
    await using client = await StunClient.create({ env, server: role(0), transport: 'tcp', localAddress: A1 });
    const r = await client.binding({ changeRequest: { changeIp: true, changePort: false } });
    assert.ok(!r.ok, 'the filtering tests that use CHANGE-REQUEST are UDP only (RFC 5780 §3.2)');
    assert.equal(r.error.code, 400);
    assert.match(r.error.reason, /UDP/);
    assert.doesNotMatch(r.error.reason, /\0/);
  }));

  for (const i of ROLES) {
    test(`RFC 5780 at ${ROLE_NAMES[i]}: RESPONSE-ORIGIN is where the answer came from; OTHER-ADDRESS the other address and port`, noLeaks(async () => {
      await using client = await udpClient();
      const r = await client.binding({ to: role(i) });
      assertOk(r);
      assert.deepEqual(r.mapped, client.local);
      assert.deepEqual(r.from, role(i));
      assert.deepEqual(r.responseOrigin, role(i));
      assert.ok(r.otherAddress, 'OTHER-ADDRESS present (two listening addresses)');
      if (i < 2) {
        assert.deepEqual(r.otherAddress, role((i ^ 3) as ServerRole));
      } else {
        // coturn 4.6.1's get_alt_addr (netengine.c) takes the listener after the *first*
        // one of the family as the alternate, whatever address the request came to: at A2
        // it names A2 again, with the other port. RFC 5780 §7.4 wants A1; accept either.
        const allowed = [role((i ^ 3) as ServerRole), role((i ^ 1) as ServerRole)];
        assert.ok(allowed.some((e) => sameEndpoint(e, r.otherAddress!)), `OTHER-ADDRESS ${endpointKey(r.otherAddress)} is one of ${allowed.map(endpointKey).join(', ')}`);
      }
    }));
  }

  for (const start of [0, 1] as const) {
    for (const [changeIp, changePort] of [[false, false], [true, false], [false, true], [true, true]] as const) {
      const via = changed(start, changeIp, changePort);
      test(`CHANGE-REQUEST at ${ROLE_NAMES[start]} (ip ${changeIp}, port ${changePort}): answered from ${ROLE_NAMES[via]}`, noLeaks(async () => {
        await using client = await udpClient();
        const plain = await client.binding({ to: role(start) });
        assertOk(plain);
        const r = await client.binding({ to: role(start), changeRequest: { changeIp, changePort } });
        assertOk(r);
        assert.deepEqual(r.from, role(via), 'the datagram came from the changed address and port');
        assert.deepEqual(r.responseOrigin, r.from);
        assert.deepEqual(r.mapped, client.local);
        // RFC 5780 §7.4: OTHER-ADDRESS is where "change IP and change port" answers from.
        if (changeIp && changePort) assert.deepEqual(r.from, plain.otherAddress);
      }));
    }
  }

  test('RFC 3489 request without the magic cookie: MAPPED-ADDRESS, SOURCE-ADDRESS, CHANGED-ADDRESS', noLeaks(async () => {
    await using client = await udpClient();
    const r = await client.binding({ legacy: true });
    assertOk(r);
    assert.equal(r.message.isLegacy, true, 'answered in RFC 3489 form');
    assert.equal(r.message.transactionId.length, 16);
    assert.equal(r.message.has(XOR_MAPPED_ADDRESS), false);
    assert.equal(r.isXorMapped, false);
    assert.deepEqual(r.mapped, client.local);
    assert.deepEqual(r.responseOrigin, role(0), 'SOURCE-ADDRESS');
    assert.deepEqual(r.otherAddress, role(3), 'CHANGED-ADDRESS');
    const moved = await client.binding({ legacy: true, changeRequest: { changeIp: true, changePort: true } });
    assertOk(moved);
    assert.deepEqual(moved.from, role(3));
    assert.deepEqual(moved.mapped, client.local);
  }));

  test('FINGERPRINT: coturn echoes it for a request that has one, and it validates', noLeaks(async () => {
    await using client = await udpClient();
    const r = await client.binding({ fingerprint: true });
    assertOk(r);
    assert.equal(r.message.has(FINGERPRINT), true);
    assert.equal(checkFingerprint(r.message), 'ok');
    const plain = await client.binding();
    assertOk(plain);
    if (plain.message.has(FINGERPRINT)) assert.equal(checkFingerprint(plain.message), 'ok');
    assert.equal(client.stats.badFingerprint, 0);
  }));
});

// ---------------------------------------------------------------- 2. coturn → natkit

/** A datagram a server socket received: who sent it, to which socket. */
interface Seen {
  readonly from: Endpoint;
  readonly at: Endpoint;
}

/** `socket`, with the source of every datagram it delivers recorded in `seen`. */
function recording(socket: PacketSocket, seen: Seen[]): PacketSocket {
  return {
    get local() {
      return socket.local;
    },
    get closed() {
      return socket.closed;
    },
    get stats() {
      return socket.stats;
    },
    send: (data, to) => socket.send(data, to),
    onPacket: (handler) => socket.onPacket(handler && ((data, from) => {
      seen.push({ from, at: socket.local });
      handler(data, from);
    })),
    close: () => socket.close(),
    [Symbol.asyncDispose]: () => socket.close(),
  };
}

/** The real Env whose UDP sockets record what they receive. */
function recordingEnv(seen: Seen[]): Env {
  const base = nodeEnv();
  return {
    ...base,
    network: {
      bindUdp: async (options) => recording(await base.network.bindUdp(options), seen),
      listenStream: (options, onConnection) => base.network.listenStream(options, onConnection),
      connectStream: (to, options) => base.network.connectStream(to, options),
    },
  };
}

/** One response as a turnutils tool prints it. */
interface Printed {
  readonly origin?: Endpoint;
  readonly other?: Endpoint;
  readonly reflexive?: Endpoint;
  readonly local?: Endpoint;
}

const FIELDS = { 'Response origin': 'origin', 'Other addr': 'other', 'UDP reflexive addr': 'reflexive', 'Local addr': 'local' } as const;

/**
 * The responses in a turnutils_stunclient or turnutils_natdiscovery output: each RFC 5780
 * one under "RFC 5780 response N", a classic one (no OTHER-ADDRESS) without a header.
 * Lines look like "0: : IPv4. Response origin: : 127.0.0.1:3478"; coturn's logger prints
 * its first line twice, so a repeated field must repeat its value.
 */
function parsePrinted(stdout: string): Printed[] {
  const out: Partial<Record<(typeof FIELDS)[keyof typeof FIELDS], Endpoint>>[] = [];
  let current: (typeof out)[number] | undefined;
  for (const line of stdout.split('\n')) {
    if (/^RFC 5780 response \d+$/.test(line.trim())) {
      current = {};
      out.push(current);
      continue;
    }
    const m = /(Response origin|Other addr|UDP reflexive addr|Local addr):[\s:]*(\d+\.\d+\.\d+\.\d+):(\d+)\s*$/.exec(line);
    if (m === null) continue;
    if (current === undefined) {
      current = {};
      out.push(current);
    }
    const field = FIELDS[m[1] as keyof typeof FIELDS];
    const value = endpoint(m[2]!, Number(m[3]));
    const before = current[field];
    if (before !== undefined) assert.deepEqual(value, before, `"${m[1]}" printed twice with different values`);
    current[field] = value;
  }
  return out;
}

/** natdiscovery's verdict lines ("No NAT! …", "NAT with … Mapping!"). */
const verdicts = (stdout: string): string[] => stdout.split('\n').map((l) => l.trim()).filter((l) => /^(No NAT!|NAT with )/.test(l));

describe('coturn turnutils → natkit StunServer', () => {
  const seen: Seen[] = [];
  let server: StunServer | undefined;
  const start = (o: Partial<StunServerOptions> = {}): Promise<StunServer> =>
    StunServer.create({ env: recordingEnv(seen), addresses: [A1, A2], ports: [0, 0], tcp: false, rateLimit: false, ...o });
  before(async () => {
    requireProgram('turnutils_stunclient', INSTALL);
    server = await start();
  });
  after(async () => {
    await server?.close();
  });

  const role = (i: ServerRole, s: StunServer | undefined = server): Endpoint => {
    assert.ok(s, 'natkit server started');
    const e = s.endpoints.find((x) => x.transport === 'udp' && x.role === i);
    assert.ok(e, `server listens on UDP ${ROLE_NAMES[i]}`);
    return e.local;
  };

  /** Runs a tool, expecting exit code 0; `seen` starts empty. */
  const tool = async (command: string, args: readonly string[]): Promise<string> => {
    seen.length = 0;
    const { status, stdout, stderr } = await runProgram(command, args, { timeoutMs: TOOL_MS });
    assert.deepEqual(status, { code: 0, signal: null }, `${command} ${args.join(' ')}\n--- stdout ---\n${stdout}\n--- stderr ---\n${stderr}`);
    return stdout;
  };

  for (const forced of [false, true]) {
    for (const i of ROLES) {
      const other = (i ^ 3) as ServerRole;
      test(`turnutils_stunclient ${forced ? '-f ' : ''}→ ${ROLE_NAMES[i]}: reflexive addresses and our layout`, noLeaks(async () => {
        const to = role(i);
        const stdout = await tool('turnutils_stunclient', [...(forced ? ['-f'] : []), '-p', String(to.port), to.address]);
        // With OTHER-ADDRESS in the first answer the tool goes on by itself (-f forces it):
        // 2. RESPONSE-PORT (its port + 1) with CHANGE-REQUEST IP and port, read on a second
        //    socket at that port; 3. from that second socket, PADDING with the same change.
        const printed = parsePrinted(stdout);
        assert.equal(printed.length, 3, `three RFC 5780 responses:\n${stdout}`);
        assert.equal(seen.length, 3, 'three requests reached the server');
        const [first, second, third] = printed as [Printed, Printed, Printed];
        assert.deepEqual(seen.map((s) => s.at), [to, to, to]);
        assert.deepEqual(first, { origin: to, other: role(other), reflexive: seen[0]!.from });
        assert.deepEqual(second, { origin: role(other), other: role(other), reflexive: seen[1]!.from });
        assert.deepEqual(third, { origin: role(other), other: role(other), reflexive: seen[2]!.from });
        assert.deepEqual(seen[1]!.from, seen[0]!.from, 'the second request left from the first socket');
        assert.equal(seen[2]!.from.port, seen[0]!.from.port + 1, 'the third from the RESPONSE-PORT socket');
        assert.ok(stdout.split('\n').every((l) => !/error|not a|Cannot|Wrong/.test(l)), stdout);
      }));
    }
  }

  test('turnutils_stunclient → a one-address natkit server: a classic answer, no RFC 5780 part', noLeaks(async () => {
    await using one = await start({ addresses: [A1], ports: [0] });
    const to = role(0, one);
    const stdout = await tool('turnutils_stunclient', ['-p', String(to.port), to.address]);
    assert.doesNotMatch(stdout, /RFC 5780 response/);
    assert.equal(seen.length, 1);
    assert.deepEqual(parsePrinted(stdout), [{ reflexive: seen[0]!.from }]);
  }));

  for (const padding of [false, true]) {
    test(`turnutils_natdiscovery -m -f${padding ? ' -P' : ''}: endpoint-independent mapping and filtering, no NAT`, noLeaks(async () => {
      requireProgram('turnutils_natdiscovery', INSTALL);
      assert.ok(server, 'natkit server started');
      const padded = server.stats.padded;
      await using local = await reservePorts({ addresses: [A1], count: 1 });
      const mine = endpoint(A1, local.ports[0]!);
      const stdout = await tool('turnutils_natdiscovery', [
        '-m', '-f', ...(padding ? ['-P'] : []), '-L', A1, '-l', String(mine.port), '-p', String(role(0).port), A1,
      ]);
      assert.deepEqual(verdicts(stdout), [
        'No NAT! (Endpoint Independent Mapping)', 'NAT with Endpoint Independent Mapping!',
        'No NAT! (Endpoint Independent Mapping)', 'NAT with Endpoint Independent Filtering!',
      ], stdout);
      assert.doesNotMatch(stdout, /timeout|ALG detected/);
      assert.equal(stdout.match(/No ALG: Mapped == XOR-Mapped/g)?.length, 4, 'MAPPED-ADDRESS agrees with XOR-MAPPED-ADDRESS in every answer');
      // RFC 5780 §4.3 mapping tests I and II (to A1:P1, then to A2:P1) from our -l port;
      // §4.4 filtering tests I and II (change IP and port) from a fresh socket.
      const printed = parsePrinted(stdout);
      assert.equal(seen.length, 4);
      const fresh = seen[2]!.from;
      assert.deepEqual(printed, [
        { origin: role(0), other: role(3), reflexive: mine, local: mine },
        { origin: role(2), other: role(1), reflexive: mine, local: mine },
        { origin: role(0), other: role(3), reflexive: fresh, local: fresh },
        { origin: role(3), other: role(3), reflexive: fresh, local: fresh },
      ], stdout);
      assert.deepEqual(seen.map((s) => [s.from, s.at]), [[mine, role(0)], [mine, role(2)], [fresh, role(0)], [fresh, role(0)]]);
      assert.equal(server.stats.padded - padded, padding ? 4 : 0, 'PADDING answered in kind (RFC 5780 §7.6)');
    }));
  }
});
