// Anti-replay: a sliding window over packet counters, the bitmap scheme of RFC 6479 as
// WireGuard uses it (its paper, §5.4.6: 2048 bits minus one word). A counter is checked
// before decryption and only marked after the packet authenticated, so a forged packet
// cannot move the window.

/** Bits in the window; counters more than this far behind the highest seen are refused. @default 2048 */
export const REPLAY_WINDOW_BITS = 2048;
const WORDS = REPLAY_WINDOW_BITS / 32;

/** What the window says about a counter. */
export type ReplayVerdict = 'fresh' | 'replayed' | 'too-old';

/** The set of counters received, as far back as the window reaches. */
export class ReplayWindow {
  private readonly bits = new Uint32Array(WORDS);
  /** Highest counter marked; -1 before the first. */
  private top = -1;

  /** Whether `counter` may be accepted (nothing is recorded). */
  check(counter: number): ReplayVerdict {
    if (counter > this.top) return 'fresh';
    // RFC 6479 §2: one word is kept spare, so the usable window is WORDS-1 words.
    if (this.top - counter >= REPLAY_WINDOW_BITS - 32) return 'too-old';
    return (this.bits[word(counter)]! >>> (counter & 31)) & 1 ? 'replayed' : 'fresh';
  }

  /** Records `counter` as received; call only after check() said 'fresh' and the packet authenticated. */
  mark(counter: number): void {
    if (counter > this.top) {
      // Clear the words the window slides over (all of them after a long jump).
      const from = this.top < 0 ? 0 : Math.floor(this.top / 32) + 1;
      const to = Math.floor(counter / 32);
      for (let w = from, n = 0; w <= to && n < WORDS; w++, n++) this.bits[w % WORDS] = 0;
      this.top = counter;
    }
    this.bits[word(counter)]! |= 1 << (counter & 31);
  }
}

function word(counter: number): number {
  return Math.floor(counter / 32) % WORDS;
}
