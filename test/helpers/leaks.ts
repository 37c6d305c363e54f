// Leak checks for tests (STYLE.md "every test leaves nothing behind"): compare the
// process's active handles, requests and timers (process.getActiveResourcesInfo) before
// and after a test, and fail when sockets or timers outlive it.
import assert from 'node:assert/strict';
import { setImmediate as nextImmediate } from 'node:timers/promises';

/** Count of each active resource kind ('UDPWrap', 'TCPSocketWrap', 'Timeout', …). */
export type ResourceSnapshot = ReadonlyMap<string, number>;

export interface LeakCheckOptions {
  /** How long closing handles may take to disappear. @default 1000 */
  readonly settleMs?: number;
  /** Resource kinds not checked. @default ['TTYWrap', 'PipeWrap', 'FSReqCallback', 'FSReqPromise'] */
  readonly ignore?: readonly string[];
}

const DEFAULT_IGNORE = ['TTYWrap', 'PipeWrap', 'FSReqCallback', 'FSReqPromise'];

/** Counts the resources active now. */
export function trackResources(): ResourceSnapshot {
  const counts = new Map<string, number>();
  for (const kind of process.getActiveResourcesInfo()) counts.set(kind, (counts.get(kind) ?? 0) + 1);
  return counts;
}

/** What is active now beyond `before`, kind → extra count. */
function extra(before: ResourceSnapshot, ignore: readonly string[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const [kind, n] of trackResources()) {
    const more = n - (before.get(kind) ?? 0);
    if (more > 0 && !ignore.includes(kind)) out.set(kind, more);
  }
  return out;
}

/**
 * Fails when resources beyond `before` are still active after `settleMs`. Polls with
 * setImmediate so the check itself holds no timer (a closed handle leaves the list one
 * loop turn after its close callback).
 */
export async function assertNoLeaks(before: ResourceSnapshot, options: LeakCheckOptions = {}): Promise<void> {
  const settleMs = options.settleMs ?? 1000;
  const ignore = options.ignore ?? DEFAULT_IGNORE;
  const deadline = performance.now() + settleMs;
  let left = extra(before, ignore);
  while (left.size > 0 && performance.now() < deadline) {
    await nextImmediate();
    left = extra(before, ignore);
  }
  assert.equal(left.size, 0, `test left resources behind: ${[...left].map(([k, n]) => `${k}×${n}`).join(', ')}`);
}

/** Wraps a test body: snapshot before, assertNoLeaks after (also when the body failed, the body's error wins). */
export function noLeaks<A extends unknown[]>(
  body: (...args: A) => unknown,
  options?: LeakCheckOptions,
): (...args: A) => Promise<void> {
  return async (...args: A): Promise<void> => {
    const before = trackResources();
    try {
      await body(...args);
    } catch (err) {
      // Let resources the failed body left settle, so later tests start clean; report the body's error.
      await assertNoLeaks(before, options).catch(() => undefined);
      throw err;
    }
    await assertNoLeaks(before, options);
  };
}
