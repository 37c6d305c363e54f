// UPnP IGD client end to end on loopback: a fake gateway (test/helpers/fake-igd.ts) with a
// real UDP SSDP responder and a real TCP HTTP server. Discovery by unicast M-SEARCH,
// description, every SOAP action, the fallbacks, and hostile gateways that must give a
// typed error within the timeout.
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { test } from 'node:test';
import { nodeEnv } from '../../src/net/node/index.ts';
import { UpnpGateway, searchSsdp, type UpnpDiscoverOptions } from '../../src/portmap/upnp-index.ts';
import { isNatkitError, type NatkitErrorCode } from '../../src/util/index.ts';
import { FakeIgd, httpResponse, soapEnvelope, type FakeIgdOptions, type FakeRequest } from '../helpers/fake-igd.ts';
import { noLeaks } from '../helpers/leaks.ts';

const env = nodeEnv();
const search = (igd: FakeIgd): UpnpDiscoverOptions => ({ env, multicast: false, unicast: [igd.ssdp], timeoutMs: 1500, retransmitMs: 300 });

async function withIgd(options: FakeIgdOptions, body: (igd: FakeIgd) => Promise<void>): Promise<void> {
  await using igd = await FakeIgd.start(options);
  await body(igd);
}

test('discover by unicast M-SEARCH, then every action of WANIPConnection:1', noLeaks(() => withIgd({}, async (igd) => {
  const gw = await UpnpGateway.discover(search(igd));
  assert.equal(gw.service.serviceType, 'urn:schemas-upnp-org:service:WANIPConnection:1');
  assert.equal(gw.version, 1);
  assert.equal(gw.service.controlUrl.href, `http://127.0.0.1:${igd.http.port}/ctl/IPConn`);
  assert.equal(gw.ssdp?.bootId, 7);
  assert.equal(gw.description.friendlyName, 'natkit fake IGD');
  assert.equal(gw.localAddress, '127.0.0.1');
  assert.equal(await gw.getExternalIPAddress(), '203.0.113.7');

  const m = await gw.mapPort({ protocol: 'UDP', internalPort: 40123, description: 'natkit <&> test' });
  assert.deepEqual(m, { protocol: 'UDP', externalPort: 40123, internalPort: 40123, internalClient: '127.0.0.1', leaseS: 3600, description: 'natkit <&> test', action: 'AddPortMapping', conflicts: 0 });
  const add = igd.requests.find((r) => r.action === 'AddPortMapping')!;
  assert.equal(add.headers.get('soapaction'), '"urn:schemas-upnp-org:service:WANIPConnection:1#AddPortMapping"');
  assert.equal(add.headers.get('content-type'), 'text/xml; charset="utf-8"');
  assert.equal(add.headers.get('connection'), 'close');
  assert.deepEqual([...add.args.keys()], ['NewRemoteHost', 'NewExternalPort', 'NewProtocol', 'NewInternalPort', 'NewInternalClient', 'NewEnabled', 'NewPortMappingDescription', 'NewLeaseDuration']);
  assert.equal(add.args.get('NewPortMappingDescription'), 'natkit <&> test');

  const entry = await gw.getSpecificPortMappingEntry({ externalPort: 40123, protocol: 'UDP' });
  assert.deepEqual(entry, { remoteHost: '', externalPort: 40123, protocol: 'UDP', internalPort: 40123, internalClient: '127.0.0.1', enabled: true, description: 'natkit <&> test', leaseS: 3600 });
  await gw.mapPort({ protocol: 'TCP', internalPort: 8080, externalPort: 18080, leaseS: 0 });
  assert.deepEqual((await gw.listPortMappings()).map((e) => `${e.protocol}/${e.externalPort}->${e.internalPort}`), ['UDP/40123->40123', 'TCP/18080->8080']);
  assert.equal((await gw.listPortMappings({ max: 1 })).length, 1, 'bounded');
  await gw.deletePortMapping({ externalPort: 40123, protocol: 'UDP' });
  assert.equal(await gw.getSpecificPortMappingEntry({ externalPort: 40123, protocol: 'UDP' }), undefined, '714 is "no such entry", a value');
  await assert.rejects(gw.deletePortMapping({ externalPort: 40123, protocol: 'UDP' }), (e) => isNatkitError(e, 'ERR_UPNP_FAULT'));
})));

test('IGD:2: AddAnyPortMapping lets the gateway choose around a taken port', noLeaks(() => withIgd({ version: 2 }, async (igd) => {
  igd.addMapping({ externalPort: 5000, protocol: 'UDP', internalPort: 5000, internalClient: '192.168.1.50', description: 'other', leaseS: 0 });
  const gw = await UpnpGateway.discover(search(igd));
  assert.equal(gw.version, 2);
  const m = await gw.mapPort({ protocol: 'UDP', internalPort: 5000 });
  assert.deepEqual([m.action, m.externalPort], ['AddAnyPortMapping', 5001]);
})));

test('fallbacks against the fake: 725 → lease 0; 718 → another port; IGD:2 without AddAnyPortMapping', noLeaks(async () => {
  await withIgd({ permanentOnly: true }, async (igd) => {
    const gw = await UpnpGateway.open({ env, location: igd.location });
    const m = await gw.mapPort({ protocol: 'TCP', internalPort: 7000 });
    assert.equal(m.leaseS, 0);
    assert.equal(igd.mappings.get('TCP/7000')?.leaseS, 0);
  });
  await withIgd({}, async (igd) => {
    igd.addMapping({ externalPort: 6000, protocol: 'UDP', internalPort: 6000, internalClient: '192.168.1.50', description: 'other', leaseS: 0 });
    const gw = await UpnpGateway.open({ env, location: igd.location });
    const m = await gw.mapPort({ protocol: 'UDP', internalPort: 6000 });
    assert.notEqual(m.externalPort, 6000);
    assert.equal(m.conflicts, 1);
    assert.equal(igd.mappings.get(`UDP/${m.externalPort}`)?.internalClient, '127.0.0.1');
  });
  await withIgd({ version: 2, noAddAny: true }, async (igd) => {
    const gw = await UpnpGateway.open({ env, location: igd.location });
    assert.equal((await gw.mapPort({ protocol: 'UDP', internalPort: 6100 })).action, 'AddPortMapping');
  });
}));

test('SSDP: silence is an empty result after the timeout; garbage datagrams are counted, not fatal', noLeaks(async () => {
  await using quiet = await env.network.bindUdp({ address: '127.0.0.1' });
  let sawSearch = false;
  quiet.onPacket((data, from) => {
    sawSearch ||= Buffer.from(data).toString().startsWith('M-SEARCH');
    quiet.send(Buffer.from('HTTP/1.1 999 nonsense\r\n\r\n'), from);
    quiet.send(Buffer.from([0, 1, 2, 3]), from);
  });
  const started = performance.now();
  const r = await searchSsdp(env, { multicast: false, unicast: [quiet.local], timeoutMs: 400, retransmitMs: 150 });
  assert.ok(sawSearch);
  assert.deepEqual(r.responses, []);
  assert.ok(r.ignored >= 2);
  assert.ok(performance.now() - started < 1500);
  await assert.rejects(UpnpGateway.discover({ env, multicast: false, unicast: [quiet.local], timeoutMs: 300 }), (e) => isNatkitError(e, 'ERR_UPNP_NOT_FOUND') && /no SSDP answer/.test(e.message));
}));

test('SSRF guard: a LOCATION on another host than the SSDP answer is refused', noLeaks(() => withIgd({ locationHost: '127.0.0.2' }, async (igd) => {
  await assert.rejects(UpnpGateway.discover(search(igd)), (e) => isNatkitError(e, 'ERR_UPNP_NOT_FOUND') && /SSRF/.test(e.message));
  assert.equal(igd.requests.length, 0, 'no HTTP request was made');
})));

/** A hostile behaviour for the description fetch or every SOAP call. */
type Hostile = (r: FakeRequest, s: Socket) => boolean;
const drip = (s: Socket, head: string): void => {
  s.write(head);
  const t = setInterval(() => s.write('<'), 20);
  s.on('close', () => clearInterval(t));
};
const hostile: readonly { name: string; on: 'description' | 'soap'; hook: Hostile; code: NatkitErrorCode; within?: number }[] = [
  { name: 'slow-loris body, one byte every 20 ms', on: 'description', hook: (_r, s) => (drip(s, 'HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n'), true), code: 'ERR_TIMEOUT' },
  { name: 'slow-loris header block', on: 'soap', hook: (_r, s) => (drip(s, 'HTTP/1.1 200 OK\r\nX-Slow: '), true), code: 'ERR_TIMEOUT' },
  { name: 'no Content-Length, connection held open', on: 'description', hook: (_r, s) => (s.write('HTTP/1.1 200 OK\r\n\r\n<root>'), true), code: 'ERR_TIMEOUT' },
  { name: 'never answers', on: 'soap', hook: () => true, code: 'ERR_TIMEOUT' },
  { name: 'huge Content-Length', on: 'description', hook: (_r, s) => (s.end('HTTP/1.1 200 OK\r\nContent-Length: 99999999\r\n\r\n'), true), code: 'ERR_HTTP_DECODE', within: 500 },
  { name: 'endless close-delimited body', on: 'description', hook: (_r, s) => {
    const junk = Buffer.alloc(64 * 1024, 0x41);
    s.write('HTTP/1.1 200 OK\r\n\r\n');
    const pump = (): void => {
      while (!s.destroyed && s.write(junk));
      if (!s.destroyed) s.once('drain', pump);
    };
    pump();
    return true;
  }, code: 'ERR_HTTP_DECODE', within: 1000 },
  { name: 'closes without answering', on: 'soap', hook: (_r, s) => (s.end(), true), code: 'ERR_HTTP_DECODE', within: 500 },
  { name: 'billion laughs description', on: 'description', hook: (_r, s) => (s.end(httpResponse(200, `<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa">${Array.from({ length: 9 }, (_, i) => `<!ENTITY a${i + 1} "${`&a${i === 0 ? '' : i};`.repeat(10)}">`).join('')}]><root>&a9;</root>`)), true), code: 'ERR_XML', within: 500 },
  { name: 'HTML instead of SOAP', on: 'soap', hook: (_r, s) => (s.end(httpResponse(200, '<html><body>Login required<br></body></html>')), true), code: 'ERR_XML', within: 500 },
  { name: 'SOAP answer of another action', on: 'soap', hook: (_r, s) => (s.end(httpResponse(200, soapEnvelope('<u:FooResponse xmlns:u="x"/>'))), true), code: 'ERR_PROTOCOL', within: 500 },
  { name: '500 without a fault', on: 'soap', hook: (_r, s) => (s.end(httpResponse(500, 'oops')), true), code: 'ERR_HTTP_STATUS', within: 500 },
  { name: 'description 404', on: 'description', hook: (_r, s) => (s.end('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n'), true), code: 'ERR_HTTP_STATUS', within: 500 },
];

for (const h of hostile) {
  test(`hostile gateway: ${h.name} → ${h.code} within the timeout`, noLeaks(() => withIgd({
    hook: (r, s) => ((h.on === 'description') === (r.method === 'GET') ? h.hook(r, s) : false),
  }, async (igd) => {
    const timeoutMs = 400;
    const started = performance.now();
    const run = async (): Promise<unknown> => {
      const gw = await UpnpGateway.open({ env, location: igd.location, timeoutMs });
      return gw.getExternalIPAddress();
    };
    await assert.rejects(run(), (e) => isNatkitError(e, h.code));
    const took = performance.now() - started;
    assert.ok(took < (h.within ?? timeoutMs) + 700, `took ${Math.round(took)} ms`);
  })));
}

test('abort: a signal ends a call in flight with ERR_ABORTED', noLeaks(() => withIgd({ hook: (r) => r.method === 'POST' }, async (igd) => {
  const gw = await UpnpGateway.open({ env, location: igd.location });
  const ac = new AbortController();
  const pending = gw.mapPort({ protocol: 'UDP', internalPort: 9000 }, { signal: ac.signal });
  setTimeout(() => ac.abort(new Error('user')), 50);
  await assert.rejects(pending, (e) => isNatkitError(e, 'ERR_ABORTED'));
  await assert.rejects(gw.getExternalIPAddress({ signal: AbortSignal.abort() }), (e) => isNatkitError(e, 'ERR_ABORTED'));
})));

test('nothing listening at LOCATION: ERR_SOCKET', noLeaks(async () => {
  await using closed = await env.network.bindUdp({ address: '127.0.0.1' }); // a port number, TCP unused
  await assert.rejects(UpnpGateway.open({ env, location: `http://127.0.0.1:${closed.local.port}/d.xml`, timeoutMs: 1000 }), (e) => isNatkitError(e, 'ERR_SOCKET'));
}));
