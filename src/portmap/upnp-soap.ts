// UPnP control (UDA 1.1 §3.2): SOAP 1.1 action requests built with XML escaping, and
// responses read into their out arguments or into a typed fault carrying the UPnP
// error code (UDA 1.1 §3.2.2 "Action error response"; codes of WANIPConnection:1 §2.4 and
// WANIPConnection:2 §2.5). The gateway server's side too: requests read into their in
// arguments, responses and faults built.
import type { Endpoint, Env } from '../net/index.ts';
import { NatkitError } from '../util/index.ts';
import { httpRequest, type HttpRequestOptions } from './upnp-http.ts';
import { child, childText, parseXml } from './upnp-xml.ts';

/** UPnP error codes natkit meets, with their names in the specs. */
export const UPNP_ERRORS: Readonly<Record<number, string>> = {
  401: 'Invalid Action',
  402: 'Invalid Args',
  501: 'Action Failed',
  600: 'Argument Value Invalid',
  601: 'Argument Value Out of Range',
  602: 'Optional Action Not Implemented',
  606: 'Action not authorized',
  713: 'SpecifiedArrayIndexInvalid',
  714: 'NoSuchEntryInArray',
  715: 'WildCardNotPermittedInSrcIP',
  716: 'WildCardNotPermittedInExtPort',
  718: 'ConflictInMappingEntry',
  724: 'SamePortValuesRequired',
  725: 'OnlyPermanentLeasesSupported',
  726: 'RemoteHostOnlySupportsWildcard',
  727: 'ExternalPortOnlySupportsWildcard',
  728: 'NoPortMapsAvailable',
  729: 'ConflictWithOtherMechanisms',
  732: 'WildCardNotPermittedInIntPort',
};

/** A SOAP fault from the gateway: the action failed with a UPnP error code. */
export class UpnpFaultError extends NatkitError {
  /** The UPnPError errorCode, or undefined when the fault carried none. */
  readonly upnpCode: number | undefined;
  /** errorDescription as the gateway sent it. */
  readonly upnpDescription: string;
  readonly action: string;
  /** HTTP status of the answer (500 per UDA 1.1 §3.2.2). */
  readonly httpStatus: number;

  constructor(action: string, upnpCode: number | undefined, upnpDescription: string, httpStatus: number) {
    const known = upnpCode === undefined ? undefined : UPNP_ERRORS[upnpCode];
    super('ERR_UPNP_FAULT', `${action} failed: UPnP error ${upnpCode ?? '(none)'}${known === undefined ? '' : ` ${known}`}${upnpDescription === '' ? '' : ` ("${upnpDescription.slice(0, 120)}")`}`);
    this.name = 'UpnpFaultError';
    this.upnpCode = upnpCode;
    this.upnpDescription = upnpDescription;
    this.action = action;
    this.httpStatus = httpStatus;
  }
}

/** True when `err` is a UPnP fault, optionally with one of `codes`. */
export function isUpnpFault(err: unknown, ...codes: number[]): err is UpnpFaultError {
  return err instanceof UpnpFaultError && (codes.length === 0 || (err.upnpCode !== undefined && codes.includes(err.upnpCode)));
}

/** Escapes text for XML character data and attributes; refuses characters XML 1.0 §2.2 does not allow. */
export function escapeXml(text: string): string {
  // eslint-disable-next-line no-control-regex
  if (/[\0-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/.test(text)) {
    throw new NatkitError('ERR_INVALID_ARGUMENT', `text holds a character XML 1.0 cannot carry: ${JSON.stringify(text.slice(0, 60))}`);
  }
  // CR as a reference: XML 1.0 §2.11 would read a literal CR (or CRLF) back as LF.
  return text.replace(/[&<>"'\r]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;', '\r': '&#13;' })[c]!);
}

const ACTION_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;

/** A SOAP 1.1 action request (UDA 1.1 §3.2.1); `args` in the order the service declares them. */
export function buildSoapRequest(serviceType: string, action: string, args: readonly (readonly [string, string])[]): string {
  if (!ACTION_NAME.test(action)) throw new NatkitError('ERR_INVALID_ARGUMENT', `action name ${JSON.stringify(action)} is not an XML name`);
  const body = args.map(([name, value]) => {
    if (!ACTION_NAME.test(name)) throw new NatkitError('ERR_INVALID_ARGUMENT', `argument name ${JSON.stringify(name)} is not an XML name`);
    return `<${name}>${escapeXml(value)}</${name}>`;
  }).join('');
  return soapEnvelope(`<u:${action} xmlns:u="${escapeXml(serviceType)}">${body}</u:${action}>`);
}

/** A SOAP 1.1 envelope around `inner` (already XML), as UDA 1.1 §3.2.1 spells it. */
export function soapEnvelope(inner: string): string {
  return '<?xml version="1.0"?>\r\n'
    + '<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" s:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/">'
    + `<s:Body>${inner}</s:Body></s:Envelope>\r\n`;
}

/** An action's response (UDA 1.1 §3.2.2): <actionResponse> with the out arguments in order. */
export function buildSoapResponse(serviceType: string, action: string, out: readonly (readonly [string, string])[]): string {
  return buildSoapRequest(serviceType, `${action}Response`, out);
}

/** A UPnPError fault (UDA 1.1 §3.2.2), sent with HTTP 500. */
export function buildSoapFault(code: number, description: string): string {
  return soapEnvelope('<s:Fault><faultcode>s:Client</faultcode><faultstring>UPnPError</faultstring><detail>'
    + `<UPnPError xmlns="urn:schemas-upnp-org:control-1-0"><errorCode>${code}</errorCode><errorDescription>${escapeXml(description)}</errorDescription></UPnPError>`
    + '</detail></s:Fault>');
}

/** An action request as the gateway reads it. */
export interface SoapRequest {
  readonly action: string;
  /** In arguments by name (text untrimmed, as sent). */
  readonly args: ReadonlyMap<string, string>;
}

/** Reads an action request: the first element of the Body names the action. Throws ERR_XML or ERR_PROTOCOL. */
export function parseSoapRequest(xml: string): SoapRequest {
  const envelope = parseXml(xml);
  const call = envelope.name === 'Envelope' ? child(envelope, 'Body')?.children[0] : undefined;
  if (call === undefined) throw new NatkitError('ERR_PROTOCOL', `expected a SOAP Envelope with an action in its Body, got <${envelope.name}>`);
  return { action: call.name, args: new Map(call.children.map((c) => [c.name, c.text])) };
}

/**
 * Reads a control answer. A Fault becomes UpnpFaultError (whatever the HTTP status:
 * some gateways send faults with 200); otherwise the body must hold <actionResponse>,
 * whose child elements are returned as out arguments (trimmed text). Throws ERR_XML or
 * ERR_PROTOCOL for anything else.
 */
export function parseSoapResponse(xml: string, action: string, httpStatus = 200): ReadonlyMap<string, string> {
  const envelope = parseXml(xml);
  const body = envelope.name === 'Envelope' ? child(envelope, 'Body') : undefined;
  if (body === undefined) throw new NatkitError('ERR_PROTOCOL', `${action}: expected a SOAP Envelope with a Body, got <${envelope.name}>`);
  const fault = child(body, 'Fault');
  if (fault !== undefined) {
    const detail = child(fault, 'detail');
    const upnp = detail === undefined ? undefined : child(detail, 'UPnPError');
    const codeText = upnp === undefined ? undefined : childText(upnp, 'errorCode');
    const code = codeText !== undefined && /^\d{1,4}$/.test(codeText) ? Number(codeText) : undefined;
    throw new UpnpFaultError(action, code, (upnp === undefined ? undefined : childText(upnp, 'errorDescription')) ?? '', httpStatus);
  }
  const response = child(body, `${action}Response`);
  if (response === undefined) {
    throw new NatkitError('ERR_PROTOCOL', `${action}: expected <${action}Response> in the SOAP Body, got ${body.children.map((c) => `<${c.name}>`).join(', ') || 'nothing'}`);
  }
  return new Map(response.children.map((c) => [c.name, c.text.trim()]));
}

/** Where and how to invoke an action. */
export interface SoapCall {
  readonly controlUrl: URL;
  readonly serviceType: string;
  readonly action: string;
  readonly args: readonly (readonly [string, string])[];
}

/** An action's result: its out arguments and our address on the connection that carried it. */
export interface SoapResult {
  readonly out: ReadonlyMap<string, string>;
  readonly local: Endpoint;
}

/**
 * Invokes an action. Rejects with UpnpFaultError (ERR_UPNP_FAULT), ERR_HTTP_STATUS (an
 * error status without a SOAP fault), ERR_XML, ERR_PROTOCOL, or httpRequest's errors.
 */
export async function soapCall(env: Env, call: SoapCall, options: HttpRequestOptions = {}): Promise<SoapResult> {
  const body = new TextEncoder().encode(buildSoapRequest(call.serviceType, call.action, call.args));
  const { response, local } = await httpRequest(env, {
    method: 'POST',
    url: call.controlUrl,
    fields: {
      'Content-Type': 'text/xml; charset="utf-8"',
      // UDA 1.1 §3.2.1: the quoted service type and action name.
      SOAPAction: `"${call.serviceType}#${call.action}"`,
    },
    body,
  }, { maxBodyBytes: 65_536, ...options });
  const status = response.head.status;
  const text = new TextDecoder().decode(response.body);
  if (status >= 200 && status < 300) return { out: parseSoapResponse(text, call.action, status), local };
  // UDA 1.1 §3.2.2: errors come as 500 with a SOAP Fault; read one if it is there.
  let fault: unknown;
  try {
    parseSoapResponse(text, call.action, status);
  } catch (err) {
    fault = err;
  }
  if (fault instanceof UpnpFaultError) throw fault;
  throw new NatkitError('ERR_HTTP_STATUS', `${call.action} at ${call.controlUrl.href}: HTTP ${status} ${response.head.reason} without a SOAP fault`, { cause: fault });
}
