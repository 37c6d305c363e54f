// natkit's rendezvous frames (docs/rendezvous.md): a 14-byte header — first byte 0xD0 (in
// a range RFC 7983 §7 leaves unassigned, so PacketMux can share the peer's one UDP socket
// with STUN and TURN ChannelData), version, message type, a reserved byte, body length,
// an 8-byte transaction id — then TLVs (type u8, length u16, value). Each message type
// lists its required and optional TLVs; unknown TLV types are skipped (newer minor
// additions), duplicates and missing required ones are errors. Decoding any bytes yields
// a message or a RendezvousDecodeError, nothing else.
import type { MuxRange } from '../net/index.ts';
import { NatkitError } from '../util/index.ts';
import { ByteReader, ByteWriter } from '../wire/index.ts';
import {
  CANDIDATES, CONTROLLING, ERROR_CODE, NAME, NAT, NONCE, NONCE_BYTES, OFFSET, PADDING, PAIR_ID, PUBLIC_KEY, REASON, REFLEXIVE, ROOM, RTT, RendezvousDecodeError,
  SERVER_TIME, SESSION, SIGNATURE, START_AT, TIMERS, VERSIONS, type TlvCodec,
} from './tlv.ts';

/** First byte of every rendezvous frame. */
export const RENDEZVOUS_MAGIC = 0xd0;
/** The byte rendezvous frames claim on a PacketMux (RFC 7983 §7 leaves 192–255 unassigned). */
export const MUX_RENDEZVOUS: MuxRange = Object.freeze({ first: RENDEZVOUS_MAGIC, last: RENDEZVOUS_MAGIC, name: 'rendezvous' });
/** The protocol version this code speaks (header byte 1). */
export const RENDEZVOUS_VERSION = 1;
/** Header bytes: magic, version, type, reserved, body length (u16), transaction id (8). */
export const HEADER_BYTES = 14;
export const TRANSACTION_ID_BYTES = 8;
/** Size of a CHALLENGE (header, NONCE and SERVER-TIME TLVs): the least a HELLO must carry. */
export const CHALLENGE_BYTES = HEADER_BYTES + 3 + NONCE_BYTES + 3 + 8;
/** Largest frame, header included: fits one datagram on any path (IPv6 minimum MTU 1280). */
export const MAX_FRAME_BYTES = 1200;

/** The TLVs of each message type: required in `fields`, optional in `optional`. */
const SPECS = {
  hello: { code: 0x01, fields: {}, optional: { padding: PADDING } },
  challenge: { code: 0x02, fields: { nonce: NONCE, serverTimeMs: SERVER_TIME }, optional: {} },
  register: {
    code: 0x03,
    fields: { name: NAME, publicKey: PUBLIC_KEY, nonce: NONCE, signature: SIGNATURE, candidates: CANDIDATES },
    optional: { nat: NAT },
  },
  registered: { code: 0x04, fields: { reflexive: REFLEXIVE, timers: TIMERS, serverTimeMs: SERVER_TIME, session: SESSION }, optional: {} },
  keepalive: { code: 0x05, fields: { session: SESSION }, optional: { rttMs: RTT } },
  connect: { code: 0x06, fields: { session: SESSION, name: NAME }, optional: {} },
  join: { code: 0x07, fields: { session: SESSION, room: ROOM }, optional: {} },
  leave: { code: 0x08, fields: { session: SESSION, room: ROOM }, optional: {} },
  ok: { code: 0x09, fields: {}, optional: {} },
  punch: {
    code: 0x0a,
    fields: {
      pairId: PAIR_ID, name: NAME, publicKey: PUBLIC_KEY, candidates: CANDIDATES, serverTimeMs: SERVER_TIME, startAtMs: START_AT, offsetMs: OFFSET,
      controlling: CONTROLLING,
    },
    optional: { nat: NAT, room: ROOM },
  },
  error: { code: 0x0b, fields: { code: ERROR_CODE }, optional: { reason: REASON, versions: VERSIONS } },
  // Added within version 1: a client sends it best effort and needs no answer, so an old
  // server's ERROR bad-request costs nothing (docs/rendezvous.md, Versioning).
  unregister: { code: 0x0c, fields: { session: SESSION }, optional: {} },
} as const;

type Specs = typeof SPECS;
/** Message type names. */
export type RendezvousMessageType = keyof Specs;
type Values<F> = { readonly [K in keyof F]: F[K] extends TlvCodec<infer T> ? T : never };

/** One decoded (or to-be-encoded) message of type `K`. */
export type MessageOf<K extends RendezvousMessageType> = { readonly type: K; readonly transactionId: Uint8Array }
  & Values<Specs[K]['fields']> & Partial<Values<Specs[K]['optional']>>;

/** Any rendezvous message. */
export type RendezvousMessage = { [K in RendezvousMessageType]: MessageOf<K> }[RendezvousMessageType];

/** Error codes carried in ERROR-CODE, by name. */
export const ERROR_CODES = {
  'bad-request': 1,
  'version-unsupported': 2,
  'too-large': 3,
  'stale-nonce': 4,
  'bad-signature': 5,
  'name-taken': 6,
  'not-registered': 7,
  'not-found': 8,
  'rate-limited': 9,
  'room-full': 10,
  capacity: 11,
} as const;
/** A typed ERROR reason; 'unknown' for codes newer than this code. */
export type RendezvousErrorCode = keyof typeof ERROR_CODES | 'unknown';

/** The name of an ERROR-CODE value. */
export function errorCodeName(code: number): RendezvousErrorCode {
  for (const [name, value] of Object.entries(ERROR_CODES)) if (value === code) return name as RendezvousErrorCode;
  return 'unknown';
}

type AnySpec = { readonly code: number; readonly fields: Readonly<Record<string, TlvCodec<unknown>>>; readonly optional: Readonly<Record<string, TlvCodec<unknown>>> };
const BY_CODE = new Map<number, [RendezvousMessageType, AnySpec]>(
  (Object.entries(SPECS) as [RendezvousMessageType, AnySpec][]).map(([name, spec]) => [spec.code, [name, spec]]),
);

/** Encodes a message; throws ERR_INVALID_ARGUMENT for a value the wire cannot carry or a frame over MAX_FRAME_BYTES. */
export function encodeFrame(message: RendezvousMessage, version = RENDEZVOUS_VERSION): Uint8Array {
  const spec: AnySpec = SPECS[message.type];
  if (message.transactionId.length !== TRANSACTION_ID_BYTES) throw invalidFrame(`transaction id of ${message.transactionId.length} bytes, expected ${TRANSACTION_ID_BYTES}`);
  const w = new ByteWriter(256);
  w.u8(RENDEZVOUS_MAGIC).u8(version).u8(spec.code).u8(0).u16(0).bytes(message.transactionId);
  const values = message as unknown as Readonly<Record<string, unknown>>;
  for (const [key, codec] of [...Object.entries(spec.fields), ...Object.entries(spec.optional)]) {
    const value = values[key];
    if (value === undefined) {
      if (key in spec.fields) throw invalidFrame(`${message.type}: ${codec.name} is required`);
      continue;
    }
    const at = w.length;
    w.u8(codec.type).u16(0);
    codec.encode(value, w);
    w.setU16(at + 1, w.length - at - 3);
  }
  if (w.length > MAX_FRAME_BYTES) throw invalidFrame(`${message.type} of ${w.length} bytes exceeds ${MAX_FRAME_BYTES}`);
  w.setU16(4, w.length - HEADER_BYTES);
  return w.finish().slice();
}

/** True when `data` starts like a rendezvous frame (first byte 0xD0). */
export function isRendezvousFrame(data: Uint8Array): boolean {
  return data[0] === RENDEZVOUS_MAGIC;
}

/** Decodes one frame; throws RendezvousDecodeError only. Values are copies. */
export function decodeFrame(data: Uint8Array): RendezvousMessage {
  if (data.length < HEADER_BYTES) throw new RendezvousDecodeError(`expected a ${HEADER_BYTES}-byte header, got ${data.length} bytes`, 0);
  if (data[0] !== RENDEZVOUS_MAGIC) throw new RendezvousDecodeError(`expected first byte 0xd0, got 0x${data[0]!.toString(16).padStart(2, '0')}`, 0);
  const transactionId = data.slice(6, HEADER_BYTES);
  if (data.length > MAX_FRAME_BYTES) throw new RendezvousDecodeError(`frame of ${data.length} bytes exceeds ${MAX_FRAME_BYTES}`, 0, 'too-large', transactionId);
  const version = data[1]!;
  if (version !== RENDEZVOUS_VERSION) throw new RendezvousDecodeError(`version ${version} unsupported (speaks ${RENDEZVOUS_VERSION})`, 1, 'version', transactionId);
  const bodyLength = (data[4]! << 8) | data[5]!;
  if (bodyLength !== data.length - HEADER_BYTES) {
    throw new RendezvousDecodeError(`body length ${bodyLength} but ${data.length - HEADER_BYTES} bytes follow the header`, 4, 'malformed', transactionId);
  }
  const found = BY_CODE.get(data[2]!);
  if (found === undefined) throw new RendezvousDecodeError(`unknown message type 0x${data[2]!.toString(16)}`, 2, 'malformed', transactionId);
  const [type, spec] = found;
  const tlvs = readTlvs(data, transactionId);
  const out: Record<string, unknown> = { type, transactionId };
  try {
    for (const [key, codec] of Object.entries(spec.fields)) {
      const tlv = tlvs.get(codec.type);
      if (tlv === undefined) throw new RendezvousDecodeError(`${type}: ${codec.name} missing`, HEADER_BYTES);
      out[key] = codec.decode(tlv.value, tlv.offset);
    }
    for (const [key, codec] of Object.entries(spec.optional)) {
      const tlv = tlvs.get(codec.type);
      if (tlv !== undefined) out[key] = codec.decode(tlv.value, tlv.offset);
    }
  } catch (err) {
    if (err instanceof RendezvousDecodeError) throw new RendezvousDecodeError(err.message.replace(/^rendezvous: /, ''), err.offset, 'malformed', transactionId);
    throw err;
  }
  return out as unknown as RendezvousMessage;
}

/** The TLVs of a frame by type, each a view and its offset; duplicates and overruns are errors. */
function readTlvs(data: Uint8Array, transactionId: Uint8Array): Map<number, { value: Uint8Array; offset: number }> {
  const r = new ByteReader(data, HEADER_BYTES);
  const tlvs = new Map<number, { value: Uint8Array; offset: number }>();
  // Each TLV takes at least 3 bytes, so this loop runs at most MAX_FRAME_BYTES / 3 times.
  while (r.remaining > 0) {
    const at = r.offset;
    if (r.remaining < 3) throw new RendezvousDecodeError(`TLV header: expected 3 bytes, ${r.remaining} left`, at, 'malformed', transactionId);
    const type = r.u8();
    const length = r.u16();
    if (length > r.remaining) throw new RendezvousDecodeError(`TLV 0x${type.toString(16)}: length ${length} overruns the frame (${r.remaining} left)`, at, 'malformed', transactionId);
    if (tlvs.has(type)) throw new RendezvousDecodeError(`TLV 0x${type.toString(16)} repeated`, at, 'malformed', transactionId);
    tlvs.set(type, { value: r.bytesView(length), offset: at + 3 });
  }
  return tlvs;
}

function invalidFrame(message: string): Error {
  return new NatkitError('ERR_INVALID_ARGUMENT', `rendezvous frame: ${message}`);
}

/**
 * Over TCP a frame travels in a ChannelData-shaped envelope (RFC 8656 §12.5: channel
 * 0x4000, length, padding to 4 bytes) so net's StreamFramer and FramedSession cut it.
 */
export const STREAM_CHANNEL = 0x4000;

/** A frame wrapped for a stream. */
export function toStreamMessage(frame: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + ((frame.length + 3) & ~3));
  out[0] = STREAM_CHANNEL >> 8;
  out[1] = STREAM_CHANNEL & 0xff;
  out[2] = frame.length >> 8;
  out[3] = frame.length & 0xff;
  out.set(frame, 4);
  return out;
}

/** The frame inside a stream message (as StreamFramer delivers it: padding removed); undefined for another channel or STUN. */
export function fromStreamMessage(message: Uint8Array): Uint8Array | undefined {
  return message[0] === STREAM_CHANNEL >> 8 && message[1] === (STREAM_CHANNEL & 0xff) ? message.subarray(4) : undefined;
}
