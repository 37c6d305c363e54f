// ChannelData framing, RFC 8656 §12.4: a 16-bit channel number (0x4000–0x4FFF), a 16-bit
// length of the application data, the data, and padding to a multiple of 4 bytes that is
// mandatory over TCP/TLS and optional over UDP (§12.5). The first byte, 0x40–0x4F, is how
// a receiver tells ChannelData from STUN (RFC 7983 §7). RFC 5766 §11 allowed 0x4000–0x7FFF;
// servers may accept that range on request (ChannelRangeOptions).
import { MUX_TURN_CHANNEL, type MuxRange } from '../net/index.ts';
import { DecodeError, NatkitError } from '../util/index.ts';
import { ByteWriter } from '../wire/index.ts';
import { MAX_CHANNEL, MAX_LEGACY_CHANNEL, MIN_CHANNEL } from './constants.ts';

/** Header bytes before the application data. */
export const CHANNEL_DATA_HEADER = 4;
/** Most application data one ChannelData message carries (16-bit length). */
export const MAX_CHANNEL_DATA = 0xffff;

/** A ChannelData message that does not decode. */
export class TurnDecodeError extends DecodeError {
  constructor(message: string, offset: number, options?: { cause?: unknown }) {
    super(message, offset, { ...options, code: 'ERR_TURN_DECODE' });
    this.name = 'TurnDecodeError';
  }
}

/** A decoded ChannelData message; `data` is a view into the received bytes. */
export interface ChannelData {
  readonly channel: number;
  readonly data: Uint8Array;
}

/** Which channel numbers are valid. */
export interface ChannelRangeOptions {
  /**
   * Accept RFC 5766 §11's 0x4000–0x7FFF instead of RFC 8656 §12's 0x4000–0x4FFF. RFC 8656
   * gave 0x5000–0x7FFF back to RFC 7983 demultiplexing, but RFC 5766 clients (coturn's
   * turnutils_uclient) still pick numbers there. For servers only. @default false
   */
  readonly legacyChannels?: boolean;
}

/** True for the numbers a client may bind (RFC 8656 §12, or RFC 5766 §11 with legacyChannels). */
export function isValidChannel(channel: number, options: ChannelRangeOptions = {}): boolean {
  return Number.isInteger(channel) && channel >= MIN_CHANNEL && channel <= maxChannel(options);
}

/** `channel number 0x5000 outside 0x4000–0x4fff`, for errors about an invalid number. */
export function channelOutOfRange(channel: number, options: ChannelRangeOptions = {}): string {
  return `channel number 0x${channel.toString(16).padStart(4, '0')} outside 0x${MIN_CHANNEL.toString(16)}–0x${maxChannel(options).toString(16)}`;
}

function maxChannel(options: ChannelRangeOptions): number {
  return options.legacyChannels === true ? MAX_LEGACY_CHANNEL : MAX_CHANNEL;
}

/**
 * First bytes of ChannelData with RFC 5766 §11's numbers: 0x40–0x7F. RFC 7983 §7 leaves
 * 80–127 unassigned (RFC 8656 §12 took them back from TURN); legacy channels claim them.
 */
const MUX_TURN_CHANNEL_LEGACY: MuxRange = Object.freeze({ first: MIN_CHANNEL >> 8, last: MAX_LEGACY_CHANNEL >> 8, name: 'turn-channel' });

/** The first bytes ChannelData takes with these channel numbers, for PacketMux routes and StreamFramer. */
export function channelDataRange(options: ChannelRangeOptions = {}): MuxRange {
  return options.legacyChannels === true ? MUX_TURN_CHANNEL_LEGACY : MUX_TURN_CHANNEL;
}

/** Cheap demultiplexing test: the first two bits are 0b01 (RFC 8656 §12.4, RFC 7983 §7). */
export function looksLikeChannelData(bytes: Uint8Array): boolean {
  return bytes.length >= CHANNEL_DATA_HEADER && (bytes[0]! & 0xc0) === 0x40;
}

export interface ChannelDataDecodeOptions extends ChannelRangeOptions {
  /**
   * 'udp': bytes after the data are padding and ignored (RFC 8656 §12.5 lets a UDP sender
   * omit or include it); 'stream': the message must be exactly its padded length, as one
   * frame cut from a TCP/TLS stream is. @default 'udp'
   */
  readonly framing?: 'udp' | 'stream';
}

/** Parses one ChannelData message; throws TurnDecodeError only. */
export function decodeChannelData(bytes: Uint8Array, options: ChannelDataDecodeOptions = {}): ChannelData {
  if (bytes.length < CHANNEL_DATA_HEADER) {
    throw new TurnDecodeError(`ChannelData: expected at least ${CHANNEL_DATA_HEADER} bytes, got ${bytes.length}`, 0);
  }
  const channel = (bytes[0]! << 8) | bytes[1]!;
  if (!isValidChannel(channel, options)) throw new TurnDecodeError(`ChannelData: ${channelOutOfRange(channel, options)}`, 0);
  const length = (bytes[2]! << 8) | bytes[3]!;
  const end = CHANNEL_DATA_HEADER + length;
  if (end > bytes.length) throw new TurnDecodeError(`ChannelData: length says ${length} bytes, ${bytes.length - CHANNEL_DATA_HEADER} came`, 2);
  if (options.framing === 'stream' && bytes.length !== channelDataSize(length, 'stream')) {
    throw new TurnDecodeError(`ChannelData: expected ${channelDataSize(length, 'stream')} bytes with padding, got ${bytes.length}`, 2);
  }
  return { channel, data: bytes.subarray(CHANNEL_DATA_HEADER, end) };
}

/**
 * Size of the message carrying `dataLength` bytes: padded to 4 over streams, unpadded over
 * UDP (we save the bytes; receivers must accept both, RFC 8656 §12.5).
 */
export function channelDataSize(dataLength: number, framing: 'udp' | 'stream'): number {
  const size = CHANNEL_DATA_HEADER + dataLength;
  return framing === 'stream' ? (size + 3) & ~3 : size;
}

/**
 * Bytes of a ChannelData message. Throws ERR_INVALID_ARGUMENT for a channel outside
 * 0x4000–0x4FFF (0x7FFF with legacyChannels) or data over 65535 bytes.
 */
export function encodeChannelData(message: ChannelData, framing: 'udp' | 'stream' = 'udp', options: ChannelRangeOptions = {}): Uint8Array {
  if (!isValidChannel(message.channel, options)) throw new NatkitError('ERR_INVALID_ARGUMENT', `ChannelData: ${channelOutOfRange(message.channel, options)}`);
  const n = message.data.length;
  if (n > MAX_CHANNEL_DATA) throw new NatkitError('ERR_INVALID_ARGUMENT', `ChannelData: ${n} bytes of data exceed 65535`);
  const w = new ByteWriter(channelDataSize(n, framing));
  w.u16(message.channel).u16(n).bytes(message.data);
  w.zeros(channelDataSize(n, framing) - w.length);
  return w.finish();
}
