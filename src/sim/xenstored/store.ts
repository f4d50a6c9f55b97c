/**
 * The node database. Nodes are immutable values keyed by absolute path: a change replaces the
 * node object, so a transaction can keep a reference to a node as its snapshot at no cost. Each
 * stored node carries a generation from one global counter, which is how transactions detect
 * conflicting changes (xenstored's scheme).
 */
import type { Perm } from './perms.js';

export interface XsNode {
  readonly value: Buffer;
  readonly perms: readonly Perm[];
  /** Child names in creation order (DIRECTORY lists them in this order). */
  readonly children: readonly string[];
  /** Σ (name length + 1) over children: the size of the DIRECTORY reply and of xenstored's record. */
  readonly childBytes: number;
  readonly generation: number;
}

/** Generation recorded for a node that does not exist (a read of a missing node in a transaction). */
export const NO_NODE = -1;

/**
 * xenstored's size of a node record: a 24-byte header, 8 bytes per permission, the value and the
 * NUL-separated child names. Unprivileged writers are refused (ENOSPC) when this reaches the
 * node-size quota (2048), so a guest's single-permission leaf holds at most 2015 bytes.
 */
export function nodeRecordSize(node: Pick<XsNode, 'value' | 'perms' | 'childBytes'>): number {
  return 24 + 8 * node.perms.length + node.value.length + node.childBytes;
}

/** Read and write access to nodes, as the base store or as a transaction's private view. */
export interface NodeView {
  /** The node at `path`; inside a transaction this also records the access for conflict checks. */
  get(path: string): XsNode | undefined;
  /** The node without recording an access (permission checks for watch events). */
  peek(path: string): XsNode | undefined;
  /** Creates or replaces a node; the generation given is ignored (the view assigns one). */
  put(path: string, node: Omit<XsNode, 'generation'>): void;
  delete(path: string): void;
  /** Nodes owned (first permission) by `domid`, for the per-domain node quota. */
  ownedCount(domid: number): number;
  readonly inTransaction: boolean;
}

export function makeNode(value: Buffer, perms: readonly Perm[], children: readonly string[] = [], childBytes?: number): Omit<XsNode, 'generation'> {
  return { value, perms, children, childBytes: childBytes ?? children.reduce((n, c) => n + c.length + 1, 0) };
}

export class Store implements NodeView {
  private readonly nodes = new Map<string, XsNode>();
  private readonly owned = new Map<number, number>();
  private generation = 0;
  readonly inTransaction = false;

  constructor() {
    // xenstored's initial tree: `/`, `/tool`, `/tool/xenstored`, all owned by dom0 with no
    // access for anyone else.
    const perms: Perm[] = [{ id: 0, bits: 0 }];
    const empty = Buffer.alloc(0);
    this.put('/', makeNode(empty, perms, ['tool']));
    this.put('/tool', makeNode(empty, perms, ['xenstored']));
    this.put('/tool/xenstored', makeNode(empty, perms));
  }

  get size(): number {
    return this.nodes.size;
  }

  get(path: string): XsNode | undefined {
    return this.nodes.get(path);
  }

  peek(path: string): XsNode | undefined {
    return this.nodes.get(path);
  }

  /** Current generation of `path`, NO_NODE when absent. */
  generationOf(path: string): number {
    return this.nodes.get(path)?.generation ?? NO_NODE;
  }

  nextGeneration(): number {
    return ++this.generation;
  }

  put(path: string, node: Omit<XsNode, 'generation'>): void {
    const old = this.nodes.get(path);
    if (old) this.addOwned(old.perms[0]?.id, -1);
    this.nodes.set(path, { ...node, generation: this.nextGeneration() });
    this.addOwned(node.perms[0]?.id, 1);
  }

  delete(path: string): void {
    const old = this.nodes.get(path);
    if (!old) return;
    this.nodes.delete(path);
    this.addOwned(old.perms[0]?.id, -1);
  }

  ownedCount(domid: number): number {
    return this.owned.get(domid) ?? 0;
  }

  /** Every path, parents before children (for whole-tree walks such as domain release). */
  *paths(): Generator<string> {
    const stack = ['/'];
    while (stack.length > 0) {
      const p = stack.pop()!;
      const node = this.nodes.get(p);
      if (!node) continue;
      yield p;
      for (let i = node.children.length - 1; i >= 0; i--) {
        stack.push(p === '/' ? `/${node.children[i]}` : `${p}/${node.children[i]}`);
      }
    }
  }

  private addOwned(domid: number | undefined, delta: number): void {
    if (domid === undefined) return;
    const n = (this.owned.get(domid) ?? 0) + delta;
    if (n === 0) this.owned.delete(domid);
    else this.owned.set(domid, n);
  }
}
