// RFC 5780 §7.2 CHANGE-REQUEST, §7.5 RESPONSE-PORT, §7.6 PADDING.
import { defineAttribute, StunDecodeError } from '../attribute.ts';
import { NatkitError } from '../../util/index.ts';

/** Asks the server to answer from its other address and/or port. */
export interface ChangeRequest {
  readonly changeIp: boolean;
  readonly changePort: boolean;
}

const CHANGE_IP = 0x04;
const CHANGE_PORT = 0x02;

export const CHANGE_REQUEST = defineAttribute<ChangeRequest>({
  type: 0x0003,
  name: 'CHANGE-REQUEST',
  encode(value, w) {
    w.u32((value.changeIp ? CHANGE_IP : 0) | (value.changePort ? CHANGE_PORT : 0));
  },
  decode(r) {
    if (r.remaining !== 4) throw new StunDecodeError(`CHANGE-REQUEST: expected 4 bytes, got ${r.remaining}`, r.offset);
    const flags = r.u32('CHANGE-REQUEST');
    return { changeIp: (flags & CHANGE_IP) !== 0, changePort: (flags & CHANGE_PORT) !== 0 };
  },
});

export const RESPONSE_PORT = defineAttribute<number>({
  type: 0x0027,
  name: 'RESPONSE-PORT',
  encode(value, w) {
    if (!Number.isInteger(value) || value < 1 || value > 0xffff) {
      throw new NatkitError('ERR_INVALID_ARGUMENT', `RESPONSE-PORT: expected a port in 1–65535, got ${value}`);
    }
    w.u16(value).u16(0);
  },
  decode(r) {
    if (r.remaining !== 4) throw new StunDecodeError(`RESPONSE-PORT: expected 4 bytes, got ${r.remaining}`, r.offset);
    const port = r.u16('RESPONSE-PORT');
    r.skip(2);
    return port;
  },
});

/** The padding's length is what matters (RFC 5780 §7.6); its content is ignored. */
export const PADDING = defineAttribute<number>({
  type: 0x0026,
  name: 'PADDING',
  encode(value, w) {
    w.zeros(value);
  },
  decode(r) {
    const n = r.remaining;
    r.skip(n);
    return n;
  },
});
