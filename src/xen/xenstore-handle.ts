/**
 * One libxenstore handle (`struct xs_handle *`) and the rules for touching it safely from Node:
 *
 * - Every call that talks to xenstored runs through koffi's async form on a libuv worker thread
 *   and settles within `timeoutMs`. A call that times out marks the handle lost: libxenstore
 *   serialises requests per handle, so everything behind a stuck request would be stuck too.
 * - Calls are issued in program order. Read-only calls may overlap each other (up to
 *   `maxInFlight`, hiding the worker-thread round trip); a mutating call waits until nothing is
 *   in flight and runs alone, so a write is never overtaken by a later read or write.
 * - Watch events: a worker thread waits in poll() on xs_fileno() plus a wake-up pipe we own, with
 *   a liveness timeout; the main thread then drains xs_check_watch() until EAGAIN. The watch pipe
 *   is never read by us (libxenstore reads it under its own mutex).
 * - xs_close() is only called when no call (poll included) is in flight. A handle whose calls do
 *   not come back is first unstuck (shutdown() of its socket, after checking the fd is still the
 *   socket we opened), then, if that fails, abandoned: never closed, never waited on forever.
 */
import { readlinkSync } from 'node:fs';
import {
  decodeStringArray, errnoName, errnoValue, handleSocketFd, lastErrno, loadLibC, loadLibXenstore,
  O_CLOEXEC, O_NONBLOCK, POLLIN, SHUT_RDWR,
  type LibC, type LibXenstore, type PollFd, type Ptr,
} from './xenstore-ffi.js';
import { XenStoreError } from './xenstore-error.js';
import { decodeShimRecords, SHIM_BUFFER_BYTES, SHIM_MORE, SHIM_WOKEN, VALUE_TOKEN_PREFIX, type LibShim } from './xenstore-shim.js';

export interface HandleOptions {
  /** Every call settles within this many ms (default 10 000). */
  timeoutMs: number;
  /** Read-only calls allowed in flight at once on this handle (default 2, minimum 1). */
  maxInFlight: number;
  /** How often the watch waiter wakes to check the connection is alive (default 1000 ms). */
  livenessMs: number;
  /** libxenstore to load (default 'libxenstore.so.4'). */
  library: string;
  /** The watch event shim (xenstore-shim.ts), loaded; without it the waiter is libc's poll. */
  shim?: LibShim;
}

export interface HandleEvents {
  /**
   * A watch fired: path is the node that changed, token the watch's (native) token; `value` is
   * the node's value read right after (null: gone) when the shim read it, else undefined.
   */
  onWatchEvent(path: string, token: string, value?: Buffer | null): void;
  /** The connection is gone (socket error, xenstored died, or a call timed out). Called once. */
  onLost(err: XenStoreError): void;
}

type State = 'open' | 'lost' | 'closing' | 'closed';

interface Call {
  op: string;
  path: string | undefined;
  readOnly: boolean;
  deadline: number;
  issued: boolean;
  settled: boolean;
  /** Issues the koffi async call; `done` receives its raw result. */
  start(h: Ptr, done: (err: unknown, res: unknown) => void): void;
  /** Turns the raw result into a value, freeing native memory; throws XenStoreError on failure. */
  finish(res: unknown, errno: number): unknown;
  resolve(v: unknown): void;
  reject(e: unknown): void;
}

/** Handles given up on with calls still blocked in libxenstore (each holds worker threads). */
const abandonedHandles = new Set<NativeHandle>();

/** libuv worker threads blocked in native calls of abandoned handles, across all handles. */
export function stuckNativeCalls(): number {
  let n = 0;
  for (const h of abandonedHandles) n += h.inFlight;
  return n;
}

/** Socket identity as /proc shows it ("socket:[inode]"), or undefined when unavailable. */
function fdIdentity(fd: number): string | undefined {
  if (fd < 0) return undefined;
  try {
    return readlinkSync(`/proc/self/fd/${fd}`);
  } catch {
    return undefined;
  }
}

/** Serialises opens: XENSTORED_PATH is process-global and read by xs_open on a worker. */
let openChain: Promise<void> = Promise.resolve();

/**
 * Opens a handle. `socketPath` (when given) is passed to libxenstore through XENSTORED_PATH for
 * the duration of the open only; otherwise libxenstore's defaults apply (XENSTORED_PATH from the
 * environment, then /var/run/xenstored/socket, then /dev/xen/xenbus).
 */
export function openHandle(socketPath: string | undefined, opts: HandleOptions, events: HandleEvents): Promise<NativeHandle> {
  const described = socketPath ?? process.env.XENSTORED_PATH ?? 'default socket';
  let lib: LibXenstore;
  let libc: LibC;
  try {
    lib = loadLibXenstore(opts.library);
    libc = loadLibC();
  } catch (err) {
    return Promise.reject(new XenStoreError('ENOENT', errnoValue('ENOENT'), 'open', described, false,
      `cannot load ${opts.library}: ${(err as Error).message}; install Debian package libxenstore4`));
  }
  if (socketPath !== undefined && socketPath.includes('\0')) {
    return Promise.reject(new XenStoreError('EINVAL', errnoValue('EINVAL'), 'open', described));
  }
  return new Promise<NativeHandle>((resolve, reject) => {
    // The deadline runs from the call, so waiting behind a stuck open counts too.
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      reject(new XenStoreError('ETIMEDOUT', errnoValue('ETIMEDOUT'), 'open', described, false,
        `no connection within ${opts.timeoutMs} ms`));
    }, opts.timeoutMs);
    // The next open may only touch XENSTORED_PATH once this one's xs_open has returned.
    const previous = openChain;
    let release = () => {};
    openChain = new Promise<void>((r) => (release = r));
    void previous.then(() => {
      if (timedOut) return release();
      const saved = process.env.XENSTORED_PATH;
      if (socketPath !== undefined) process.env.XENSTORED_PATH = socketPath;
      lib.xs_open.async(0, (err, h) => {
        const errno = lastErrno();
        if (socketPath !== undefined) {
          if (saved === undefined) delete process.env.XENSTORED_PATH;
          else process.env.XENSTORED_PATH = saved;
        }
        release();
        clearTimeout(timer);
        if (timedOut) {
          // Too late for the caller; the handle must still be closed (on a worker).
          if (h !== null && !err) lib.xs_close.async(h, () => undefined);
          return;
        }
        if (err) return reject(err);
        if (h === null) {
          return reject(new XenStoreError(errnoName(errno), errno, 'open', described, false,
            'cannot connect to xenstored'));
        }
        resolve(new NativeHandle(h, lib, libc, opts, events, described));
      });
    });
  });
}

export class NativeHandle {
  private state: State = 'open';
  private readonly queue: Call[] = [];
  private readonly issued = new Set<Call>();
  private pollInFlight = false;
  private watchFd = -1;
  private wakeFds: [number, number] | undefined;
  private sweeper: NodeJS.Timeout | undefined;
  private readonly socketFd: number;
  private readonly socketId: string | undefined;
  private closeWaiters: (() => void)[] = [];
  /** The shim's output, reused by every wait (one wait runs at a time). */
  private shimBuf: Buffer | undefined;
  private readonly shimUsed = [0];
  private readonly shimFlags = [0];
  private abandoned = false;

  constructor(
    /** the struct xs_handle *; only ever passed to libxenstore calls made through call(). */
    readonly ptr: Ptr,
    readonly lib: LibXenstore,
    readonly libc: LibC,
    private readonly opts: HandleOptions,
    private readonly events: HandleEvents,
    readonly describedPath: string,
  ) {
    this.socketFd = handleSocketFd(ptr);
    this.socketId = fdIdentity(this.socketFd);
  }

  get isOpen(): boolean {
    return this.state === 'open';
  }

  /** Native calls (poll included) currently running on worker threads. */
  get inFlight(): number {
    return this.issued.size + (this.pollInFlight ? 1 : 0);
  }

  /**
   * Runs one libxenstore call. `start` issues it (koffi async) and `finish` converts the raw
   * result (it always runs, even after a timeout, so native memory is freed exactly once).
   */
  call<T>(op: string, path: string | undefined, readOnly: boolean,
    start: (h: Ptr, done: (err: unknown, res: unknown) => void) => void,
    finish: (res: unknown, errno: number) => T): Promise<T> {
    if (this.state !== 'open') return Promise.reject(this.notConnected(op, path));
    return new Promise<T>((resolve, reject) => {
      this.queue.push({
        op, path, readOnly, start, finish, deadline: performance.now() + this.opts.timeoutMs,
        issued: false, settled: false, resolve: resolve as (v: unknown) => void, reject,
      });
      this.pump();
      this.armSweeper();
    });
  }

  /** The error for a call made while the handle cannot take calls. */
  notConnected(op: string, path: string | undefined): XenStoreError {
    const why = this.state === 'lost' ? 'connection to xenstored lost; reconnect()' : 'handle closed';
    return new XenStoreError('ENOTCONN', errnoValue('ENOTCONN'), op, path, this.state === 'lost', why);
  }

  private pump(): void {
    while (this.state === 'open' && this.queue.length > 0) {
      const next = this.queue[0] as Call;
      if (this.issued.size > 0) {
        if (!next.readOnly || this.issued.size >= this.opts.maxInFlight) return;
        for (const c of this.issued) if (!c.readOnly) return;
      }
      this.queue.shift();
      this.issue(next);
    }
  }

  private issue(c: Call): void {
    c.issued = true;
    this.issued.add(c);
    try {
      c.start(this.ptr, (err, res) => this.complete(c, err, res));
    } catch (err) {
      // koffi refused the arguments or its async queue is full: nothing was sent.
      this.issued.delete(c);
      this.settle(c, undefined, this.ffiError(c, err));
    }
  }

  private complete(c: Call, err: unknown, res: unknown): void {
    const errno = lastErrno(); // first: anything native below may change it
    this.issued.delete(c);
    let value: unknown;
    let failure: unknown = err ? this.ffiError(c, err) : undefined;
    if (!err) {
      try {
        value = c.finish(res, errno);
      } catch (e) {
        failure = e;
      }
    }
    if (failure instanceof XenStoreError && this.state === 'open' && !this.probeAlive()) {
      failure = new XenStoreError(failure.code, failure.errno, failure.op, failure.path, true,
        'connection to xenstored lost');
      this.markLost(failure as XenStoreError);
    }
    this.settle(c, value, failure);
    this.pump();
    this.maybeFinalize();
  }

  /** An error koffi itself raised (not libxenstore), as the binding's typed error. */
  private ffiError(c: Call, err: unknown): XenStoreError {
    return new XenStoreError('EIO', errnoValue('EIO'), c.op, c.path, false, `koffi: ${(err as Error)?.message ?? String(err)}`);
  }

  private settle(c: Call, value: unknown, err: unknown): void {
    if (c.settled) return;
    c.settled = true;
    if (err !== undefined) c.reject(err);
    else c.resolve(value);
  }

  private armSweeper(): void {
    if (this.sweeper) return;
    const period = Math.max(10, Math.min(250, Math.floor(this.opts.timeoutMs / 8)));
    this.sweeper = setInterval(() => this.sweep(), period);
    this.sweeper.unref();
  }

  private sweep(): void {
    const now = performance.now();
    for (const c of this.issued) {
      if (!c.settled && c.deadline <= now) {
        // Sent and unanswered: everything behind it on this handle would wait forever too.
        const err = this.timeoutError(c);
        this.settle(c, undefined, err);
        this.markLost(err);
        break;
      }
    }
    for (let i = 0; i < this.queue.length;) {
      const c = this.queue[i] as Call;
      if (c.deadline <= now) {
        // Never sent: time it out without judging the connection.
        this.queue.splice(i, 1);
        this.settle(c, undefined, this.timeoutError(c));
      } else i++;
    }
    if (this.queue.length === 0 && this.issued.size === 0 && this.sweeper) {
      clearInterval(this.sweeper);
      this.sweeper = undefined;
    }
  }

  private timeoutError(c: Call): XenStoreError {
    return new XenStoreError('ETIMEDOUT', errnoValue('ETIMEDOUT'), c.op, c.path, c.issued,
      `no reply within ${this.opts.timeoutMs} ms`);
  }

  // ---- watches -------------------------------------------------------------------------------

  /** Starts the watch waiter (idempotent). Must run before the first xs_watch on this handle. */
  enableWatches(): void {
    if (this.state !== 'open' || this.wakeFds) return;
    const fds = [-1, -1];
    if (this.libc.pipe2(fds, O_CLOEXEC | O_NONBLOCK) !== 0) {
      const errno = lastErrno();
      throw new XenStoreError(errnoName(errno), errno, 'watch', undefined, false, 'pipe2 for the watch waiter');
    }
    this.wakeFds = [fds[0] as number, fds[1] as number];
    // xs_fileno creates libxenstore's watch pipe on first use; it never blocks.
    this.watchFd = this.lib.xs_fileno(this.ptr);
    if (this.watchFd < 0) {
      const errno = lastErrno();
      throw new XenStoreError(errnoName(errno), errno, 'watch', undefined, false, 'xs_fileno');
    }
    this.startPoll();
  }

  private startPoll(): void {
    if (this.state !== 'open' || !this.wakeFds || this.pollInFlight) return;
    if (this.opts.shim) {
      this.startShimWait(this.opts.shim, this.wakeFds[0]);
      return;
    }
    const fds: PollFd[] = [
      { fd: this.watchFd, events: POLLIN, revents: 0 },
      { fd: this.wakeFds[0], events: POLLIN, revents: 0 },
    ];
    this.pollInFlight = true;
    try {
      this.libc.poll.async(fds, 2, this.opts.livenessMs, () => {
        this.pollInFlight = false;
        if (((fds[1] as PollFd).revents & POLLIN) !== 0) this.drainWakePipe();
        if (this.state === 'open') {
          // Timeout or readable: either way drain (and so check the connection is alive).
          const more = this.drainWatches(1024);
          if (this.state === 'open') {
            if (more) setImmediate(() => this.startPoll());
            else this.startPoll();
          }
        }
        this.maybeFinalize();
      });
    } catch (err) {
      this.waiterFailedToStart(err);
    }
  }

  /**
   * The waiter through the shim: one worker call polls, dequeues the events and reads the values
   * of "value" watches; the main thread only decodes and delivers the batch, then re-arms.
   */
  private startShimWait(shim: LibShim, wakeFd: number): void {
    const buf = (this.shimBuf ??= Buffer.alloc(SHIM_BUFFER_BYTES));
    this.pollInFlight = true;
    try {
      shim.xbd_wait_events.async(this.ptr, this.watchFd, wakeFd, this.opts.livenessMs, VALUE_TOKEN_PREFIX,
        buf, buf.length, this.shimUsed, this.shimFlags, (err, count) => {
          const errno = lastErrno();
          this.pollInFlight = false;
          const flags = this.shimFlags[0] ?? 0;
          if ((flags & SHIM_WOKEN) !== 0) this.drainWakePipe();
          if (this.state === 'open') {
            if (err || count < 0) {
              const why = err ? `koffi: ${(err as Error).message}` : `xbd_wait_events: ${errnoName(errno)}`;
              this.markLost(new XenStoreError('ECONNRESET', errnoValue('ECONNRESET'), 'watch', undefined, true,
                `connection to xenstored lost (${why})`));
            } else {
              for (const ev of decodeShimRecords(buf, this.shimUsed[0] ?? 0, count)) {
                if (this.state !== 'open') break;
                this.events.onWatchEvent(ev.path, ev.token, ev.value);
              }
              if (this.state === 'open') {
                if ((flags & SHIM_MORE) !== 0) setImmediate(() => this.startPoll());
                else this.startPoll();
              }
            }
          }
          this.maybeFinalize();
        });
    } catch (err) {
      this.waiterFailedToStart(err);
    }
  }

  /** Either waiter (libc poll or the shim) could not even be queued: the handle is unusable. */
  private waiterFailedToStart(err: unknown): void {
    this.pollInFlight = false;
    this.markLost(new XenStoreError('EAGAIN', errnoValue('EAGAIN'), 'watch', undefined, false,
      `cannot start the watch waiter: ${(err as Error).message}`));
  }

  private wake(): void {
    if (!this.wakeFds) return;
    this.libc.write(this.wakeFds[1], Buffer.from([1]), 1); // non-blocking; a full pipe is awake anyway
  }

  private drainWakePipe(): void {
    if (!this.wakeFds) return;
    const buf = Buffer.alloc(64);
    while (this.libc.read(this.wakeFds[0], buf, buf.length) > 0) { /* drain */ }
  }

  /**
   * Dequeues up to `limit` watch events with xs_check_watch and delivers them. Returns true when
   * the limit was hit (more may be queued). Marks the handle lost when libxenstore reports the
   * connection dead (NULL with EINVAL).
   */
  private drainWatches(limit: number): boolean {
    for (let n = 0; n < limit; n++) {
      if (this.state !== 'open') return false;
      const ev = this.lib.xs_check_watch(this.ptr);
      if (ev === null) {
        const errno = lastErrno();
        if (errnoName(errno) !== 'EAGAIN') {
          this.markLost(new XenStoreError('ECONNRESET', errnoValue('ECONNRESET'), 'watch', undefined, true,
            `connection to xenstored lost (xs_check_watch: ${errnoName(errno)})`));
        }
        return false;
      }
      let path: string;
      let token: string;
      try {
        [path = '', token = ''] = decodeStringArray(ev, 2);
      } finally {
        this.libc.free(ev);
      }
      this.events.onWatchEvent(path, token);
    }
    return true;
  }

  /** Whether the connection is still usable (see probeAlive); marks it lost if not. */
  checkAlive(): boolean {
    return this.state === 'open' && this.probeAlive();
  }

  /**
   * Is the connection still usable? xs_check_watch returns EAGAIN on a live handle with nothing
   * queued and EINVAL once libxenstore has dropped the socket; events it dequeues are delivered.
   */
  private probeAlive(): boolean {
    if (this.opts.shim && this.pollInFlight) {
      // The shim's worker dequeues events now: dequeuing here too could reorder them. libxenstore
      // marks a dead connection with fd -1 (what makes xs_check_watch answer EINVAL).
      if (handleSocketFd(this.ptr) < 0) {
        this.markLost(new XenStoreError('ECONNRESET', errnoValue('ECONNRESET'), 'watch', undefined, true,
          'connection to xenstored lost'));
      }
      return this.state === 'open';
    }
    while (this.state === 'open' && this.drainWatches(1024)) { /* deliver everything queued */ }
    return this.state === 'open';
  }

  // ---- losing and closing --------------------------------------------------------------------

  /** The connection is unusable: fail everything pending, stop the waiter, report once. */
  private markLost(err: XenStoreError): void {
    if (this.state !== 'open') return;
    this.state = 'lost';
    this.failPending();
    this.wake();
    if (err.code === 'ETIMEDOUT') this.unstick();
    this.events.onLost(err);
    this.maybeFinalize();
  }

  /** Settles every pending call; calls still running native code are only waited for now. */
  private failPending(): void {
    for (const c of this.queue.splice(0)) this.settle(c, undefined, this.notConnected(c.op, c.path));
    for (const c of this.issued) this.settle(c, undefined, this.notConnected(c.op, c.path));
    if (this.sweeper) clearInterval(this.sweeper);
    this.sweeper = undefined;
  }

  /**
   * Makes blocked libxenstore calls return by shutting the socket down, but only if the fd in
   * the handle is still the very socket we opened (an fd number can be reused once closed).
   */
  private unstick(): void {
    if (this.socketId === undefined) return; // not a socket we can identify (e.g. /dev/xen/xenbus)
    const fd = handleSocketFd(this.ptr);
    if (fd !== this.socketFd || fdIdentity(fd) !== this.socketId) return;
    this.libc.shutdown(fd, SHUT_RDWR);
  }

  /**
   * Closes the handle: waits for in-flight calls (up to the timeout), then xs_close on a worker.
   * Calls still stuck after that are unstuck, and failing that the handle is abandoned.
   * Never throws, never hangs longer than about twice the timeout.
   */
  async close(): Promise<void> {
    if (this.state === 'open') {
      this.state = 'closing';
      for (const c of this.queue.splice(0)) this.settle(c, undefined, this.notConnected(c.op, c.path));
      this.wake();
    }
    if (this.state === 'closed' || this.abandoned) return;
    if (this.inFlight > 0) {
      if (!(await this.waitIdle(this.opts.timeoutMs))) {
        this.failPending();
        this.unstick();
        if (!(await this.waitIdle(Math.min(this.opts.timeoutMs, 2000)))) {
          this.abandon();
          return;
        }
      }
    }
    await this.finalize();
  }

  private waitIdle(ms: number): Promise<boolean> {
    if (this.inFlight === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.closeWaiters = this.closeWaiters.filter((w) => w !== done);
        resolve(false);
      }, ms);
      const done = () => {
        clearTimeout(timer);
        resolve(true);
      };
      this.closeWaiters.push(done);
    });
  }

  /** Stops waiting; if the stuck calls ever return, maybeFinalize() still closes the handle. */
  private abandon(): void {
    this.abandoned = true;
    abandonedHandles.add(this);
  }

  private maybeFinalize(): void {
    if (this.state === 'open' || this.inFlight > 0) return;
    const waiters = this.closeWaiters.splice(0);
    for (const w of waiters) w();
    if (this.state === 'lost' || this.abandoned) void this.finalize();
  }

  private finalizing: Promise<void> | undefined;

  private finalize(): Promise<void> {
    if (this.finalizing) return this.finalizing;
    abandonedHandles.delete(this);
    this.finalizing = new Promise<void>((resolve) => {
      if (this.sweeper) clearInterval(this.sweeper);
      this.sweeper = undefined;
      const closeWake = () => {
        if (this.wakeFds) {
          this.libc.close(this.wakeFds[0]);
          this.libc.close(this.wakeFds[1]);
          this.wakeFds = undefined;
        }
      };
      // xs_close joins libxenstore's reader thread: do it on a worker, never on the main thread.
      this.lib.xs_close.async(this.ptr, () => {
        this.state = 'closed';
        closeWake();
        resolve();
      });
    });
    return this.finalizing;
  }
}

