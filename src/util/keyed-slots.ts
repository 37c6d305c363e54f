// At most `limit` holders per key at once; the rest wait in FIFO order, each wait
// abortable. The STUN client uses it for RFC 8489 §6.2's ten outstanding transactions
// per server.
import { NatkitError, abortError, throwIfAborted } from './errors.ts';

interface Waiter {
  readonly grant: () => void;
  readonly fail: (err: Error) => void;
}

export class KeyedSlots {
  readonly limit: number;
  private readonly held = new Map<string, number>();
  private readonly queues = new Map<string, Waiter[]>();

  constructor(limit: number) {
    if (!Number.isInteger(limit) || limit < 1) throw new NatkitError('ERR_INVALID_ARGUMENT', `slot limit: expected a whole number ≥ 1, got ${limit}`);
    this.limit = limit;
  }

  /** Holders of `key` now. */
  holders(key: string): number {
    return this.held.get(key) ?? 0;
  }

  /** Callers waiting for `key`. */
  waiting(key: string): number {
    return this.queues.get(key)?.length ?? 0;
  }

  /** Takes a slot of `key` now if one is free. */
  tryAcquire(key: string): boolean {
    const n = this.holders(key);
    if (n >= this.limit) return false;
    this.held.set(key, n + 1);
    return true;
  }

  /** Resolves once a slot of `key` is held; rejects with ERR_ABORTED when `signal` fires first. */
  acquire(key: string, signal?: AbortSignal): Promise<void> {
    throwIfAborted(signal, 'waiting for a slot');
    if (this.tryAcquire(key)) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const queue = this.queues.get(key) ?? [];
      this.queues.set(key, queue);
      const onAbort = (): void => {
        const i = queue.indexOf(waiter);
        if (i >= 0) queue.splice(i, 1);
        if (queue.length === 0) this.queues.delete(key);
        reject(abortError(signal, 'waiting for a slot'));
      };
      const waiter: Waiter = {
        grant: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
        fail: (err) => {
          signal?.removeEventListener('abort', onAbort);
          reject(err);
        },
      };
      queue.push(waiter);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Gives back a slot of `key`; the first waiter, if any, takes it over. */
  release(key: string): void {
    const n = this.holders(key);
    if (n === 0) return;
    const queue = this.queues.get(key);
    const next = queue?.shift();
    if (queue?.length === 0) this.queues.delete(key);
    if (next !== undefined) {
      next.grant();
      return;
    }
    if (n === 1) this.held.delete(key);
    else this.held.set(key, n - 1);
  }

  /** Rejects every waiter with `err` (the owner is closing). */
  failWaiters(err: Error): void {
    const all = [...this.queues.values()].flat();
    this.queues.clear();
    for (const w of all) w.fail(err);
  }
}
