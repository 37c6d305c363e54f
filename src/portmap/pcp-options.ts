// PCP options, both directions (RFC 6887): the option layout and padding (§7.3),
// THIRD_PARTY (§13.1), PREFER_FAILURE (§13.2) and FILTER (§13.3), plus the checks a
// server makes of a request's options (§7.3 unknown mandatory-to-process options, §13
// which opcodes take which option and how often).
import type { ByteReader, ByteWriter } from '../wire/index.ts';
import { NatkitError, ipFamily } from '../util/index.ts';
import { PcpDecodeError, PcpOpcode, PcpOptionCode, PcpResultCode, decodePcpAddress, encodePcpAddress } from './pcp-constants.ts';

/** A FILTER (§13.3): only this remote prefix and port may send through the mapping. */
export interface PcpFilter {
  /** Relevant bits of `remoteAddress`: 0–32 for IPv4, 0–128 for IPv6; 0 removes every filter. */
  readonly prefixLength: number;
  /** 0: any port. */
  readonly remotePort: number;
  readonly remoteAddress: string;
}

/** A decoded option; options this code does not know are kept as 'unknown'. */
export type PcpOption =
  | { readonly kind: 'third-party'; readonly address: string }
  | { readonly kind: 'prefer-failure' }
  | ({ readonly kind: 'filter' } & PcpFilter)
  | { readonly kind: 'unknown'; readonly code: number; readonly data: Uint8Array };

/** §7.3: codes 0–127 are mandatory-to-process, 128–255 optional-to-process. */
export function isMandatoryOption(code: number): boolean {
  return code < 128;
}

const FIXED_LENGTH: Readonly<Record<number, number>> = {
  [PcpOptionCode.THIRD_PARTY]: 16,
  [PcpOptionCode.PREFER_FAILURE]: 0,
  [PcpOptionCode.FILTER]: 20,
};

function checkFilter(f: PcpFilter): void {
  const max = ipFamily(f.remoteAddress) === 4 ? 32 : 128;
  if (!Number.isInteger(f.prefixLength) || f.prefixLength < 0 || f.prefixLength > max) {
    throw new NatkitError('ERR_INVALID_ARGUMENT', `PCP FILTER prefix length: expected 0–${max} for ${f.remoteAddress}, got ${f.prefixLength}`);
  }
  if (!Number.isInteger(f.remotePort) || f.remotePort < 0 || f.remotePort > 0xffff) {
    throw new NatkitError('ERR_INVALID_ARGUMENT', `PCP FILTER remote port: expected 0–65535, got ${f.remotePort}`);
  }
}

/** Writes options: code, reserved, length, data, zero padding to 4 bytes (§7.3). */
export function encodePcpOptions(options: readonly PcpOption[], w: ByteWriter): void {
  for (const o of options) {
    switch (o.kind) {
      case 'third-party':
        w.u8(PcpOptionCode.THIRD_PARTY).u8(0).u16(16).bytes(encodePcpAddress(o.address));
        break;
      case 'prefer-failure':
        w.u8(PcpOptionCode.PREFER_FAILURE).u8(0).u16(0);
        break;
      case 'filter':
        checkFilter(o);
        w.u8(PcpOptionCode.FILTER).u8(0).u16(20).u8(0).u8(o.prefixLength).u16(o.remotePort).bytes(encodePcpAddress(o.remoteAddress));
        break;
      case 'unknown':
        if (!Number.isInteger(o.code) || o.code < 0 || o.code > 255 || o.data.length > 0xffff) {
          throw new NatkitError('ERR_INVALID_ARGUMENT', `PCP option: expected code 0–255 and at most 65535 bytes, got code ${o.code} with ${o.data.length}`);
        }
        w.u8(o.code).u8(0).u16(o.data.length).bytes(o.data).zeros((4 - (o.data.length % 4)) % 4);
        break;
    }
  }
}

/**
 * Reads options to the end of the message. A known option of the wrong length is
 * MALFORMED_OPTION (§7.3); unknown ones are kept (a server rejects unknown mandatory ones
 * in checkRequestOptions; a client ignores them, §7.3).
 */
export function decodePcpOptions(r: ByteReader): PcpOption[] {
  const out: PcpOption[] = [];
  const malformed = (m: string): never => {
    throw new PcpDecodeError(m, r.offset, PcpResultCode.MALFORMED_OPTION);
  };
  while (r.remaining > 0) {
    if (r.remaining < 4) malformed(`expected a 4-byte option header, ${r.remaining} bytes left`);
    const code = r.u8();
    r.skip(1);
    const length = r.u16();
    const padded = length + ((4 - (length % 4)) % 4);
    if (padded > r.remaining) malformed(`option ${code}: expected ${padded} bytes of data and padding, ${r.remaining} left`);
    const fixed = FIXED_LENGTH[code];
    if (fixed !== undefined && length !== fixed) malformed(`option ${code}: expected length ${fixed}, got ${length}`);
    const data = r.bytesView(length);
    r.skip(padded - length);
    if (code === PcpOptionCode.THIRD_PARTY) out.push({ kind: 'third-party', address: decodePcpAddress(data) });
    else if (code === PcpOptionCode.PREFER_FAILURE) out.push({ kind: 'prefer-failure' });
    else if (code === PcpOptionCode.FILTER) {
      const remoteAddress = decodePcpAddress(data.subarray(4, 20));
      const prefixLength = data[1]!;
      // §13.3: the prefix length counts bits of the remote address in its own family.
      if (prefixLength > (ipFamily(remoteAddress) === 4 ? 32 : 128)) malformed(`FILTER prefix length ${prefixLength} too long for ${remoteAddress}`);
      out.push({ kind: 'filter', prefixLength, remotePort: (data[2]! << 8) | data[3]!, remoteAddress });
    } else out.push({ kind: 'unknown', code, data });
  }
  return out;
}

/** Which opcodes each known option is valid for (§13.1–§13.3). */
const VALID_FOR: Readonly<Record<string, readonly number[]>> = {
  'third-party': [PcpOpcode.MAP, PcpOpcode.PEER],
  'prefer-failure': [PcpOpcode.MAP],
  filter: [PcpOpcode.MAP],
};

/**
 * The server's verdict on a request's options (§7.3, §13): UNSUPP_OPTION for an unknown
 * mandatory-to-process option or a known one the opcode does not take, MALFORMED_OPTION
 * for THIRD_PARTY or PREFER_FAILURE repeated; undefined when acceptable.
 */
export function checkRequestOptions(opcode: number, options: readonly PcpOption[]): number | undefined {
  const seen = new Set<string>();
  for (const o of options) {
    if (o.kind === 'unknown') {
      if (isMandatoryOption(o.code)) return PcpResultCode.UNSUPP_OPTION;
      continue; // §7.3: optional-to-process options the server does not know are ignored
    }
    if (!(VALID_FOR[o.kind] ?? []).includes(opcode)) return PcpResultCode.UNSUPP_OPTION;
    if (o.kind !== 'filter' && seen.has(o.kind)) return PcpResultCode.MALFORMED_OPTION;
    seen.add(o.kind);
  }
  return undefined;
}
