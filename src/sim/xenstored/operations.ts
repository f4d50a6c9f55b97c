/**
 * The store semantics of each request, over a NodeView (the store, or a transaction) and on
 * behalf of a caller: path resolution, permission checks, quotas, node creation and removal,
 * and the watch events each change causes (collected, not fired: the caller fires them now, or
 * at commit for a transaction). Every check happens before the first change, so a failed request
 * changes nothing.
 */
import { XS_PAYLOAD_MAX } from '../../wire/protocol.js';
import { XsError } from './errors.js';
import type { XenstoredLimits } from './limits.js';
import { baseName, canonicalize, childPath, isValidNodePath, parentPath } from './paths.js';
import { accessFor, PERM_OWNER, PERM_READ, PERM_WRITE, type Caller, type Perm } from './perms.js';
import { makeNode, nodeRecordSize, type NodeView, type XsNode } from './store.js';
import type { EventSource } from './watches.js';

export interface OpContext {
  readonly view: NodeView;
  readonly caller: Caller;
  readonly limits: XenstoredLimits;
  /** Watch events caused by the operation, in order. */
  readonly events: EventSource[];
}

const EMPTY = Buffer.alloc(0);

/** Canonical, validated path of a node named in a request (EINVAL when not a valid node path). */
export function resolveNodePath(ctx: OpContext, raw: string | undefined): string {
  if (raw === undefined) throw new XsError('EINVAL');
  const path = canonicalize(raw, ctx.caller.domid);
  const relMax = ctx.caller.privileged ? Infinity : ctx.limits.maxRelativePath;
  if (!isValidNodePath(path, relMax)) throw new XsError('EINVAL', `invalid path '${raw}'`);
  return path;
}

/**
 * The node at `path` if the caller has all of `need`. A missing node is ENOENT only when the
 * nearest existing ancestor grants some of `need`, otherwise EACCES, so that errors do not
 * reveal what exists under nodes the caller may not see.
 */
export function getNode(ctx: OpContext, path: string, need: number): XsNode {
  const node = ctx.view.get(path);
  if (node) {
    if ((accessFor(ctx.caller, node.perms) & need) !== need) throw new XsError('EACCES');
    return node;
  }
  throw new XsError(missingNodeError(ctx, path, need));
}

function missingNodeError(ctx: OpContext, path: string, need: number): 'ENOENT' | 'EACCES' {
  let p = path;
  while (p !== '/') {
    p = parentPath(p);
    const anc = ctx.view.get(p);
    if (anc) return accessFor(ctx.caller, anc.perms) & need ? 'ENOENT' : 'EACCES';
  }
  return 'EACCES';
}

function checkNodeSize(ctx: OpContext, node: Pick<XsNode, 'value' | 'perms' | 'childBytes'>): void {
  if (!ctx.caller.privileged && nodeRecordSize(node) >= ctx.limits.maxNodeSize) {
    throw new XsError('ENOSPC', 'node too large');
  }
}

function isNotFound(err: unknown): boolean {
  return err instanceof XsError && err.code === 'ENOENT';
}

function eventFor(ctx: OpContext, path: string, perms: readonly Perm[], extra?: Partial<EventSource>): EventSource {
  const parent = path === '/' ? undefined : ctx.view.peek(parentPath(path));
  return { path, exact: false, perms, parentPerms: parent?.perms, ...extra };
}

/**
 * Creates `path` and any missing parents. New nodes inherit the nearest existing ancestor's
 * permissions; a guest becomes the owner of what it creates. The caller has already checked that
 * the ancestor grants write access (getNode gave ENOENT, not EACCES).
 */
function createNode(ctx: OpContext, path: string, value: Buffer): XsNode {
  const missing: string[] = [path];
  let ancPath = parentPath(path);
  let anc = ctx.view.get(ancPath);
  while (!anc) {
    missing.push(ancPath);
    ancPath = parentPath(ancPath);
    anc = ctx.view.get(ancPath);
  }
  missing.reverse(); // top-down
  const { caller, limits } = ctx;
  if (!caller.privileged && ctx.view.ownedCount(caller.domid) + missing.length > limits.nodesPerDomain) {
    throw new XsError('ENOSPC', 'too many nodes owned by the domain');
  }
  const owner = anc.perms[0] ?? { id: 0, bits: 0 };
  const perms: readonly Perm[] = caller.privileged ? anc.perms : [{ id: caller.domid, bits: owner.bits }, ...anc.perms.slice(1)];

  const firstName = baseName(missing[0]!);
  const updatedAnc = makeNode(anc.value, anc.perms, [...anc.children, firstName], anc.childBytes + firstName.length + 1);
  checkNodeSize(ctx, updatedAnc);
  const created: Array<[string, ReturnType<typeof makeNode>]> = [];
  for (let i = 0; i < missing.length; i++) {
    const next = missing[i + 1];
    const node = next === undefined ? makeNode(value, perms) : makeNode(EMPTY, perms, [baseName(next)]);
    checkNodeSize(ctx, node);
    created.push([missing[i]!, node]);
  }
  ctx.view.put(ancPath, updatedAnc);
  for (const [p, node] of created) ctx.view.put(p, node);
  return ctx.view.peek(path)!;
}

export function read(ctx: OpContext, raw: string | undefined): Buffer {
  return getNode(ctx, resolveNodePath(ctx, raw), PERM_READ).value;
}

export function write(ctx: OpContext, raw: string | undefined, value: Buffer): void {
  const path = resolveNodePath(ctx, raw);
  let perms: readonly Perm[];
  try {
    const old = getNode(ctx, path, PERM_WRITE);
    const updated = makeNode(value, old.perms, old.children, old.childBytes);
    checkNodeSize(ctx, updated);
    ctx.view.put(path, updated);
    perms = old.perms;
  } catch (err) {
    if (!isNotFound(err)) throw err;
    perms = createNode(ctx, path, value).perms;
  }
  ctx.events.push(eventFor(ctx, path, perms));
}

export function mkdir(ctx: OpContext, raw: string | undefined): void {
  const path = resolveNodePath(ctx, raw);
  try {
    getNode(ctx, path, PERM_WRITE);
    return; // exists already: nothing changes, nothing fires
  } catch (err) {
    if (!isNotFound(err)) throw err;
  }
  const node = createNode(ctx, path, EMPTY);
  ctx.events.push(eventFor(ctx, path, node.perms));
}

/**
 * Removes `path` and everything below it. A missing node is fine when its parent exists. Each
 * removed node fires the watches set exactly on it; the removed root also fires the watches on
 * its ancestors.
 */
export function rm(ctx: OpContext, raw: string | undefined): void {
  const path = resolveNodePath(ctx, raw);
  let root: XsNode;
  try {
    root = getNode(ctx, path, PERM_WRITE);
  } catch (err) {
    if (isNotFound(err) && ctx.view.get(parentPath(path))) return;
    throw err;
  }
  if (path === '/') throw new XsError('EINVAL', 'cannot remove /');
  removeSubtree(ctx, path, root);
}

/** Removes a node known to exist and its subtree, without permission checks. */
export function removeSubtree(ctx: OpContext, path: string, root: XsNode): void {
  const parentP = parentPath(path);
  const parent = ctx.view.get(parentP);
  // Post-order (children before their parent), as xenstored walks a removal.
  const doomed: Array<[string, XsNode, readonly Perm[] | undefined]> = [];
  const stack: Array<{ path: string; node: XsNode; next: number; parentPerms: readonly Perm[] | undefined }> = [
    { path, node: root, next: 0, parentPerms: parent?.perms },
  ];
  while (stack.length > 0) {
    const top = stack[stack.length - 1]!;
    if (top.next < top.node.children.length) {
      const cp = childPath(top.path, top.node.children[top.next++]!);
      const child = ctx.view.get(cp);
      if (child) stack.push({ path: cp, node: child, next: 0, parentPerms: top.node.perms });
    } else {
      stack.pop();
      doomed.push([top.path, top.node, top.parentPerms]);
    }
  }
  for (const [p, node, parentPerms] of doomed) {
    ctx.events.push({ path: p, exact: p !== path, perms: node.perms, parentPerms });
  }
  if (parent) {
    const name = baseName(path);
    const children = parent.children.filter((c) => c !== name);
    ctx.view.put(parentP, makeNode(parent.value, parent.perms, children, parent.childBytes - (name.length + 1)));
  }
  for (const [p] of doomed) ctx.view.delete(p);
}

export function directory(ctx: OpContext, raw: string | undefined): readonly string[] {
  return getNode(ctx, resolveNodePath(ctx, raw), PERM_READ).children;
}

/** Children as DIRECTORY sends them: each name followed by a NUL. */
export function encodeChildren(children: readonly string[]): Buffer {
  return children.length === 0 ? EMPTY : Buffer.from(children.join('\0') + '\0', 'latin1');
}

/**
 * DIRECTORY_PART: `<generation>|` then the children list from byte `offset`, cut on a name
 * boundary to fit one payload; the last chunk ends with an extra NUL (an empty name).
 */
export function directoryPart(ctx: OpContext, raw: string, offset: number): Buffer {
  const node = getNode(ctx, resolveNodePath(ctx, raw), PERM_READ);
  const gen = Buffer.from(`${node.generation}\0`, 'latin1');
  const all = encodeChildren(node.children);
  if (offset >= all.length) return Buffer.concat([gen, Buffer.from([0])]);
  const maxLen = XS_PAYLOAD_MAX - gen.length - 1;
  let end = offset;
  for (;;) {
    const nul = all.indexOf(0, end);
    if (nul === -1 || nul + 1 - offset > maxLen) break;
    end = nul + 1;
    if (end === all.length) break;
  }
  const parts = [gen, all.subarray(offset, end)];
  if (end === all.length) parts.push(Buffer.from([0]));
  return Buffer.concat(parts);
}

export function getPerms(ctx: OpContext, raw: string | undefined): readonly Perm[] {
  return getNode(ctx, resolveNodePath(ctx, raw), PERM_READ).perms;
}

/** SET_PERMS on a node (special `@` names are the core's business). */
export function setPerms(ctx: OpContext, raw: string, perms: readonly Perm[]): void {
  const path = resolveNodePath(ctx, raw);
  const node = getNode(ctx, path, PERM_WRITE | PERM_OWNER);
  if (!ctx.caller.privileged && perms[0]!.id !== node.perms[0]?.id) {
    throw new XsError('EPERM', 'a guest cannot give its node away');
  }
  const updated = makeNode(node.value, perms, node.children, node.childBytes);
  checkNodeSize(ctx, updated);
  ctx.view.put(path, updated);
  ctx.events.push(eventFor(ctx, path, perms, { oldPerms: node.perms }));
}
