/**
 * An in-process client of the server, acting as dom0 or as a given domain. Each call is one
 * request through the same protocol engine a socket uses (same checks, same watch events), run
 * synchronously. Watch events are queued: read them with takeEvents(), or set a listener with
 * onWatchEvent() to have them delivered in order from a microtask after the change that caused
 * them.
 */
import { decodeStrings, encodePathValue, encodeStrings, XsType, type XsErrorName } from '../../wire/index.js';
import type { XenstoreNodeOps, XsPermission } from '../../xen/xenstore-types.js';
import { Connection, type XenstoreCore } from './core.js';
import { XsRequestError } from './errors.js';
import { formatPerm, fromXsPermission, parsePerm, toXsPermission } from './perms.js';

export interface WatchEvent {
  /** The changed path, relative if the watch was set with a relative path. */
  path: string;
  token: string;
}

export interface SessionOptions {
  /** Events kept for takeEvents()/the listener before newer ones are dropped (counted). */
  maxQueuedEvents?: number;
}

export class XenstoreSession extends Connection {
  private reqId = 0;
  private reply: { type: number; payload: Buffer } | undefined;
  private queue: WatchEvent[] = [];
  private listener: ((ev: WatchEvent) => void) | undefined;
  private deliveryScheduled = false;
  private readonly maxQueuedEvents: number;
  /** Events dropped because the queue was full. */
  droppedEvents = 0;
  /** Why the server dropped this session (domain released, server closed), if it did. */
  droppedReason: string | undefined;

  constructor(
    private readonly core: XenstoreCore,
    domid: number,
    options: SessionOptions = {},
  ) {
    super(domid, domid === 0);
    this.maxQueuedEvents = options.maxQueuedEvents ?? 100_000;
    core.attach(this);
  }

  /** The value's bytes (a copy: the store's own value is never handed out). */
  read(path: string, tx = 0): Buffer {
    return Buffer.from(this.request(XsType.READ, encodeStrings([path], 'utf8'), tx, 'read', path));
  }

  /** The value decoded as UTF-8. */
  readText(path: string, tx = 0): string {
    return this.read(path, tx).toString('utf8');
  }

  write(path: string, value: string | Uint8Array, tx = 0): void {
    this.request(XsType.WRITE, encodePathValue(path, value, 'utf8'), tx, 'write', path);
  }

  mkdir(path: string, tx = 0): void {
    this.request(XsType.MKDIR, encodeStrings([path], 'utf8'), tx, 'mkdir', path);
  }

  rm(path: string, tx = 0): void {
    this.request(XsType.RM, encodeStrings([path], 'utf8'), tx, 'rm', path);
  }

  directory(path: string, tx = 0): string[] {
    return decodeStrings(this.request(XsType.DIRECTORY, encodeStrings([path], 'utf8'), tx, 'directory', path), 'utf8');
  }

  exists(path: string, tx = 0): boolean {
    try {
      this.read(path, tx);
      return true;
    } catch (err) {
      if (err instanceof XsRequestError && err.code === 'ENOENT') return false;
      throw err;
    }
  }

  getPermissions(path: string, tx = 0): XsPermission[] {
    const strings = decodeStrings(this.request(XsType.GET_PERMS, encodeStrings([path], 'utf8'), tx, 'getPermissions', path));
    return strings.map((s) => toXsPermission(parsePerm(s)!));
  }

  setPermissions(path: string, perms: readonly XsPermission[], tx = 0): void {
    const strings = [path, ...perms.map((p) => formatPerm(fromXsPermission(p)))];
    this.request(XsType.SET_PERMS, encodeStrings(strings, 'utf8'), tx, 'setPermissions', path);
  }

  watch(path: string, token: string): void {
    this.request(XsType.WATCH, encodeStrings([path, token], 'utf8'), 0, 'watch', path);
  }

  unwatch(path: string, token: string): void {
    this.request(XsType.UNWATCH, encodeStrings([path, token], 'utf8'), 0, 'unwatch', path);
  }

  resetWatches(): void {
    this.request(XsType.RESET_WATCHES, encodeStrings(['']), 0, 'resetWatches');
  }

  transactionStart(): number {
    const reply = this.request(XsType.TRANSACTION_START, encodeStrings(['']), 0, 'transactionStart');
    return Number(decodeStrings(reply)[0]);
  }

  /** Commits (or aborts) a transaction; a conflicting commit throws XsRequestError EAGAIN. */
  transactionEnd(tx: number, commit = true): void {
    this.request(XsType.TRANSACTION_END, encodeStrings([commit ? 'T' : 'F']), tx, 'transactionEnd');
  }

  /** Runs `fn` in a transaction, retrying the whole function on EAGAIN up to `maxAttempts` times. */
  transaction<T>(fn: (tx: number) => T, maxAttempts = 16): T {
    for (let attempt = 1; ; attempt++) {
      const tx = this.transactionStart();
      let result: T;
      try {
        result = fn(tx);
      } catch (err) {
        this.transactionEnd(tx, false);
        throw err;
      }
      try {
        this.transactionEnd(tx, true);
        return result;
      } catch (err) {
        if (!(err instanceof XsRequestError && err.code === 'EAGAIN') || attempt >= maxAttempts) throw err;
      }
    }
  }

  getDomainPath(domid: number): string {
    return decodeStrings(this.request(XsType.GET_DOMAIN_PATH, encodeStrings([String(domid)]), 0, 'getDomainPath'))[0]!;
  }

  isDomainIntroduced(domid: number): boolean {
    const r = this.request(XsType.IS_DOMAIN_INTRODUCED, encodeStrings([String(domid)]), 0, 'isDomainIntroduced');
    return decodeStrings(r)[0] === 'T';
  }

  /** INTRODUCE (dom0 only); the page frame and event channel only need to look plausible here. */
  introduceDomain(domid: number, mfn = 0, evtchn = 1): void {
    this.request(XsType.INTRODUCE, encodeStrings([String(domid), String(mfn), String(evtchn)]), 0, 'introduceDomain');
  }

  releaseDomain(domid: number): void {
    this.request(XsType.RELEASE, encodeStrings([String(domid)]), 0, 'releaseDomain');
  }

  /**
   * This session as the promise-based XenstoreNodeOps that provisioning code takes (errors are
   * XsRequestError, whose `code` is the errno name, e.g. 'ENOENT').
   */
  asNodeOps(): XenstoreNodeOps {
    return {
      mkdir: async (path) => this.mkdir(path),
      getPermissions: async (path) => this.getPermissions(path),
      setPermissions: async (path, perms) => this.setPermissions(path, perms),
    };
  }

  /** Sends a raw request; returns the reply's type and payload without interpreting errors. */
  raw(type: number, payload: Buffer, tx = 0): { type: number; payload: Buffer } {
    this.send(type, payload, tx);
    return { type: this.reply!.type, payload: Buffer.from(this.reply!.payload) };
  }

  /** Queued watch events, oldest first; the queue is emptied. */
  takeEvents(): WatchEvent[] {
    const events = this.queue;
    this.queue = [];
    return events;
  }

  /** Delivers watch events to `listener` (in order, from a microtask); undefined to stop. */
  onWatchEvent(listener: ((ev: WatchEvent) => void) | undefined): void {
    this.listener = listener;
    if (listener && this.queue.length > 0) this.scheduleDelivery();
  }

  close(): void {
    this.core.detach(this);
  }

  deliverReply(type: number, _reqId: number, _txId: number, payload: Buffer): void {
    this.reply = { type, payload };
  }

  deliverEvent(payload: Buffer): void {
    if (this.queue.length >= this.maxQueuedEvents) {
      this.droppedEvents++;
      return;
    }
    const [path, token] = decodeStrings(payload, 'utf8') as [string, string];
    this.queue.push({ path, token });
    if (this.listener) this.scheduleDelivery();
  }

  protected onDropped(reason: string): void {
    this.droppedReason = reason;
  }

  private scheduleDelivery(): void {
    if (this.deliveryScheduled) return;
    this.deliveryScheduled = true;
    queueMicrotask(() => {
      this.deliveryScheduled = false;
      const listener = this.listener;
      if (!listener) return;
      const events = this.takeEvents();
      for (const ev of events) {
        try {
          listener(ev);
        } catch (err) {
          this.core.log.error({ err, domid: this.domid }, 'watch listener threw');
        }
      }
    });
  }

  private send(type: number, payload: Buffer, tx: number): void {
    if (this.closed) {
      throw new XsRequestError('EIO', `session closed${this.droppedReason ? ` (${this.droppedReason})` : ''}`);
    }
    this.reply = undefined;
    this.reqId = (this.reqId + 1) >>> 0;
    this.core.handle(this, { type, reqId: this.reqId, txId: tx, payload });
  }

  private request(type: number, payload: Buffer, tx: number, op: string, path?: string): Buffer {
    this.send(type, payload, tx);
    const reply = this.reply!;
    if (reply.type === XsType.ERROR) {
      throw new XsRequestError(decodeStrings(reply.payload)[0] as XsErrorName, op, path);
    }
    return reply.payload;
  }
}
