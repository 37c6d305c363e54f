// fast-check properties of the UPnP parsers a hostile gateway feeds: any bytes in yield a
// value or our typed error, nothing else (SSDP answers, HTTP responses split anywhere,
// XML, SOAP answers, descriptions); valid HTTP bodies survive any split; escaped SOAP
// arguments read back as sent.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { endpoint } from '../../src/net/index.ts';
import {
  HttpResponseParser, buildSoapRequest, parseDeviceDescription, parseSoapResponse, parseSsdpResponse, parseXml,
} from '../../src/portmap/upnp-index.ts';
import { child } from '../../src/portmap/upnp-xml.ts';
import { isNatkitError, type NatkitErrorCode } from '../../src/util/index.ts';

const runs = { numRuns: 400 };
const FROM = endpoint('192.168.1.1', 1900);

/** Runs fn; passes when it returns or throws a NatkitError with one of `codes`. */
function onlyTyped(codes: readonly NatkitErrorCode[], fn: () => unknown): void {
  try {
    fn();
  } catch (err) {
    assert.ok(codes.some((c) => isNatkitError(err, c)), `unexpected ${String(err)}`);
  }
}

/** Bytes that look like HTTP more often than uniform noise would. */
const httpish = fc.oneof(
  fc.uint8Array({ maxLength: 600 }),
  fc.array(fc.oneof(
    fc.constantFrom('HTTP/1.1 200 OK', 'HTTP/1.0 500 x', 'NOTIFY * HTTP/1.1', '\r\n', '\n', ':', ' ', 'LOCATION: http://192.168.1.1/', 'ST: x',
      'Content-Length: ', 'Transfer-Encoding: chunked', '0', 'A', 'ffffffff', ';', '\r\n\r\n', 'BOOTID.UPNP.ORG: 9', 'max-age=5'),
    fc.string({ maxLength: 8 }),
  ), { maxLength: 40 }).map((parts) => Buffer.from(parts.join(''), 'latin1')),
);

test('SSDP: any datagram → a search response or ERR_SSDP_DECODE', () => {
  fc.assert(fc.property(httpish, (data) => onlyTyped(['ERR_SSDP_DECODE'], () => parseSsdpResponse(data, FROM))), runs);
});

test('HTTP: any bytes, split anywhere, then EOF → a response or ERR_HTTP_DECODE', () => {
  fc.assert(fc.property(httpish, fc.array(fc.nat({ max: 600 }), { maxLength: 6 }), (data, cuts) => {
    onlyTyped(['ERR_HTTP_DECODE'], () => {
      const p = new HttpResponseParser({ maxBodyBytes: 4096, maxHeadBytes: 1024 });
      let at = 0;
      for (const cut of [...cuts].sort((a, b) => a - b)) {
        if (p.push(data.subarray(at, Math.max(at, cut))) !== undefined) return;
        at = Math.max(at, cut);
      }
      if (p.push(data.subarray(at)) === undefined) p.end();
    });
  }), runs);
});

test('HTTP: a chunked body reads back the same however the stream is cut', () => {
  fc.assert(fc.property(fc.array(fc.uint8Array({ minLength: 1, maxLength: 50 }), { maxLength: 8 }), fc.integer({ min: 1, max: 17 }), (chunks, step) => {
    const parts = chunks.map((c) => Buffer.concat([Buffer.from(`${c.length.toString(16)}\r\n`), c, Buffer.from('\r\n')]));
    const wire = Buffer.concat([Buffer.from('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n'), ...parts, Buffer.from('0\r\n\r\n')]);
    const p = new HttpResponseParser();
    let r: ReturnType<HttpResponseParser['push']>;
    for (let i = 0; i < wire.length && r === undefined; i += step) r = p.push(wire.subarray(i, i + step));
    assert.ok(r !== undefined);
    assert.deepEqual(Buffer.from(r.body), Buffer.concat(chunks));
  }), runs);
});

const xmlish = fc.oneof(
  fc.string({ maxLength: 300 }),
  fc.array(fc.constantFrom('<root>', '</root>', '<device>', '</device>', '<serviceList>', '<service>', '</service>', '<serviceType>',
    'urn:schemas-upnp-org:service:WANIPConnection:1', '</serviceType>', '<controlURL>', '/ctl', 'http://10.0.0.1/', '</controlURL>',
    '<s:Envelope>', '<s:Body>', '<s:Fault>', '<detail>', '<UPnPError>', '<errorCode>', '718', '</errorCode>', '</s:Body>', '</s:Envelope>',
    '<XResponse>', '</XResponse>', '&amp;', '&lol;', '<!DOCTYPE x>', '<![CDATA[', ']]>', '<?xml version="1.0"?>', '<a/>', '"', '>', '<'), { maxLength: 30 }).map((p) => p.join('')),
);

test('XML: any text → an element tree or ERR_XML', () => {
  fc.assert(fc.property(xmlish, (text) => onlyTyped(['ERR_XML'], () => parseXml(text))), runs);
});

test('SOAP answer: any text → out arguments, a typed fault, ERR_XML or ERR_PROTOCOL', () => {
  fc.assert(fc.property(xmlish, (text) => onlyTyped(['ERR_UPNP_FAULT', 'ERR_XML', 'ERR_PROTOCOL'], () => parseSoapResponse(text, 'X'))), runs);
});

test('description: any text → a description, ERR_XML or ERR_PROTOCOL; no service leaves the LOCATION host', () => {
  const location = new URL('http://192.168.1.1:5000/rootDesc.xml');
  fc.assert(fc.property(xmlish, (text) => onlyTyped(['ERR_XML', 'ERR_PROTOCOL'], () => {
    for (const s of parseDeviceDescription(text, location).services) assert.equal(s.controlUrl.hostname, '192.168.1.1');
  })), runs);
});

test('SOAP request: any argument text XML can carry reads back exactly', () => {
  // eslint-disable-next-line no-control-regex
  const xmlChar = fc.string({ unit: 'binary', maxLength: 60 }).filter((s) => !/[\0-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]/.test(s));
  fc.assert(fc.property(xmlChar, (value) => {
    const call = child(parseXml(buildSoapRequest('urn:x:service:y:1', 'Act', [['A', value]])), 'Body')!.children[0]!;
    assert.equal(call.children[0]!.text, value);
  }), runs);
});
