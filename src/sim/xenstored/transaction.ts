/**
 * A transaction's private view of the store. The first access to a node snapshots it (nodes are
 * immutable, so the snapshot is a reference) and records its generation; reads and writes then
 * go to the snapshot. Commit fails with EAGAIN if any recorded node changed in the store since
 * (xenstored's generation-count check), otherwise the transaction's changes are applied and its
 * queued watch events fire. An aborted transaction leaves no trace.
 */
import { XsError } from './errors.js';
import { NO_NODE, type NodeView, type Store, type XsNode } from './store.js';
import type { EventSource } from './watches.js';

/** Bytes counted per changed node besides its path, value and permissions. */
const NODE_HEADER_BYTES = 64;

export class Transaction implements NodeView {
  readonly inTransaction = true;
  /** Snapshot (or modified copy) of every node accessed; null = absent. */
  private readonly overlay = new Map<string, XsNode | null>();
  /** Store generation of each accessed node at first access. */
  private readonly accessed = new Map<string, number>();
  private readonly modified = new Set<string>();
  private readonly ownedDelta = new Map<number, number>();
  /** Watch events of this transaction's operations, fired only if it commits. */
  readonly events: EventSource[] = [];
  /** Set when an operation inside failed half-way: the transaction can only be aborted. */
  failed = false;
  /** What the nodes this transaction changed take (charged to its domain's memory quota). */
  private held = 0;
  private readonly sizes = new Map<string, number>();

  constructor(
    readonly id: number,
    private readonly base: Store,
    /** Most distinct nodes one transaction may touch (xenstored: 1024 for guests). */
    private readonly maxNodes: number,
    /** Charges (or refunds) bytes to the owner's quota; throws (ENOMEM) to refuse a charge. */
    private readonly charge: (deltaBytes: number) => void = () => undefined,
  ) {}

  get heldBytes(): number {
    return this.held;
  }

  /** Accounts a changed node at its new size (0: deleted) before the change is made. */
  private account(path: string, bytes: number): void {
    const delta = bytes - (this.sizes.get(path) ?? 0);
    if (delta === 0) return;
    this.charge(delta);
    this.held += delta;
    this.sizes.set(path, bytes);
  }

  get(path: string): XsNode | undefined {
    if (this.overlay.has(path)) return this.overlay.get(path) ?? undefined;
    if (this.accessed.size >= this.maxNodes) {
      this.failed = true;
      throw new XsError('ENOSPC', 'transaction touches too many nodes');
    }
    const node = this.base.get(path);
    this.accessed.set(path, node?.generation ?? NO_NODE);
    this.overlay.set(path, node ?? null);
    return node;
  }

  peek(path: string): XsNode | undefined {
    if (this.overlay.has(path)) return this.overlay.get(path) ?? undefined;
    return this.base.peek(path);
  }

  put(path: string, node: Omit<XsNode, 'generation'>): void {
    const old = this.get(path);
    // A node's record: path, value, 8 bytes per permission, and a header (as xenstored's).
    this.account(path, NODE_HEADER_BYTES + path.length + node.value.length + 8 * node.perms.length);
    if (old) this.addOwned(old.perms[0]?.id, -1);
    this.addOwned(node.perms[0]?.id, 1);
    this.overlay.set(path, { ...node, generation: this.base.nextGeneration() });
    this.modified.add(path);
  }

  delete(path: string): void {
    const old = this.get(path);
    if (!old) return;
    this.account(path, NODE_HEADER_BYTES + path.length);
    this.addOwned(old.perms[0]?.id, -1);
    this.overlay.set(path, null);
    this.modified.add(path);
  }

  ownedCount(domid: number): number {
    return this.base.ownedCount(domid) + (this.ownedDelta.get(domid) ?? 0);
  }

  /** Domains whose node count this transaction raises, with the count after commit. */
  grownOwners(): Array<[domid: number, count: number]> {
    const out: Array<[number, number]> = [];
    for (const [domid, delta] of this.ownedDelta) {
      if (delta > 0) out.push([domid, this.ownedCount(domid)]);
    }
    return out;
  }

  /** True if a node this transaction accessed has changed in the store since. */
  conflicts(): boolean {
    for (const [path, gen] of this.accessed) {
      if (this.base.generationOf(path) !== gen) return true;
    }
    return false;
  }

  /** Applies the changes to the store. Call only after conflicts() returned false. */
  apply(): void {
    for (const path of this.modified) {
      const node = this.overlay.get(path);
      if (node) this.base.put(path, node);
      else this.base.delete(path);
    }
  }

  private addOwned(domid: number | undefined, delta: number): void {
    if (domid === undefined) return;
    this.ownedDelta.set(domid, (this.ownedDelta.get(domid) ?? 0) + delta);
  }
}
