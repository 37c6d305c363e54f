// Link impairments: every host and router attaches to its network through a link that
// may delay, jitter, lose, duplicate and reorder what crosses it, each drawn from the
// link's own seeded stream. Stream segments are never lost or duplicated: the simulated
// TCP stands for a transport that retransmits, so only their timing suffers.
import { NatkitError } from '../../util/index.ts';
import type { SimRandom } from './random.ts';

/** Impairments of one link, applied to each direction independently. */
export interface LinkOptions {
  /** One-way delay of every packet, ms. @default 0 */
  readonly delayMs?: number;
  /** Extra delay drawn uniformly from [0, jitterMs) per packet; packets closer than that may swap. @default 0 */
  readonly jitterMs?: number;
  /** Probability (0–1) that a datagram is lost. @default 0 */
  readonly lossRate?: number;
  /** Probability (0–1) that a datagram arrives twice (the copy takes its own delay). @default 0 */
  readonly duplicateRate?: number;
  /** Probability (0–1) that a packet is held back by reorderDelayMs, so later ones overtake it. @default 0 */
  readonly reorderRate?: number;
  /** How long a reordered packet is held back, ms. @default 10 */
  readonly reorderDelayMs?: number;
}

/** What happened to one crossing. */
export interface Crossing {
  /** Delay of each copy that gets through (none: lost). */
  readonly delaysMs: number[];
  readonly lost: boolean;
  readonly duplicated: boolean;
  readonly reordered: boolean;
}

/** One attachment's link. */
export class Link {
  readonly name: string;
  private options: Required<LinkOptions>;
  private readonly random: SimRandom;

  constructor(name: string, random: SimRandom, options: LinkOptions = {}) {
    this.name = name;
    this.random = random;
    this.options = checked(name, options);
  }

  /** Current impairments. */
  get impairments(): Readonly<Required<LinkOptions>> {
    return this.options;
  }

  /** Replaces the impairments (a link that goes bad, or recovers, mid-test). */
  set(options: LinkOptions): void {
    this.options = checked(this.name, options);
  }

  /** Draws what happens to one packet; `reliable` packets (stream segments) are never lost or copied. */
  cross(reliable: boolean): Crossing {
    const o = this.options;
    if (o.delayMs === 0 && o.jitterMs === 0 && o.lossRate === 0 && o.duplicateRate === 0 && o.reorderRate === 0) {
      return { delaysMs: [0], lost: false, duplicated: false, reordered: false };
    }
    if (!reliable && this.random.chance(o.lossRate)) return { delaysMs: [], lost: true, duplicated: false, reordered: false };
    const reordered = this.random.chance(o.reorderRate);
    const first = this.delay() + (reordered ? o.reorderDelayMs : 0);
    const duplicated = !reliable && this.random.chance(o.duplicateRate);
    return { delaysMs: duplicated ? [first, this.delay()] : [first], lost: false, duplicated, reordered };
  }

  private delay(): number {
    const o = this.options;
    return o.delayMs + (o.jitterMs > 0 ? this.random.next() * o.jitterMs : 0);
  }
}

function checked(name: string, o: LinkOptions): Required<LinkOptions> {
  const out: Required<LinkOptions> = {
    delayMs: o.delayMs ?? 0,
    jitterMs: o.jitterMs ?? 0,
    lossRate: o.lossRate ?? 0,
    duplicateRate: o.duplicateRate ?? 0,
    reorderRate: o.reorderRate ?? 0,
    reorderDelayMs: o.reorderDelayMs ?? 10,
  };
  for (const key of ['delayMs', 'jitterMs', 'reorderDelayMs'] as const) {
    if (!(out[key] >= 0) || !Number.isFinite(out[key])) throw new NatkitError('ERR_INVALID_ARGUMENT', `link ${name}: ${key} must be a finite number ≥ 0, got ${out[key]}`);
  }
  for (const key of ['lossRate', 'duplicateRate', 'reorderRate'] as const) {
    if (!(out[key] >= 0 && out[key] <= 1)) throw new NatkitError('ERR_INVALID_ARGUMENT', `link ${name}: ${key} must be within 0–1, got ${out[key]}`);
  }
  return out;
}
