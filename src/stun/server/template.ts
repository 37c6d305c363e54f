// Binding success responses from a template. To a Binding request that is only a header
// (RFC 8489 §5: no attributes), a basic server's response (RFC 8489 §13) varies with the
// request in two places only: the transaction ID, echoed (§6.3.1.1), and the value of
// XOR-MAPPED-ADDRESS (§14.2). The template is the full path's own response to one such
// request; later ones get a copy with those two rewritten, the value by the attribute's
// own codec. Nothing else in the response may depend on them, so a template that holds
// MESSAGE-INTEGRITY or FINGERPRINT (computed over the whole message, §14.5–§14.7) is refused.
import type { Endpoint } from '../../net/index.ts';
import { ByteWriter, copyBytes } from '../../wire/index.ts';
import { HEADER_LENGTH, MAGIC_COOKIE, TRANSACTION_ID_LENGTH } from '../constants.ts';
import { decodeMessage } from '../message.ts';
import { XOR_MAPPED_ADDRESS } from '../attributes/address.ts';
import { FINGERPRINT, MESSAGE_INTEGRITY, MESSAGE_INTEGRITY_SHA256 } from '../attributes/auth.ts';

/** Offset of the transaction ID: after type, length and the magic cookie (RFC 8489 §5). */
const ID_OFFSET = HEADER_LENGTH - TRANSACTION_ID_LENGTH;

/** An RFC 8489 Binding request of exactly a header: type 0x0001, length 0, the magic cookie. */
export function isBareBindingRequest(data: Uint8Array): boolean {
  if (data.length !== HEADER_LENGTH || data[0] !== 0x00 || data[1] !== 0x01 || data[2] !== 0 || data[3] !== 0) return false;
  return ((data[4]! << 24) | (data[5]! << 16) | (data[6]! << 8) | data[7]!) >>> 0 === MAGIC_COOKIE;
}

/** A response to bare Binding requests with the ID and XOR-MAPPED-ADDRESS left to fill in. */
export class BindingTemplate {
  private readonly bytes: Uint8Array;
  /** Offset and length of the XOR-MAPPED-ADDRESS value in `bytes`. */
  private readonly valueOffset: number;
  private readonly valueLength: number;
  private readonly value = new ByteWriter(32);

  private constructor(bytes: Uint8Array, valueOffset: number, valueLength: number) {
    this.bytes = bytes;
    this.valueOffset = valueOffset;
    this.valueLength = valueLength;
  }

  /**
   * A template made of a full-path response to a bare Binding request; undefined when the
   * response has no XOR-MAPPED-ADDRESS or carries something computed over the message.
   */
  static from(response: Uint8Array): BindingTemplate | undefined {
    const msg = decodeMessage(response, { allowLegacy: false });
    const mapped = msg.find(XOR_MAPPED_ADDRESS.type);
    if (mapped === undefined) return undefined;
    if ([FINGERPRINT, MESSAGE_INTEGRITY, MESSAGE_INTEGRITY_SHA256].some((c) => msg.has(c))) return undefined;
    return new BindingTemplate(response.slice(), mapped.offset + 4, mapped.length);
  }

  /**
   * The response to `request` (a bare Binding request, see isBareBindingRequest) from
   * `mapped`; undefined when its address does not take the template's length (the other family).
   */
  fill(request: Uint8Array, mapped: Endpoint): Uint8Array | undefined {
    const out = copyBytes(this.bytes);
    for (let i = ID_OFFSET; i < HEADER_LENGTH; i++) out[i] = request[i]!;
    const value = this.value.reset();
    XOR_MAPPED_ADDRESS.encode(mapped, value, { transactionId: out.subarray(ID_OFFSET, HEADER_LENGTH) });
    if (value.length !== this.valueLength) return undefined;
    out.set(value.finish(), this.valueOffset);
    return out;
  }
}
