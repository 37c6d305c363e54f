// The end of a stream as StreamSocket.onClose reports it, shared by net/node and net/sim:
// the first end counts, its handler is called exactly once, and a handler set after the
// end is still told (a microtask later).

/** How a stream ended: `error` when it failed. */
export interface Ended {
  readonly error?: Error;
}

/** The one end of one stream and the handler that hears of it. */
export class StreamEnd {
  private handler: ((error?: Error) => void) | undefined;
  private outcome: Ended | undefined;
  private notified = false;

  /** How the stream ended; undefined while it is open. */
  get ended(): Ended | undefined {
    return this.outcome;
  }

  /** Sets the handler (StreamSocket.onClose). */
  onClose(handler: ((error?: Error) => void) | undefined): void {
    this.handler = handler;
    if (handler !== undefined && this.outcome !== undefined && !this.notified) queueMicrotask(() => this.notify());
  }

  /** Records the end (only the first counts) and tells the handler, now or in a microtask. */
  finish(ended: Ended, options: { readonly later?: boolean } = {}): void {
    if (this.outcome !== undefined) return;
    this.outcome = ended;
    if (options.later === true) queueMicrotask(() => this.notify());
    else this.notify();
  }

  /** Calls the handler once, when there is one and the stream has ended. */
  private notify(): void {
    const ended = this.outcome;
    const handler = this.handler;
    if (ended === undefined || handler === undefined || this.notified) return;
    this.notified = true;
    if (ended.error === undefined) handler();
    else handler(ended.error);
  }
}
