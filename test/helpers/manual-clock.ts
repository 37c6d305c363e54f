// A Clock whose timers run only when the test advances time: retransmission schedules
// and timeouts checked to the millisecond without waiting.
import type { Clock, Timer } from '../../src/net/index.ts';

/** Timers that run only when the test advances time. */
export class ManualClock implements Clock {
  private time = 0;
  private seq = 0;
  private readonly timers = new Map<number, { at: number; fn: () => void }>();

  now(): number {
    return this.time;
  }

  setTimer(delayMs: number, fn: () => void): Timer {
    const id = this.seq++;
    this.timers.set(id, { at: this.time + Math.max(0, delayMs), fn });
    return { cancel: () => void this.timers.delete(id) };
  }

  get pendingTimers(): number {
    return this.timers.size;
  }

  /** Moves time forward, running due timers in order of due time. */
  advance(ms: number): void {
    const end = this.time + ms;
    for (;;) {
      let next: [number, { at: number; fn: () => void }] | undefined;
      for (const e of this.timers) if (e[1].at <= end && (next === undefined || e[1].at < next[1].at)) next = e;
      if (next === undefined) break;
      this.timers.delete(next[0]);
      this.time = next[1].at;
      next[1].fn();
    }
    this.time = end;
  }
}
