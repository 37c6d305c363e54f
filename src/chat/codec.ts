// What chat peers say to each other inside a secure session (natkit/session): one frame per
// session message, a version byte then UTF-8 JSON. The session already authenticates,
// orders and deduplicates, so a frame needs no sequence number or checksum of its own.
//
//   text     { "t": "text", "id": ID, "text": TEXT, "sentAt": MS, "room"?: ROOM }
//   receipt  { "t": "receipt", "ids": [ID, …] }    the sender's "delivered" mark
//
// A text without "room" is private to the receiver. Unknown versions and frame types are
// ignored, not fatal, so a newer peer can add frames (as TLS ignores unknown extensions).
import { DecodeError } from '../util/index.ts';

/** The first byte of every chat frame this version writes. */
export const CHAT_VERSION = 1;
/** Largest message text, UTF-8 bytes. */
export const MAX_TEXT_BYTES = 65_536;
/** Most ids in one receipt. */
export const MAX_RECEIPT_IDS = 256;
const MAX_ROOM_BYTES = 64;
const ID_PATTERN = /^[0-9A-Za-z_-]{1,64}$/;

export interface TextFrame {
  readonly t: 'text';
  /** Unique per sender; receipts name it. */
  readonly id: string;
  readonly text: string;
  /** The sender's wall clock, ms since the epoch (for display only: clocks differ). */
  readonly sentAt: number;
  /** The room it was said in; absent: a private message. */
  readonly room?: string;
}

export interface ReceiptFrame {
  readonly t: 'receipt';
  readonly ids: readonly string[];
}

export type ChatFrame = TextFrame | ReceiptFrame;

/** A frame of a later version or of an unknown type: skip it. */
export interface UnknownFrame {
  readonly t: 'unknown';
}

/** A chat frame that does not parse: the message says what was expected. */
export class ChatDecodeError extends DecodeError {
  constructor(message: string, offset = 0) {
    super(message, offset, { code: 'ERR_CHAT_DECODE' });
    this.name = 'ChatDecodeError';
  }
}

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

export function encodeChatFrame(frame: ChatFrame): Uint8Array {
  checkFrame(frame);
  const json = encoder.encode(JSON.stringify(frame));
  const out = new Uint8Array(1 + json.length);
  out[0] = CHAT_VERSION;
  out.set(json, 1);
  return out;
}

/** Parses one session message; throws ChatDecodeError (ERR_CHAT_DECODE) on anything malformed. */
export function decodeChatFrame(data: Uint8Array): ChatFrame | UnknownFrame {
  if (data.length === 0) throw new ChatDecodeError('empty chat frame');
  if (data[0] !== CHAT_VERSION) return { t: 'unknown' };
  let value: unknown;
  try {
    value = JSON.parse(decoder.decode(data.subarray(1)));
  } catch {
    // Not the parser's message: it quotes the input, which is the peer's to choose.
    throw new ChatDecodeError('expected UTF-8 JSON after the version byte', 1);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new ChatDecodeError('expected a JSON object', 1);
  const o = value as Record<string, unknown>;
  if (o['t'] === 'text') {
    const frame: TextFrame = {
      t: 'text', id: o['id'] as string, text: o['text'] as string, sentAt: o['sentAt'] as number,
      ...(o['room'] !== undefined && { room: o['room'] as string }),
    };
    checkFrame(frame);
    return frame;
  }
  if (o['t'] === 'receipt') {
    const frame = { t: 'receipt', ids: o['ids'] } as ReceiptFrame;
    checkFrame(frame);
    return { t: 'receipt', ids: [...frame.ids] };
  }
  if (typeof o['t'] !== 'string') throw new ChatDecodeError('expected "t", the frame type', 1);
  return { t: 'unknown' };
}

/** Throws ChatDecodeError unless every field of `frame` is within bounds. */
function checkFrame(frame: ChatFrame): void {
  if (frame.t === 'text') {
    checkId(frame.id);
    if (typeof frame.text !== 'string' || encoder.encode(frame.text).length > MAX_TEXT_BYTES) {
      throw new ChatDecodeError(`text: expected a string of at most ${MAX_TEXT_BYTES} bytes`);
    }
    if (typeof frame.sentAt !== 'number' || !Number.isFinite(frame.sentAt)) throw new ChatDecodeError('sentAt: expected a finite number');
    if (frame.room !== undefined && (typeof frame.room !== 'string' || frame.room === '' || encoder.encode(frame.room).length > MAX_ROOM_BYTES)) {
      throw new ChatDecodeError(`room: expected 1–${MAX_ROOM_BYTES} bytes`);
    }
    return;
  }
  if (!Array.isArray(frame.ids) || frame.ids.length === 0 || frame.ids.length > MAX_RECEIPT_IDS) {
    throw new ChatDecodeError(`ids: expected 1–${MAX_RECEIPT_IDS} message ids`);
  }
  for (const id of frame.ids) checkId(id);
}

function checkId(id: unknown): void {
  if (typeof id !== 'string' || !ID_PATTERN.test(id)) throw new ChatDecodeError('id: expected 1–64 characters of [0-9A-Za-z_-]');
}

/**
 * `text` safe to put on a terminal: C0 and C1 controls other than newline and tab, and the
 * bidirectional overrides and isolates (CVE-2021-42574, "Trojan Source") become U+FFFD, so
 * a peer cannot move the cursor, recolour the screen or reorder what others see.
 */
export function displaySafe(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/\r\n?/g, '\n').replace(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g, '\ufffd');
}
