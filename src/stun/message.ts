// STUN message framing: RFC 8489 §5 (header), §14 (attribute TLVs, padding),
// §14.5–§14.7 (what follows MESSAGE-INTEGRITY and FINGERPRINT); RFC 3489 §11.1
// (cookie-less header, 16-byte transaction ID).
import { createHmac } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { ByteReader, ByteWriter, copyBytes } from '../wire/index.ts';
import { DecodeError, NatkitError } from '../util/index.ts';
import { StunDecodeError, type AttrCodec, type MessageContext } from './attribute.ts';
import {
  HEADER_LENGTH,
  LEGACY_TRANSACTION_ID_LENGTH,
  MAGIC_COOKIE,
  TRANSACTION_ID_LENGTH,
  classOf,
  messageType,
  methodOf,
  type StunClass,
} from './constants.ts';
import { FINGERPRINT, MESSAGE_INTEGRITY, MESSAGE_INTEGRITY_SHA256 } from './attributes/auth.ts';

/** XORed into the CRC-32 of FINGERPRINT (RFC 8489 §14.7). */
const FINGERPRINT_XOR = 0x5354554e;

/** Where one attribute sits in the received bytes. */
export interface RawAttribute {
  readonly type: number;
  /** Offset of the TLV header in `raw`. */
  readonly offset: number;
  /** Value length, without padding. */
  readonly length: number;
}

/** A decoded message: the header parsed, attributes indexed, values decoded on demand. */
export class StunMessage implements MessageContext {
  readonly raw: Uint8Array;
  readonly method: number;
  readonly cls: StunClass;
  /** 12 bytes, or 16 for an RFC 3489 message; a view into `raw`. */
  readonly transactionId: Uint8Array;
  /** True when the magic cookie is absent (RFC 3489 client or server). */
  readonly isLegacy: boolean;
  /** Attributes that count, in order: those after MESSAGE-INTEGRITY are dropped (RFC 8489 §14.5). */
  readonly attributes: readonly RawAttribute[];

  constructor(raw: Uint8Array, attributes: readonly RawAttribute[]) {
    const type = (raw[0]! << 8) | raw[1]!;
    const cookie = ((raw[4]! << 24) | (raw[5]! << 16) | (raw[6]! << 8) | raw[7]!) >>> 0;
    this.raw = raw;
    this.method = methodOf(type);
    this.cls = classOf(type);
    this.isLegacy = cookie !== MAGIC_COOKIE;
    this.transactionId = raw.subarray(this.isLegacy ? 4 : 8, HEADER_LENGTH);
    this.attributes = attributes;
  }

  /** The first attribute of this type (RFC 8489 §14: later duplicates are ignored). */
  find(type: number): RawAttribute | undefined {
    return this.attributes.find((a) => a.type === type);
  }

  has(codec: AttrCodec<unknown> | number): boolean {
    return this.find(typeof codec === 'number' ? codec : codec.type) !== undefined;
  }

  /** Raw value bytes (a view) of the first attribute of this type. */
  value(type: number): Uint8Array | undefined {
    const a = this.find(type);
    return a && this.raw.subarray(a.offset + 4, a.offset + 4 + a.length);
  }

  /** Decodes the first attribute of the codec's type; throws StunDecodeError when malformed. */
  get<T>(codec: AttrCodec<T>): T | undefined {
    const a = this.find(codec.type);
    if (a === undefined) return undefined;
    const r = new ByteReader(this.raw.subarray(0, a.offset + 4 + a.length), a.offset + 4);
    try {
      return codec.decode(r, this);
    } catch (err) {
      if (err instanceof StunDecodeError) throw err;
      if (err instanceof DecodeError) throw new StunDecodeError(`${codec.name}: ${err.message}`, err.offset, { cause: err });
      throw err;
    }
  }

  /** Comprehension-required types (< 0x8000) not in `known` (RFC 8489 §6.3.1: answer 420). */
  unknownRequired(known: ReadonlySet<number>): number[] {
    const out: number[] = [];
    for (const a of this.attributes) if (a.type < 0x8000 && !known.has(a.type) && !out.includes(a.type)) out.push(a.type);
    return out;
  }
}

/** Cheap test used by demultiplexers: could these bytes be a STUN message? (RFC 8489 §5, RFC 7983) */
export function looksLikeStun(bytes: Uint8Array): boolean {
  return bytes.length >= HEADER_LENGTH && (bytes[0]! & 0xc0) === 0 && (bytes[3]! & 0x03) === 0;
}

export interface DecodeOptions {
  /** Accept cookie-less RFC 3489 messages. @default true */
  readonly allowLegacy?: boolean;
}

/** Parses one whole message (a datagram, or one frame of a stream); throws StunDecodeError only. */
export function decodeMessage(bytes: Uint8Array, options: DecodeOptions = {}): StunMessage {
  if (bytes.length < HEADER_LENGTH) {
    throw new StunDecodeError(`expected at least ${HEADER_LENGTH} bytes of header, got ${bytes.length}`, 0);
  }
  if ((bytes[0]! & 0xc0) !== 0) throw new StunDecodeError(`expected the two top bits zero, got 0x${bytes[0]!.toString(16)}`, 0);
  const length = (bytes[2]! << 8) | bytes[3]!;
  if (length % 4 !== 0) throw new StunDecodeError(`expected a length that is a multiple of 4, got ${length}`, 2);
  if (length + HEADER_LENGTH !== bytes.length) {
    throw new StunDecodeError(`header says ${length} bytes of attributes, ${bytes.length - HEADER_LENGTH} came`, 2);
  }
  const cookie = ((bytes[4]! << 24) | (bytes[5]! << 16) | (bytes[6]! << 8) | bytes[7]!) >>> 0;
  if (cookie !== MAGIC_COOKIE && options.allowLegacy === false) {
    throw new StunDecodeError(`expected magic cookie 0x2112a442, got 0x${cookie.toString(16).padStart(8, '0')}`, 4);
  }
  const attributes: RawAttribute[] = [];
  let offset = HEADER_LENGTH;
  // After MESSAGE-INTEGRITY only MESSAGE-INTEGRITY-SHA256 and FINGERPRINT count; after
  // MESSAGE-INTEGRITY-SHA256 only FINGERPRINT; nothing may follow FINGERPRINT (§14.5–§14.7).
  let stage = 0;
  while (offset < bytes.length) {
    if (bytes.length - offset < 4) throw new StunDecodeError(`truncated attribute header`, offset);
    const type = (bytes[offset]! << 8) | bytes[offset + 1]!;
    const len = (bytes[offset + 2]! << 8) | bytes[offset + 3]!;
    const padded = (len + 3) & ~3;
    if (offset + 4 + padded > bytes.length) {
      throw new StunDecodeError(`attribute 0x${type.toString(16).padStart(4, '0')} of ${len} bytes overruns the message`, offset);
    }
    if (stage === 3) throw new StunDecodeError('attribute after FINGERPRINT', offset);
    if (type === FINGERPRINT.type) {
      attributes.push({ type, offset, length: len });
      stage = 3;
    } else if (type === MESSAGE_INTEGRITY_SHA256.type && stage < 2) {
      attributes.push({ type, offset, length: len });
      stage = 2;
    } else if (type === MESSAGE_INTEGRITY.type && stage < 1) {
      attributes.push({ type, offset, length: len });
      stage = 1;
    } else if (stage === 0) {
      attributes.push({ type, offset, length: len });
    }
    offset += 4 + padded;
  }
  return new StunMessage(bytes, attributes);
}

/** One attribute to encode; build it with `attr()` so value and codec agree. */
export interface AttrEntry {
  readonly codec: AttrCodec<unknown>;
  readonly value: unknown;
}

/** Pairs a codec with a value of its type. */
export function attr<T>(codec: AttrCodec<T>, value: T): AttrEntry {
  return { codec, value };
}

/** A message to encode. */
export interface OutgoingMessage {
  readonly method: number;
  readonly cls: StunClass;
  /** 12 bytes; 16 bytes writes a cookie-less RFC 3489 header. */
  readonly transactionId: Uint8Array;
  readonly attributes?: readonly AttrEntry[];
}

/** Which MESSAGE-INTEGRITY attributes to add (RFC 8489 §14.5, §14.6). */
export type IntegrityAlgorithm = 'sha1' | 'sha256' | 'both';

export interface EncodeOptions {
  /** Adds MESSAGE-INTEGRITY computed with this key (see credentials.ts). */
  readonly key?: Uint8Array;
  /** @default 'sha1' */
  readonly integrity?: IntegrityAlgorithm;
  /** Adds FINGERPRINT last (RFC 8489 §14.7). @default false */
  readonly fingerprint?: boolean;
}

/**
 * The writer encodeMessage reuses, its result copied out: one small allocation per message
 * instead of a buffer, a DataView and a closure per attribute. It keeps the size of the
 * largest message encoded.
 */
const scratch = new ByteWriter(512);
let scratchInUse = false;

/** Encodes a message, appending integrity and fingerprint in the order RFC 8489 §14.5–§14.7 requires. */
export function encodeMessage(message: OutgoingMessage, options: EncodeOptions = {}): Uint8Array {
  // A codec that encodes a message of its own while the scratch writer is busy gets a new one.
  if (scratchInUse) return copyBytes(writeMessage(new ByteWriter(128), message, options));
  scratchInUse = true;
  try {
    return copyBytes(writeMessage(scratch.reset(), message, options));
  } finally {
    scratchInUse = false;
  }
}

function writeMessage(w: ByteWriter, message: OutgoingMessage, options: EncodeOptions): Uint8Array {
  const id = message.transactionId;
  if (id.length !== TRANSACTION_ID_LENGTH && id.length !== LEGACY_TRANSACTION_ID_LENGTH) {
    throw new NatkitError('ERR_INVALID_ARGUMENT', `transaction ID: expected 12 or 16 bytes, got ${id.length}`);
  }
  const ctx: MessageContext = { transactionId: id };
  w.u16(messageType(message.method, message.cls)).u16(0);
  if (id.length === TRANSACTION_ID_LENGTH) w.u32(MAGIC_COOKIE);
  w.bytes(id);
  for (const a of message.attributes ?? []) writeAttribute(w, a, ctx);
  if (options.key !== undefined) {
    const which = options.integrity ?? 'sha1';
    if (which !== 'sha256') appendMac(w, MESSAGE_INTEGRITY.type, 'sha1', options.key, 20);
    if (which !== 'sha1') appendMac(w, MESSAGE_INTEGRITY_SHA256.type, 'sha256', options.key, 32);
  }
  if (options.fingerprint === true) {
    w.setU16(2, w.length + 8 - HEADER_LENGTH);
    const crc = (crc32(w.finish()) ^ FINGERPRINT_XOR) >>> 0;
    w.u16(FINGERPRINT.type).u16(4).u32(crc);
  }
  w.setU16(2, w.length - HEADER_LENGTH);
  return w.finish();
}

function writeAttribute(w: ByteWriter, a: AttrEntry, ctx: MessageContext): void {
  const start = w.length;
  const type = a.codec.type;
  w.u16(type).u16(0);
  a.codec.encode(a.value, w, ctx);
  const len = w.length - start - 4;
  if (len > 0xffff) throw new NatkitError('ERR_INVALID_ARGUMENT', `attribute 0x${type.toString(16)} value of ${len} bytes exceeds 65535`);
  w.setU16(start + 2, len);
  w.zeros((4 - (len % 4)) % 4);
}

/** HMAC over the message so far, with the length field covering this attribute (RFC 8489 §14.5). */
function appendMac(w: ByteWriter, type: number, hash: 'sha1' | 'sha256', key: Uint8Array, size: number): void {
  w.setU16(2, w.length + 4 + size - HEADER_LENGTH);
  const mac = createHmac(hash, key).update(w.finish()).digest();
  w.u16(type).u16(size).bytes(mac);
}

/** Result of checking message integrity. */
export type IntegrityResult = 'ok' | 'missing' | 'mismatch';

/**
 * Checks MESSAGE-INTEGRITY-SHA256 if present, else MESSAGE-INTEGRITY (RFC 8489 §9.1.3,
 * §9.2.4: a receiver that understands SHA-256 uses it). Values that do not parse count
 * as a mismatch. Comparison is constant-time.
 */
export function checkIntegrity(msg: StunMessage, key: Uint8Array): IntegrityResult {
  const sha256 = msg.find(MESSAGE_INTEGRITY_SHA256.type);
  const a = sha256 ?? msg.find(MESSAGE_INTEGRITY.type);
  if (a === undefined) return 'missing';
  const hash = sha256 ? 'sha256' : 'sha1';
  if (hash === 'sha1' ? a.length !== 20 : a.length < 16 || a.length > 32 || a.length % 4 !== 0) return 'mismatch';
  const header = Uint8Array.from(msg.raw.subarray(0, HEADER_LENGTH)); // a copy, even when raw is a Buffer
  const adjusted = a.offset + 4 + a.length - HEADER_LENGTH;
  header[2] = adjusted >> 8;
  header[3] = adjusted & 0xff;
  const mac = createHmac(hash, key).update(header).update(msg.raw.subarray(HEADER_LENGTH, a.offset)).digest();
  const got = msg.raw.subarray(a.offset + 4, a.offset + 4 + a.length);
  let diff = 0;
  for (let i = 0; i < got.length; i++) diff |= got[i]! ^ mac[i]!;
  return diff === 0 ? 'ok' : 'mismatch';
}

/** FINGERPRINT present and valid (RFC 8489 §14.7)? 'missing' when absent. */
export function checkFingerprint(msg: StunMessage): IntegrityResult {
  const a = msg.find(FINGERPRINT.type);
  if (a === undefined) return 'missing';
  if (a.length !== 4) return 'mismatch';
  const want = (crc32(msg.raw.subarray(0, a.offset)) ^ FINGERPRINT_XOR) >>> 0;
  const v = msg.raw;
  const got = ((v[a.offset + 4]! << 24) | (v[a.offset + 5]! << 16) | (v[a.offset + 6]! << 8) | v[a.offset + 7]!) >>> 0;
  return want === got ? 'ok' : 'mismatch';
}

/** Hex of a transaction ID, the key for maps of pending transactions. */
export function transactionKey(id: Uint8Array): string {
  return Buffer.from(id.buffer, id.byteOffset, id.byteLength).toString('hex');
}
