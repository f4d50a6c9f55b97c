/**
 * A registered xenstore watch as the binding hands it out: an EventEmitter ('event', 'end') and
 * an async iterator over the same events. xenstore fires a watch once when it is registered,
 * then for every change of the node or anything below it (exactly, for '@…' special paths).
 */
import { EventEmitter } from 'node:events';

export interface WatchEvent {
  /** The node that changed (as xenstored reports it: relative if the watch path was). */
  path: string;
  token: string;
  /**
   * Set on a synthetic event the iterator yields after it had to drop events because its
   * consumer fell more than the queue limit behind: re-read everything under the watch path.
   */
  overflow?: true;
}

export class Watch extends EventEmitter implements AsyncIterable<WatchEvent> {
  private readonly queue: WatchEvent[] = [];
  private overflowed = false;
  private waiter: ((r: IteratorResult<WatchEvent>) => void) | undefined;
  private iterating = false;
  private ended = false;
  private endError: Error | undefined;

  /** @internal constructed by XenStore.watch(). */
  constructor(
    readonly path: string,
    readonly token: string,
    private readonly remove: (w: Watch) => Promise<void>,
    private readonly queueLimit: number,
  ) {
    super();
  }

  get active(): boolean {
    return !this.ended;
  }

  /** Removes the watch from xenstored; the iterator then finishes. Idempotent. */
  unwatch(): Promise<void> {
    if (this.ended) return Promise.resolve();
    return this.remove(this);
  }

  /** @internal delivers one event (in xenstored's order). */
  deliver(ev: WatchEvent): void {
    if (this.ended) return;
    this.emit('event', ev);
    // Buffer for the iterator, unless the events only go to listeners.
    if (!this.iterating && this.listenerCount('event') > 0) return;
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = undefined;
      w({ value: ev, done: false });
    } else if (this.queue.length < this.queueLimit) {
      this.queue.push(ev);
    } else {
      this.overflowed = true;
    }
  }

  /** @internal the watch is gone (unwatched, or the XenStore closed). */
  end(err?: Error): void {
    if (this.ended) return;
    this.ended = true;
    this.endError = err;
    this.emit('end', err);
    if (this.waiter && (this.queue.length === 0 && !this.overflowed)) {
      const w = this.waiter;
      this.waiter = undefined;
      w({ value: undefined, done: true });
    }
  }

  private next(): Promise<IteratorResult<WatchEvent>> {
    const ev = this.queue.shift();
    if (ev) return Promise.resolve({ value: ev, done: false });
    if (this.overflowed) {
      this.overflowed = false;
      return Promise.resolve({ value: { path: this.path, token: this.token, overflow: true }, done: false });
    }
    if (this.ended) {
      if (this.endError) {
        const e = this.endError;
        this.endError = undefined;
        return Promise.reject(e);
      }
      return Promise.resolve({ value: undefined, done: true });
    }
    return new Promise((resolve) => {
      this.waiter = resolve;
    });
  }

  /** One iterator per watch; leaving the loop (break/return/throw) unwatches. */
  [Symbol.asyncIterator](): AsyncIterator<WatchEvent> {
    if (this.iterating) throw new Error('a xenstore Watch can be iterated only once');
    this.iterating = true;
    return {
      next: () => this.next(),
      return: async () => {
        await this.unwatch().catch(() => undefined);
        return { value: undefined, done: true };
      },
    };
  }
}
