// Address attributes: RFC 8489 §14.1 MAPPED-ADDRESS, §14.2 XOR-MAPPED-ADDRESS,
// §14.15 ALTERNATE-SERVER; RFC 5780 §7.3 RESPONSE-ORIGIN, §7.4 OTHER-ADDRESS;
// RFC 3489 §11.2 RESPONSE-ADDRESS, CHANGED-ADDRESS, SOURCE-ADDRESS (decoded only).
import { defineAttribute, StunDecodeError, type AttrCodec, type MessageContext } from '../attribute.ts';
import { MAGIC_COOKIE } from '../constants.ts';
import type { Endpoint } from '../../net/index.ts';
import { formatIp, ipv4ToNumber, parseIp } from '../../util/index.ts';

const FAMILY_IPV4 = 0x01;
const FAMILY_IPV6 = 0x02;

/** The 16 bytes XOR-encoded addresses are masked with: cookie + transaction ID (RFC 8489 §14.2). */
function xorMask(ctx: MessageContext): Uint8Array {
  if (ctx.transactionId.length === 16) return ctx.transactionId;
  const mask = new Uint8Array(16);
  new DataView(mask.buffer).setUint32(0, MAGIC_COOKIE);
  mask.set(ctx.transactionId, 4);
  return mask;
}

/**
 * Makes the codec of an address attribute; `xor` masks port and address as
 * XOR-MAPPED-ADDRESS does. TURN's XOR-PEER-ADDRESS and XOR-RELAYED-ADDRESS use it too.
 */
export function addressAttribute(type: number, name: string, xor: boolean): AttrCodec<Endpoint> {
  return defineAttribute<Endpoint>({
    type,
    name,
    encode(value, w, ctx) {
      const port = xor ? value.port ^ (MAGIC_COOKIE >>> 16) : value.port;
      // IPv4 as one number: no text-to-bytes round trip on every Binding response. Its mask
      // is the magic cookie (RFC 8489 §14.2) unless a 16-byte RFC 3489 ID stands there.
      const v4 = value.family === 4 && (!xor || ctx.transactionId.length !== 16) ? ipv4ToNumber(value.address) : undefined;
      if (v4 !== undefined) {
        w.u8(0).u8(FAMILY_IPV4).u16(port).u32(xor ? v4 ^ MAGIC_COOKIE : v4);
        return;
      }
      const bytes = parseIp(value.address);
      const mask = xor ? xorMask(ctx) : undefined;
      w.u8(0).u8(value.family === 4 ? FAMILY_IPV4 : FAMILY_IPV6).u16(port);
      if (mask) for (let i = 0; i < bytes.length; i++) w.u8((bytes[i] ?? 0) ^ (mask[i] ?? 0));
      else w.bytes(bytes);
    },
    decode(r, ctx) {
      const start = r.offset;
      r.u8(name); // reserved: ignored by receivers (RFC 8489 §14.1)
      const family = r.u8(name);
      if (family !== FAMILY_IPV4 && family !== FAMILY_IPV6) {
        throw new StunDecodeError(`${name}: expected family 0x01 or 0x02, got 0x${family.toString(16)}`, start + 1);
      }
      const size = family === FAMILY_IPV4 ? 4 : 16;
      if (r.remaining !== size + 2) {
        throw new StunDecodeError(`${name}: expected ${size + 4} bytes for IPv${family === 1 ? 4 : 6}, got ${r.remaining + 2}`, start);
      }
      let port = r.u16(name);
      const raw = r.bytesView(size, name);
      let bytes = raw;
      if (xor) {
        const mask = xorMask(ctx);
        port ^= MAGIC_COOKIE >>> 16;
        bytes = raw.map((b, i) => b ^ (mask[i] ?? 0));
      }
      return { address: formatIp(bytes), port, family: family === FAMILY_IPV4 ? 4 : 6 };
    },
  });
}

export const MAPPED_ADDRESS = addressAttribute(0x0001, 'MAPPED-ADDRESS', false);
/** RFC 3489 only; decoded, never acted upon: honouring it would make a server a reflector. */
export const RESPONSE_ADDRESS = addressAttribute(0x0002, 'RESPONSE-ADDRESS', false);
/** RFC 3489 only. */
export const SOURCE_ADDRESS = addressAttribute(0x0004, 'SOURCE-ADDRESS', false);
/** RFC 3489 only; RFC 5780 replaced it with OTHER-ADDRESS. */
export const CHANGED_ADDRESS = addressAttribute(0x0005, 'CHANGED-ADDRESS', false);
export const XOR_MAPPED_ADDRESS = addressAttribute(0x0020, 'XOR-MAPPED-ADDRESS', true);
export const ALTERNATE_SERVER = addressAttribute(0x8023, 'ALTERNATE-SERVER', false);
export const RESPONSE_ORIGIN = addressAttribute(0x802b, 'RESPONSE-ORIGIN', false);
export const OTHER_ADDRESS = addressAttribute(0x802c, 'OTHER-ADDRESS', false);
