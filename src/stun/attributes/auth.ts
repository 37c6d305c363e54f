// Authentication attributes: RFC 8489 §14.4 USERHASH, §14.5 MESSAGE-INTEGRITY,
// §14.6 MESSAGE-INTEGRITY-SHA256, §14.7 FINGERPRINT, §14.11 PASSWORD-ALGORITHMS,
// §14.12 PASSWORD-ALGORITHM. The message encoder computes MI and FINGERPRINT values
// (they cover the message before them); these codecs only move the bytes.
import { defineAttribute, StunDecodeError, type AttrCodec } from '../attribute.ts';
import { NatkitError } from '../../util/index.ts';

/** Password algorithm numbers (RFC 8489 §18.5). */
export const PasswordAlgorithm = { MD5: 0x0001, SHA256: 0x0002 } as const;

/** One entry of PASSWORD-ALGORITHMS, or the value of PASSWORD-ALGORITHM. */
export interface PasswordAlgorithmEntry {
  readonly algorithm: number;
  /** Algorithm parameters; empty for MD5 and SHA-256. */
  readonly parameters: Uint8Array;
}

/** Fixed-size or bounded byte attribute. */
function bytesAttribute(type: number, name: string, sizes: (n: number) => boolean, expected: string): AttrCodec<Uint8Array> {
  return defineAttribute<Uint8Array>({
    type,
    name,
    encode(value, w) {
      if (!sizes(value.length)) throw new NatkitError('ERR_INVALID_ARGUMENT', `${name}: expected ${expected}, got ${value.length} bytes`);
      w.bytes(value);
    },
    decode(r) {
      if (!sizes(r.remaining)) throw new StunDecodeError(`${name}: expected ${expected}, got ${r.remaining} bytes`, r.offset);
      return r.bytesView(r.remaining, name);
    },
  });
}

export const MESSAGE_INTEGRITY = bytesAttribute(0x0008, 'MESSAGE-INTEGRITY', (n) => n === 20, '20 bytes');
/** Truncation to 16–32 bytes in steps of 4 is allowed (RFC 8489 §14.6). */
export const MESSAGE_INTEGRITY_SHA256 = bytesAttribute(
  0x001c,
  'MESSAGE-INTEGRITY-SHA256',
  (n) => n >= 16 && n <= 32 && n % 4 === 0,
  '16–32 bytes in steps of 4',
);
export const USERHASH = bytesAttribute(0x001e, 'USERHASH', (n) => n === 32, '32 bytes');

export const FINGERPRINT = defineAttribute<number>({
  type: 0x8028,
  name: 'FINGERPRINT',
  encode(value, w) {
    w.u32(value);
  },
  decode(r) {
    if (r.remaining !== 4) throw new StunDecodeError(`FINGERPRINT: expected 4 bytes, got ${r.remaining}`, r.offset);
    return r.u32('FINGERPRINT');
  },
});

function writeAlgorithm(entry: PasswordAlgorithmEntry, w: Parameters<AttrCodec<unknown>['encode']>[1]): void {
  w.u16(entry.algorithm).u16(entry.parameters.length).bytes(entry.parameters);
  w.zeros((4 - (entry.parameters.length % 4)) % 4);
}

function readAlgorithm(r: Parameters<AttrCodec<unknown>['decode']>[0], name: string): PasswordAlgorithmEntry {
  const algorithm = r.u16(name);
  const length = r.u16(name);
  const parameters = r.bytesView(length, `${name} parameters`);
  r.skip(Math.min((4 - (length % 4)) % 4, r.remaining), `${name} padding`);
  return { algorithm, parameters };
}

export const PASSWORD_ALGORITHM = defineAttribute<PasswordAlgorithmEntry>({
  type: 0x001d,
  name: 'PASSWORD-ALGORITHM',
  encode: (value, w) => writeAlgorithm(value, w),
  decode(r) {
    const entry = readAlgorithm(r, 'PASSWORD-ALGORITHM');
    if (r.remaining !== 0) throw new StunDecodeError(`PASSWORD-ALGORITHM: ${r.remaining} trailing bytes`, r.offset);
    return entry;
  },
});

export const PASSWORD_ALGORITHMS = defineAttribute<readonly PasswordAlgorithmEntry[]>({
  type: 0x8002,
  name: 'PASSWORD-ALGORITHMS',
  encode(value, w) {
    for (const entry of value) writeAlgorithm(entry, w);
  },
  decode(r) {
    const out: PasswordAlgorithmEntry[] = [];
    while (r.remaining > 0) out.push(readAlgorithm(r, 'PASSWORD-ALGORITHMS'));
    return out;
  },
});
