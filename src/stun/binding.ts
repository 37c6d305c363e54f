// Binding requests and what their responses say: RFC 8489 §3 and §6 (the Binding
// method), §11 and §14.1–§14.2 (XOR-MAPPED-ADDRESS, MAPPED-ADDRESS); RFC 5780 §7
// (CHANGE-REQUEST, RESPONSE-PORT, PADDING, RESPONSE-ORIGIN, OTHER-ADDRESS); RFC 3489
// §11.2 (SOURCE-ADDRESS, CHANGED-ADDRESS). Pure: the client driver sends and receives.
import type { Endpoint } from '../net/index.ts';
import { StunDecodeError } from './attribute.ts';
import { StunClass } from './constants.ts';
import { attr, type AttrEntry, type StunMessage } from './message.ts';
import {
  ALTERNATE_SERVER, CHANGED_ADDRESS, MAPPED_ADDRESS, OTHER_ADDRESS, RESPONSE_ORIGIN, SOURCE_ADDRESS, XOR_MAPPED_ADDRESS,
} from './attributes/address.ts';
import { ERROR_CODE, UNKNOWN_ATTRIBUTES, type StunErrorValue } from './attributes/error.ts';
import { CHANGE_REQUEST, PADDING, RESPONSE_PORT, type ChangeRequest } from './attributes/rfc5780.ts';
import { SOFTWARE, USERNAME } from './attributes/text.ts';

/** What a Binding request asks for beyond the plain question. */
export interface BindingRequestOptions {
  /** RFC 5780 §7.2: ask the server to answer from its other IP and/or port. */
  readonly changeRequest?: ChangeRequest;
  /** RFC 5780 §7.5: ask the server to answer to this port of ours instead of the source port. */
  readonly responsePort?: number;
  /** RFC 5780 §7.6: PADDING of this many bytes (MTU and fragmentation tests). */
  readonly paddingBytes?: number;
  /** USERNAME, for servers that want short-term credentials (RFC 8489 §9.1.2). */
  readonly username?: string;
}

/** The attributes of a Binding request, in the order they are written. */
export function bindingAttributes(o: BindingRequestOptions): AttrEntry[] {
  const out: AttrEntry[] = [];
  if (o.username !== undefined) out.push(attr(USERNAME, o.username));
  if (o.changeRequest !== undefined) out.push(attr(CHANGE_REQUEST, o.changeRequest));
  if (o.responsePort !== undefined) out.push(attr(RESPONSE_PORT, o.responsePort));
  if (o.paddingBytes !== undefined) out.push(attr(PADDING, o.paddingBytes));
  return out;
}

/** What every response carries besides its content. */
export interface ResponseInfo {
  /** The decoded response (a copy of the received bytes, safe to keep). */
  readonly message: StunMessage;
  /** Where the response came from: may differ from where the request went (RFC 5780 CHANGE-REQUEST). */
  readonly from: Endpoint;
  /** From the first transmission to the response; an RTT sample only when `transmissions` is 1. */
  readonly rttMs: number;
  /** How many times the request was sent. */
  readonly transmissions: number;
}

/** What a Binding success response says. */
export interface BindingFields {
  /** Our address as the server saw it: XOR-MAPPED-ADDRESS, else MAPPED-ADDRESS. */
  readonly mapped: Endpoint;
  /** True when `mapped` came from XOR-MAPPED-ADDRESS (immune to ALGs that rewrite addresses in payloads). */
  readonly isXorMapped: boolean;
  /** RESPONSE-ORIGIN (RFC 5780 §7.3), else SOURCE-ADDRESS (RFC 3489): where the server sent from. */
  readonly responseOrigin: Endpoint | undefined;
  /** OTHER-ADDRESS (RFC 5780 §7.4), else CHANGED-ADDRESS (RFC 3489): the server's alternate address. */
  readonly otherAddress: Endpoint | undefined;
  readonly software: string | undefined;
}

/** What a Binding error response says. */
export interface BindingErrorFields {
  readonly error: StunErrorValue;
  /** UNKNOWN-ATTRIBUTES of a 420 response. */
  readonly unknownAttributes: readonly number[] | undefined;
  /** ALTERNATE-SERVER of a 300 response. */
  readonly alternateServer: Endpoint | undefined;
}

/** Outcome of a Binding transaction: the server answered with success or an error (a value, not an exception). */
export type BindingResult = (ResponseInfo & BindingFields & { readonly ok: true }) | (ResponseInfo & BindingErrorFields & { readonly ok: false });

/** Reads a Binding success response; throws StunDecodeError when an attribute is garbled or no mapped address is present. */
export function bindingFields(msg: StunMessage): BindingFields {
  const xor = msg.get(XOR_MAPPED_ADDRESS);
  // RFC 8489 §14.2: XOR-MAPPED-ADDRESS is what a client must use; MAPPED-ADDRESS is for
  // RFC 3489 servers (§11, §14.1), which never send the XOR form.
  const mapped = xor ?? msg.get(MAPPED_ADDRESS);
  if (mapped === undefined) throw new StunDecodeError('expected XOR-MAPPED-ADDRESS or MAPPED-ADDRESS in a Binding success response, got neither', 0);
  return {
    mapped,
    isXorMapped: xor !== undefined,
    responseOrigin: msg.get(RESPONSE_ORIGIN) ?? msg.get(SOURCE_ADDRESS),
    otherAddress: msg.get(OTHER_ADDRESS) ?? msg.get(CHANGED_ADDRESS),
    software: msg.get(SOFTWARE),
  };
}

/** Reads a Binding error response; throws StunDecodeError when an attribute is garbled or ERROR-CODE is absent. */
export function bindingErrorFields(msg: StunMessage): BindingErrorFields {
  const error = msg.get(ERROR_CODE);
  if (error === undefined) throw new StunDecodeError('expected ERROR-CODE in an error response, got none', 0);
  return { error, unknownAttributes: msg.get(UNKNOWN_ATTRIBUTES), alternateServer: msg.get(ALTERNATE_SERVER) };
}

/** Checks a Binding response for the transaction (see TransactionOptions.validate). */
export function validateBindingResponse(msg: StunMessage): void {
  if (msg.cls === StunClass.SUCCESS) bindingFields(msg);
  else bindingErrorFields(msg);
}

/** Builds the BindingResult of a response the transaction accepted. */
export function bindingResult(info: ResponseInfo): BindingResult {
  return info.message.cls === StunClass.SUCCESS
    ? { ok: true, ...info, ...bindingFields(info.message) }
    : { ok: false, ...info, ...bindingErrorFields(info.message) };
}
