// The TLV values of natkit's rendezvous frames (docs/rendezvous.md §TLVs): each value
// codec owns both directions and checks its exact length and ranges, so a decoded
// message holds only values the protocol allows. Decoders throw RendezvousDecodeError only.
import type { Endpoint } from '../net/index.ts';
import type { Behaviour, NatReport, PortAllocation } from '../nat/index.ts';
import { DecodeError, NatkitError, formatIp, ipFamily, parseIp, type IpFamily } from '../util/index.ts';
import { ByteReader, type ByteWriter } from '../wire/index.ts';

/** A rendezvous frame that could not be decoded; `transactionId` when the header was sound. */
export class RendezvousDecodeError extends DecodeError {
  /** Why: broken frame, a version we do not speak, or over the size limit. */
  readonly reason: 'malformed' | 'version' | 'too-large';
  /** The frame's transaction id, when its header could be read (to address an ERROR reply). */
  readonly transactionId: Uint8Array | undefined;

  constructor(message: string, offset: number, reason: RendezvousDecodeError['reason'] = 'malformed', transactionId?: Uint8Array) {
    super(`rendezvous: ${message}`, offset, { code: 'ERR_RENDEZVOUS_DECODE' });
    this.name = 'RendezvousDecodeError';
    this.reason = reason;
    this.transactionId = transactionId;
  }
}

/** Encodes and decodes one TLV value. */
export interface TlvCodec<T> {
  /** TLV type, 0x01–0xFF. */
  readonly type: number;
  readonly name: string;
  encode(value: T, w: ByteWriter): void;
  /** `value` is exactly the TLV's bytes; throws RendezvousDecodeError only. */
  decode(value: Uint8Array, offset: number): T;
}

/** Where a candidate comes from (ICE's words, RFC 8445 §5.1.1, plus port mapping). */
export type CandidateKind = 'host' | 'server-reflexive' | 'port-mapped' | 'relayed';

/** An address a peer may be reached at. */
export interface Candidate {
  readonly kind: CandidateKind;
  readonly transport: 'udp' | 'tcp';
  readonly endpoint: Endpoint;
}

/** What a peer knows of its NAT (from natkit/nat's NatReport), passed on to the other side. */
export interface NatSummary {
  /** RFC 4787 §4.1. */
  readonly mapping: Behaviour;
  /** RFC 4787 §5. */
  readonly filtering: Behaviour;
  /** RFC 4787 §4.2 port allocation (sequential steps within −32768…32767). */
  readonly allocation: PortAllocation;
  /** RFC 4787 §6; undefined when not measured. */
  readonly hairpinning: boolean | undefined;
}

/** Most candidates in one CANDIDATES value. */
export const MAX_CANDIDATES = 8;
/** Longest name or room, bytes of UTF-8. */
export const MAX_NAME_BYTES = 64;
/** Longest ERROR reason text, bytes of UTF-8. */
export const MAX_REASON_BYTES = 128;
/** Sizes of the fixed-length values. */
export const PUBLIC_KEY_BYTES = 32;
export const SIGNATURE_BYTES = 64;
export const NONCE_BYTES = 24;
export const SESSION_BYTES = 16;
export const PAIR_ID_BYTES = 8;

/** An encoder's refusal of a value the protocol cannot carry. */
const invalid = (message: string): NatkitError => new NatkitError('ERR_INVALID_ARGUMENT', message);

const fail = (what: string, message: string, offset: number): never => {
  throw new RendezvousDecodeError(`${what}: ${message}`, offset);
};

function exact(what: string, value: Uint8Array, size: number, offset: number): void {
  if (value.length !== size) fail(what, `expected ${size} bytes, got ${value.length}`, offset);
}

/** A fixed-size byte string (keys, nonces, tokens). */
function fixedBytes(type: number, name: string, size: number): TlvCodec<Uint8Array> {
  return {
    type, name,
    encode(value, w) {
      if (value.length !== size) throw invalid(`${name}: expected ${size} bytes, got ${value.length}`);
      w.bytes(value);
    },
    decode(value, offset) {
      exact(name, value, size, offset);
      return value.slice();
    },
  };
}

const utf8 = new TextEncoder();
const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * What a name may not hold: C0 and C1 controls (a name ends up on terminals: U+009B is a
 * CSI on many) and the bidirectional overrides and isolates that reorder what is shown
 * (CVE-2021-42574, "Trojan Source").
 */
// eslint-disable-next-line no-control-regex
const NOT_IN_NAMES = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/;

/** Throws ERR_INVALID_ARGUMENT unless `text` is a valid name: 1–64 bytes of UTF-8, no control characters. */
export function checkName(text: string, what = 'name'): Uint8Array {
  const bytes = utf8.encode(text);
  if (bytes.length < 1 || bytes.length > MAX_NAME_BYTES || NOT_IN_NAMES.test(text)) {
    throw invalid(`${what}: expected 1–${MAX_NAME_BYTES} bytes of UTF-8 without control or bidirectional-override characters, got ${JSON.stringify(text)}`);
  }
  return bytes;
}

/** Text within `min`–`max` bytes; names also refuse control characters. */
function text(type: number, name: string, kind: 'name' | 'reason'): TlvCodec<string> {
  const max = kind === 'name' ? MAX_NAME_BYTES : MAX_REASON_BYTES;
  return {
    type, name,
    encode(value, w) {
      if (kind === 'name') w.bytes(checkName(value, name));
      else w.bytes(truncateUtf8(value, max));
    },
    decode(value, offset) {
      if (value.length > max || (kind === 'name' && value.length === 0)) fail(name, `expected ${kind === 'name' ? 1 : 0}–${max} bytes, got ${value.length}`, offset);
      let s = '';
      try {
        s = strictUtf8.decode(value);
      } catch {
        fail(name, 'not valid UTF-8', offset);
      }
      if (kind === 'name' && NOT_IN_NAMES.test(s)) fail(name, 'control or bidirectional-override character in a name', offset);
      return s;
    },
  };
}

/** The UTF-8 of `text`, cut at a character boundary to at most `max` bytes. */
function truncateUtf8(text: string, max: number): Uint8Array {
  const bytes = utf8.encode(text);
  if (bytes.length <= max) return bytes;
  let cut = max;
  // Back off over continuation bytes (10xxxxxx): at most 3 of them.
  while (cut > 0 && (bytes[cut]! & 0xc0) === 0x80) cut--;
  return bytes.subarray(0, cut);
}

/** An unsigned integer of 1, 2, 4 or 8 bytes (8: milliseconds, at most 2^53 − 1). */
function uint(type: number, name: string, size: 1 | 2 | 4 | 8): TlvCodec<number> {
  const max = size === 8 ? Number.MAX_SAFE_INTEGER : 2 ** (8 * size) - 1;
  return {
    type, name,
    encode(value, w) {
      if (!Number.isInteger(value) || value < 0 || value > max) throw invalid(`${name}: ${value} outside 0–${max}`);
      if (size === 1) w.u8(value);
      else if (size === 2) w.u16(value);
      else if (size === 4) w.u32(value);
      else w.u64(BigInt(value));
    },
    decode(value, offset) {
      exact(name, value, size, offset);
      const r = new ByteReader(value);
      const v = size === 1 ? r.u8() : size === 2 ? r.u16() : size === 4 ? r.u32() : Number(r.u64());
      if (v > max) fail(name, `${v} exceeds 2^53 − 1`, offset);
      return v;
    },
  };
}

const FAMILY_BYTES: Readonly<Record<IpFamily, number>> = { 4: 4, 6: 16 };

/** Address layout shared by REFLEXIVE and candidates: family (4 or 6), port, 4 or 16 address bytes. */
function writeEndpoint(e: Endpoint, w: ByteWriter): void {
  if (ipFamily(e.address) !== e.family) throw invalid(`endpoint: "${e.address}" is not IPv${e.family}`);
  w.u8(e.family).u16(e.port).bytes(parseIp(e.address));
}

function readEndpoint(r: ByteReader, what: string, base: number): Endpoint {
  const at = base + r.offset;
  const family = r.u8(what);
  if (family !== 4 && family !== 6) return fail(what, `expected family 4 or 6, got ${family}`, at);
  const port = r.u16(what);
  const address = formatIp(r.bytesView(FAMILY_BYTES[family], what));
  return { address, port, family };
}

/** Decodes with a ByteReader, turning its DecodeError into ours and refusing trailing bytes. */
function reading<T>(what: string, value: Uint8Array, offset: number, read: (r: ByteReader) => T): T {
  const r = new ByteReader(value);
  let out: T;
  try {
    out = read(r);
  } catch (err) {
    if (err instanceof RendezvousDecodeError || !(err instanceof DecodeError)) throw err;
    return fail(what, err.message, offset + err.offset);
  }
  if (r.remaining !== 0) fail(what, `${r.remaining} trailing bytes`, offset + r.offset);
  return out;
}

const KINDS: readonly CandidateKind[] = ['host', 'server-reflexive', 'port-mapped', 'relayed'];
const TRANSPORTS = ['udp', 'tcp'] as const;

const BEHAVIOURS: readonly Behaviour[] = ['unknown', 'endpoint-independent', 'address-dependent', 'address-and-port-dependent'];
const ALLOCATIONS: readonly PortAllocation['kind'][] = ['unknown', 'preserving', 'sequential', 'random'];

/** Index of `value` in `table`, or a decode failure. */
function lookup<T>(table: readonly T[], index: number, what: string, offset: number): T {
  const v = table[index];
  return v === undefined ? fail(what, `unknown value ${index}`, offset) : v;
}

export const NAME = text(0x01, 'NAME', 'name');
export const PUBLIC_KEY = fixedBytes(0x02, 'PUBLIC-KEY', PUBLIC_KEY_BYTES);
export const NONCE = fixedBytes(0x03, 'NONCE', NONCE_BYTES);
export const SIGNATURE = fixedBytes(0x04, 'SIGNATURE', SIGNATURE_BYTES);

/** Count (u8, ≤ 8), then per candidate: kind, transport, family, port, address. */
export const CANDIDATES: TlvCodec<readonly Candidate[]> = {
  type: 0x05, name: 'CANDIDATES',
  encode(value, w) {
    if (value.length > MAX_CANDIDATES) throw invalid(`CANDIDATES: at most ${MAX_CANDIDATES}, got ${value.length}`);
    w.u8(value.length);
    for (const c of value) {
      w.u8(KINDS.indexOf(c.kind)).u8(TRANSPORTS.indexOf(c.transport));
      writeEndpoint(c.endpoint, w);
    }
  },
  decode(value, offset) {
    return reading('CANDIDATES', value, offset, (r) => {
      const n = r.u8('CANDIDATES count');
      if (n > MAX_CANDIDATES) fail('CANDIDATES', `at most ${MAX_CANDIDATES}, got ${n}`, offset);
      const out: Candidate[] = [];
      for (let i = 0; i < n; i++) {
        const kind = lookup(KINDS, r.u8('candidate kind'), 'candidate kind', offset + r.offset - 1);
        const transport = lookup(TRANSPORTS, r.u8('candidate transport'), 'candidate transport', offset + r.offset - 1);
        out.push({ kind, transport, endpoint: readEndpoint(r, 'candidate', offset) });
      }
      return out;
    });
  },
};

/** mapping, filtering, allocation kind (u8 each), sequential step (i16), hairpinning (0 unknown, 1 no, 2 yes). */
export const NAT: TlvCodec<NatSummary> = {
  type: 0x06, name: 'NAT',
  encode(value, w) {
    const step = value.allocation.kind === 'sequential' ? value.allocation.step : 0;
    if (!Number.isInteger(step) || step < -0x8000 || step > 0x7fff) throw invalid(`NAT: step ${step} outside −32768…32767`);
    w.u8(BEHAVIOURS.indexOf(value.mapping)).u8(BEHAVIOURS.indexOf(value.filtering)).u8(ALLOCATIONS.indexOf(value.allocation.kind));
    w.u16(step & 0xffff).u8(value.hairpinning === undefined ? 0 : value.hairpinning ? 2 : 1);
  },
  decode(value, offset) {
    exact('NAT', value, 6, offset);
    const mapping = lookup(BEHAVIOURS, value[0]!, 'NAT mapping', offset);
    const filtering = lookup(BEHAVIOURS, value[1]!, 'NAT filtering', offset + 1);
    const kind = lookup(ALLOCATIONS, value[2]!, 'NAT allocation', offset + 2);
    const step = ((value[3]! << 24) | (value[4]! << 16)) >> 16;
    const hairpin = value[5] === 0 ? undefined : lookup([false, true], value[5]! - 1, 'NAT hairpinning', offset + 5);
    if (kind !== 'sequential' && step !== 0) fail('NAT', `step ${step} without sequential allocation`, offset + 3);
    const allocation: PortAllocation = kind === 'sequential' ? { kind, step } : { kind };
    return { mapping, filtering, allocation, hairpinning: hairpin };
  },
};

/** The sender's transport address as the server saw it. */
export const REFLEXIVE: TlvCodec<Endpoint> = {
  type: 0x07, name: 'REFLEXIVE',
  encode: writeEndpoint,
  decode: (value, offset) => reading('REFLEXIVE', value, offset, (r) => readEndpoint(r, 'REFLEXIVE', offset)),
};

/** Lease and recommended keepalive interval, seconds (u16 each, keepalive < lease). */
export const TIMERS: TlvCodec<{ readonly leaseS: number; readonly keepaliveS: number }> = {
  type: 0x08, name: 'TIMERS',
  encode(value, w) {
    w.u16(value.leaseS).u16(value.keepaliveS);
  },
  decode(value, offset) {
    exact('TIMERS', value, 4, offset);
    const leaseS = (value[0]! << 8) | value[1]!;
    const keepaliveS = (value[2]! << 8) | value[3]!;
    if (keepaliveS < 1 || keepaliveS >= leaseS) fail('TIMERS', `keepalive ${keepaliveS} s must be 1 s or more and under the ${leaseS} s lease`, offset);
    return { leaseS, keepaliveS };
  },
};

export const SERVER_TIME = uint(0x09, 'SERVER-TIME', 8);
export const SESSION = fixedBytes(0x0a, 'SESSION', SESSION_BYTES);
export const RTT = uint(0x0b, 'RTT', 4);
export const ROOM = text(0x0c, 'ROOM', 'name');
export const PAIR_ID = fixedBytes(0x0d, 'PAIR-ID', PAIR_ID_BYTES);
export const START_AT = uint(0x0e, 'START-AT', 8);
export const OFFSET = uint(0x0f, 'OFFSET', 4);

/** 1: this side is controlling (it nominates the path), 0: controlled. */
export const CONTROLLING: TlvCodec<boolean> = {
  type: 0x10, name: 'CONTROLLING',
  encode: (value, w) => void w.u8(value ? 1 : 0),
  decode(value, offset) {
    exact('CONTROLLING', value, 1, offset);
    return lookup([false, true], value[0]!, 'CONTROLLING', offset);
  },
};

export const ERROR_CODE = uint(0x11, 'ERROR-CODE', 2);
export const REASON = text(0x12, 'REASON', 'reason');

/** Lowest and highest protocol version the sender speaks. */
export const VERSIONS: TlvCodec<{ readonly min: number; readonly max: number }> = {
  type: 0x13, name: 'VERSIONS',
  encode: (value, w) => void w.u8(value.min).u8(value.max),
  decode(value, offset) {
    exact('VERSIONS', value, 2, offset);
    if (value[0]! > value[1]!) fail('VERSIONS', `min ${value[0]} above max ${value[1]}`, offset);
    return { min: value[0]!, max: value[1]! };
  },
};

/** Any bytes; HELLO pads itself to the CHALLENGE's size with it (no amplification). */
export const PADDING: TlvCodec<number> = {
  type: 0x14, name: 'PADDING',
  encode: (value, w) => void w.zeros(value),
  decode: (value) => value.length,
};

/** The NAT summary of a natkit/nat report, for REGISTER. */
export function natSummary(report: NatReport): NatSummary {
  return { mapping: report.mapping, filtering: report.filtering, allocation: report.portAllocation, hairpinning: report.hairpinning };
}
