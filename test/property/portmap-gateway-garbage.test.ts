// Garbage in, the gateway keeps serving: random datagrams to the NAT-PMP/PCP and SSDP
// ports and random bytes over HTTP connections, then valid NAT-PMP and UPnP requests are
// still answered, nothing stays open, and no handler failed.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { endpoint } from '../../src/net/index.ts';
import { World } from '../../src/net/sim/index.ts';
import { NatPmpClient, PortMapGatewayServer, UpnpGateway } from '../../src/portmap/index.ts';

const bytes = fc.uint8Array({ maxLength: 1500 });
/** Bytes that look like the start of a request, so the parsers go past the first line. */
const httpish = fc.tuple(fc.constantFrom('POST /ctl/IPConn HTTP/1.1\r\n', 'GET /rootDesc.xml HTTP/1.1\r\nContent-Length: 99999999\r\n', 'M-SEARCH * HTTP/1.1\r\nST: ', ''), bytes)
  .map(([head, tail]) => new Uint8Array([...new TextEncoder().encode(head), ...tail]));

test('the gateway survives random bytes over UDP and TCP and keeps answering', async () => {
  await fc.assert(fc.asyncProperty(fc.array(httpish, { maxLength: 12 }), fc.array(httpish, { maxLength: 6 }), async (datagrams, streams) => {
    await using world = new World({ seed: 3 });
    const router = world.addRouter({ name: 'home' });
    const alice = router.addHost({ name: 'alice' });
    await using gateway = await PortMapGatewayServer.start({
      env: router.host.env, backend: router, externalAddress: router.wanAddress(), lanAddress: router.lanAddress(), http: { requestTimeoutMs: 1000 },
    });
    const http = gateway.http!;
    await using junk = await alice.network.bindUdp({ address: alice.address() });
    for (const d of datagrams) {
      junk.send(d, endpoint(router.lanAddress(), 5351));
      junk.send(d, endpoint(router.lanAddress(), 1900));
    }
    for (const data of streams) {
      const s = await world.run(alice.network.connectStream(http));
      s.onData(() => undefined);
      s.write(data);
    }
    await world.elapse(2000);
    assert.deepEqual(router.host.openSockets(), { udp: 2, listeners: 1, streams: 0 }, 'every garbage connection was closed');
    await using c = await NatPmpClient.create({ env: alice.env, gateway: router.lanAddress() });
    assert.ok((await world.run(c.externalAddress())).ok);
    const igd = await world.run(UpnpGateway.discover({ env: alice.env, multicast: false, unicast: [endpoint(router.lanAddress(), 1900)] }));
    assert.equal(await world.run(igd.getExternalIPAddress()), router.wanAddress());
    assert.equal(gateway.stats.errors, 0);
  }), { numRuns: 25, seed: 42 });
});
