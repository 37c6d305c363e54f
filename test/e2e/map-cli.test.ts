// `natkit map` and `natkit check`'s port-mapping line, in-process on loopback against the
// fake NAT-PMP/PCP gateway and the fake IGD: add (through each protocol), the state file,
// list, remove in a later invocation (PCP with the stored nonce), --keep until the signal
// with cleanup, external-ip, and usage errors (exit 2).
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { commands } from '../../src/cli/commands/index.ts';
import { runCli } from '../../src/cli/run.ts';
import { nodeEnv } from '../../src/net/node/index.ts';
import { StunServer } from '../../src/stun/index.ts';
import { FakeIgd } from '../helpers/fake-igd.ts';
import { startFakeGateway, type RunningFakeGateway } from '../helpers/fake-portmap-gateway.ts';
import { noLeaks } from '../helpers/leaks.ts';

const env = nodeEnv();

interface Run {
  readonly code: number;
  readonly out: string;
  readonly err: string;
}

interface World {
  readonly gw: RunningFakeGateway;
  readonly igd: FakeIgd;
  readonly dir: string;
  natkit(argv: readonly string[], signal?: AbortSignal, onOut?: (text: string) => void): Promise<Run>;
  state(): Promise<{ mappings: { via: string; internalPort: number; nonce?: string; externalPort: number }[] }>;
}

async function withWorld(body: (w: World) => Promise<void>): Promise<void> {
  await using gw = await startFakeGateway({ externalAddress: '198.51.100.1' });
  await using igd = await FakeIgd.start({ externalAddress: '198.51.100.1' });
  const dir = await mkdtemp(join(tmpdir(), 'natkit-map-'));
  const where = ['--gateway', `127.0.0.1:${gw.endpoint.port}`, '--local', '127.0.0.1', '--ssdp', `127.0.0.1:${igd.ssdp.port}`];
  try {
    await body({
      gw, igd, dir,
      async natkit(argv, signal = AbortSignal.timeout(20_000), onOut) {
        let out = '';
        let err = '';
        const code = await runCli(commands, [...argv, ...(argv[0] === 'map' && argv.includes('--help') ? [] : where)], {
          io: { out: (s) => void ((out += s), onOut?.(out)), err: (s) => void (err += s) }, env, signal, vars: { NATKIT_STATE_DIR: dir },
        });
        return { code, out, err };
      },
      async state() {
        return JSON.parse(await readFile(join(dir, 'mappings.json'), 'utf8')) as Awaited<ReturnType<World['state']>>;
      },
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test('map add, list, remove in later invocations: PCP with the stored nonce, UPnP by description', noLeaks(() => withWorld(async (w) => {
  const add = await w.natkit(['map', 'add', '5000', '--lease', '600', '--json']);
  assert.equal(add.code, 0, add.err);
  const mapped = JSON.parse(add.out) as { event: string; mapping: { via: string; externalAddress: string; externalPort: number; nonce: string } };
  assert.equal(mapped.event, 'mapped');
  assert.deepEqual([mapped.mapping.via, mapped.mapping.externalAddress], ['pcp', '198.51.100.1']);
  assert.equal(w.gw.core.mappings.size, 1, 'the mapping outlives the command');
  const stored = (await w.state()).mappings;
  assert.deepEqual(stored.map((m) => [m.via, m.internalPort, m.nonce]), [['pcp', 5000, mapped.mapping.nonce]]);

  const human = await w.natkit(['map', 'add', '5001', '--protocol', 'tcp', '--via', 'upnp', '--external-port', '45001']);
  assert.equal(human.code, 0, human.err);
  assert.match(human.out, /^tcp 198\.51\.100\.1:45001 -> 127\.0\.0\.1:5001 via upnp, lease 7200 s\n$/);
  assert.match(human.err, /natkit map remove 5001/, 'progress and the hint on stderr');

  const list = await w.natkit(['map', 'list', '--json']);
  assert.equal(list.code, 0, list.err);
  const table = JSON.parse(list.out) as { mappings: { via: string; externalPort: number; ours: boolean }[]; state: unknown[] };
  assert.deepEqual(table.mappings.map((m) => [m.via, m.externalPort, m.ours]), [['upnp', 45_001, true]]);
  assert.equal(table.state.length, 2);

  const remove = await w.natkit(['map', 'remove', '5000', '5001']);
  assert.equal(remove.code, 0, remove.err);
  assert.match(remove.out, /removed: udp 198\.51\.100\.1:\d+ -> 127\.0\.0\.1:5000 via pcp/);
  assert.equal(w.gw.core.mappings.size, 0, 'PCP delete with the stored nonce (RFC 6887 §15)');
  assert.equal(w.igd.mappings.size, 0);
  assert.deepEqual((await w.state()).mappings, []);

  const again = await w.natkit(['map', 'remove', '5000']);
  assert.equal(again.code, 1);
  assert.match(again.err, /no natkit mapping of port 5000 found/);
})));

test('map remove finds a UPnP entry natkit left without a state entry, by its description', noLeaks(() => withWorld(async (w) => {
  w.igd.addMapping({ externalPort: 45_002, protocol: 'UDP', internalPort: 5002, internalClient: '127.0.0.1', description: 'natkit 0badcafe', leaseS: 600 });
  w.igd.addMapping({ externalPort: 45_003, protocol: 'UDP', internalPort: 5003, internalClient: '127.0.0.1', description: 'someone else', leaseS: 600 });
  const r = await w.natkit(['map', 'remove', '--all', '--json']);
  assert.equal(r.code, 0, r.err);
  assert.deepEqual([...w.igd.mappings.keys()], ['UDP/45003']);
})));

test('map add --keep renews until the signal, then removes the mapping and its state entry', noLeaks(() => withWorld(async (w) => {
  const stop = new AbortController();
  const run = w.natkit(['map', 'add', '5004', '--keep', '--via', 'natpmp', '--json'], stop.signal, (out) => {
    if (out.includes('"mapped"')) stop.abort();
  });
  const r = await run;
  assert.equal(r.code, 0, r.err);
  const events = r.out.trim().split('\n').map((l) => (JSON.parse(l) as { event: string }).event);
  assert.deepEqual(events, ['mapped', 'removed']);
  assert.equal(w.gw.core.mappings.size, 0);
  assert.deepEqual((await w.state()).mappings, []);
})));

test('map external-ip; usage errors exit 2; --help', noLeaks(() => withWorld(async (w) => {
  const ip = await w.natkit(['map', 'external-ip']);
  assert.deepEqual([ip.code, ip.out], [0, '198.51.100.1\n']);
  const viaUpnp = await w.natkit(['map', 'external-ip', '--via', 'upnp', '--json']);
  assert.deepEqual(JSON.parse(viaUpnp.out), { via: 'upnp', address: '198.51.100.1' });
  for (const argv of [['map'], ['map', 'add'], ['map', 'add', '0'], ['map', 'add', '5', '--protocol', 'sctp'], ['map', 'add', '5', '--via', 'stun'],
    ['map', 'add', '5', '--lease', '-1'], ['map', 'remove'], ['map', 'remove', '5', '--all'], ['map', 'list', 'x'], ['map', 'frobnicate']]) {
    const r = await w.natkit(argv);
    assert.equal(r.code, 2, `${argv.join(' ')}: ${r.err}`);
    assert.match(r.err, /Run `natkit map --help`/);
  }
  const help = await w.natkit(['map', '--help']);
  assert.equal(help.code, 0);
  assert.match(help.out, /add PORT .*\n.*remove PORT/s);
  assert.match(help.out, /--keep/);
})));

test('natkit check reports which protocols answer and the address each gives; --no-portmap leaves it out', noLeaks(() => withWorld(async (w) => {
  await using stun = await StunServer.create({ env, addresses: ['127.0.0.1'], ports: [0], tcp: false, rateLimit: false });
  const server = `127.0.0.1:${stun.endpoints[0]!.local.port}`;
  const r = await w.natkit(['check', '--json', '--server', server, '--no-hairpin', '--samples', '0']);
  assert.equal(r.code, 0, r.err);
  const report = JSON.parse(r.out) as { udp: boolean; portMapping: { available: string[]; pcp: { externalAddress: string }; natpmp: { externalAddress: string }; upnp: { externalAddress: string } } };
  assert.equal(report.udp, true);
  assert.deepEqual(report.portMapping.available, ['pcp', 'natpmp', 'upnp']);
  assert.deepEqual([report.portMapping.pcp.externalAddress, report.portMapping.natpmp.externalAddress, report.portMapping.upnp.externalAddress], ['198.51.100.1', '198.51.100.1', '198.51.100.1']);
  const human = await w.natkit(['check', '--server', server, '--no-hairpin', '--samples', '0']);
  assert.match(human.out, /Port mapping {6}PCP 198\.51\.100\.1, NAT-PMP 198\.51\.100\.1, UPnP 198\.51\.100\.1/);
  const off = await w.natkit(['check', '--json', '--server', server, '--no-portmap', '--samples', '0']);
  assert.equal('portMapping' in (JSON.parse(off.out) as object), false);
})));
