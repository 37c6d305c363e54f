// The transport phase (Noise rev 34 §5.1, §11.3, §11.4): each packet carries its own
// counter, used as the nonce (out of order and lost packets are normal on UDP), a key
// epoch for rekeying, and is authenticated with its header as associated data. Replays
// are refused by a sliding window (replay-window.ts); tampering by the AEAD tag.
import { NatkitError } from '../util/index.ts';
import { TAGLEN, decrypt, encrypt, rekey, type HandshakeResult } from './noise.ts';
import { ReplayWindow } from './replay-window.ts';

/** First byte of a transport packet (the handshake uses 1–3). */
export const PACKET_TRANSPORT = 0x04;
/** type (1) + epoch (1) + counter (8). */
export const TRANSPORT_HEADER_BYTES = 10;
/** Bytes a transport packet adds to its plaintext. */
export const TRANSPORT_OVERHEAD = TRANSPORT_HEADER_BYTES + TAGLEN;

export interface RekeyOptions {
  /** Move the sending key to its next epoch after this many packets. @default 65536 */
  readonly rekeyAfterPackets?: number;
  /** … or after this long on one key, ms. @default 120000 (WireGuard's REKEY_AFTER_TIME) */
  readonly rekeyAfterMs?: number;
}

/** Why a transport packet was dropped. */
export type TransportDrop = 'tampered' | 'replayed' | 'malformed' | 'stale-epoch';

/** Counters of the transport; nothing resets them. */
export interface TransportStats {
  packetsSealed: number;
  packetsOpened: number;
  /** Failed authentication (altered, forged, or under a key we do not hold). */
  tampered: number;
  /** Counter already seen, or behind the window. */
  replayed: number;
  malformed: number;
  /** An epoch neither current, previous nor next. */
  staleEpoch: number;
  /** Sending key changes. */
  rekeysSent: number;
  /** Receiving key changes. */
  rekeysReceived: number;
}

interface ReceiveKey {
  readonly epoch: number;
  readonly key: Uint8Array;
  readonly window: ReplayWindow;
}

/** Seals and opens transport packets with the keys a handshake produced. */
export class Transport {
  readonly stats: TransportStats = { packetsSealed: 0, packetsOpened: 0, tampered: 0, replayed: 0, malformed: 0, staleEpoch: 0, rekeysSent: 0, rekeysReceived: 0 };
  private sendKey: Uint8Array;
  private sendEpoch = 0;
  private sendCounter = 0;
  private sendEpochStartMs: number;
  private current: ReceiveKey;
  private previous: ReceiveKey | undefined;
  private readonly rekeyAfterPackets: number;
  private readonly rekeyAfterMs: number;

  constructor(keys: HandshakeResult, nowMs: number, options: RekeyOptions = {}) {
    const send = keys.send.key;
    const receive = keys.receive.key;
    if (send === undefined || receive === undefined) throw new NatkitError('ERR_INVALID_ARGUMENT', 'transport keys missing: the handshake is not complete');
    this.sendKey = send;
    this.current = { epoch: 0, key: receive, window: new ReplayWindow() };
    this.sendEpochStartMs = nowMs;
    this.rekeyAfterPackets = options.rekeyAfterPackets ?? 65_536;
    this.rekeyAfterMs = options.rekeyAfterMs ?? 120_000;
  }

  /** The epoch packets are sealed under now (0–255, wrapping). */
  get epoch(): number {
    return this.sendEpoch;
  }

  /** One transport packet carrying `plaintext`. */
  seal(plaintext: Uint8Array, nowMs: number): Uint8Array {
    if (this.sendCounter >= this.rekeyAfterPackets || nowMs - this.sendEpochStartMs >= this.rekeyAfterMs) {
      // §11.3: Rekey() is the one-way function of the old key; the receiver follows the epoch.
      this.sendKey = rekey(this.sendKey);
      this.sendEpoch = (this.sendEpoch + 1) & 0xff;
      this.sendCounter = 0;
      this.sendEpochStartMs = nowMs;
      this.stats.rekeysSent++;
    }
    const header = new Uint8Array(TRANSPORT_HEADER_BYTES);
    const view = new DataView(header.buffer);
    header[0] = PACKET_TRANSPORT;
    header[1] = this.sendEpoch;
    view.setBigUint64(2, BigInt(this.sendCounter));
    const sealed = encrypt(this.sendKey, BigInt(this.sendCounter), header, plaintext);
    this.sendCounter++;
    this.stats.packetsSealed++;
    const out = new Uint8Array(header.length + sealed.length);
    out.set(header);
    out.set(sealed, header.length);
    return out;
  }

  /** The plaintext of a transport packet, or why it was dropped (and counted). */
  open(packet: Uint8Array): Uint8Array | TransportDrop {
    if (packet.length < TRANSPORT_OVERHEAD || packet[0] !== PACKET_TRANSPORT) return this.drop('malformed');
    const epoch = packet[1]!;
    const counter64 = new DataView(packet.buffer, packet.byteOffset, packet.length).getBigUint64(2);
    if (counter64 > BigInt(Number.MAX_SAFE_INTEGER)) return this.drop('malformed');
    const counter = Number(counter64);
    const header = packet.subarray(0, TRANSPORT_HEADER_BYTES);
    const body = packet.subarray(TRANSPORT_HEADER_BYTES);
    let slot: ReceiveKey;
    let isNext = false;
    if (epoch === this.current.epoch) slot = this.current;
    else if (epoch === this.previous?.epoch) slot = this.previous;
    else if (epoch === ((this.current.epoch + 1) & 0xff)) {
      slot = { epoch, key: rekey(this.current.key), window: new ReplayWindow() };
      isNext = true;
    } else return this.drop('stale-epoch');
    if (slot.window.check(counter) !== 'fresh') return this.drop('replayed');
    const plaintext = decrypt(slot.key, counter64, header, body);
    if (plaintext === undefined) return this.drop('tampered');
    slot.window.mark(counter);
    if (isNext) {
      // The peer moved on; keep the old key for packets still on their way (reordered).
      this.previous = this.current;
      this.current = slot;
      this.stats.rekeysReceived++;
    }
    this.stats.packetsOpened++;
    return plaintext;
  }

  private drop(reason: TransportDrop): TransportDrop {
    if (reason === 'stale-epoch') this.stats.staleEpoch++;
    else this.stats[reason]++;
    return reason;
  }
}
