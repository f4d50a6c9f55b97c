/**
 * xenstore through the real libxenstore (libxenstore.so.4, via koffi), without ever blocking
 * Node's event loop. See docs/architecture.md ("libxenstore binding") for the threading rules;
 * the mechanics live in xenstore-handle.ts.
 *
 *   const xs = await XenStore.open({ path: '/run/xenstored/socket' });
 *   await xs.write('/local/domain/3/memory/target', '524288');
 *   const w = await xs.watch('@introduceDomain');
 *   for await (const ev of w) { … }
 *   await xs.close();
 */
import { EventEmitter } from 'node:events';
import { errnoName, errnoValue, copyBytes, decodeCString, decodePerms, decodeStringArray, XS_PERM_MASK,
  type XsPermStruct } from './xenstore-ffi.js';
import { XenStoreError } from './xenstore-error.js';
import { NativeHandle, openHandle, stuckNativeCalls, type HandleOptions } from './xenstore-handle.js';
import { loadShim, VALUE_TOKEN_PREFIX } from './xenstore-shim.js';
import type { XenstoreNodeOps, XsPermission, XsPermKind } from './xenstore-types.js';
import { Watch, type WatchEvent, type WatchOptions } from './xenstore-watch.js';

export { XenStoreError, isNotFound, isXenStoreError } from './xenstore-error.js';
export { Watch, type WatchEvent, type WatchOptions } from './xenstore-watch.js';
export { defaultShimPath } from './xenstore-shim.js';
export type { XsPermission, XsPermKind, XenstoreNodeOps } from './xenstore-types.js';

export interface XenStoreOptions {
  /**
   * xenstored's unix socket. Given: used for this handle (set as XENSTORED_PATH for the open
   * only). Omitted: libxenstore's default (XENSTORED_PATH from the environment, else
   * /var/run/xenstored/socket, else /dev/xen/xenbus).
   */
  path?: string;
  /** Every call settles within this many ms; a call that times out loses the connection. Default 10 000. */
  timeoutMs?: number;
  /** Read-only calls overlapping on the handle (hides the worker-thread hop). Default 2. */
  maxInFlight?: number;
  /** Interval at which an idle watch waiter checks the connection is alive. Default 1000 ms. */
  livenessMs?: number;
  /** Events a watch's iterator buffers before it collapses them into one `overflow` event. Default 4096. */
  watchQueueLimit?: number;
  /** The library to load. Default 'libxenstore.so.4'. */
  library?: string;
  /**
   * Path of the watch event shim (build/lib/libxbdshim.so, see defaultShimPath()): watch events
   * then cost one worker-thread hand-off, and watches opened with `{ value: true }` deliver the
   * changed node's value with each event. open() rejects (ENOENT, one line) if it cannot load.
   */
  eventShim?: string;
}

export interface TransactionOptions {
  /** Attempts after the first when xenstored answers EAGAIN (a conflicting commit). Default 10. */
  maxRetries?: number;
}

export type XenStoreState = 'connected' | 'disconnected' | 'closed';

export interface XenStoreStats {
  state: XenStoreState;
  /** native calls on worker threads for the current handle (the watch waiter included). */
  inFlight: number;
  watches: number;
  /** worker threads held by abandoned handles process-wide (xenstored never answered). */
  stuckNativeCalls: number;
}

const PERM_KINDS: XsPermKind[] = ['none', 'read', 'write', 'both'];

function invalid(op: string, path: string | undefined, detail: string): XenStoreError {
  return new XenStoreError('EINVAL', errnoValue('EINVAL'), op, path, false, detail);
}

/** Rejects what libxenstore would silently truncate (a NUL ends a C string). */
function checkString(op: string, what: string, s: unknown, path?: string): asserts s is string {
  if (typeof s !== 'string' || s.length === 0) throw invalid(op, path, `${what} must be a non-empty string`);
  if (s.includes('\0')) throw invalid(op, path, `${what} contains a NUL byte`);
}

function checkDomid(op: string, domid: unknown): asserts domid is number {
  if (typeof domid !== 'number' || !Number.isInteger(domid) || domid < 0 || domid > 0xffff) {
    throw invalid(op, undefined, `domid must be an integer 0..65535, got ${String(domid)}`);
  }
}

function toNative(op: string, path: string, perms: XsPermission[]): XsPermStruct[] {
  if (!Array.isArray(perms) || perms.length === 0) throw invalid(op, path, 'permission list must not be empty');
  return perms.map((p) => {
    checkDomid(op, p.domid);
    const kind = PERM_KINDS.indexOf(p.perm);
    if (kind < 0) throw invalid(op, path, `unknown permission '${String(p.perm)}'`);
    return { id: p.domid, perms: kind };
  });
}

function failure(op: string, path: string | undefined, errno: number): XenStoreError {
  if (errno === 0) return new XenStoreError('EIO', errnoValue('EIO'), op, path, false, 'libxenstore failed without an errno');
  return new XenStoreError(errnoName(errno), errno, op, path);
}

/**
 * Node operations on one handle, outside (tx 0) or inside a transaction. XenStore and
 * XenStoreTransaction expose the same set.
 */
class NodeOps {
  constructor(
    private readonly handle: () => NativeHandle,
    protected readonly tx: number,
    private readonly usable: (op: string, path?: string) => void = () => undefined,
  ) {}

  /** The node's value, byte for byte. ENOENT when it does not exist. */
  read(path: string): Promise<Buffer> {
    return this.run('read', path, true, (h, done) => {
      const len = [0];
      h.lib.xs_read.async(h.ptr, this.tx, path, len, (e, r) => done(e, [r, len[0]]));
    }, (h, res, errno) => {
      const [ptr, len] = res as [bigint | null, number];
      if (ptr === null) throw failure('read', path, errno);
      try {
        return copyBytes(ptr, len);
      } finally {
        h.libc.free(ptr);
      }
    });
  }

  /** The node's value decoded as UTF-8. */
  async readString(path: string): Promise<string> {
    return (await this.read(path)).toString('utf8');
  }

  /** Writes a value (binary-safe; at most 4096 bytes with the path), creating missing parents. */
  write(path: string, value: string | Buffer | Uint8Array): Promise<void> {
    const data = typeof value === 'string' ? Buffer.from(value, 'utf8') : Buffer.from(value);
    return this.run('write', path, false, (h, done) => {
      h.lib.xs_write.async(h.ptr, this.tx, path, data, data.length, done);
    }, (_h, ok, errno) => {
      if (!ok) throw failure('write', path, errno);
    });
  }

  /** Creates the node (and missing parents); an existing node is left as it is. */
  mkdir(path: string): Promise<void> {
    return this.run('mkdir', path, false, (h, done) => {
      h.lib.xs_mkdir.async(h.ptr, this.tx, path, done);
    }, (_h, ok, errno) => {
      if (!ok) throw failure('mkdir', path, errno);
    });
  }

  /** Removes the node and everything below it. */
  rm(path: string): Promise<void> {
    return this.run('rm', path, false, (h, done) => {
      h.lib.xs_rm.async(h.ptr, this.tx, path, done);
    }, (_h, ok, errno) => {
      if (!ok) throw failure('rm', path, errno);
    });
  }

  /** The names of the node's children, in xenstored's order. */
  directory(path: string): Promise<string[]> {
    return this.run('directory', path, true, (h, done) => {
      const num = [0];
      h.lib.xs_directory.async(h.ptr, this.tx, path, num, (e, r) => done(e, [r, num[0]]));
    }, (h, res, errno) => {
      const [ptr, num] = res as [bigint | null, number];
      if (ptr === null) throw failure('directory', path, errno);
      try {
        return decodeStringArray(ptr, num);
      } finally {
        h.libc.free(ptr);
      }
    });
  }

  /** The node's permission list: the first entry is the owner and the default for others. */
  getPermissions(path: string): Promise<XsPermission[]> {
    return this.run('get_perms', path, true, (h, done) => {
      const num = [0];
      h.lib.xs_get_permissions.async(h.ptr, this.tx, path, num, (e, r) => done(e, [r, num[0]]));
    }, (h, res, errno) => {
      const [ptr, num] = res as [bigint | null, number];
      if (ptr === null) throw failure('get_perms', path, errno);
      try {
        return decodePerms(ptr, num).map((p) => ({
          domid: p.id,
          perm: PERM_KINDS[p.perms & XS_PERM_MASK] as XsPermKind,
        }));
      } finally {
        h.libc.free(ptr);
      }
    });
  }

  setPermissions(path: string, perms: XsPermission[]): Promise<void> {
    let native: XsPermStruct[];
    try {
      native = toNative('set_perms', path, perms);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.run('set_perms', path, false, (h, done) => {
      h.lib.xs_set_permissions.async(h.ptr, this.tx, path, native, native.length, done);
    }, (_h, ok, errno) => {
      if (!ok) throw failure('set_perms', path, errno);
    });
  }

  protected run<T>(op: string, path: string | undefined, readOnly: boolean,
    start: (h: NativeHandle, done: (err: unknown, res: unknown) => void) => void,
    finish: (h: NativeHandle, res: unknown, errno: number) => T): Promise<T> {
    let h: NativeHandle;
    try {
      if (path !== undefined) checkString(op, 'path', path, path);
      this.usable(op, path);
      h = this.handle();
    } catch (err) {
      return Promise.reject(err);
    }
    return h.call(op, path, readOnly, (_ptr, done) => start(h, done), (res, errno) => finish(h, res, errno));
  }
}

/** Node operations inside one transaction attempt; valid until the transaction function returns. */
export class XenStoreTransaction extends NodeOps {
  private finished = false;

  /** @internal created by XenStore.transaction(). */
  constructor(handle: NativeHandle, readonly id: number) {
    super(() => handle, id, (op, path) => {
      if (this.finished) throw invalid(op, path, 'the transaction has already ended');
    });
  }

  /** @internal */
  finish(): void {
    this.finished = true;
  }
}

/** The events a XenStore emits. */
export interface XenStoreEvents {
  watch: [ev: WatchEvent];
  disconnect: [err: XenStoreError];
  reconnect: [];
}

/**
 * A connection to xenstored through libxenstore. Events: 'watch' (every watch event, in order),
 * 'disconnect' (the connection is lost; calls fail with connectionLost errors until
 * reconnect()), 'reconnect' (a new connection is up and every watch is registered again, so
 * each fires once more).
 */
export class XenStore extends EventEmitter<XenStoreEvents> implements XenstoreNodeOps {
  private handle: NativeHandle;
  private readonly watches = new Map<string, Watch>();
  private closed = false;
  private reconnecting: Promise<void> | undefined;
  private tokenSeq = 0;
  private readonly ops: NodeOps;

  private constructor(
    handle: NativeHandle,
    private readonly socketPath: string | undefined,
    private readonly opts: HandleOptions & { watchQueueLimit: number },
  ) {
    super();
    this.handle = handle;
    this.ops = new NodeOps(() => this.handle, 0, (op, path) => this.checkUsable(op, path));
  }

  /** Connects to xenstored. Rejects with XenStoreError (op 'open') when it cannot. */
  static async open(options: XenStoreOptions = {}): Promise<XenStore> {
    if (threadPoolSize() < 2) {
      throw new XenStoreError('EINVAL', errnoValue('EINVAL'), 'open', options.path, false,
        'UV_THREADPOOL_SIZE must be at least 2: the watch waiter holds one libuv worker thread');
    }
    const shim = options.eventShim === undefined ? undefined : loadShim(options.eventShim);
    const opts = {
      ...(shim ? { shim } : {}),
      timeoutMs: options.timeoutMs ?? 10_000,
      maxInFlight: Math.max(1, Math.min(options.maxInFlight ?? 2, maxInFlightForPool())),
      livenessMs: options.livenessMs ?? 1000,
      library: options.library ?? 'libxenstore.so.4',
      watchQueueLimit: options.watchQueueLimit ?? 4096,
    };
    const ref: { xs?: XenStore } = {};
    const handle = await openHandle(options.path, opts, {
      onWatchEvent: (path, token, value) => ref.xs?.dispatch(path, token, value),
      onLost: (err) => ref.xs?.lost(handle, err),
    });
    ref.xs = new XenStore(handle, options.path, opts);
    return ref.xs;
  }

  get state(): XenStoreState {
    if (this.closed) return 'closed';
    return this.handle.isOpen ? 'connected' : 'disconnected';
  }

  stats(): XenStoreStats {
    return { state: this.state, inFlight: this.handle.inFlight, watches: this.watches.size,
      stuckNativeCalls: stuckNativeCalls() };
  }

  read(path: string): Promise<Buffer> { return this.ops.read(path); }
  readString(path: string): Promise<string> { return this.ops.readString(path); }
  write(path: string, value: string | Buffer | Uint8Array): Promise<void> { return this.ops.write(path, value); }
  mkdir(path: string): Promise<void> { return this.ops.mkdir(path); }
  rm(path: string): Promise<void> { return this.ops.rm(path); }
  directory(path: string): Promise<string[]> { return this.ops.directory(path); }
  getPermissions(path: string): Promise<XsPermission[]> { return this.ops.getPermissions(path); }
  setPermissions(path: string, perms: XsPermission[]): Promise<void> { return this.ops.setPermissions(path, perms); }

  /** '/local/domain/<domid>' as xenstored reports it. */
  getDomainPath(domid: number): Promise<string> {
    return this.domainCall('get_domain_path', domid, true, (h, done) => {
      h.lib.xs_get_domain_path.async(h.ptr, domid, done);
    }, (h, ptr, errno) => {
      if (ptr === null) throw failure('get_domain_path', undefined, errno);
      try {
        return decodeCString(ptr as bigint);
      } finally {
        h.libc.free(ptr as bigint);
      }
    });
  }

  /** Whether xenstored knows the domain (dom0 always is). */
  isDomainIntroduced(domid: number): Promise<boolean> {
    return this.domainCall('is_domain_introduced', domid, true, (h, done) => {
      h.lib.xs_is_domain_introduced.async(h.ptr, domid, done);
    }, (h, res) => {
      // libxenstore returns false both for "F" and for a failed request, and sets no errno for
      // the former: tell them apart by whether the connection survived, so a dead connection
      // never reads as "every domain is gone".
      if (res === false && !h.checkAlive()) {
        throw new XenStoreError('ECONNRESET', errnoValue('ECONNRESET'), 'is_domain_introduced', undefined, true,
          'connection to xenstored lost');
      }
      return res === true;
    });
  }

  /** Privileged: tells xenstored about a domain (fires @introduceDomain). */
  introduceDomain(domid: number, mfn: number, evtchn: number): Promise<void> {
    return this.domainCall('introduce', domid, false, (h, done) => {
      h.lib.xs_introduce_domain.async(h.ptr, domid, mfn, evtchn, done);
    }, (_h, ok, errno) => {
      if (!ok) throw failure('introduce', undefined, errno);
    });
  }

  /** Privileged: tells xenstored a domain is gone (fires @releaseDomain). */
  releaseDomain(domid: number): Promise<void> {
    return this.domainCall('release', domid, false, (h, done) => {
      h.lib.xs_release_domain.async(h.ptr, domid, done);
    }, (_h, ok, errno) => {
      if (!ok) throw failure('release', undefined, errno);
    });
  }

  private domainCall<T>(op: string, domid: number, readOnly: boolean,
    start: (h: NativeHandle, done: (err: unknown, res: unknown) => void) => void,
    finish: (h: NativeHandle, res: unknown, errno: number) => T): Promise<T> {
    let h: NativeHandle;
    try {
      checkDomid(op, domid);
      this.checkUsable(op);
      h = this.handle;
    } catch (err) {
      return Promise.reject(err);
    }
    return h.call(op, undefined, readOnly, (_p, done) => start(h, done), (res, errno) => finish(h, res, errno));
  }

  /**
   * Runs `fn` in a transaction and commits. When the commit (or an operation) answers EAGAIN
   * because another writer touched the same nodes, the whole function runs again, up to
   * `maxRetries` more times; then the EAGAIN error is thrown. If `fn` throws, the transaction
   * is aborted and the error rethrown. `fn` must only touch xenstore through `tx` and must be
   * safe to run more than once.
   */
  async transaction<T>(fn: (tx: XenStoreTransaction, attempt: number) => Promise<T>,
    options: TransactionOptions = {}): Promise<T> {
    const maxRetries = options.maxRetries ?? 10;
    for (let attempt = 0; ; attempt++) {
      const h = this.handle;
      this.checkUsable('transaction_start');
      const id = await h.call('transaction_start', undefined, false, (ptr, done) => {
        h.lib.xs_transaction_start.async(ptr, done);
      }, (res, errno) => {
        if (res === 0) throw failure('transaction_start', undefined, errno);
        return res as number;
      });
      const tx = new XenStoreTransaction(h, id);
      let result: T;
      try {
        result = await fn(tx, attempt);
      } catch (err) {
        tx.finish();
        await this.endTransaction(h, id, true).catch(() => undefined);
        if (err instanceof XenStoreError && err.code === 'EAGAIN' && attempt < maxRetries) {
          await backoff(attempt);
          continue;
        }
        throw err;
      }
      tx.finish();
      try {
        await this.endTransaction(h, id, false);
        return result;
      } catch (err) {
        if (err instanceof XenStoreError && err.code === 'EAGAIN') {
          if (attempt < maxRetries) {
            await backoff(attempt);
            continue;
          }
          throw new XenStoreError('EAGAIN', err.errno, 'transaction', undefined, false,
            `conflicting commit; gave up after ${attempt + 1} attempts`);
        }
        throw err;
      }
    }
  }

  private endTransaction(h: NativeHandle, id: number, abort: boolean): Promise<void> {
    return h.call('transaction_end', undefined, false, (ptr, done) => {
      h.lib.xs_transaction_end.async(ptr, id, abort, done);
    }, (ok, errno) => {
      if (!ok) throw failure('transaction_end', undefined, errno);
    });
  }

  /**
   * Watches a node (or '@introduceDomain' / '@releaseDomain'). xenstored fires it once right
   * away, then on every change at or below the path. `token` defaults to a unique one; tokens
   * must be unique among this XenStore's watches. With `{ value: true }` and the event shim, each
   * event carries the changed node's value as read right after the event (WatchEvent.value).
   */
  async watch(path: string, token?: string, options: WatchOptions = {}): Promise<Watch> {
    checkString('watch', 'path', path, path);
    const tok = token ?? `xenballoond-${++this.tokenSeq}`;
    checkString('watch', 'token', tok, path);
    if (tok.startsWith(VALUE_TOKEN_PREFIX)) throw invalid('watch', path, 'token starts with a reserved prefix');
    this.checkUsable('watch', path);
    if (this.watches.has(tok)) {
      throw new XenStoreError('EEXIST', errnoValue('EEXIST'), 'watch', path, false, `token '${tok}' is in use`);
    }
    const nativeToken = options.value === true && this.opts.shim !== undefined ? VALUE_TOKEN_PREFIX + tok : tok;
    const w = new Watch(path, tok, (x) => this.unwatch(x), this.opts.watchQueueLimit, nativeToken);
    // Registered before the request: the first event can be drained before the reply arrives.
    this.watches.set(tok, w);
    try {
      await this.registerWatch(this.handle, w);
    } catch (err) {
      this.watches.delete(tok);
      w.end();
      throw err;
    }
    return w;
  }

  private registerWatch(h: NativeHandle, w: Watch): Promise<void> {
    h.enableWatches();
    return h.call('watch', w.path, false, (ptr, done) => {
      h.lib.xs_watch.async(ptr, w.path, w.nativeToken, done);
    }, (ok, errno) => {
      if (!ok) throw failure('watch', w.path, errno);
    });
  }

  private async unwatch(w: Watch): Promise<void> {
    if (this.watches.get(w.token) !== w) return;
    this.watches.delete(w.token);
    w.end();
    const h = this.handle;
    if (!h.isOpen) return; // the watch died with the connection
    await h.call('unwatch', w.path, false, (ptr, done) => {
      h.lib.xs_unwatch.async(ptr, w.path, w.nativeToken, done);
    }, (ok, errno) => {
      if (!ok && errnoName(errno) !== 'ENOENT') throw failure('unwatch', w.path, errno);
    });
  }

  private dispatch(path: string, nativeToken: string, value: Buffer | null | undefined): void {
    const token = nativeToken.startsWith(VALUE_TOKEN_PREFIX) ? nativeToken.slice(VALUE_TOKEN_PREFIX.length) : nativeToken;
    const w = this.watches.get(token);
    if (!w || w.nativeToken !== nativeToken) return; // a late event for a watch already removed
    const ev: WatchEvent = value === undefined ? { path, token } : { path, token, value };
    this.emit('watch', ev);
    w.deliver(ev);
  }

  private lost(h: NativeHandle, err: XenStoreError): void {
    if (h !== this.handle || this.closed) return;
    this.emit('disconnect', err);
  }

  private checkUsable(op: string, path?: string): void {
    if (this.closed) throw this.handle.notConnected(op, path);
    if (!this.handle.isOpen) throw this.handle.notConnected(op, path);
  }

  /**
   * Opens a new connection, registers every active watch on it (each fires once more) and
   * retires the old one. Rejects (and stays disconnected) if the new connection or a watch
   * registration fails; call it again later.
   */
  reconnect(): Promise<void> {
    if (this.closed) return Promise.reject(this.handle.notConnected('reconnect', undefined));
    this.reconnecting ??= this.doReconnect().finally(() => {
      this.reconnecting = undefined;
    });
    return this.reconnecting;
  }

  private async doReconnect(): Promise<void> {
    const ref: { h?: NativeHandle } = {};
    const fh = await openHandle(this.socketPath, this.opts, {
      onWatchEvent: (path, token, value) => this.dispatch(path, token, value),
      onLost: (err) => {
        if (ref.h) this.lost(ref.h, err);
      },
    });
    ref.h = fh;
    try {
      if (this.watches.size > 0) {
        // Registered in order, with at most a few requests queued at a time.
        for (const w of [...this.watches.values()]) {
          await this.registerWatch(fh, w);
          if (this.watches.get(w.token) !== w) {
            // Unwatched while we were registering it: take it back off the new connection.
            await fh.call('unwatch', w.path, false, (ptr, done) => fh.lib.xs_unwatch.async(ptr, w.path, w.nativeToken, done),
              () => undefined);
          }
        }
      }
    } catch (err) {
      void fh.close();
      throw err;
    }
    if (this.closed) {
      await fh.close();
      throw this.handle.notConnected('reconnect', undefined);
    }
    const old = this.handle;
    this.handle = fh;
    void old.close();
    this.emit('reconnect');
  }

  /**
   * Closes the connection: queued calls fail with ENOTCONN, calls in flight finish (up to the
   * timeout), watches end, then xs_close runs on a worker thread. A handle whose calls never
   * come back is abandoned rather than waited on. Never throws.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const w of this.watches.values()) w.end();
    this.watches.clear();
    await this.reconnecting?.catch(() => undefined);
    await this.handle.close();
  }
}

/**
 * koffi's async calls run on libuv's worker pool (UV_THREADPOOL_SIZE, default 4), shared with
 * fs, dns and crypto. The watch waiter parks one worker; leave at least one more for the rest
 * of Node.
 */
function maxInFlightForPool(): number {
  return Math.max(1, threadPoolSize() - 2);
}

/** libuv's worker pool size as libuv reads it (at first use, from the environment). */
function threadPoolSize(): number {
  const n = Number(process.env.UV_THREADPOOL_SIZE);
  return Number.isInteger(n) && n > 0 ? Math.min(n, 1024) : 4;
}

function backoff(attempt: number): Promise<void> {
  if (attempt === 0) return Promise.resolve();
  // Conflicts come from other writers of the same nodes: spread the retries a little.
  const ms = Math.random() * Math.min(50, 2 ** attempt);
  return new Promise((resolve) => setTimeout(resolve, ms));
}
