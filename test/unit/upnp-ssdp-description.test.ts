// SSDP search messages and answers (UDA 1.1 §1.3), device descriptions (UDA 1.1 §2.3),
// the SSRF guard on LOCATION and control URLs, and hostile XML.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { endpoint } from '../../src/net/index.ts';
import { buildMSearch, checkLocation, parseDeviceDescription, parseSsdpResponse, parseXml, resolveControlUrl } from '../../src/portmap/upnp-index.ts';
import { isNatkitError, type NatkitErrorCode } from '../../src/util/index.ts';

const FROM = endpoint('192.168.1.1', 1900);
const bytes = (s: string): Uint8Array => Buffer.from(s, 'latin1');
const rejects = (code: NatkitErrorCode, fn: () => unknown, pattern?: RegExp): void => {
  assert.throws(fn, (err: unknown) => isNatkitError(err, code) && (pattern === undefined || pattern.test(err.message)));
};

test('M-SEARCH: the UDA 1.1 §1.3.2 request, MX bounded to 1–5', () => {
  assert.equal(
    Buffer.from(buildMSearch({ st: 'urn:schemas-upnp-org:service:WANIPConnection:1' })).toString(),
    'M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nMAN: "ssdp:discover"\r\nMX: 2\r\nST: urn:schemas-upnp-org:service:WANIPConnection:1\r\n\r\n',
  );
  rejects('ERR_INVALID_ARGUMENT', () => buildMSearch({ st: 'x', mxS: 6 }));
  rejects('ERR_INVALID_ARGUMENT', () => buildMSearch({ st: 'a b' }));
  rejects('ERR_INVALID_ARGUMENT', () => buildMSearch({ st: 'x\r\nEVIL: 1' }));
});

const ssdpCases: readonly { name: string; text: string; error?: RegExp; check?: Record<string, unknown> }[] = [
  { name: 'LF-only lines, no final empty line', text: 'HTTP/1.1 200 OK\nLOCATION: http://192.168.1.1/d.xml\nST: upnp:rootdevice', check: { location: 'http://192.168.1.1/d.xml', usn: '', bootId: undefined } },
  { name: 'folded field (obs-fold) joined', text: 'HTTP/1.1 200 OK\r\nSERVER: a\r\n b\r\nLOCATION: http://192.168.1.1/\r\nST: x\r\n\r\n', check: { server: 'a b' } },
  { name: 'max-age among other directives; BOOTID out of range dropped', text: 'HTTP/1.1 200 OK\r\nCache-Control: no-cache="ext", max-age = 1800\r\nBOOTID.UPNP.ORG: 99999999999\r\nLOCATION: http://192.168.1.1/\r\nST: x\r\n\r\n', check: { maxAgeS: 1800, bootId: undefined } },
  { name: 'first of repeated fields', text: 'HTTP/1.1 200 OK\r\nLOCATION: http://192.168.1.1/a\r\nLOCATION: http://192.168.1.1/b\r\nST: x\r\n\r\n', check: { location: 'http://192.168.1.1/a' } },
  { name: 'NOTIFY request', text: 'NOTIFY * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nNT: upnp:rootdevice\r\nNTS: ssdp:alive\r\nLOCATION: http://192.168.1.1/\r\n\r\n', error: /got a NOTIFY request/ },
  { name: 'another control point\'s M-SEARCH', text: 'M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nMAN: "ssdp:discover"\r\nST: ssdp:all\r\n\r\n', error: /M-SEARCH request/ },
  { name: 'status 404', text: 'HTTP/1.1 404 Not Found\r\nLOCATION: http://192.168.1.1/\r\nST: x\r\n\r\n', error: /status 200, got 404/ },
  { name: 'no LOCATION', text: 'HTTP/1.1 200 OK\r\nST: x\r\n\r\n', error: /without LOCATION/ },
  { name: 'no ST', text: 'HTTP/1.1 200 OK\r\nLOCATION: http://192.168.1.1/\r\n\r\n', error: /without ST/ },
  { name: 'empty datagram', text: '', error: /empty/ },
  { name: 'binary garbage', text: '\x00\x01\x02\xff\xfe', error: /status or request line/ },
  { name: 'field without colon', text: 'HTTP/1.1 200 OK\r\nLOCATION http://x\r\n\r\n', error: /name: value/ },
  { name: 'NUL in a field', text: 'HTTP/1.1 200 OK\r\nST: a\x00b\r\nLOCATION: http://192.168.1.1/\r\n\r\n', error: /NUL/ },
  { name: 'continuation before any field', text: 'HTTP/1.1 200 OK\r\n  x\r\n\r\n', error: /continuation/ },
];

for (const c of ssdpCases) {
  test(`SSDP answer: ${c.name}`, () => {
    if (c.error !== undefined) {
      rejects('ERR_SSDP_DECODE', () => parseSsdpResponse(bytes(c.text), FROM), c.error);
      return;
    }
    const r = parseSsdpResponse(bytes(c.text), FROM);
    for (const [k, v] of Object.entries(c.check ?? {})) assert.deepEqual(r[k as keyof typeof r], v, k);
  });
}

test('SSDP answer: a header block over 8 KiB is refused', () => {
  rejects('ERR_SSDP_DECODE', () => parseSsdpResponse(bytes(`HTTP/1.1 200 OK\r\nX: ${'a'.repeat(9000)}\r\n\r\n`), FROM), /longer than 8192/);
});

test('LOCATION: http to the address that answered, an IP literal; anything else refused (SSRF guard)', () => {
  assert.equal(checkLocation('http://192.168.1.1:5000/rootDesc.xml', FROM).href, 'http://192.168.1.1:5000/rootDesc.xml');
  assert.equal(checkLocation('http://[fe80::1]:80/d.xml').hostname, '[fe80::1]');
  rejects('ERR_PROTOCOL', () => checkLocation('http://192.168.1.2/d.xml', FROM), /another host than the SSDP answer came from/);
  rejects('ERR_PROTOCOL', () => checkLocation('http://169.254.169.254/latest/meta-data', FROM), /SSRF/);
  rejects('ERR_PROTOCOL', () => checkLocation('https://192.168.1.1/d.xml', FROM), /http:\/\//);
  rejects('ERR_PROTOCOL', () => checkLocation('file:///etc/passwd', FROM));
  rejects('ERR_PROTOCOL', () => checkLocation('http://router.local/d.xml', FROM), /IP address/);
  rejects('ERR_PROTOCOL', () => checkLocation('not a url', FROM));
});

test('control URLs: relative to URLBase on the same host, else to LOCATION; other hosts and schemes refused', () => {
  const loc = new URL('http://192.168.1.1:5000/igd/root.xml');
  assert.equal(resolveControlUrl('ctl/IPConn', loc).href, 'http://192.168.1.1:5000/igd/ctl/IPConn');
  assert.equal(resolveControlUrl('/ctl', loc, 'http://192.168.1.1:6000').href, 'http://192.168.1.1:6000/ctl');
  assert.equal(resolveControlUrl('/ctl', loc, 'http://127.0.0.1').href, 'http://192.168.1.1:5000/ctl', 'a loopback URLBase is ignored');
  assert.equal(resolveControlUrl('/ctl', loc, '::garbage::').href, 'http://192.168.1.1:5000/ctl');
  assert.equal(resolveControlUrl('http://192.168.1.1:4444/x', loc).href, 'http://192.168.1.1:4444/x', 'same host, another port is fine');
  rejects('ERR_PROTOCOL', () => resolveControlUrl('http://10.0.0.1/x', loc), /another host/);
  rejects('ERR_PROTOCOL', () => resolveControlUrl('//10.0.0.1/x', loc), /another host/);
  rejects('ERR_PROTOCOL', () => resolveControlUrl('udp://192.168.1.1:5/x', loc), /http:\/\//);
  rejects('ERR_PROTOCOL', () => resolveControlUrl('http://u:p@192.168.1.1/x', loc), /credentials/);
});

const wrap = (services: string, root = ''): string =>
  `<root xmlns="urn:schemas-upnp-org:device-1-0">${root}<device><deviceType>urn:schemas-upnp-org:device:InternetGatewayDevice:1</deviceType><serviceList>${services}</serviceList></device></root>`;
const svc = (type: string, url: string): string => `<service><serviceType>urn:schemas-upnp-org:service:${type}</serviceType><controlURL>${url}</controlURL></service>`;
const LOC = new URL('http://192.168.1.1:5000/rootDesc.xml');

test('description: services straight in the root device, ranked WANIPConnection:2, :1, WANPPPConnection:1', () => {
  const d = parseDeviceDescription(wrap(svc('WANPPPConnection:1', '/ppp') + svc('WANIPConnection:1', '/ip1') + svc('WANIPConnection:2', '/ip2') + svc('Layer3Forwarding:1', '/l3f')), LOC);
  assert.deepEqual(d.services.map((s) => [s.serviceType.split(':').slice(-2).join(':'), s.version, s.controlUrl.pathname]), [
    ['WANIPConnection:2', 2, '/ip2'], ['WANIPConnection:1', 1, '/ip1'], ['WANPPPConnection:1', 1, '/ppp'],
  ]);
});

test('description: a foreign control URL is skipped with its reason, the rest kept', () => {
  const d = parseDeviceDescription(wrap(svc('WANIPConnection:1', 'http://10.9.9.9/evil') + svc('WANPPPConnection:1', '/ppp') + svc('WANIPConnection:1', '')), LOC);
  assert.deepEqual(d.services.map((s) => s.controlUrl.href), ['http://192.168.1.1:5000/ppp']);
  assert.equal(d.rejected.length, 2);
  assert.match(d.rejected[0]!.why, /SSRF/);
  assert.match(d.rejected[1]!.why, /no controlURL/);
});

test('description: no WAN service parses with none; wrong documents are ERR_PROTOCOL', () => {
  assert.deepEqual(parseDeviceDescription(wrap(svc('Layer3Forwarding:1', '/l3f')), LOC).services, []);
  assert.throws(() => parseDeviceDescription('<scpd/>', LOC), (e) => isNatkitError(e, 'ERR_PROTOCOL') && /<root>/.test(e.message));
  assert.throws(() => parseDeviceDescription('<root><specVersion/></root>', LOC), (e) => isNatkitError(e, 'ERR_PROTOCOL'));
});

test('description: embedded devices are followed to a bounded depth', () => {
  let xml = svc('WANIPConnection:1', '/deep');
  for (let i = 0; i < 12; i++) xml = `<deviceList><device><deviceType>d${i}</deviceType><serviceList></serviceList>${xml.startsWith('<service>') ? `<serviceList>${xml}</serviceList>` : xml}</device></deviceList>`;
  const d = parseDeviceDescription(`<root><device>${xml}</device></root>`, LOC);
  assert.deepEqual(d.services, [], 'a service 13 devices deep is not reached');
});

const hostile: readonly { name: string; xml: string; error: RegExp }[] = [
  {
    name: 'billion laughs (internal entities)',
    xml: `<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">${Array.from({ length: 9 }, (_, i) => `<!ENTITY lol${i + 1} "${`&lol${i === 0 ? '' : i};`.repeat(10)}">`).join('')}]><root>&lol9;</root>`,
    error: /DOCTYPE/,
  },
  { name: 'external entity (XXE)', xml: '<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><root>&x;</root>', error: /DOCTYPE/ },
  { name: 'undefined entity without a DTD', xml: '<root>&lol9;</root>', error: /undefined entity/ },
  { name: 'deep nesting', xml: `${'<a>'.repeat(100)}${'</a>'.repeat(100)}`, error: /deeper than 32/ },
  { name: 'too many elements', xml: `<root>${'<a/>'.repeat(5000)}</root>`, error: /more than 4096 elements/ },
  { name: 'unclosed element', xml: '<root><device>', error: /XML/ },
  { name: 'mismatched tags', xml: '<root><a></b></root>', error: /XML/ },
  { name: 'two roots', xml: '<root/><root/>', error: /XML/ },
  { name: 'HTML error page', xml: '<html><body><h1>404</h1><br></body></html>', error: /XML/ },
  { name: 'empty', xml: '', error: /XML/ },
  { name: 'NUL character', xml: '<root>\u0000</root>', error: /XML/ },
];

for (const h of hostile) {
  test(`hostile XML: ${h.name} → ERR_XML`, () => {
    const started = performance.now();
    rejects('ERR_XML', () => parseDeviceDescription(h.xml, LOC), h.error);
    assert.ok(performance.now() - started < 1000, 'fails fast');
  });
}

test('XML: local names without prefixes, CDATA and character references decoded', () => {
  const r = parseXml('<x:a xmlns:x="u"><x:b><![CDATA[1<2]]>&amp;&#65;&#x42;</x:b></x:a>');
  assert.equal(r.name, 'a');
  assert.equal(r.children[0]!.name, 'b');
  assert.equal(r.children[0]!.text, '1<2&AB');
});
