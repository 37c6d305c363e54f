// SOAP control messages (UDA 1.1 §3.2): requests built with escaping, answers and faults
// read into values and typed errors, real devices' answers from test/fixtures/upnp/soap.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { buildSoapRequest, escapeXml, isUpnpFault, parseSoapResponse, parseXml, UpnpFaultError } from '../../src/portmap/upnp-index.ts';
import { child } from '../../src/portmap/upnp-xml.ts';
import { isNatkitError } from '../../src/util/index.ts';
import { faultBody, soapEnvelope } from '../helpers/fake-igd.ts';

const fixture = (name: string): string => readFileSync(new URL(`../fixtures/upnp/soap/${name}`, import.meta.url), 'utf8');
const WANIP1 = 'urn:schemas-upnp-org:service:WANIPConnection:1';

test('request: UDA 1.1 §3.2.1 envelope, arguments in order, values escaped and read back intact', () => {
  const nasty = `a<b>&"c'd ü 😀`;
  const xml = buildSoapRequest(WANIP1, 'AddPortMapping', [['NewRemoteHost', ''], ['NewExternalPort', '8080'], ['NewPortMappingDescription', nasty]]);
  assert.ok(xml.startsWith('<?xml version="1.0"?>\r\n<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" s:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/"><s:Body><u:AddPortMapping xmlns:u="urn:schemas-upnp-org:service:WANIPConnection:1">'));
  assert.ok(xml.includes('<NewRemoteHost></NewRemoteHost><NewExternalPort>8080</NewExternalPort>'));
  const call = child(parseXml(xml), 'Body')!.children[0]!;
  assert.equal(call.name, 'AddPortMapping');
  assert.deepEqual(call.children.map((c) => [c.name, c.text]), [['NewRemoteHost', ''], ['NewExternalPort', '8080'], ['NewPortMappingDescription', nasty]]);
});

test('request: characters XML cannot carry and bad names are refused, not sent', () => {
  for (const bad of ['\u0000', 'a\u0001b', '\uffff', '\ud800x']) {
    assert.throws(() => escapeXml(bad), (e) => isNatkitError(e, 'ERR_INVALID_ARGUMENT'), JSON.stringify(bad));
  }
  assert.equal(escapeXml('tab\tcr\rlf\n'), 'tab\tcr&#13;lf\n');
  assert.throws(() => buildSoapRequest(WANIP1, 'Add><evil', []), (e) => isNatkitError(e, 'ERR_INVALID_ARGUMENT'));
  assert.throws(() => buildSoapRequest(WANIP1, 'Add', [['a b', '1']]), (e) => isNatkitError(e, 'ERR_INVALID_ARGUMENT'));
});

test('answer: out arguments by name, trimmed (tailscale fixture, indented)', () => {
  assert.deepEqual([...parseSoapResponse(fixture('get-external-ip-tailscale.xml'), 'GetExternalIPAddress')], [['NewExternalIPAddress', '123.123.123.123']]);
});

test('answer: an undeclared namespace prefix is read by local name (async_upnp_client fixture)', () => {
  assert.equal(parseSoapResponse(fixture('delete-unbound-prefix-async-upnp-client.xml'), 'DeletePortMapping').size, 0);
});

test('fault: 725 with non-standard faultCode/faultString spelling (tailscale fixture)', () => {
  assert.throws(() => parseSoapResponse(fixture('fault-725-tailscale.xml'), 'AddPortMapping', 500), (e: unknown) => {
    assert.ok(e instanceof UpnpFaultError);
    assert.equal(e.code, 'ERR_UPNP_FAULT');
    assert.equal(e.upnpCode, 725);
    assert.equal(e.upnpDescription, 'OnlyPermanentLeasesSupported');
    assert.equal(e.httpStatus, 500);
    assert.match(e.message, /AddPortMapping failed: UPnP error 725 OnlyPermanentLeasesSupported/);
    return true;
  });
});

for (const [code, name] of [[718, 'ConflictInMappingEntry'], [725, 'OnlyPermanentLeasesSupported'], [402, 'Invalid Args'], [501, 'Action Failed'], [606, 'Action not authorized'], [714, 'NoSuchEntryInArray'], [716, 'WildCardNotPermittedInExtPort'], [724, 'SamePortValuesRequired'], [727, 'ExternalPortOnlySupportsWildcard'], [728, 'NoPortMapsAvailable'], [729, 'ConflictWithOtherMechanisms']] as const) {
  test(`fault ${code} ${name} → UpnpFaultError carrying the code`, () => {
    assert.throws(() => parseSoapResponse(faultBody(code, name), 'AddPortMapping', 500), (e) => isUpnpFault(e, code) && e.message.includes(name));
  });
}

test('fault without a UPnPError detail: code undefined, still typed', () => {
  assert.throws(() => parseSoapResponse(soapEnvelope('<s:Fault><faultcode>s:Server</faultcode><faultstring>boom</faultstring></s:Fault>'), 'X'), (e) => isUpnpFault(e) && e.upnpCode === undefined);
  assert.throws(() => parseSoapResponse(faultBody(99999, 'x'), 'X'), (e) => isUpnpFault(e) && e.upnpCode === undefined, 'a code beyond 4 digits is not taken');
});

test('wrong SOAP: another action\'s answer, no Body, not an Envelope → ERR_PROTOCOL; not XML → ERR_XML', () => {
  const other = soapEnvelope(`<u:DeletePortMappingResponse xmlns:u="${WANIP1}"/>`);
  assert.throws(() => parseSoapResponse(other, 'AddPortMapping'), (e) => isNatkitError(e, 'ERR_PROTOCOL') && /expected <AddPortMappingResponse>.*got <DeletePortMappingResponse>/.test(e.message));
  assert.throws(() => parseSoapResponse('<s:Envelope xmlns:s="x"/>', 'A'), (e) => isNatkitError(e, 'ERR_PROTOCOL'));
  assert.throws(() => parseSoapResponse('<html/>', 'A'), (e) => isNatkitError(e, 'ERR_PROTOCOL'));
  assert.throws(() => parseSoapResponse('OK', 'A'), (e) => isNatkitError(e, 'ERR_XML'));
});
