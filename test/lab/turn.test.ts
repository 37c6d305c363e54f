// TURN in the real NAT lab: natkit's TurnServer (test/lab/bin/turn-server.ts, allow-listing
// the lab internet) and coturn's turnserver on public hosts, clients behind symmetric
// kernel NATs (address-and-port-dependent mapping and filtering: no hole punching gets
// through, a relay is the way), and a UDP echo peer on the lab internet. The `natkit turn`
// CLI relays lines both ways, first as Send/Data indications, then over a channel; two
// clients behind two symmetric NATs reach each other relay to relay (test/lab/bin/turn-client.ts).
// Needs root: without it every test fails with the reason (CI runs as root).
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { waitForLine, type Child } from '../../bench/lib/children.ts';
import type { TurnReport } from '../../src/cli/commands/turn.ts';
import { parseJson, startCoturn } from './lib/probes.ts';
import { Lab, type Host, type Router } from './lib/topology.ts';

const CLI = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
const BIN = fileURLToPath(new URL('./bin/', import.meta.url));
const WAIT_MS = 10_000;
/** waitForLine wants a signal; its own timeout bounds every wait. */
const NEVER = new AbortController().signal;

/** The first stdout line of `child` that parses as a JSON object `accept` takes. */
const jsonLine = <T>(child: Child, accept: (v: Partial<T> & Record<string, unknown>) => boolean, timeoutMs = WAIT_MS): Promise<T> =>
  waitForLine(child, (line) => parseJson<T>(line, accept), timeoutMs, NEVER);

/** Resolves with the exit status, killing the child when it takes longer than `ms`. */
async function exitWithin(lab: Lab, child: Child, ms: number): Promise<number | string> {
  const timer = setTimeout(() => void lab.stop(child, 0), ms);
  try {
    return await child.exited;
  } finally {
    clearTimeout(timer);
  }
}

interface Echo {
  readonly child: Child;
  /** `A:P` */
  readonly at: string;
}

/** Text lines the echo peer received, with their source. */
const echoed = (echo: Echo): { from: string; text: string }[] =>
  echo.child.lines.flatMap((l) => (l.startsWith('{"from"') ? [JSON.parse(l) as { from: string; text: string }] : []));

describe('TURN through symmetric kernel NATs', () => {
  let lab: Lab;
  let turnHost: Host;
  let coturnHost: Host;
  let routers: Router[];
  let clients: Host[];
  let natkitTurn: string;
  let echo: Echo;

  before(async () => {
    lab = await Lab.create();
    turnHost = await lab.publicHost('turn');
    const peerHost = await lab.publicHost('peer');
    coturnHost = await lab.publicHost('coturn', { addresses: 2 });
    routers = [await lab.router('nat-a', { preset: 'symmetric' }), await lab.router('nat-b', { preset: 'symmetric' })];
    clients = [await lab.client('client-a', routers[0]!), await lab.client('client-b', routers[1]!)];
    const server = lab.spawn(turnHost.ns, 'turn-server', process.execPath, [join(BIN, 'turn-server.ts'), '--address', turnHost.address]);
    await jsonLine(server, (v) => v.ready === true);
    natkitTurn = `${turnHost.address}:3478`;
    const echoChild = lab.spawn(peerHost.ns, 'udp-echo', process.execPath, [join(BIN, 'udp-echo.ts'), '--address', peerHost.address, '--port', '7000']);
    await jsonLine(echoChild, (v) => v.ready === true);
    echo = { child: echoChild, at: `${peerHost.address}:7000` };
  });

  after(async () => {
    await lab.close();
  });

  /**
   * Runs `natkit turn --json` in client A toward `server`, sends five lines to the echo
   * peer (three as Send indications, two over a channel), each once the previous echo came
   * back, then ends stdin; returns the allocation and the CLI's summary on stderr.
   */
  async function exchange(server: string, extra: readonly string[] = []): Promise<{ report: TurnReport; summary: string }> {
    const client = clients[0]!;
    const cli = lab.spawn(client.ns, 'natkit-turn', process.execPath, [
      CLI, 'turn', '--json', '-u', 'lab', '-w', 'labpass', '--peer', echo.at, '--channel-after', '3', '--linger', '300', ...extra, server,
    ]);
    const report = await jsonLine<TurnReport>(cli, (v) => Array.isArray(v.relayed));
    const before = echoed(echo).length;
    for (let i = 1; i <= 5; i++) {
      cli.process.stdin!.write(`line ${i}\n`);
      await waitForLine(cli, (l) => (l === `echo line ${i}` ? true : undefined), WAIT_MS, NEVER);
    }
    cli.process.stdin!.end();
    assert.equal(await exitWithin(lab, cli, WAIT_MS), 0, cli.stderrTail());
    const got = echoed(echo).slice(before);
    assert.deepEqual(got.map((g) => g.text), [1, 2, 3, 4, 5].map((i) => `line ${i}\n`));
    assert.ok(got.every((g) => g.from === report.relayed[0]), `the peer saw ${got.map((g) => g.from).join(', ')}, not only ${report.relayed[0]}`);
    return { report, summary: cli.stderrTail() };
  }

  test('natkit turn to natkit\'s TurnServer: relayed and NAT-mapped addresses; lines both ways via Send/Data, then a channel', async () => {
    const { report, summary } = await exchange(natkitTurn);
    assert.match(report.relayed[0]!, new RegExp(`^${turnHost.address.replaceAll('.', '\\.')}:\\d+$`));
    assert.equal(report.mapped?.split(':')[0], routers[0]!.publicAddress, 'the server sees the NAT\'s public address');
    const m = /5 datagrams relayed out \((\d+) Send, (\d+) ChannelData\), 5 in \((\d+) Data, (\d+) ChannelData\)/.exec(summary);
    assert.ok(m, summary);
    const [sendOut, channelOut, dataIn, channelIn] = m.slice(1).map(Number);
    // Send indications until the ChannelBind is answered, ChannelData after: how many of
    // each depends on that answer's timing (three and two on an idle machine).
    assert.ok(sendOut! >= 1 && channelOut! >= 1 && sendOut! + channelOut! === 5, `Send indications, then ChannelData: ${summary}`);
    assert.ok(dataIn! >= 2 && channelIn! >= 2, `Data indications and ChannelData both came in: ${summary}`);
  });

  test('relay to relay: two clients behind two symmetric NATs reach each other\'s relayed address', async () => {
    const [a, b] = clients.map((c, i) => lab.spawn(c.ns, `turn-client-${i}`, process.execPath, [join(BIN, 'turn-client.ts'), '--server', natkitTurn])) as [Child, Child];
    const [ra, rb] = await Promise.all([a, b].map((c) => jsonLine<{ relayed: string; mapped: string }>(c, (v) => typeof v.relayed === 'string')));
    assert.notEqual(ra!.mapped.split(':')[0], rb!.mapped.split(':')[0], 'two different NATs');
    const send = (from: Child, to: string, text: string): void => void from.process.stdin!.write(`${JSON.stringify({ to, text })}\n`);
    const received = (at: Child, text: string, ms: number): Promise<boolean> =>
      waitForLine(at, (l) => (l.includes(JSON.stringify(text)) ? true : undefined), ms, NEVER).catch(() => false);
    // Each side must hold a permission for the other's relay before anything gets in
    // (RFC 8656 §9): B's first datagram opens B's relay for A, A's then gets through.
    const deliver = async (from: Child, to: string, at: Child, text: string): Promise<void> => {
      for (let attempt = 1; attempt <= 5; attempt++) {
        send(from, to, `${text} #${attempt}`);
        if (await received(at, `${text} #${attempt}`, 500)) return;
      }
      assert.fail(`"${text}" never arrived in 5 attempts`);
    };
    send(b, ra!.relayed, 'opening');
    for (let i = 1; i <= 3; i++) {
      await deliver(a, rb!.relayed, b, `a to b ${i}`);
      await deliver(b, ra!.relayed, a, `b to a ${i}`);
    }
    for (const c of [a, b]) c.process.stdin!.end();
    const stats = await Promise.all([a, b].map(async (c) => {
      const s = jsonLine<{ stats: { channelDataSent: number; channelsBound: number } }>(c, (v) => 'stats' in v);
      assert.equal(await exitWithin(lab, c, WAIT_MS), 0, c.stderrTail());
      return (await s).stats;
    }));
    for (const s of stats) assert.ok(s.channelsBound >= 1 && s.channelDataSent >= 1, `a channel carried data: ${JSON.stringify(s)}`);
  });

  test('natkit turn to coturn\'s turnserver through the symmetric NAT', async () => {
    const coturn = await startCoturn(lab, coturnHost);
    try {
      const { report, summary } = await exchange(`${coturn.primary.address}:${coturn.primary.port}`);
      assert.match(report.relayed[0]!, new RegExp(`^${coturnHost.address.replaceAll('.', '\\.')}:\\d+$`));
      assert.equal(report.mapped?.split(':')[0], routers[0]!.publicAddress);
      assert.match(summary, /5 datagrams relayed out \(3 Send, 2 ChannelData\), 5 in/);
    } finally {
      await coturn.stop();
    }
  });
});
