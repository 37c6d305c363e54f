// miniupnpd (Debian package miniupnpd with its nftables backend, miniupnpd-nftables) on
// a lab router: its configuration file, the nftables chains it fills, and the process.
//
// What the Debian build needs to run in the lab (learnt by running it, 2.3.1):
// - it only adds rules: the base chains that jump to its chains must exist first — the
//   packaged nft_init.sh would make them with a `policy drop` forward chain, so the lab
//   writes its own table with accept policies (the router's `table ip lab` still filters);
// - its own pid file (-P), or two instances in two namespaces fight over /var/run;
// - an external address that is not "reserved": miniupnpd refuses port forwarding on
//   reserved WAN addresses, and the lab's internet is 198.18.0.0/15 (RFC 2544, reserved).
//   With ext_perform_stun it asks a STUN server for its public address instead and
//   forwards when that equals the WAN address and unsolicited packets get through.
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { sleep, type Child } from '../../../bench/lib/children.ts';
import type { Endpoint } from '../../../src/net/index.ts';
import { assertLabAvailable } from './command.ts';
import { startStunServer } from './probes.ts';
import type { Host, Lab, Router } from './topology.ts';

/** The nftables table miniupnpd fills, one per router namespace. */
export const MINIUPNPD_TABLE = 'miniupnpd';

/** Options of miniupnpdConfig(). */
export interface MiniupnpdOptions {
  /** The router's LAN, CIDR: who may map ports. */
  readonly lanCidr: string;
  /** HTTP port of the description and control URLs. @default 5000 */
  readonly httpPort?: number;
  /** UPnP IGD. @default true */
  readonly upnp?: boolean;
  /** NAT-PMP and PCP (miniupnpd serves both on UDP 5351). @default false */
  readonly natpmp?: boolean;
  /** A STUN server telling miniupnpd its public address (needed with a reserved WAN address). */
  readonly stun?: Endpoint;
  /** Lease file; mappings survive restarts through it. */
  readonly leaseFile: string;
  /** Report IGD:1 instead of IGD:2. @default false */
  readonly igdV1?: boolean;
}

/** The miniupnpd.conf for a lab router (interfaces `wan` and `lan`, see topology.ts). */
export function miniupnpdConfig(o: MiniupnpdOptions): string {
  const lines = [
    'ext_ifname=wan',
    'listening_ip=lan',
    `http_port=${o.httpPort ?? 5000}`,
    `enable_upnp=${o.upnp === false ? 'no' : 'yes'}`,
    `enable_natpmp=${o.natpmp === true ? 'yes' : 'no'}`,
    // Clients map ports to their own address only.
    'secure_mode=yes',
    'system_uptime=no',
    `force_igd_desc_v1=${o.igdV1 === true ? 'yes' : 'no'}`,
    `lease_file=${o.leaseFile}`,
    `uuid=${randomUUID()}`,
    `upnp_table_name=${MINIUPNPD_TABLE}`,
    `upnp_nat_table_name=${MINIUPNPD_TABLE}`,
    'upnp_forward_chain=miniupnpd',
    'upnp_nat_chain=prerouting_miniupnpd',
    'upnp_nat_postrouting_chain=postrouting_miniupnpd',
    ...(o.stun === undefined ? [] : ['ext_perform_stun=yes', `ext_stun_host=${o.stun.address}`, `ext_stun_port=${o.stun.port}`]),
    `allow 1024-65535 ${o.lanCidr} 1024-65535`,
    'deny 0-65535 0.0.0.0/0 0-65535',
  ];
  return `${lines.join('\n')}\n`;
}

/** The chains miniupnpd adds its rules to, hooked in with accept policies. */
export function miniupnpdRuleset(): string {
  const t = MINIUPNPD_TABLE;
  return [
    `table inet ${t} {}`,
    `delete table inet ${t}`,
    `table inet ${t} {`,
    '  chain forward { type filter hook forward priority filter - 5; policy accept; jump miniupnpd; }',
    '  chain miniupnpd {}',
    '  chain prerouting { type nat hook prerouting priority dstnat - 5; policy accept; jump prerouting_miniupnpd; }',
    '  chain postrouting { type nat hook postrouting priority srcnat - 5; policy accept; jump postrouting_miniupnpd; }',
    '  chain prerouting_miniupnpd {}',
    '  chain postrouting_miniupnpd {}',
    '}',
    '',
  ].join('\n');
}

/** A running miniupnpd. */
export interface LabMiniupnpd {
  readonly child: Child;
  /** Where its description is (LOCATION). */
  readonly location: string;
  stop(): Promise<void>;
}

/** Options of startMiniupnpd(). */
export interface StartMiniupnpdOptions extends Omit<MiniupnpdOptions, 'lanCidr' | 'leaseFile'> {
  /** How long to wait for it to listen. @default 10000 */
  readonly readyMs?: number;
}

/** Waits until miniupnpd's stderr (where -d logs) shows `pattern`; rejects when it exits or after `ms`. */
async function waitForStderr(child: Child, pattern: RegExp, ms: number): Promise<void> {
  const until = Date.now() + ms;
  while (!pattern.test(child.stderrTail())) {
    if (child.hasExited()) throw new Error(`${child.name} exited`);
    if (Date.now() > until) throw new Error(`${child.name} not ready after ${ms} ms`);
    await sleep(20);
  }
}

/** Starts miniupnpd in `router`'s namespace (foreground, debug log) and waits until it serves HTTP. */
export async function startMiniupnpd(lab: Lab, router: Router, options: StartMiniupnpdOptions = {}): Promise<LabMiniupnpd> {
  assertLabAvailable({ tools: [['miniupnpd', 'miniupnpd-nftables']] });
  const dir = lab.tempDir();
  const name = router.ns.role;
  const conf = join(dir, `miniupnpd-${name}.conf`);
  const httpPort = options.httpPort ?? 5000;
  writeFileSync(conf, miniupnpdConfig({ ...options, httpPort, lanCidr: router.lanCidr, leaseFile: join(dir, `miniupnpd-${name}.leases`) }));
  await router.ns.exec('nft', ['-f', '-'], { input: miniupnpdRuleset() });
  const child = lab.spawn(router.ns, 'miniupnpd', 'miniupnpd', ['-f', conf, '-d', '-P', join(dir, `miniupnpd-${name}.pid`)]);
  try {
    // -d logs to stderr; the HTTP listener line means SSDP and HTTP are both up.
    await waitForStderr(child, /HTTP listening on port/, options.readyMs ?? 10_000);
  } catch (err) {
    await lab.stop(child);
    throw new Error(`miniupnpd in ${name} did not start: ${child.stderrTail().trim()}`, { cause: err });
  }
  const lan = router.lanCidr.replace(/\.0\/24$/, '.1');
  return { child, location: `http://${lan}:${httpPort}/rootDesc.xml`, stop: () => lab.stop(child) };
}

/** The lab every port-mapping test needs: an internet host for probes, a NAT router running miniupnpd, a LAN host behind it. */
export interface MiniupnpdSite {
  readonly router: Router;
  readonly client: Host;
  /** A public host with nothing special: it sends the probes from outside. */
  readonly outside: Host;
  /** natkit's STUN server, which tells miniupnpd its public address. */
  readonly stun: Endpoint;
  readonly miniupnpd: LabMiniupnpd;
  /** The router's LAN address: where NAT-PMP, PCP and UPnP are asked. */
  readonly gateway: string;
}

/** Builds the site (router `NAME-gw`, LAN host `NAME-c`) and starts miniupnpd with `options`. */
export async function miniupnpdSite(lab: Lab, name: string, options: Omit<StartMiniupnpdOptions, 'stun'> = {}): Promise<MiniupnpdSite> {
  const stunHost = await lab.publicHost('stun', { addresses: 2 });
  const outside = await lab.publicHost('outside');
  const router = await lab.router(`${name}-gw`, { preset: 'port-restricted-cone' });
  const client = await lab.client(`${name}-c`, router);
  const stun = (await startStunServer(lab, stunHost)).endpoints[0]!;
  // miniupnpd refuses to forward on a reserved WAN address (198.18.0.0/15 is one) unless
  // STUN shows unsolicited packets reach it: let the STUN answers through the router's
  // own input filter, as for a router that holds a public address.
  await router.ns.exec('nft', ['insert', 'rule', 'ip', 'lab', 'in_filter', 'iifname', 'wan', 'udp', 'sport', '{', '3478, 3479', '}', 'accept']);
  const miniupnpd = await startMiniupnpd(lab, router, { ...options, stun });
  return { router, client, outside, stun, miniupnpd, gateway: router.lanCidr.replace(/\.0\/24$/, '.1') };
}
