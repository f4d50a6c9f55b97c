/**
 * Watch registrations, indexed by watched path so that firing an event costs one map lookup per
 * ancestor of the changed path (plus the matching watches), never a scan of all watches.
 */
import { XS_PAYLOAD_MAX } from '../../wire/protocol.js';
import { accessFor, PERM_READ, type Caller, type Perm } from './perms.js';
import { selfAndAncestors } from './paths.js';

/** Where watch events go: a connection, as seen by the watch machinery. */
export interface WatchOwner extends Caller {
  /** Queue a WATCH_EVENT with this payload; `coalesceKey` marks events that may be merged. */
  deliverEvent(payload: Buffer, coalesceKey: string | undefined): void;
}

export interface Watch {
  readonly owner: WatchOwner;
  /** Canonical path (absolute, or `@name`). */
  readonly path: string;
  readonly token: string;
  /** Set when registered with a relative path: events are reported relative to this home. */
  readonly home: string | undefined;
}

/**
 * A change that may fire watches. `exact` events (the nodes below the root of an RM) only fire
 * watches on exactly that path. Permissions are captured when the change happens, so the
 * check is right even after the node is gone (RM, or a transaction committing later).
 */
export interface EventSource {
  readonly path: string;
  readonly exact: boolean;
  readonly perms?: readonly Perm[];
  readonly parentPerms?: readonly Perm[];
  /** The node's permissions before a SET_PERMS: a watcher losing access still sees the change. */
  readonly oldPerms?: readonly Perm[];
}

export function watchKey(path: string, token: string): string {
  return `${path}\0${token}`;
}

export class WatchRegistry {
  private readonly byPath = new Map<string, Set<Watch>>();
  private count = 0;

  get size(): number {
    return this.count;
  }

  add(w: Watch): void {
    let set = this.byPath.get(w.path);
    if (!set) {
      set = new Set();
      this.byPath.set(w.path, set);
    }
    set.add(w);
    this.count++;
  }

  remove(w: Watch): void {
    const set = this.byPath.get(w.path);
    if (set?.delete(w)) {
      this.count--;
      if (set.size === 0) this.byPath.delete(w.path);
    }
  }

  /**
   * Fires the watches matching one change. `specialReadable` decides, for `@` events, whether an
   * owner may see it (the special node's permissions).
   */
  fire(ev: EventSource, specialReadable: (owner: WatchOwner, name: string) => boolean): void {
    if (ev.path.startsWith('@')) {
      const set = this.byPath.get(ev.path);
      if (!set) return;
      for (const w of [...set]) {
        if (specialReadable(w.owner, ev.path)) send(w, ev.path, false);
      }
      return;
    }
    if (ev.exact) {
      const set = this.byPath.get(ev.path);
      if (set) for (const w of [...set]) if (permitted(w.owner, ev)) send(w, ev.path, true);
      return;
    }
    for (const p of selfAndAncestors(ev.path)) {
      const set = this.byPath.get(p);
      if (!set) continue;
      for (const w of [...set]) if (permitted(w.owner, ev)) send(w, ev.path, true);
    }
  }
}

function canRead(owner: WatchOwner, perms: readonly Perm[] | undefined): boolean {
  return perms !== undefined && (accessFor(owner, perms) & PERM_READ) !== 0;
}

/** xenstored's rule: the watcher must be able to read the node (before or after) or its parent. */
function permitted(owner: WatchOwner, ev: EventSource): boolean {
  if (owner.privileged) return true;
  return canRead(owner, ev.oldPerms) || canRead(owner, ev.perms) || canRead(owner, ev.parentPerms);
}

/** Payload of the WATCH_EVENT for watch `w` on changed path `path`. */
export function eventPayload(w: Watch, path: string): Buffer {
  let reported = path;
  if (w.home !== undefined && path.startsWith(w.home)) {
    reported = path.slice(w.home.length);
    if (reported.startsWith('/')) reported = reported.slice(1);
  }
  return Buffer.from(`${reported}\0${w.token}\0`, 'latin1');
}

export function send(w: Watch, path: string, coalesce: boolean): void {
  const payload = eventPayload(w, path);
  // xenstored silently skips events that would not fit in one message.
  if (payload.length > XS_PAYLOAD_MAX) return;
  w.owner.deliverEvent(payload, coalesce ? payload.toString('latin1') : undefined);
}
