// The lab's own guarantees (DESIGN.md §3.3): everything lives in namespaces named for the
// run, the host's network is never touched, forwarding is on in routers only, every
// router preset loads, and close(), process exit, signals and exceptions all remove
// exactly what the lab created. Needs root: without it every test fails with the reason.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { sleep } from '../../bench/lib/children.ts';
import { labUnavailable, run } from './lib/command.ts';
import { NAT_TRUTH, hasPublicLan, type NatPreset } from './lib/nat-rules.ts';
import { LAB_PREFIX, Lab, type Namespace } from './lib/topology.ts';

const HOLD_LAB = fileURLToPath(new URL('bin/hold-lab.ts', import.meta.url));

/** The host namespace's network configuration, minus counters and timers that tick by themselves. */
async function hostNetwork(): Promise<string> {
  const parts = await Promise.all([
    run('ip', ['-o', 'link', 'show']),
    run('ip', ['-o', 'addr', 'show']).then((s) => s.replace(/valid_lft \S+ preferred_lft \S+/g, '')),
    run('ip', ['route', 'show', 'table', 'all']),
    run('ip', ['rule', 'show']),
    run('nft', ['-s', 'list', 'ruleset']),
    run('sysctl', ['-e', 'net.ipv4.ip_forward', 'net.ipv4.conf.all.forwarding', 'net.ipv6.conf.all.forwarding', 'net.bridge.bridge-nf-call-iptables']),
  ]);
  return parts.join('\n----\n');
}

async function netnsList(): Promise<string[]> {
  return (await run('ip', ['netns', 'list'])).split('\n').map((l) => l.split(' ')[0]!).filter((n) => n !== '');
}

const sysctl = async (ns: Namespace, key: string): Promise<string> => (await ns.exec('sysctl', ['-n', key])).trim();

/** True while `pid` is a live process (a zombie counts as gone: NAT-RECIPES pitfalls). */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/** Polls `check` every 20 ms for at most `ms`. */
async function eventually(check: () => boolean | Promise<boolean>, ms: number, what: string): Promise<void> {
  const deadline = performance.now() + ms;
  while (!(await check())) {
    assert.ok(performance.now() < deadline, `${what} within ${ms} ms`);
    await sleep(20);
  }
}

test('without root the lab refuses to start and says why (a lab test fails, it never skips)', () => {
  assert.match(labUnavailable({ uid: 1000 }) ?? '', /needs root.*CI runs it as root/);
  assert.match(labUnavailable({ uid: 0, tools: [['natkit-no-such-tool', 'natkit-no-such-package']] }) ?? '', /apt-get install natkit-no-such-package/);
});

test('a lab lives in namespaces named for the run and leaves the host\'s network as it was', async () => {
  const before = await hostNetwork();
  const lab = await Lab.create();
  let dir: string | undefined;
  try {
    assert.match(lab.id, new RegExp(`^${LAB_PREFIX}${process.pid}-[0-9a-f]{6}$`));
    const server = await lab.publicHost('server', { addresses: 2 });
    const router = await lab.router('router', { preset: 'port-restricted-cone' });
    const client = await lab.client('client', router);
    dir = lab.tempDir();
    assert.deepEqual(server.addresses, ['198.18.0.10', '198.18.0.11']);
    assert.equal(router.address, '198.18.0.101');
    assert.equal(client.address, '100.64.1.2');

    const names = lab.namespaceNames;
    assert.deepEqual(names, ['internet', 'server', 'router', 'client'].map((r) => `${lab.id}-${r}`));
    const listed = await netnsList();
    for (const name of names) assert.ok(listed.includes(name), `${name} exists`);
    for (const ns of [lab.internet, server.ns, router.ns, client.ns]) {
      assert.match(await ns.exec('ip', ['-o', 'link', 'show', 'lo']), /state UNKNOWN|UP/, `${ns.role}: loopback up`);
      assert.equal(await sysctl(ns, 'net.ipv6.conf.all.disable_ipv6'), '1', `${ns.role}: IPv6 off`);
      assert.equal(await sysctl(ns, 'net.ipv4.ip_forward'), ns === router.ns ? '1' : '0', `${ns.role}: forwarding in routers only`);
    }
    assert.match(await router.ns.exec('nft', ['list', 'tables']), /table ip lab/);
    assert.match(await client.ns.exec('ip', ['route']), /default via 100\.64\.1\.1 dev eth0/);
    assert.doesNotMatch(await server.ns.exec('ip', ['route']), /default/, 'public hosts have no default route');
    assert.equal(await hostNetwork(), before, 'nothing of the lab appears in the host namespace');
  } finally {
    await lab.close();
  }
  await lab.close(); // idempotent
  const listed = await netnsList();
  assert.deepEqual(listed.filter((n) => n.startsWith(lab.id)), [], 'every namespace of the lab is gone');
  assert.equal(existsSync(dir), false, 'the temp directory is gone');
  assert.equal(await hostNetwork(), before, 'the host\'s network is as it was');
  await assert.rejects(lab.publicHost('late'), /is closed/);
});

test('every preset, with and without hairpinning, loads into a router and can replace another', async () => {
  await using lab = await Lab.create();
  let natted = await lab.router('natted', { preset: 'port-restricted-cone' });
  let routed = await lab.router('routed', { preset: 'open' });
  for (const preset of Object.keys(NAT_TRUTH) as NatPreset[]) {
    for (const hairpinning of NAT_TRUTH[preset].natted ? [false, true] : [false]) {
      if (hasPublicLan(preset)) routed = await lab.loadRules(routed, { preset, hairpinning });
      else natted = await lab.loadRules(natted, { preset, hairpinning });
      const rules = await (hasPublicLan(preset) ? routed : natted).ns.exec('nft', ['list', 'table', 'ip', 'lab']);
      assert.equal(/oifname "lan".*snat/.test(rules), hairpinning, `${preset}: hairpin SNAT iff hairpinning`);
      assert.equal(rules.includes('masquerade'), NAT_TRUTH[preset].natted, `${preset}: masquerade iff NAT`);
    }
  }
  await assert.rejects(lab.loadRules(natted, { preset: 'open' }), /different LAN address plans/);
  await assert.rejects(lab.router('bad', { preset: 'firewall', behind: natted }), /public LAN/);
});

test('two labs at once: their own names, the same addresses, no collision', async () => {
  const [a, b] = await Promise.all([Lab.create(), Lab.create()]);
  try {
    assert.notEqual(a.id, b.id);
    const [ha, hb] = await Promise.all([a.publicHost('server'), b.publicHost('server')]);
    assert.equal(ha.address, hb.address);
    assert.notEqual(ha.ns.name, hb.ns.name);
    for (const h of [ha, hb]) assert.match(await h.ns.exec('ip', ['-o', 'addr', 'show', 'eth0']), /198\.18\.0\.10\/24/);
  } finally {
    await Promise.all([a.close(), b.close()]);
  }
  assert.deepEqual((await netnsList()).filter((n) => n.startsWith(a.id) || n.startsWith(b.id)), []);
});

test('a failure halfway through building: disposal removes what was built, the error stays', async () => {
  let names: readonly string[] = [];
  await assert.rejects(async () => {
    await using lab = await Lab.create();
    await lab.publicHost('server');
    try {
      await lab.publicHost('broken', { addresses: ['198.18.0.300'] });
    } finally {
      names = lab.namespaceNames;
    }
  }, /198\.18\.0\.300/);
  assert.equal(names.length, 3, 'internet, server and the half-built host');
  const listed = await netnsList();
  for (const name of names) assert.ok(!listed.includes(name), `${name} removed`);
});

const ENDINGS = [
  { end: 'wait', signal: 'SIGINT' },
  { end: 'wait', signal: 'SIGTERM' },
  { end: 'exit', signal: undefined },
  { end: 'throw', signal: undefined },
] as const;

for (const { end, signal } of ENDINGS) {
  test(`a process ended by ${signal ?? end} without close() leaves no namespace and no child behind`, async () => {
    const child = spawn(process.execPath, [HOLD_LAB, '--end', end], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => void (out += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => void (err += s));
    const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
    const killer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    try {
      await eventually(() => out.includes('\n') || child.exitCode !== null, 15_000, 'the lab is built');
      const built = JSON.parse(out.split('\n')[0]!) as { namespaces: string[]; pids: number[] };
      assert.equal(built.namespaces.length, 4, err);
      if (signal !== undefined) {
        for (const name of built.namespaces) assert.ok(existsSync(`/run/netns/${name}`), `${name} exists while the process runs`);
        child.kill(signal);
      }
      const [code, how] = await exited;
      if (signal !== undefined) assert.equal(how, signal, `died of ${signal} after cleaning up`);
      else assert.equal(code, end === 'exit' ? 0 : 1, err);
      for (const name of built.namespaces) assert.equal(existsSync(`/run/netns/${name}`), false, `${name} removed`);
      await eventually(() => !built.pids.some(alive), 5000, 'the STUN server child is gone');
    } finally {
      clearTimeout(killer);
      child.kill('SIGKILL');
    }
  });
}
