// StreamFramer: message boundaries on a TCP or TLS byte stream carrying STUN and TURN
// ChannelData, told apart by the first byte as in RFC 7983 §7.
//   STUN (first byte 0–3): 20-byte header whose bytes 2–3 are the body length, a
//     multiple of 4 (RFC 8489 §5, §6.2.2).
//   ChannelData (first byte 0x40–0x4F, or up to 0x7F for RFC 5766 §11's channel numbers
//     when the caller says so): 4-byte header whose bytes 2–3 are the data length; over
//     streams the message is padded to a multiple of 4 (RFC 8656 §12.5).
// Anything else cannot be framed: the caller closes the connection (RFC 8656 §12.5 gives
// no way to resynchronise a stream).
import { DecodeError, NatkitError } from '../util/index.ts';
import { MUX_TURN_CHANNEL, type MuxRange } from './mux.ts';

/** Settings of a StreamFramer. */
export interface StreamFramerOptions {
  /** Largest message accepted, header and padding included; a longer one is a framing error. @default 65555 */
  readonly maxMessageBytes?: number;
  /**
   * First bytes framed as ChannelData: MUX_TURN_CHANNEL (RFC 8656 §12), or 0x40–0x7F on a
   * TURN server accepting RFC 5766 §11's channel numbers (turn's channelDataRange()).
   * Must lie within 0x40–0x7F. @default MUX_TURN_CHANNEL
   */
  readonly channelData?: MuxRange;
}

/** Largest STUN message: 20-byte header plus the largest u16 length. */
const DEFAULT_MAX_MESSAGE_BYTES = 65535 + 20;
/** Bytes needed before a message's length is known: type/channel (2) and length (2). */
const PREFIX_BYTES = 4;

/** Receives one framed message; a view that stays valid (the framer never reuses it). */
export type MessageHandler = (message: Uint8Array) => void;

/**
 * Splits a byte stream into STUN and ChannelData messages. Messages that sit whole in
 * one chunk are delivered as views of it; only a message split across chunks is copied.
 * Buffers at most one partial message (≤ maxMessageBytes).
 */
export class StreamFramer {
  private readonly maxMessageBytes: number;
  private readonly channelData: MuxRange;
  /** The first bytes of a message whose length is not known yet. */
  private readonly prefix = new Uint8Array(PREFIX_BYTES);
  private prefixLength = 0;
  /** A message being assembled across chunks: its whole wire size, padding included. */
  private partial: Uint8Array | undefined;
  private partialLength = 0;
  /** Length to deliver from `partial` (the wire size minus ChannelData padding). */
  private partialMessageLength = 0;
  /** Stream offset of the next byte pushed, for error reports. */
  private streamOffset = 0;
  private failure: DecodeError | undefined;

  /** Throws ERR_INVALID_ARGUMENT when `channelData` strays outside 0x40–0x7F. */
  constructor(options: StreamFramerOptions = {}) {
    this.maxMessageBytes = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
    this.channelData = options.channelData ?? MUX_TURN_CHANNEL;
    const { first, last } = this.channelData;
    // ChannelData's first two bits are 01 (RFC 8656 §12.4, RFC 5766 §11.4): 0x40–0x7F at most.
    if (!(first >= 0x40 && first <= last && last <= 0x7f)) {
      throw new NatkitError('ERR_INVALID_ARGUMENT', `channelData: expected first bytes within 0x40–0x7f, got ${hexByte(first)}–${hexByte(last)}`);
    }
  }

  /** Bytes held of a message not yet complete (non-zero at stream end means a truncated message). */
  get buffered(): number {
    return this.prefixLength + this.partialLength;
  }

  /**
   * Feeds one chunk and returns the messages it completes, in order. Throws DecodeError
   * (ERR_DECODE) at the first byte that cannot start a message, dropping the messages
   * before it in the same chunk (the callback form delivers those). After an error every
   * push throws it again.
   */
  push(chunk: Uint8Array): Uint8Array[];
  /** Feeds one chunk, calling `onMessage` for each message it completes before any DecodeError is thrown. */
  push(chunk: Uint8Array, onMessage: MessageHandler): void;
  push(chunk: Uint8Array, onMessage?: MessageHandler): Uint8Array[] | undefined {
    if (onMessage !== undefined) {
      this.feed(chunk, onMessage);
      return undefined;
    }
    const messages: Uint8Array[] = [];
    this.feed(chunk, (m) => messages.push(m));
    return messages;
  }

  private feed(chunk: Uint8Array, onMessage: MessageHandler): void {
    if (this.failure !== undefined) throw this.failure;
    let at = 0;
    // Finish what an earlier chunk started.
    if (this.prefixLength > 0) {
      const take = Math.min(PREFIX_BYTES - this.prefixLength, chunk.length);
      this.prefix.set(chunk.subarray(0, take), this.prefixLength);
      this.prefixLength += take;
      at = take;
      if (this.prefixLength < PREFIX_BYTES) {
        this.streamOffset += at;
        return;
      }
      const size = this.sizeOf(this.prefix, this.streamOffset - (this.prefixLength - take));
      this.partial = new Uint8Array(size.wire);
      this.partial.set(this.prefix);
      this.partialLength = PREFIX_BYTES;
      this.partialMessageLength = size.message;
      this.prefixLength = 0;
    }
    if (this.partial !== undefined) {
      const take = Math.min(this.partial.length - this.partialLength, chunk.length - at);
      this.partial.set(chunk.subarray(at, at + take), this.partialLength);
      this.partialLength += take;
      at += take;
      if (this.partialLength < this.partial.length) {
        this.streamOffset += at;
        return;
      }
      const message = this.partial.subarray(0, this.partialMessageLength);
      this.partial = undefined;
      this.partialLength = 0;
      onMessage(message);
    }
    // Whole messages in this chunk: views, no copies.
    while (chunk.length - at >= PREFIX_BYTES) {
      const size = this.sizeOf(chunk.subarray(at, at + PREFIX_BYTES), this.streamOffset + at);
      if (chunk.length - at < size.wire) break;
      const message = chunk.subarray(at, at + size.message);
      at += size.wire;
      onMessage(message);
    }
    // Keep the start of the next message.
    const rest = chunk.length - at;
    if (rest > 0 && rest < PREFIX_BYTES) {
      // The first byte alone says whether a message can start here: fail now, not 3 bytes later.
      this.kindOf(chunk[at] ?? 0, this.streamOffset + at);
      this.prefix.set(chunk.subarray(at));
      this.prefixLength = rest;
    } else if (rest > 0) {
      const size = this.sizeOf(chunk.subarray(at, at + PREFIX_BYTES), this.streamOffset + at);
      this.partial = new Uint8Array(size.wire);
      this.partial.set(chunk.subarray(at));
      this.partialLength = rest;
      this.partialMessageLength = size.message;
    }
    this.streamOffset += chunk.length;
  }

  /** Which message a first byte starts (RFC 7983 §7 ranges); records and throws a DecodeError for any other. */
  private kindOf(first: number, offset: number): 'stun' | 'channel-data' {
    if (first <= 3) return 'stun';
    const { first: low, last: high } = this.channelData;
    if (first >= low && first <= high) return 'channel-data';
    throw this.fail(`expected a STUN (0x00–0x03) or ChannelData (${hexByte(low)}–${hexByte(high)}) first byte, got ${hexByte(first)}`, offset);
  }

  /** Message and wire sizes from the first 4 bytes; records and throws a DecodeError. */
  private sizeOf(head: Uint8Array, offset: number): { message: number; wire: number } {
    const length = ((head[2] ?? 0) << 8) | (head[3] ?? 0);
    let size: { message: number; wire: number };
    if (this.kindOf(head[0] ?? 0, offset) === 'stun') {
      // RFC 8489 §5: "the last 2 bits of this field are always zero".
      if ((length & 3) !== 0) throw this.fail(`STUN message length ${length} is not a multiple of 4`, offset + 2);
      size = { message: 20 + length, wire: 20 + length };
    } else {
      size = { message: 4 + length, wire: 4 + ((length + 3) & ~3) };
    }
    if (size.wire > this.maxMessageBytes) {
      throw this.fail(`message of ${size.wire} bytes exceeds the ${this.maxMessageBytes}-byte limit`, offset);
    }
    return size;
  }

  private fail(message: string, offset: number): DecodeError {
    this.failure = new DecodeError(`stream framing: ${message}`, offset);
    return this.failure;
  }
}

/** `0x4f`, for messages. */
function hexByte(b: number): string {
  return `0x${b.toString(16).padStart(2, '0')}`;
}
