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
  /**
   * For a watch opened with `{ value: true }` on a XenStore with the event shim: the node's
   * value read right after the event (null: the node does not exist). Absent when it was not
   * read (no shim, the read failed, or an overflow event): read the node yourself.
   */
  value?: Buffer | null;
}

export interface WatchOptions {
  /** Deliver the changed node's value with each event (needs XenStoreOptions.eventShim). */
  value?: boolean;
}

/**
 * Events that arrive before the watch has a consumer (xenstored fires the registration event
 * before watch() resolves) are held and handed to the first consumer: the first 'event'
 * listener (on the next microtask) or the iterator.
 */
export class Watch extends EventEmitter implements AsyncIterable<WatchEvent> {
  /** Events held until the first consumer appears (and while listeners are being caught up). */
  private held: WatchEvent[] = [];
  private heldOverflow = false;
  private iterQueue: WatchEvent[] = [];
  private iterOverflow = false;
  private waiter: ((r: IteratorResult<WatchEvent>) => void) | undefined;
  private iterating = false;
  private listening = false;
  private flushing = false;
  private ended = false;
  private endError: Error | undefined;

  /** @internal constructed by XenStore.watch(). */
  constructor(
    readonly path: string,
    readonly token: string,
    private readonly remove: (w: Watch) => Promise<void>,
    private readonly queueLimit: number,
    /** The token registered with xenstored (the binding marks "value" watches in it). */
    readonly nativeToken: string = token,
  ) {
    super();
    this.on('newListener', (name: string) => {
      if (name !== 'event' || this.listening) return;
      this.listening = true;
      if (this.held.length === 0 && !this.heldOverflow) return;
      this.flushing = true;
      queueMicrotask(() => this.flushToListeners());
    });
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
    if (this.listening) {
      if (this.flushing) this.held = this.bounded(this.held, ev, () => (this.heldOverflow = true));
      else this.emit('event', ev);
    }
    if (this.iterating) {
      if (this.waiter) {
        const w = this.waiter;
        this.waiter = undefined;
        w({ value: ev, done: false });
      } else {
        this.iterQueue = this.bounded(this.iterQueue, ev, () => (this.iterOverflow = true));
      }
    }
    if (!this.listening && !this.iterating) {
      this.held = this.bounded(this.held, ev, () => (this.heldOverflow = true));
    }
  }

  private bounded(q: WatchEvent[], ev: WatchEvent, overflow: () => void): WatchEvent[] {
    if (q.length < this.queueLimit) q.push(ev);
    else overflow();
    return q;
  }

  private overflowEvent(): WatchEvent {
    return { path: this.path, token: this.token, overflow: true };
  }

  private flushToListeners(): void {
    while (this.held.length > 0) this.emit('event', this.held.shift() as WatchEvent);
    if (this.heldOverflow) {
      this.heldOverflow = false;
      this.emit('event', this.overflowEvent());
    }
    this.flushing = false;
  }

  /** @internal the watch is gone (unwatched, or the XenStore closed). */
  end(err?: Error): void {
    if (this.ended) return;
    this.ended = true;
    this.endError = err;
    this.emit('end', err);
    if (this.waiter && this.iterQueue.length === 0 && !this.iterOverflow) {
      const w = this.waiter;
      this.waiter = undefined;
      w({ value: undefined, done: true });
    }
  }

  private next(): Promise<IteratorResult<WatchEvent>> {
    const ev = this.iterQueue.shift();
    if (ev) return Promise.resolve({ value: ev, done: false });
    if (this.iterOverflow) {
      this.iterOverflow = false;
      return Promise.resolve({ value: this.overflowEvent(), done: false });
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

  /**
   * One iterator per watch; it starts with the events held so far unless listeners took them.
   * Leaving the loop (break/return/throw) unwatches.
   */
  [Symbol.asyncIterator](): AsyncIterator<WatchEvent> {
    if (this.iterating) throw new Error('a xenstore Watch can be iterated only once');
    this.iterating = true;
    if (!this.listening) {
      this.iterQueue = this.held;
      this.iterOverflow = this.heldOverflow;
      this.held = [];
      this.heldOverflow = false;
    }
    return {
      next: () => this.next(),
      return: async () => {
        await this.unwatch().catch(() => undefined);
        return { value: undefined, done: true };
      },
    };
  }
}
