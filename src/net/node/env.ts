// The real environment: wall clock and timers, OS randomness, and nodeEnv() which
// bundles them with NodeNetwork and a logger into one Env (DESIGN.md §2 "Inject the environment").
import { randomBytes } from 'node:crypto';
import type { Clock, Env, Random, Timer } from '../types.ts';
import { silentLogger } from './logger.ts';
import { NodeNetwork } from './network.ts';

/** Monotonic time from performance.now(); timers from setTimeout. */
export const systemClock: Clock = {
  now: () => performance.now(),
  setTimer(delayMs: number, fn: () => void): Timer {
    const handle = setTimeout(fn, Math.max(0, delayMs));
    return { cancel: () => clearTimeout(handle) };
  },
};

/** Cryptographically strong bytes from node:crypto. */
export const cryptoRandom: Random = {
  bytes: (n: number): Uint8Array => randomBytes(n),
};

/** The real Env: NodeNetwork, systemClock, cryptoRandom and silentLogger, each replaceable. */
export function nodeEnv(overrides: Partial<Env> = {}): Env {
  const logger = overrides.logger ?? silentLogger;
  return {
    network: overrides.network ?? new NodeNetwork({ logger }),
    clock: overrides.clock ?? systemClock,
    random: overrides.random ?? cryptoRandom,
    logger,
  };
}
