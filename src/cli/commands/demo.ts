// `natkit demo`: the whole story in the simulated world (net/sim), with no root and no
// setup: `natkit serve` on a server host, two peers behind the NAT presets chosen, each
// measuring its NAT, allocating a relay and registering from one socket, the PUNCH order
// and the plan for the pair, the path they get, a few messages, and with --trace every
// packet. Virtual time: it takes seconds of simulated time and well under one real second.
import { World } from '../../net/sim/index.ts';
import { PRESETS, connect, expectedOutcome, isPreset, presetHost, type ConnectAgent, type ConnectOptions, type PeerConnection, type Preset } from '../../punch/index.ts';
import { identityFromSeed } from '../../rendezvous/index.ts';
import { NatkitError } from '../../util/index.ts';
import { EXIT_FAILURE, EXIT_OK, UsageError, flag, intOption, stringOption, type Command, type CommandContext } from '../command.ts';
import { connectionJson, progressLine } from '../peer-session.ts';
import { SIM_SERVER_ADDRESSES, SIM_TURN_USER, startSimServe, type SimServe } from '../sim-serve.ts';
import { COMMAND_SUMMARIES } from './summaries.ts';

const DEFAULT_A: Preset = 'symmetric-seq';
const DEFAULT_B: Preset = 'port-restricted';
/** Messages each way. */
const MESSAGES = 3;

export const demoCommand: Command = {
  name: 'demo',
  summary: COMMAND_SUMMARIES['demo'],
  usage: '[--a PRESET] [--b PRESET] [--seed N] [--json] [--trace]',
  options: {
    a: { type: 'string', valueName: 'PRESET', default: DEFAULT_A, description: 'NAT in front of alice (who dials)' },
    b: { type: 'string', valueName: 'PRESET', default: DEFAULT_B, description: 'NAT in front of bob (who listens)' },
    seed: { type: 'string', valueName: 'N', default: '1', description: 'seed of the simulated world: the same seed prints the same run' },
    json: { type: 'boolean', description: 'print each step and the result as JSON lines' },
    trace: { type: 'boolean', description: 'print the packet trace (the last 2000 packet events) at the end' },
  },
  details: [
    `Presets: ${PRESETS.join(', ')}.`,
    'Expected paths for every pair: docs/punch.md, "The NAT matrix". Times are virtual milliseconds.',
    '',
    'Examples:',
    '  natkit demo',
    '  natkit demo --a symmetric-random --b symmetric-random     # no port can be predicted: the TURN relay',
    '  natkit demo --a port-restricted --b symmetric-random --trace',
    '',
    'Exit code 0 when the pair got the path the matrix expects, 1 otherwise.',
  ].join('\n'),

  async run(ctx) {
    const a = presetOption(ctx, 'a');
    const b = presetOption(ctx, 'b');
    const seed = intOption(ctx, 'seed', 0, 2 ** 31 - 1) ?? 1;
    const world = new World({ seed });
    try {
      return await story(ctx, world, a, b, seed);
    } finally {
      await world.close();
    }
  },
};

function presetOption(ctx: CommandContext, name: 'a' | 'b'): Preset {
  const value = stringOption(ctx, name) ?? (name === 'a' ? DEFAULT_A : DEFAULT_B);
  if (!isPreset(value)) throw new UsageError(`--${name}: expected one of ${PRESETS.join(', ')}, got "${value}"`);
  return value;
}

/** Runs the story in `world`; the exit code says whether the path is the expected one. */
async function story(ctx: CommandContext, world: World, a: Preset, b: Preset, seed: number): Promise<number> {
  const { io } = ctx;
  const json = flag(ctx, 'json');
  const t0 = world.clock.now();
  const say = (who: string, step: string, detail: string): void => {
    const atMs = world.clock.now();
    io.out(json ? `${JSON.stringify({ atMs: atMs - t0, who, step, detail })}\n` : progressLine({ step, detail, atMs }, t0, who));
  };
  if (!json) io.out(`natkit demo: alice behind ${a} dials bob behind ${b} (seed ${seed}; simulated world, virtual time)\n`);
  const serve = await startSimServe(world);
  say('server', 'serve', `natkit serve: STUN on ${SIM_SERVER_ADDRESSES.join(' and ')} × 3478, 3479 (RFC 5780); TURN and rendezvous on ${SIM_SERVER_ADDRESSES[0]}:3478; rendezvous TCP on 3480`);
  let bob: ConnectAgent | undefined;
  let alice: PeerConnection | undefined;
  try {
    const peer = (name: string, preset: Preset): ConnectOptions => {
      const host = presetHost(world, name, preset);
      return {
        env: host.env, name, identity: identityFromSeed(world.random.bytes(32)), localAddress: host.address(),
        rendezvous: serve.endpoint, rendezvousTcp: serve.rendezvousTcp, turn: { server: serve.endpoint, ...SIM_TURN_USER },
        onProgress: (p) => say(name, p.step, p.detail),
      };
    };
    bob = await world.run(connect(peer('bob', b)));
    const answered = new Promise<PeerConnection>((resolve) => bob!.onConnection(resolve));
    alice = await world.run(connect({ ...peer('alice', a), peer: 'bob' }));
    const bobConn = await world.run(answered);
    const delivered = await converse(world, alice, bobConn, say);
    const expected = expectedOutcome(a, b);
    const ok = alice.path.kind === (expected === 'relay' ? 'relay' : 'direct') && alice.plan.outcome === expected;
    report(ctx, json, { alice, bob: bobConn, expected, ok, delivered, elapsedMs: world.clock.now() - t0 });
    if (flag(ctx, 'trace')) io.out(json ? `${JSON.stringify({ trace: world.trace.entries() })}\n` : `\npacket trace (virtual ms, last ${world.trace.entries().length} events):\n${world.trace.format()}\n`);
    return ok ? EXIT_OK : EXIT_FAILURE;
  } finally {
    if (alice !== undefined) await world.run(alice.close());
    if (bob !== undefined) await world.run(bob.close());
    await stopServe(serve);
  }
}

/** alice sends MESSAGES greetings; bob answers each; returns how many arrived each way. */
async function converse(world: World, alice: PeerConnection, bob: PeerConnection, say: (who: string, step: string, detail: string) => void): Promise<{ toBob: number; toAlice: number }> {
  const text = (d: Uint8Array): string => new TextDecoder().decode(d);
  const utf8 = new TextEncoder();
  const counts = { toBob: 0, toAlice: 0 };
  bob.onMessage((d) => {
    counts.toBob++;
    say('bob', 'message', `got "${text(d)}" (${bob.path.kind})`);
    bob.send(utf8.encode(`hi alice, got ${counts.toBob}`));
  });
  alice.onMessage((d) => {
    counts.toAlice++;
    say('alice', 'message', `got "${text(d)}" (${alice.path.kind})`);
  });
  for (let i = 1; i <= MESSAGES; i++) {
    say('alice', 'message', `sends "hello bob #${i}"`);
    alice.send(utf8.encode(`hello bob #${i}`));
    await world.elapse(200);
  }
  await world.elapse(500);
  return counts;
}

interface Outcome {
  readonly alice: PeerConnection;
  readonly bob: PeerConnection;
  readonly expected: string;
  readonly ok: boolean;
  readonly delivered: { readonly toBob: number; readonly toAlice: number };
  /** Virtual time the story took, ms. */
  readonly elapsedMs: number;
}

function report(ctx: CommandContext, json: boolean, o: Outcome): void {
  const { alice, bob } = o;
  if (json) {
    ctx.io.out(`${JSON.stringify({ result: { alice: connectionJson(alice), bob: connectionJson(bob), expected: o.expected, ok: o.ok, delivered: o.delivered } })}\n`);
    return;
  }
  const sent = alice.stats.packetsSent + bob.stats.packetsSent;
  ctx.io.out([
    '',
    'result',
    `  path      alice ${alice.path.kind} (${alice.path.method}) to ${alice.path.remote.address}:${alice.path.remote.port}; bob ${bob.path.kind} (${bob.path.method})`,
    `  plan      ${alice.plan.outcome}: ${alice.plan.reason}`,
    `  expected  ${o.expected} (docs/punch.md, the NAT matrix): ${o.ok ? 'as expected' : 'NOT as expected'}`,
    `  cost      connected ${alice.stats.connectMs ?? 0} ms after the start moment; ${sent} datagrams sent by both punches`,
    `  messages  ${o.delivered.toBob} of ${MESSAGES} to bob, ${o.delivered.toAlice} of ${MESSAGES} answers to alice (best effort)`,
    `  time      ${o.elapsedMs} virtual ms in all`,
    '',
    'Try another pair: natkit demo --a symmetric-random --b port-restricted --trace (natkit demo --help lists the presets)',
    '',
  ].join('\n'));
}

/** Stops the simulated server; a non-zero exit is a failure of the demo itself. */
async function stopServe(serve: SimServe): Promise<void> {
  const code = await serve.stop();
  if (code !== EXIT_OK) throw new NatkitError('ERR_PROTOCOL', `the simulated natkit serve exited ${code}: ${serve.output().trim()}`);
}
