// TURN attributes, RFC 8656 §18: CHANNEL-NUMBER (§18.1), LIFETIME (§18.2), XOR-PEER-ADDRESS
// (§18.3), DATA (§18.4), XOR-RELAYED-ADDRESS (§18.5), EVEN-PORT (§18.6), REQUESTED-TRANSPORT
// (§18.7), DONT-FRAGMENT (§18.8), RESERVATION-TOKEN (§18.9), REQUESTED-ADDRESS-FAMILY
// (§18.10), ADDITIONAL-ADDRESS-FAMILY (§18.11), ADDRESS-ERROR-CODE (§18.12), ICMP (§18.13).
// They join the STUN registry from here; the STUN core is not edited.
import { DecodeError, NatkitError } from '../util/index.ts';
import { ByteReader } from '../wire/index.ts';
import { StunDecodeError, addressAttribute, defineAttribute, type AttrCodec, type StunMessage } from '../stun/index.ts';
import { AddressFamily } from './constants.ts';

/** Throws StunDecodeError unless the value has exactly `n` bytes. */
function expectLength(r: ByteReader, name: string, n: number): void {
  if (r.remaining !== n) throw new StunDecodeError(`${name}: expected ${n} bytes, got ${r.remaining}`, r.offset);
}

/** Throws ERR_INVALID_ARGUMENT unless `value` is an integer in [min, max]. */
function checkRange(name: string, value: number, min: number, max: number): void {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new NatkitError('ERR_INVALID_ARGUMENT', `${name}: expected an integer in ${min}–${max}, got ${value}`);
  }
}

/**
 * An unsigned value of `width` bytes, then reserved bytes up to 4 (RFFU: sent as zero,
 * ignored on receipt): CHANNEL-NUMBER (§18.1), REQUESTED-TRANSPORT (§18.7),
 * REQUESTED-ADDRESS-FAMILY (§18.10), ADDITIONAL-ADDRESS-FAMILY (§18.11).
 */
function reservedTailAttribute(type: number, name: string, width: 1 | 2): AttrCodec<number> {
  const max = width === 1 ? 0xff : 0xffff;
  return defineAttribute<number>({
    type,
    name,
    encode(value, w) {
      checkRange(name, value, 0, max);
      if (width === 1) w.u8(value).u8(0).u16(0);
      else w.u16(value).u16(0);
    },
    decode(r) {
      expectLength(r, name, 4);
      const value = width === 1 ? r.u8(name) : r.u16(name);
      r.skip(4 - width);
      return value;
    },
  });
}

/** CHANNEL-NUMBER (RFC 8656 §18.1). Any 16-bit number decodes; the server checks the range. */
export const CHANNEL_NUMBER = reservedTailAttribute(0x000c, 'CHANNEL-NUMBER', 2);

/** LIFETIME in seconds (RFC 8656 §18.2). */
export const LIFETIME = defineAttribute<number>({
  type: 0x000d,
  name: 'LIFETIME',
  encode(value, w) {
    checkRange('LIFETIME', value, 0, 0xffffffff);
    w.u32(value);
  },
  decode(r) {
    expectLength(r, 'LIFETIME', 4);
    return r.u32('LIFETIME');
  },
});

export const XOR_PEER_ADDRESS = addressAttribute(0x0012, 'XOR-PEER-ADDRESS', true);
export const XOR_RELAYED_ADDRESS = addressAttribute(0x0016, 'XOR-RELAYED-ADDRESS', true);

/** DATA: the application bytes, a view into the message (RFC 8656 §18.4). */
export const DATA_ATTRIBUTE = defineAttribute<Uint8Array>({
  type: 0x0013,
  name: 'DATA',
  encode(value, w) {
    w.bytes(value);
  },
  decode(r) {
    return r.bytesView(r.remaining, 'DATA');
  },
});

/** EVEN-PORT value: `reserveNext` is the R bit (RFC 8656 §18.6). */
export interface EvenPort {
  readonly reserveNext: boolean;
}

/** EVEN-PORT: one byte, R in the top bit, seven RFFU bits (RFC 8656 §18.6). */
export const EVEN_PORT = defineAttribute<EvenPort>({
  type: 0x0018,
  name: 'EVEN-PORT',
  encode(value, w) {
    w.u8(value.reserveNext ? 0x80 : 0);
  },
  decode(r) {
    expectLength(r, 'EVEN-PORT', 1);
    return { reserveNext: (r.u8('EVEN-PORT') & 0x80) !== 0 };
  },
});

/** REQUESTED-TRANSPORT: an IP protocol number, 17 for UDP (RFC 8656 §18.7). */
export const REQUESTED_TRANSPORT = reservedTailAttribute(0x0019, 'REQUESTED-TRANSPORT', 1);

/** DONT-FRAGMENT: no value (RFC 8656 §18.8); decodes to true. */
export const DONT_FRAGMENT = defineAttribute<true>({
  type: 0x001a,
  name: 'DONT-FRAGMENT',
  encode() {},
  decode(r) {
    expectLength(r, 'DONT-FRAGMENT', 0);
    return true;
  },
});

/** RESERVATION-TOKEN: 8 opaque bytes (RFC 8656 §18.9). */
export const RESERVATION_TOKEN = defineAttribute<Uint8Array>({
  type: 0x0022,
  name: 'RESERVATION-TOKEN',
  encode(value, w) {
    if (value.length !== 8) throw new NatkitError('ERR_INVALID_ARGUMENT', `RESERVATION-TOKEN: expected 8 bytes, got ${value.length}`);
    w.bytes(value);
  },
  decode(r) {
    expectLength(r, 'RESERVATION-TOKEN', 8);
    return r.bytesView(8, 'RESERVATION-TOKEN');
  },
});

/** REQUESTED-ADDRESS-FAMILY: 0x01 IPv4 or 0x02 IPv6 (RFC 8656 §18.10); other values decode and get 440. */
export const REQUESTED_ADDRESS_FAMILY = reservedTailAttribute(0x0017, 'REQUESTED-ADDRESS-FAMILY', 1);
/** ADDITIONAL-ADDRESS-FAMILY: only 0x02 is valid (RFC 8656 §18.11); other values decode and get 400. */
export const ADDITIONAL_ADDRESS_FAMILY = reservedTailAttribute(0x8000, 'ADDITIONAL-ADDRESS-FAMILY', 1);

/** ADDRESS-ERROR-CODE value: why one family of a dual allocation failed (RFC 8656 §18.12). */
export interface AddressErrorValue {
  /** AddressFamily.IPV4 or AddressFamily.IPV6. */
  readonly family: number;
  readonly code: number;
  readonly reason: string;
}

const utf8 = new TextEncoder();
const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** ADDRESS-ERROR-CODE: family (8 bits), 13 reserved bits, class (3 bits), number (8 bits), reason (RFC 8656 §18.12). */
export const ADDRESS_ERROR_CODE = defineAttribute<AddressErrorValue>({
  type: 0x8001,
  name: 'ADDRESS-ERROR-CODE',
  encode(value, w) {
    checkRange('ADDRESS-ERROR-CODE code', value.code, 300, 699);
    const reason = utf8.encode(value.reason);
    // Same limit as ERROR-CODE's reason phrase (RFC 8489 §14.8): 763 bytes.
    if (reason.length > 763) throw new NatkitError('ERR_INVALID_ARGUMENT', 'ADDRESS-ERROR-CODE: reason over 763 bytes');
    w.u8(value.family).u8(0).u8(Math.floor(value.code / 100)).u8(value.code % 100).bytes(reason);
  },
  decode(r) {
    const start = r.offset;
    const family = r.u8('ADDRESS-ERROR-CODE');
    r.skip(1, 'ADDRESS-ERROR-CODE');
    const cls = r.u8('ADDRESS-ERROR-CODE') & 0x07;
    const number = r.u8('ADDRESS-ERROR-CODE');
    if (family !== AddressFamily.IPV4 && family !== AddressFamily.IPV6) {
      throw new StunDecodeError(`ADDRESS-ERROR-CODE: expected family 0x01 or 0x02, got 0x${family.toString(16)}`, start);
    }
    if (cls < 3 || cls > 6 || number > 99) {
      throw new StunDecodeError(`ADDRESS-ERROR-CODE: expected class 3–6 and number 0–99, got ${cls} and ${number}`, start + 2);
    }
    let reason: string;
    try {
      reason = strictUtf8.decode(r.bytesView(r.remaining));
    } catch (cause) {
      throw new StunDecodeError('ADDRESS-ERROR-CODE: expected a UTF-8 reason phrase', start + 4, { cause });
    }
    return { family, code: cls * 100 + number, reason };
  },
});

/** ICMP value (RFC 8656 §18.13): what a peer's ICMP error said. */
export interface IcmpValue {
  /** ICMP type, 7 bits (0–127). */
  readonly type: number;
  /** ICMP code, 9 bits (0–511). */
  readonly code: number;
  /** MTU for "packet too big" / "fragmentation needed", otherwise 0. */
  readonly errorData: number;
}

/** ICMP: 16 reserved bits, a 7-bit type and a 9-bit code, then 32 bits of error data (RFC 8656 §18.13). */
export const ICMP = defineAttribute<IcmpValue>({
  type: 0x8004,
  name: 'ICMP',
  encode(value, w) {
    checkRange('ICMP type', value.type, 0, 0x7f);
    checkRange('ICMP code', value.code, 0, 0x1ff);
    checkRange('ICMP error data', value.errorData, 0, 0xffffffff);
    w.u16(0).u16((value.type << 9) | value.code).u32(value.errorData);
  },
  decode(r) {
    expectLength(r, 'ICMP', 8);
    r.skip(2);
    const bits = r.u16('ICMP');
    return { type: bits >> 9, code: bits & 0x1ff, errorData: r.u32('ICMP') };
  },
});

/**
 * Every attribute of a codec's type, in order: CreatePermission carries several
 * XOR-PEER-ADDRESS (RFC 8656 §9.1), a dual allocation's response two XOR-RELAYED-ADDRESS
 * (§7.2), where StunMessage.get() gives the first. Throws StunDecodeError only.
 */
export function allOf<T>(msg: StunMessage, codec: AttrCodec<T>): T[] {
  const out: T[] = [];
  for (const a of msg.attributes) {
    if (a.type !== codec.type) continue;
    const r = new ByteReader(msg.raw.subarray(0, a.offset + 4 + a.length), a.offset + 4);
    try {
      out.push(codec.decode(r, msg));
    } catch (err) {
      if (err instanceof StunDecodeError || !(err instanceof DecodeError)) throw err;
      throw new StunDecodeError(`${codec.name}: ${err.message}`, err.offset, { cause: err });
    }
  }
  return out;
}
