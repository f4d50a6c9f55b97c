/**
 * The protocol engine: one instance per server. It owns the store, the watches, the domains'
 * introduced state and every connection's watches and transactions, and turns each request frame
 * into a reply (and watch events) on the connection it came from. Transport-free: a socket, an
 * in-process session or a test drives it through the Connection class.
 */
import pino, { type Logger } from 'pino';
import {
  countNuls,
  decodeStrings,
  DOMID_FIRST_RESERVED,
  DOMID_SELF,
  onlyArg,
  splitPathValue,
  XS_PAYLOAD_MAX,
  XS_REL_PATH_MAX,
  XsType,
  xsTypeName,
  type Frame,
  type XsErrorName,
} from '../../wire/index.js';
import { XsError } from './errors.js';
import { DEFAULT_LIMITS, type XenstoredLimits } from './limits.js';
import * as ops from './operations.js';
import { canonicalize, homePath, isValidNodePath } from './paths.js';
import { accessFor, formatPerm, parsePerm, PERM_OWNER, PERM_READ, PERM_WRITE, type Caller, type Perm } from './perms.js';
import { Store } from './store.js';
import { Transaction } from './transaction.js';
import { send, watchKey, WatchRegistry, type EventSource, type Watch, type WatchOwner } from './watches.js';

/**
 * A client connection as the core sees it. Subclasses carry the bytes (socket, in-process) and
 * decide how replies and events are queued; the core keeps the protocol state here.
 */
export abstract class Connection implements WatchOwner, Caller {
  readonly watches = new Map<string, Watch>();
  readonly transactions = new Map<number, Transaction>();
  nextTransactionId = 1;
  closed = false;

  constructor(
    readonly domid: number,
    readonly privileged: boolean,
  ) {}

  /** Queue a reply frame. */
  abstract deliverReply(type: number, reqId: number, txId: number, payload: Buffer): void;
  /** Queue a WATCH_EVENT (payload `path|token|`). Events with the same key may be merged. */
  abstract deliverEvent(payload: Buffer, coalesceKey: string | undefined): void;
  /** Called once by the core when the connection is dropped (domain released, server closing). */
  protected abstract onDropped(reason: string): void;
  /** The server answers again after a stall (fault injection): pick up what waited. */
  resumed(): void {}

  /** @internal the core's hook into onDropped. */
  notifyDropped(reason: string): void {
    this.onDropped(reason);
  }
}

const OK = Buffer.from('OK\0', 'latin1');

/** Types only dom0 may send (XS_FLAG_PRIV in xenstored). */
const PRIVILEGED_ONLY: ReadonlySet<number> = new Set([
  XsType.CONTROL,
  XsType.INTRODUCE,
  XsType.RELEASE,
  XsType.IS_DOMAIN_INTRODUCED,
  XsType.RESUME,
  XsType.SET_TARGET,
]);

const SPECIAL_NAMES = ['@introduceDomain', '@releaseDomain'] as const;

interface Result {
  payload: Buffer;
  /** Runs after the reply is queued (WATCH's initial event follows its OK). */
  after?: () => void;
}

/** C's atoi: optional blanks and sign, then digits; stops at anything else; garbage is 0. */
export function cAtoi(s: string): number {
  const m = /^[ \t\n\v\f\r]*([+-]?)([0-9]*)/.exec(s);
  const digits = m?.[2] ?? '';
  if (digits === '') return 0;
  const n = Number(digits.slice(0, 12)) | 0;
  return m?.[1] === '-' ? -n : n;
}

export interface CoreOptions {
  limits?: Partial<XenstoredLimits>;
  logger?: Logger;
}

export interface CoreStats {
  nodes: number;
  connections: number;
  watches: number;
  introducedDomains: number[];
  requests: number;
}

export class XenstoreCore {
  readonly store = new Store();
  readonly limits: XenstoredLimits;
  readonly log: Logger;
  private readonly watches = new WatchRegistry();
  private readonly connections = new Set<Connection>();
  private readonly byDomain = new Map<number, Set<Connection>>();
  private readonly watchCounts = new Map<number, number>();
  private readonly introduced = new Set<number>();
  private readonly special = new Map<string, readonly Perm[]>(SPECIAL_NAMES.map((n) => [n, [{ id: 0, bits: 0 }]]));
  private requests = 0;
  /** Bytes each guest domain's open transactions hold (its transaction memory quota). */
  private readonly txBytes = new Map<number, number>();
  /**
   * While set, socket clients are neither read nor written (a hung xenstored, for fault
   * injection: `sim-host --inject xenstore-stall:…`); in-process sessions go on.
   */
  private stalledFlag = false;

  constructor(options: CoreOptions = {}) {
    this.limits = { ...DEFAULT_LIMITS, ...options.limits };
    this.log = options.logger ?? pino({ level: 'silent' });
  }

  stats(): CoreStats {
    return {
      nodes: this.store.size,
      connections: this.connections.size,
      watches: this.watches.size,
      introducedDomains: [...this.introduced].sort((a, b) => a - b),
      requests: this.requests,
    };
  }

  get stalled(): boolean {
    return this.stalledFlag;
  }

  /** Stops (true) or resumes (false) answering socket clients. */
  setStalled(on: boolean): void {
    if (this.stalledFlag === on) return;
    this.stalledFlag = on;
    if (!on) for (const c of [...this.connections]) c.resumed();
  }

  /** Open connections of a domain. */
  connectionsOf(domid: number): number {
    return this.byDomain.get(domid)?.size ?? 0;
  }

  /** Bytes the domain's open transactions hold. */
  transactionBytesOf(domid: number): number {
    return this.txBytes.get(domid) ?? 0;
  }

  private chargeTransaction(domid: number, delta: number): void {
    const now = (this.txBytes.get(domid) ?? 0) + delta;
    if (delta > 0 && now > this.limits.transactionBytesPerDomain) {
      throw new XsError('ENOMEM', 'transaction memory quota exceeded');
    }
    if (now <= 0) this.txBytes.delete(domid);
    else this.txBytes.set(domid, now);
  }

  /** Ends a transaction's hold on its domain's quota. */
  private releaseTransaction(conn: Connection, tx: Transaction): void {
    conn.transactions.delete(tx.id);
    if (!conn.privileged && tx.heldBytes) this.chargeTransaction(conn.domid, -tx.heldBytes);
  }

  attach(conn: Connection): void {
    this.connections.add(conn);
    let set = this.byDomain.get(conn.domid);
    if (!set) {
      set = new Set();
      this.byDomain.set(conn.domid, set);
    }
    set.add(conn);
  }

  /** Forgets a connection: its watches and open transactions go away. Idempotent. */
  detach(conn: Connection): void {
    if (conn.closed) return;
    conn.closed = true;
    this.clearWatchesAndTransactions(conn);
    this.connections.delete(conn);
    const set = this.byDomain.get(conn.domid);
    set?.delete(conn);
    if (set?.size === 0) this.byDomain.delete(conn.domid);
  }

  /** Detaches a connection and tells its transport to go away. */
  drop(conn: Connection, reason: string): void {
    if (conn.closed) return;
    this.detach(conn);
    conn.notifyDropped(reason);
  }

  /** Drops every connection (server shutdown). */
  dropAll(reason: string): void {
    for (const conn of [...this.connections]) this.drop(conn, reason);
  }

  isIntroduced(domid: number): boolean {
    return domid === 0 || this.introduced.has(domid);
  }

  /** Handles one request frame. Never throws: every failure becomes an ERROR reply. */
  handle(conn: Connection, frame: Frame): void {
    if (conn.closed) return;
    this.requests++;
    let result: Result;
    try {
      result = this.dispatch(conn, frame);
      if (result.payload.length > XS_PAYLOAD_MAX) throw new XsError('E2BIG', 'reply too large');
    } catch (err) {
      let code: XsErrorName = 'EIO';
      if (err instanceof XsError) code = err.code;
      else this.log.error({ err, type: frame.type, domid: conn.domid }, 'request failed unexpectedly');
      conn.deliverReply(XsType.ERROR, frame.reqId, frame.txId, Buffer.from(`${code}\0`, 'latin1'));
      return;
    }
    conn.deliverReply(frame.type, frame.reqId, frame.txId, result.payload);
    try {
      result.after?.();
    } catch (err) {
      this.log.error({ err, type: frame.type, domid: conn.domid }, 'follow-up of a request failed unexpectedly');
    }
  }

  private dispatch(conn: Connection, frame: Frame): Result {
    const { type, payload: p } = frame;
    const name = xsTypeName(type);
    if (name === undefined || name === 'WATCH_EVENT' || name === 'ERROR') {
      throw new XsError('ENOSYS', `unknown message type ${type}`);
    }
    if (PRIVILEGED_ONLY.has(type) && !conn.privileged) throw new XsError('EACCES');
    let tx: Transaction | undefined;
    if (type !== XsType.WATCH && type !== XsType.UNWATCH && frame.txId !== 0) {
      tx = conn.transactions.get(frame.txId);
      if (!tx) throw new XsError('ENOENT', `no transaction ${frame.txId}`);
    }
    const ctx: ops.OpContext = { view: tx ?? this.store, caller: conn, limits: this.limits, events: [] };
    switch (type) {
      case XsType.READ:
        return { payload: ops.read(ctx, onlyArg(p)) };
      case XsType.WRITE: {
        const pv = splitPathValue(p);
        if (!pv) throw new XsError('EINVAL');
        ops.write(ctx, pv.path, Buffer.from(pv.value));
        return this.changed(ctx, tx);
      }
      case XsType.MKDIR:
        ops.mkdir(ctx, onlyArg(p));
        return this.changed(ctx, tx);
      case XsType.RM:
        ops.rm(ctx, onlyArg(p));
        return this.changed(ctx, tx);
      case XsType.DIRECTORY:
        return { payload: ops.encodeChildren(ops.directory(ctx, onlyArg(p))) };
      case XsType.DIRECTORY_PART: {
        if (countNuls(p) !== 2) throw new XsError('EINVAL');
        const [path, off] = decodeStrings(p) as [string, string];
        // xenstored reads the offset as unsigned: a negative one lies past the end.
        const offset = cAtoi(off);
        return { payload: ops.directoryPart(ctx, path, offset < 0 ? Infinity : offset) };
      }
      case XsType.GET_PERMS:
        return { payload: Buffer.from(ops.getPerms(ctx, onlyArg(p)).map((x) => `${formatPerm(x)}\0`).join(''), 'latin1') };
      case XsType.SET_PERMS:
        return this.setPerms(conn, ctx, tx, p);
      case XsType.WATCH:
        return this.watch(conn, p);
      case XsType.UNWATCH:
        return this.unwatch(conn, p);
      case XsType.TRANSACTION_START:
        return this.transactionStart(conn, tx);
      case XsType.TRANSACTION_END:
        return this.transactionEnd(conn, tx, p);
      case XsType.GET_DOMAIN_PATH: {
        const arg = onlyArg(p);
        if (arg === undefined) throw new XsError('EINVAL');
        return { payload: Buffer.from(`${homePath(cAtoi(arg) >>> 0)}\0`, 'latin1') };
      }
      case XsType.IS_DOMAIN_INTRODUCED: {
        const arg = onlyArg(p);
        if (arg === undefined) throw new XsError('EINVAL');
        const domid = cAtoi(arg);
        return { payload: Buffer.from(domid === DOMID_SELF || this.isIntroduced(domid) ? 'T\0' : 'F\0', 'latin1') };
      }
      case XsType.INTRODUCE: {
        const args = decodeStrings(p);
        if (args.length < 3) throw new XsError('EINVAL');
        const domid = cAtoi(args[0]!);
        const port = cAtoi(args[2]!);
        if (port <= 0 || domid < 0 || domid >= DOMID_FIRST_RESERVED) throw new XsError('EINVAL');
        this.introduceDomain(domid);
        return { payload: OK };
      }
      case XsType.RELEASE: {
        const arg = onlyArg(p);
        if (arg === undefined) throw new XsError('EINVAL');
        const domid = cAtoi(arg);
        if (domid === 0) throw new XsError('EINVAL');
        if (!this.introduced.has(domid)) throw new XsError('ENOENT');
        return { payload: OK, after: () => this.releaseDomain(domid) };
      }
      case XsType.RESET_WATCHES:
        this.clearWatchesAndTransactions(conn);
        return { payload: OK };
      default:
        // CONTROL, RESUME, SET_TARGET: not implemented by this server.
        throw new XsError('ENOSYS', `${name} is not implemented`);
    }
  }

  /** Fires (or, in a transaction, queues) the events of a successful change and acks it. */
  private changed(ctx: ops.OpContext, tx: Transaction | undefined): Result {
    if (tx) tx.events.push(...ctx.events);
    else this.fire(ctx.events);
    return { payload: OK };
  }

  fire(events: readonly EventSource[]): void {
    for (const ev of events) this.watches.fire(ev, this.specialReadable);
  }

  private readonly specialReadable = (owner: WatchOwner, name: string): boolean => {
    const perms = this.special.get(name);
    return perms !== undefined && (accessFor(owner, perms) & PERM_READ) !== 0;
  };

  private setPerms(conn: Connection, ctx: ops.OpContext, tx: Transaction | undefined, p: Buffer): Result {
    const n = countNuls(p);
    if (n < 2) throw new XsError('EINVAL');
    const strings = decodeStrings(p);
    const path = strings[0]!;
    const permStrings = strings.slice(1, n);
    if (!conn.privileged && permStrings.length > this.limits.permsPerNode) throw new XsError('ENOSPC');
    const perms: Perm[] = [];
    for (const s of permStrings) {
      const perm = parsePerm(s);
      if (!perm) throw new XsError('EINVAL', `bad permission '${s}'`);
      perms.push(perm);
    }
    if (path.startsWith('@')) {
      const current = this.special.get(path);
      if (!current) throw new XsError('EINVAL');
      const need = PERM_WRITE | PERM_OWNER;
      if ((accessFor(conn, current) & need) !== need) throw new XsError('EACCES');
      this.special.set(path, perms);
      return { payload: OK };
    }
    ops.setPerms(ctx, path, perms);
    return this.changed(ctx, tx);
  }

  private watch(conn: Connection, p: Buffer): Result {
    if (countNuls(p) !== 2) throw new XsError('EINVAL');
    const [raw, token] = decodeStrings(p) as [string, string];
    let path = raw;
    let home: string | undefined;
    if (raw.startsWith('@')) {
      if (raw.length > XS_REL_PATH_MAX) throw new XsError('EINVAL');
    } else {
      path = canonicalize(raw, conn.domid);
      if (!raw.startsWith('/')) home = homePath(conn.domid);
      if (!isValidNodePath(path, conn.privileged ? Infinity : this.limits.maxRelativePath)) throw new XsError('EINVAL');
    }
    const key = watchKey(path, token);
    if (conn.watches.has(key)) throw new XsError('EEXIST');
    if (!conn.privileged && (this.watchCounts.get(conn.domid) ?? 0) > this.limits.watchesPerDomain) {
      throw new XsError('E2BIG', 'too many watches');
    }
    const w: Watch = { owner: conn, path, token, home };
    conn.watches.set(key, w);
    this.watches.add(w);
    this.watchCounts.set(conn.domid, (this.watchCounts.get(conn.domid) ?? 0) + 1);
    // Every new watch fires once at once, so clients need no separate initial read.
    return { payload: OK, after: () => send(w, path, false) };
  }

  private unwatch(conn: Connection, p: Buffer): Result {
    if (countNuls(p) !== 2) throw new XsError('EINVAL');
    const [raw, token] = decodeStrings(p) as [string, string];
    const key = watchKey(canonicalize(raw, conn.domid), token);
    const w = conn.watches.get(key);
    if (!w) throw new XsError('ENOENT');
    this.removeWatch(conn, key, w);
    return { payload: OK };
  }

  private removeWatch(conn: Connection, key: string, w: Watch): void {
    conn.watches.delete(key);
    this.watches.remove(w);
    const n = (this.watchCounts.get(conn.domid) ?? 1) - 1;
    if (n <= 0) this.watchCounts.delete(conn.domid);
    else this.watchCounts.set(conn.domid, n);
  }

  private clearWatchesAndTransactions(conn: Connection): void {
    for (const [key, w] of [...conn.watches]) this.removeWatch(conn, key, w);
    for (const tx of [...conn.transactions.values()]) this.releaseTransaction(conn, tx);
  }

  private transactionStart(conn: Connection, current: Transaction | undefined): Result {
    if (current) throw new XsError('EBUSY', 'nested transactions are not supported');
    // xenstored compares with '>', so a guest may hold one more than the quota's number.
    if (!conn.privileged && conn.transactions.size > this.limits.transactionsPerConnection) {
      throw new XsError('ENOSPC', 'too many transactions');
    }
    let id = conn.nextTransactionId;
    while (id === 0 || conn.transactions.has(id)) id = (id + 1) >>> 0;
    conn.nextTransactionId = (id + 1) >>> 0;
    const maxNodes = conn.privileged ? Infinity : this.limits.nodesPerTransaction;
    const charge = conn.privileged ? undefined : (delta: number) => this.chargeTransaction(conn.domid, delta);
    conn.transactions.set(id, new Transaction(id, this.store, maxNodes, charge));
    return { payload: Buffer.from(`${id}\0`, 'latin1') };
  }

  private transactionEnd(conn: Connection, tx: Transaction | undefined, p: Buffer): Result {
    const arg = onlyArg(p);
    if (arg !== 'T' && arg !== 'F') throw new XsError('EINVAL');
    if (!tx) throw new XsError('ENOENT', 'not in a transaction');
    this.releaseTransaction(conn, tx);
    if (arg === 'T') {
      if (tx.failed) throw new XsError('ENOMEM', 'transaction failed');
      if (!conn.privileged) {
        for (const [domid, count] of tx.grownOwners()) {
          if (domid === conn.domid && count > this.limits.nodesPerDomain) throw new XsError('ENOSPC');
        }
      }
      if (tx.conflicts()) throw new XsError('EAGAIN');
      tx.apply();
      // Like xenstored, a commit fires once per changed node, however often it was changed.
      const seen = new Set<string>();
      this.fire(tx.events.filter((ev) => {
        const key = `${ev.exact ? 1 : 0}${ev.path}`;
        if (seen.has(key)) return false;
        seen.add(key);
        return true;
      }));
    }
    return { payload: OK };
  }

  /**
   * Marks a domain introduced and fires @introduceDomain. Introducing it again resets its
   * connections' watches and transactions (xenstored does so on resume) and fires nothing.
   */
  introduceDomain(domid: number): void {
    if (domid === 0) return; // dom0 is always introduced
    if (this.introduced.has(domid)) {
      for (const c of this.byDomain.get(domid) ?? []) this.clearWatchesAndTransactions(c);
      return;
    }
    this.introduced.add(domid);
    this.log.info({ domid }, 'domain introduced');
    this.fire([{ path: '@introduceDomain', exact: true }]);
  }

  /**
   * Forgets a domain as xenstored does when it is released or destroyed: its connections are
   * dropped, the nodes it owns are removed (firing their watches), its domid leaves the special
   * watches' permissions, and @releaseDomain fires. Returns false if it was not introduced.
   */
  releaseDomain(domid: number): boolean {
    if (!this.introduced.delete(domid)) return false;
    this.log.info({ domid }, 'domain released');
    for (const c of [...(this.byDomain.get(domid) ?? [])]) this.drop(c, `domain ${domid} released`);
    this.removeOwnedNodes(domid);
    for (const [name, perms] of this.special) {
      const [owner, ...rest] = perms;
      const next = [owner!.id === domid ? { id: 0, bits: owner!.bits } : owner!, ...rest.filter((x) => x.id !== domid)];
      this.special.set(name, next);
    }
    this.fire([{ path: '@releaseDomain', exact: true }]);
    return true;
  }

  private removeOwnedNodes(domid: number): void {
    const roots: string[] = [];
    for (const path of this.store.paths()) {
      if (path === '/') continue;
      if (roots.length > 0 && isBelow(path, roots[roots.length - 1]!)) continue;
      if (this.store.get(path)!.perms[0]?.id === domid) roots.push(path);
    }
    const ctx: ops.OpContext = { view: this.store, caller: { domid: 0, privileged: true }, limits: this.limits, events: [] };
    for (const root of roots) {
      const node = this.store.get(root);
      if (node) ops.removeSubtree(ctx, root, node);
    }
    this.fire(ctx.events);
  }
}

function isBelow(path: string, ancestor: string): boolean {
  return path.length > ancestor.length && path.startsWith(ancestor) && path.charCodeAt(ancestor.length) === 0x2f;
}
