// RFC 8489 §14.8 ERROR-CODE and §14.13 UNKNOWN-ATTRIBUTES.
import { defineAttribute, StunDecodeError } from '../attribute.ts';
import { NatkitError } from '../../util/index.ts';

/** An error response's code (300–699) and reason phrase. */
export interface StunErrorValue {
  readonly code: number;
  readonly reason: string;
}

// The reason phrase is at most 763 bytes of UTF-8 (RFC 8489 §14.8).
const reasonLimit = 763;

export const ERROR_CODE = defineAttribute<StunErrorValue>({
  type: 0x0009,
  name: 'ERROR-CODE',
  encode(value, w) {
    if (!Number.isInteger(value.code) || value.code < 300 || value.code > 699) {
      throw new NatkitError('ERR_INVALID_ARGUMENT', `ERROR-CODE: expected a code in 300–699, got ${value.code}`);
    }
    const reason = new TextEncoder().encode(value.reason);
    if (reason.length > reasonLimit) throw new NatkitError('ERR_INVALID_ARGUMENT', `ERROR-CODE: reason over ${reasonLimit} bytes`);
    w.u16(0).u8(Math.floor(value.code / 100)).u8(value.code % 100).bytes(reason);
  },
  decode(r) {
    const start = r.offset;
    r.u16('ERROR-CODE');
    const cls = r.u8('ERROR-CODE') & 0x07;
    const number = r.u8('ERROR-CODE');
    // RFC 8489 §14.8: class 3–6, number 0–99.
    if (cls < 3 || cls > 6 || number > 99) {
      throw new StunDecodeError(`ERROR-CODE: expected class 3–6 and number 0–99, got ${cls} and ${number}`, start);
    }
    const reasonStart = r.offset;
    let reason: string;
    try {
      reason = new TextDecoder('utf-8', { fatal: true }).decode(r.bytesView(r.remaining));
    } catch (cause) {
      throw new StunDecodeError('ERROR-CODE: expected a UTF-8 reason phrase', reasonStart, { cause });
    }
    // coturn (4.6.1, stun_init_error_response_common_str in ns_turn_msg.c) pads the reason
    // to a 4-byte boundary with NULs *inside* the attribute length, "for compatibility
    // with classic old stun" (RFC 3489 §11.2.9); RFC 8489 §14 leaves padding out of the
    // length. A NUL ends no real reason phrase: trailing ones are that padding.
    return { code: cls * 100 + number, reason: reason.replace(/\0+$/, '') };
  },
});

export const UNKNOWN_ATTRIBUTES = defineAttribute<readonly number[]>({
  type: 0x000a,
  name: 'UNKNOWN-ATTRIBUTES',
  encode(value, w) {
    for (const type of value) w.u16(type);
  },
  decode(r) {
    if (r.remaining % 2 !== 0) throw new StunDecodeError(`UNKNOWN-ATTRIBUTES: odd length ${r.remaining}`, r.offset);
    const out: number[] = [];
    while (r.remaining > 0) out.push(r.u16('UNKNOWN-ATTRIBUTES'));
    return out;
  },
});
