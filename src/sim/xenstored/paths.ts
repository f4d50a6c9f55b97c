/**
 * Xenstore path rules (docs/misc/xenstore.txt, xenstored's is_valid_nodename): absolute paths
 * start with `/`, have no `//` and no trailing `/` (except the root), use only
 * `[A-Za-z0-9_@-]` between slashes, and are at most 3072 bytes; an unprivileged domain's path
 * may be at most 2048 bytes past its `/local/domain/<id>/` prefix. Relative paths live under the
 * caller's home, `/local/domain/<domid>`.
 */
import { XS_ABS_PATH_MAX } from '../../wire/protocol.js';

const VALID_ABSOLUTE = /^\/(?:[A-Za-z0-9_@-]+(?:\/[A-Za-z0-9_@-]+)*)?$/;
const LOCAL_DOMAIN_PREFIX = /^\/local\/domain\/[0-9]{1,5}\//;

export function homePath(domid: number): string {
  return `/local/domain/${domid}`;
}

/** Absolute form of a request path: `@…` and `/…` stay as they are, anything else is relative. */
export function canonicalize(path: string, domid: number): string {
  if (path.startsWith('/') || path.startsWith('@')) return path;
  return `${homePath(domid)}/${path}`;
}

/**
 * Whether `path` (already canonical) names a node. `relMax` bounds the part below a
 * `/local/domain/<id>/` prefix (the whole path when there is no such prefix); pass Infinity for
 * privileged callers.
 */
export function isValidNodePath(path: string, relMax: number): boolean {
  if (path.length > XS_ABS_PATH_MAX || !VALID_ABSOLUTE.test(path)) return false;
  if (relMax !== Infinity) {
    const m = LOCAL_DOMAIN_PREFIX.exec(path);
    const rel = m ? path.length - m[0].length : path.length;
    if (rel > relMax) return false;
  }
  return true;
}

/** Parent of a valid path other than `/`. */
export function parentPath(path: string): string {
  const i = path.lastIndexOf('/');
  return i <= 0 ? '/' : path.slice(0, i);
}

/** Last component of a valid path other than `/`. */
export function baseName(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

export function childPath(parent: string, name: string): string {
  return parent === '/' ? `/${name}` : `${parent}/${name}`;
}

/** True if `child` is `parent` or lies below it (every path lies below `/`). */
export function isSameOrBelow(child: string, parent: string): boolean {
  if (parent === '/') return true;
  if (!child.startsWith(parent)) return false;
  return child.length === parent.length || child.charCodeAt(parent.length) === 0x2f;
}

/** `path` itself, then each ancestor up to and including `/`. */
export function* selfAndAncestors(path: string): Generator<string> {
  let p = path;
  for (;;) {
    yield p;
    if (p === '/') return;
    p = parentPath(p);
  }
}
