// The virtual clock of the simulated world: a Clock whose time moves only when told to.
// Every packet hop, link delay and protocol timer is an event here, run in (time, order
// of scheduling) order, so a run is a pure function of the seed and the test's actions.
//
// Two ways to drive it:
// - synchronous (advance, advanceTo, runUntil, runUntilIdle): for callback code and
//   sans-I/O cores; promise callbacks queued by an event run only after the call returns.
// - asynchronous (run, elapse): for protocol code that awaits. Between two events they let
//   every queued promise callback run (one macrotask turn), so code that awaits and then
//   sends is seen at the virtual time it really acted. `await clock.run(client.binding())`.
// Every loop is bounded by a step count, and run() by virtual time: a test never hangs.
import { setImmediate as macrotask } from 'node:timers/promises';
import { NatkitError } from '../../util/index.ts';
import type { Clock, Timer } from '../types.ts';

/** Limits of a synchronous run. */
export interface StepOptions {
  /** Most events one call may run before it throws ERR_TIMEOUT. @default 1000000 */
  readonly maxSteps?: number;
}

/** Limits of an asynchronous run. */
export interface RunOptions extends StepOptions {
  /** Most virtual time the promise may take before run() rejects with ERR_TIMEOUT. @default 600000 */
  readonly maxMs?: number;
}

const MAX_STEPS = 1_000_000;
const MAX_RUN_MS = 600_000;

interface ClockEvent {
  readonly timeMs: number;
  readonly order: number;
  readonly fn: () => void;
  live: boolean;
}

/** Options of SimClock. */
export interface SimClockOptions {
  /** Time at the start, ms. @default 0 */
  readonly startMs?: number;
}

/** A Clock on virtual time with an ordered event queue. */
export class SimClock implements Clock {
  private nowMs: number;
  private order = 0;
  private live = 0;
  private ran = 0;
  private readonly heap: ClockEvent[] = [];

  constructor(options: SimClockOptions = {}) {
    this.nowMs = options.startMs ?? 0;
  }

  /** Virtual milliseconds. */
  now(): number {
    return this.nowMs;
  }

  /**
   * Runs `fn` once, `delayMs` from now (negative or NaN: now, after events already due).
   * A delay that is not finite never fires (a real setTimeout would fire after 1 ms).
   */
  setTimer(delayMs: number, fn: () => void): Timer {
    if (delayMs === Infinity) return { cancel: () => undefined };
    const event: ClockEvent = { timeMs: this.nowMs + (delayMs > 0 ? delayMs : 0), order: this.order++, fn, live: true };
    this.push(event);
    this.live++;
    return {
      cancel: () => {
        if (!event.live) return;
        event.live = false;
        this.live--;
      },
    };
  }

  /** Events scheduled and not yet run or cancelled. */
  get pending(): number {
    return this.live;
  }

  /** Events run since the clock was made. */
  get steps(): number {
    return this.ran;
  }

  /** Time of the next live event, or undefined when nothing is scheduled. */
  nextEventMs(): number | undefined {
    this.dropCancelled();
    return this.heap[0]?.timeMs;
  }

  /** Runs the next event (moving time to it); false when nothing is scheduled. */
  step(): boolean {
    this.dropCancelled();
    const event = this.pop();
    if (event === undefined) return false;
    event.live = false;
    this.live--;
    this.ran++;
    this.nowMs = Math.max(this.nowMs, event.timeMs);
    event.fn();
    return true;
  }

  /** Runs every event due within `ms` from now, then sets the time to now + ms. Returns the events run. */
  advance(ms: number, options: StepOptions = {}): number {
    return this.advanceTo(this.nowMs + Math.max(0, ms), options);
  }

  /** Runs every event due by `timeMs`, then sets the time to it (never backwards). Returns the events run. */
  advanceTo(timeMs: number, options: StepOptions = {}): number {
    const limit = options.maxSteps ?? MAX_STEPS;
    let steps = 0;
    for (let next = this.nextEventMs(); next !== undefined && next <= timeMs; next = this.nextEventMs()) {
      if (steps++ >= limit) throw this.tooManySteps(limit, `advancing to ${timeMs} ms`);
      this.step();
    }
    this.nowMs = Math.max(this.nowMs, timeMs);
    return steps;
  }

  /**
   * A time: advanceTo(it), true. A condition: runs events until it holds (true) or nothing
   * is scheduled (false); it is checked before each event.
   */
  runUntil(until: number | (() => boolean), options: StepOptions = {}): boolean {
    if (typeof until === 'number') {
      this.advanceTo(until, options);
      return true;
    }
    const limit = options.maxSteps ?? MAX_STEPS;
    for (let steps = 0; !until(); steps++) {
      if (steps >= limit) throw this.tooManySteps(limit, 'waiting for a condition');
      if (!this.step()) return false;
    }
    return true;
  }

  /** Runs events until none is scheduled; returns how many ran. Periodic timers make it throw at maxSteps. */
  runUntilIdle(options: StepOptions = {}): number {
    const limit = options.maxSteps ?? MAX_STEPS;
    let steps = 0;
    while (this.nextEventMs() !== undefined) {
      if (steps++ >= limit) throw this.tooManySteps(limit, 'running until idle');
      this.step();
    }
    return steps;
  }

  /**
   * Runs the world until `work` settles and settles the same way. Rejects with ERR_TIMEOUT
   * when maxMs of virtual time pass, when maxSteps events run, or when nothing is
   * scheduled while the promise is still pending (nothing could ever settle it).
   */
  async run<T>(work: Promise<T> | (() => Promise<T>), options: RunOptions = {}): Promise<T> {
    const maxMs = options.maxMs ?? MAX_RUN_MS;
    const limit = options.maxSteps ?? MAX_STEPS;
    const deadline = this.nowMs + maxMs;
    let outcome: { ok: true; value: T } | { ok: false; error: unknown } | undefined;
    const promise = typeof work === 'function' ? work() : work;
    promise.then((value) => (outcome = { ok: true, value }), (error: unknown) => (outcome = { ok: false, error }));
    for (let steps = 0; ; steps++) {
      // Let every promise callback queued so far run before time moves on.
      await macrotask();
      if (outcome !== undefined) break;
      const next = this.nextEventMs();
      if (next === undefined) {
        throw new NatkitError('ERR_TIMEOUT', `simulation idle at ${this.nowMs} ms with the promise still pending: no event is scheduled that could settle it`);
      }
      if (next > deadline) {
        this.advanceTo(deadline, options);
        throw new NatkitError('ERR_TIMEOUT', `promise still pending after ${maxMs} virtual ms (now ${this.nowMs} ms)`);
      }
      if (steps >= limit) throw this.tooManySteps(limit, 'running a promise');
      this.step();
    }
    if (outcome.ok) return outcome.value;
    throw outcome.error;
  }

  /** Lets `ms` of virtual time pass, running events and promise callbacks as they come. */
  async elapse(ms: number, options: StepOptions = {}): Promise<void> {
    const target = this.nowMs + Math.max(0, ms);
    const limit = options.maxSteps ?? MAX_STEPS;
    for (let steps = 0; ; steps++) {
      await macrotask();
      const next = this.nextEventMs();
      if (next === undefined || next > target) break;
      if (steps >= limit) throw this.tooManySteps(limit, `letting ${ms} ms pass`);
      this.step();
    }
    this.nowMs = Math.max(this.nowMs, target);
    await macrotask();
  }

  /**
   * Runs events and promise callbacks until nothing is scheduled (true), or until the next
   * event lies more than maxMs ahead (false, time left where it was).
   */
  async settle(options: RunOptions = {}): Promise<boolean> {
    const deadline = this.nowMs + (options.maxMs ?? MAX_RUN_MS);
    const limit = options.maxSteps ?? MAX_STEPS;
    for (let steps = 0; ; steps++) {
      await macrotask();
      const next = this.nextEventMs();
      if (next === undefined) return true;
      if (next > deadline) return false;
      if (steps >= limit) throw this.tooManySteps(limit, 'settling');
      this.step();
    }
  }

  /** Drops every scheduled event (the world is closing). */
  clear(): void {
    for (const e of this.heap) e.live = false;
    this.heap.length = 0;
    this.live = 0;
  }

  private tooManySteps(limit: number, what: string): NatkitError {
    return new NatkitError('ERR_TIMEOUT', `simulation ran ${limit} events ${what} at ${this.nowMs} ms (maxSteps); a periodic timer keeps it busy?`);
  }

  private dropCancelled(): void {
    while (this.heap.length > 0 && this.heap[0]?.live === false) this.pop();
  }

  // A binary min-heap on (timeMs, order).
  private push(event: ClockEvent): void {
    const heap = this.heap;
    heap.push(event);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const p = heap[parent]!;
      if (!before(event, p)) break;
      heap[i] = p;
      i = parent;
    }
    heap[i] = event;
  }

  private pop(): ClockEvent | undefined {
    const heap = this.heap;
    const top = heap[0];
    const last = heap.pop();
    if (top === undefined || last === undefined || heap.length === 0) return top;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= heap.length) break;
      const r = l + 1;
      const child = r < heap.length && before(heap[r]!, heap[l]!) ? r : l;
      if (!before(heap[child]!, last)) break;
      heap[i] = heap[child]!;
      i = child;
    }
    heap[i] = last;
    return top;
  }
}

function before(a: ClockEvent, b: ClockEvent): boolean {
  return a.timeMs < b.timeMs || (a.timeMs === b.timeMs && a.order < b.order);
}
