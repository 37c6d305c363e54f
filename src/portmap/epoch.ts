// Gateway epoch checks: has the gateway rebooted or lost its mappings since the last
// response? RFC 6886 §3.6 (NAT-PMP Seconds Since Start of Epoch) and RFC 6887 §8.5 (PCP
// Epoch Time). A client compares the gateway's clock with its own between two responses;
// a gateway that lost state must be sent every mapping again.

/** One observation: the gateway's epoch (seconds) and our clock (milliseconds) when it came. */
export interface EpochSample {
  readonly epochS: number;
  readonly atMs: number;
}

/** Decides whether `curr` is consistent with `prev` (true) or the gateway lost state (false). */
export type EpochRule = (prev: EpochSample, curr: EpochSample) => boolean;

/**
 * RFC 6886 §3.6: the client expects at least the previous epoch plus 7/8 of the time
 * elapsed on its own clock; more than 2 s less (including going backwards) means the
 * gateway rebooted or lost its mapping state.
 */
export const natPmpEpochRule: EpochRule = (prev, curr) => {
  const elapsedS = (curr.atMs - prev.atMs) / 1000;
  return curr.epochS >= prev.epochS + (elapsedS * 7) / 8 - 2;
};

/**
 * RFC 6887 §8.5: invalid when the epoch went back by more than 1 s, or when the two clocks
 * advanced by amounts that differ by more than 2 s plus 1/16 of either delta.
 */
export const pcpEpochRule: EpochRule = (prev, curr) => {
  if (curr.epochS < prev.epochS - 1) return false;
  const clientDelta = (curr.atMs - prev.atMs) / 1000;
  const serverDelta = curr.epochS - prev.epochS;
  return !(clientDelta + 2 < serverDelta - serverDelta / 16 || serverDelta + 2 < clientDelta - clientDelta / 16);
};

/** What an observation says. */
export type EpochVerdict = 'first' | 'valid' | 'reset';

/** The last epoch seen from one gateway, checked against each new one. */
export class EpochTracker {
  private readonly rule: EpochRule;
  private last: EpochSample | undefined;

  constructor(rule: EpochRule) {
    this.rule = rule;
  }

  /** The latest observation, if any. */
  get previous(): EpochSample | undefined {
    return this.last;
  }

  /**
   * Checks an epoch from a response received at `atMs`, then records it (RFC 6887 §8.5:
   * the client records the current values for its next comparison, valid or not).
   */
  observe(epochS: number, atMs: number): EpochVerdict {
    const prev = this.last;
    const curr = { epochS, atMs };
    this.last = curr;
    if (prev === undefined) return 'first';
    return this.rule(prev, curr) ? 'valid' : 'reset';
  }

  /** Forgets the gateway (e.g. after the default gateway changed). */
  forget(): void {
    this.last = undefined;
  }
}
