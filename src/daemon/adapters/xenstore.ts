/**
 * The daemon's view of xenstore (ports.DaemonStore) over the libxenstore binding
 * (src/xen/xenstore.ts): missing nodes read as null, and a lost connection is re-established
 * in the background with backoff (the binding re-registers every watch when it reconnects).
 */
import { defaultShimPath, isNotFound, XenStore, type Watch, type XenStoreError } from '../../xen/xenstore.js';
import type { XsPermission } from '../../xen/xenstore-types.js';
import type { DaemonStore, StoreEvent, StoreTx } from '../ports.js';

const RECONNECT_MIN_MS = 100;
const RECONNECT_MAX_MS = 5_000;

export class XenStoreAdapter implements DaemonStore {
  private readonly listeners = new Set<(ev: StoreEvent) => void>();
  private readonly watches = new Map<string, Watch>();
  private reconnectTimer: NodeJS.Timeout | null = null;
  private closed = false;

  private constructor(readonly xs: XenStore) {
    xs.on('watch', (ev) => this.emit(ev.value === undefined ? { kind: 'watch', path: ev.path, token: ev.token }
      : { kind: 'watch', path: ev.path, token: ev.token, value: ev.value === null ? null : ev.value.toString('utf8') }));
    xs.on('disconnect', (err: XenStoreError) => {
      this.emit({ kind: 'disconnected', error: err.message });
      this.scheduleReconnect(RECONNECT_MIN_MS);
    });
    xs.on('reconnect', () => this.emit({ kind: 'reconnected' }));
  }

  /**
   * `eventShim`: the watch event shim to use (default: build/lib/libxbdshim.so when `make build`
   * made it; without it events come without values and the observer reads the keys).
   */
  static async open(path: string | undefined, timeoutMs = 10_000, eventShim = defaultShimPath()): Promise<XenStoreAdapter> {
    const xs = await XenStore.open({ ...(path === undefined ? {} : { path }), timeoutMs,
      ...(eventShim === undefined ? {} : { eventShim }) });
    return new XenStoreAdapter(xs);
  }

  private scheduleReconnect(delayMs: number): void {
    if (this.closed || this.reconnectTimer) return;
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      this.xs.reconnect().catch(() => this.scheduleReconnect(Math.min(RECONNECT_MAX_MS, delayMs * 2)));
    }, delayMs);
  }

  private emit(ev: StoreEvent): void {
    for (const l of this.listeners) l(ev);
  }

  get connected(): boolean {
    return this.xs.state === 'connected';
  }

  async read(path: string): Promise<string | null> {
    try {
      return await this.xs.readString(path);
    } catch (err) {
      if (isNotFound(err)) return null;
      throw err;
    }
  }

  async directory(path: string): Promise<string[] | null> {
    try {
      return await this.xs.directory(path);
    } catch (err) {
      if (isNotFound(err)) return null;
      throw err;
    }
  }

  transaction<T>(fn: (tx: StoreTx) => Promise<T>): Promise<T> {
    return this.xs.transaction((t) => fn({
      read: async (p) => {
        try {
          return await t.readString(p);
        } catch (err) {
          if (isNotFound(err)) return null;
          throw err;
        }
      },
      write: (p, v) => t.write(p, v),
    }));
  }

  async watch(path: string, token: string, options: { value?: boolean } = {}): Promise<void> {
    const w = await this.xs.watch(path, token, options);
    // Events reach us through the XenStore's 'watch' event; a listener here keeps the Watch
    // from also buffering them for an iterator nobody runs.
    w.on('event', () => undefined);
    this.watches.set(token, w);
  }

  async unwatch(_path: string, token: string): Promise<void> {
    const w = this.watches.get(token);
    this.watches.delete(token);
    await w?.unwatch();
  }

  subscribe(listener: (ev: StoreEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  mkdir(path: string): Promise<void> {
    return this.xs.mkdir(path);
  }

  getPermissions(path: string): Promise<XsPermission[]> {
    return this.xs.getPermissions(path);
  }

  setPermissions(path: string, perms: XsPermission[]): Promise<void> {
    return this.xs.setPermissions(path, perms);
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.listeners.clear();
    await this.xs.close();
  }
}
