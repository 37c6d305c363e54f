// Seeded randomness for the simulated world: xoshiro128** (Blackman & Vigna, 2018) seeded
// through splitmix32 from an FNV-1a hash of the seed text. Not cryptographic: the same
// seed gives the same transaction IDs, ports, losses and delays on every run.
import { NatkitError } from '../../util/index.ts';
import type { Random } from '../types.ts';

/** FNV-1a over the UTF-16 code units of `text`, 32 bits. */
function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** splitmix32 from `seed`: four well-mixed words for the xoshiro state. */
function seedState(seed: number): Uint32Array {
  const state = new Uint32Array(4);
  let a = seed | 0;
  for (let i = 0; i < 4; i++) {
    a = (a + 0x9e3779b9) | 0;
    let t = a ^ (a >>> 16);
    t = Math.imul(t, 0x21f0aaad);
    t ^= t >>> 15;
    t = Math.imul(t, 0x735a2d97);
    state[i] = (t ^ (t >>> 15)) >>> 0;
  }
  if (state.every((w) => w === 0)) state[0] = 1; // xoshiro must not start all-zero
  return state;
}

/** A deterministic Random: the world's, or an independent stream forked from it by label. */
export class SimRandom implements Random {
  /** The seed text this stream was made from (forks append `/label`). */
  readonly seed: string;
  private readonly s: Uint32Array;

  /** @param seed any number or text; equal seeds give equal streams. @default 1 */
  constructor(seed: number | string = 1) {
    this.seed = String(seed);
    this.s = seedState(fnv1a(this.seed));
  }

  /** A stream that depends only on this seed and `label`, not on how much was drawn here. */
  fork(label: string): SimRandom {
    return new SimRandom(`${this.seed}/${label}`);
  }

  /** The next 32 random bits as an unsigned integer (xoshiro128**). */
  uint32(): number {
    const s = this.s;
    const [s0 = 0, s1 = 0, s2 = 0, s3 = 0] = s;
    const result = Math.imul(rotl(Math.imul(s1, 5), 7), 9) >>> 0;
    const t2 = s2 ^ s0;
    const t3 = s3 ^ s1;
    s[1] = s1 ^ t2;
    s[0] = s0 ^ t3;
    s[2] = t2 ^ (s1 << 9);
    s[3] = rotl(t3, 11);
    return result;
  }

  /** A float in [0, 1). */
  next(): number {
    return this.uint32() / 0x1_0000_0000;
  }

  /** An integer in [min, maxExclusive). */
  int(min: number, maxExclusive: number): number {
    if (!Number.isInteger(min) || !Number.isInteger(maxExclusive) || maxExclusive <= min) {
      throw new NatkitError('ERR_INVALID_ARGUMENT', `random int: expected whole min < max, got [${min}, ${maxExclusive})`);
    }
    return min + Math.floor(this.next() * (maxExclusive - min));
  }

  /** True with probability `p`; draws nothing when p ≤ 0 or p ≥ 1, so a knob at 0 leaves the stream untouched. */
  chance(p: number): boolean {
    if (p <= 0) return false;
    if (p >= 1) return true;
    return this.next() < p;
  }

  /** `n` random bytes (Random: transaction IDs, nonces). */
  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i += 4) {
      let w = this.uint32();
      for (let j = i; j < Math.min(n, i + 4); j++) {
        out[j] = w & 0xff;
        w >>>= 8;
      }
    }
    return out;
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}
