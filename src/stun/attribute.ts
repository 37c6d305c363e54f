// The attribute registry (RFC 8489 §14, §18.3): every attribute type owns both
// directions of its codec. TURN and ICE attributes register here from their own
// modules without editing the core.
import type { ByteReader, ByteWriter } from '../wire/index.ts';
import { DecodeError, NatkitError } from '../util/index.ts';

/** What an attribute codec may need besides its own bytes. */
export interface MessageContext {
  /** The 12-byte transaction ID (16 for RFC 3489 messages): XOR-encoded addresses use it. */
  readonly transactionId: Uint8Array;
}

/** Encoder and decoder of one attribute type; `T` is its typed value. */
export interface AttrCodec<T> {
  /** Type number, e.g. 0x0020. */
  readonly type: number;
  /** Name as in the IANA registry, e.g. 'XOR-MAPPED-ADDRESS'. */
  readonly name: string;
  /** Writes the value (without the TLV header or padding). */
  encode(value: T, w: ByteWriter, ctx: MessageContext): void;
  /** Reads a value that fills the whole reader; throws StunDecodeError only. */
  decode(r: ByteReader, ctx: MessageContext): T;
}

/** A decode failure inside a STUN message. */
export class StunDecodeError extends DecodeError {
  constructor(message: string, offset: number, options?: { cause?: unknown }) {
    super(message, offset, { ...options, code: 'ERR_STUN_DECODE' });
    this.name = 'StunDecodeError';
  }
}

/** Comprehension-required range: 0x0000–0x7FFF (RFC 8489 §14). */
export function isComprehensionRequired(type: number): boolean {
  return type < 0x8000;
}

const registry = new Map<number, AttrCodec<unknown>>();

/** Registers a codec; one per type number, so a clash fails at import time. */
export function defineAttribute<T>(codec: AttrCodec<T>): AttrCodec<T> {
  const prior = registry.get(codec.type);
  if (prior !== undefined) {
    throw new NatkitError('ERR_INVALID_ARGUMENT', `attribute 0x${codec.type.toString(16)} already defined as ${prior.name}`);
  }
  registry.set(codec.type, codec);
  return codec;
}

/** The codec registered for a type, if any. */
export function attributeCodec(type: number): AttrCodec<unknown> | undefined {
  return registry.get(type);
}

/** Every registered codec, in type order. */
export function registeredAttributes(): AttrCodec<unknown>[] {
  return [...registry.values()].sort((a, b) => a.type - b.type);
}

/** Name of an attribute type for display: registered name or hex. */
export function attributeName(type: number): string {
  return registry.get(type)?.name ?? `0x${type.toString(16).padStart(4, '0')}`;
}
