// A binary min-heap of deadlines: thousands of allocations and reservations expire on
// one timer, the earliest (RFC 8656 §7: allocations expire on `now`, never on a clock of ours).

/** One deadline and what it is for. */
export interface Deadline<K> {
  readonly at: number;
  readonly key: K;
}

/** Min-heap on `at`. Entries are not removed on refresh: the owner re-pushes what pops too early. */
export class DeadlineQueue<K> {
  private readonly heap: Deadline<K>[] = [];

  get size(): number {
    return this.heap.length;
  }

  /** The earliest deadline, if any. */
  peek(): Deadline<K> | undefined {
    return this.heap[0];
  }

  push(at: number, key: K): void {
    const h = this.heap;
    h.push({ at, key });
    let i = h.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (h[parent]!.at <= h[i]!.at) break;
      [h[parent], h[i]] = [h[i]!, h[parent]!];
      i = parent;
    }
  }

  /** Removes and returns the earliest deadline when it is at or before `now`. */
  popDue(now: number): Deadline<K> | undefined {
    const h = this.heap;
    const top = h[0];
    if (top === undefined || top.at > now) return undefined;
    const last = h.pop()!;
    if (h.length > 0) {
      h[0] = last;
      let i = 0;
      // Each step moves down one level: at most log2(size) steps.
      while (2 * i + 1 < h.length) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (h[l]!.at < h[m]!.at) m = l;
        if (r < h.length && h[r]!.at < h[m]!.at) m = r;
        if (m === i) break;
        [h[m], h[i]] = [h[i]!, h[m]!];
        i = m;
      }
    }
    return top;
  }
}
