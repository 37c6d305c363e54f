// The default gateway from Linux route tables: /proc/net/route (addresses as the host's
// 32-bit value in hex, little-endian on x86) and /proc/net/ipv6_route (network order),
// samples as the kernel prints them. (The node reader is tested in e2e/portmap.test.ts.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { defaultGateway, defaultGateways, parseProcNetIpv6Route, parseProcNetRoute } from '../../src/portmap/index.ts';
import { DecodeError } from '../../src/util/index.ts';

// A laptop: Wi-Fi default via 192.168.1.1 (metric 600), a docker bridge, a second default
// on a tethered phone via 172.20.10.1 (metric 700), and a VPN's split route.
const ROUTE = `Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
wlan0\t00000000\t0101A8C0\t0003\t0\t0\t600\t00000000\t0\t0\t0
usb0\t00000000\t010A14AC\t0003\t0\t0\t700\t00000000\t0\t0\t0
wlan0\t0001A8C0\t00000000\t0001\t0\t0\t600\t00FFFFFF\t0\t0\t0
docker0\t000011AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0
tun0\t0000000A\t0100080A\t0003\t0\t0\t50\t000000FF\t0\t0\t0
`;

// From this kind of machine: a ULA default via fd00::1 on eth0, lo's reject route, link-local.
const IPV6_ROUTE = `fd000000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth0
fe800000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000002 00000000 00000001     eth0
00000000000000000000000000000000 00 00000000000000000000000000000000 00 fd000000000000000000000000000001 00000400 00000002 00000000 00000003     eth0
00000000000000000000000000000000 00 00000000000000000000000000000000 00 00000000000000000000000000000000 ffffffff 00000001 00000000 00200200       lo
00000000000000000000000000000000 00 00000000000000000000000000000000 00 fe800000000000000000000000000001 00000200 00000002 00000000 00000003    wlan0
`;

test('/proc/net/route: little-endian hex becomes addresses and prefix lengths', () => {
  const routes = parseProcNetRoute(ROUTE);
  assert.equal(routes.length, 5);
  assert.deepEqual(routes[0], { family: 4, interface: 'wlan0', destination: '0.0.0.0', prefixLength: 0, gateway: '192.168.1.1', metric: 600, flags: 3 });
  assert.deepEqual(routes[2], { family: 4, interface: 'wlan0', destination: '192.168.1.0', prefixLength: 24, gateway: undefined, metric: 600, flags: 1 });
  assert.deepEqual([routes[3]!.destination, routes[3]!.prefixLength], ['172.17.0.0', 16]);
  assert.deepEqual([routes[4]!.destination, routes[4]!.prefixLength, routes[4]!.gateway], ['10.0.0.0', 8, '10.8.0.1']);
});

test('/proc/net/route on a big-endian host prints addresses in network order', () => {
  const be = 'Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\tMTU\tWindow\tIRTT\neth0\t00000000\tC0A80101\t0003\t0\t0\t0\t00000000\t0\t0\t0\n';
  assert.equal(parseProcNetRoute(be, 'BE')[0]?.gateway, '192.168.1.1');
});

test('/proc/net/ipv6_route: network-order hex, flags, and lo\'s reject route', () => {
  const routes = parseProcNetIpv6Route(IPV6_ROUTE);
  assert.equal(routes.length, 5);
  assert.deepEqual(routes[2], { family: 6, interface: 'eth0', destination: '::', prefixLength: 0, gateway: 'fd00::1', metric: 0x400, flags: 3 });
  assert.deepEqual([routes[0]!.destination, routes[0]!.prefixLength], ['fd00::', 64]);
});

test('default gateways: usable, with a next hop, lowest metric first; IPv4 wins a tie', () => {
  const all = defaultGateways([...parseProcNetRoute(ROUTE), ...parseProcNetIpv6Route(IPV6_ROUTE)]);
  assert.deepEqual(all.map((g) => `${g.address}%${g.interface}/${g.metric}`), ['fe80::1%wlan0/512', '192.168.1.1%wlan0/600', '172.20.10.1%usb0/700', 'fd00::1%eth0/1024']);
  assert.deepEqual(defaultGateway({ ipv4: ROUTE, ipv6: IPV6_ROUTE }, 4), { address: '192.168.1.1', family: 4, interface: 'wlan0', metric: 600 });
  assert.equal(defaultGateway({ ipv6: IPV6_ROUTE }, 6)?.address, 'fe80::1');
  assert.equal(defaultGateway({}), undefined, 'no tables (not Linux)');
  assert.equal(defaultGateway({ ipv4: ROUTE.split('\n').slice(0, 1).join('\n') }), undefined, 'header only');
});

const broken: { name: string; parse: () => unknown }[] = [
  { name: 'no header', parse: () => parseProcNetRoute('eth0\t00000000\t0101A8C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n') },
  { name: 'short gateway hex', parse: () => parseProcNetRoute(ROUTE.replace('0101A8C0', '0101A8')) },
  { name: 'non-contiguous mask', parse: () => parseProcNetRoute(ROUTE.replace('00FFFFFF', '00FF00FF')) },
  { name: 'ipv6_route with 9 fields', parse: () => parseProcNetIpv6Route('00000000000000000000000000000000 00 00000000000000000000000000000000 00 fd000000000000000000000000000001 00000400 00000002 00000000 00000003') },
];
for (const c of broken) {
  test(`route table refused: ${c.name}`, () => {
    assert.throws(c.parse, (e) => e instanceof DecodeError);
  });
}
