/**
 * Quotas. The first group are C xenstored 4.17's defaults for unprivileged domains
 * (xenstored_core.c: quota_*); they never apply to dom0 or the dom0 socket. The second group
 * bounds what any connection can make this server hold, where xenstored relies on its memory
 * quota or has no bound at all.
 */
export interface XenstoredLimits {
  /** Nodes a domain may own (quota_nb_entry_per_domain): ENOSPC past it. */
  nodesPerDomain: number;
  /** Watches per domain (quota_nb_watch_per_domain): E2BIG once more than this exist. */
  watchesPerDomain: number;
  /** Node record size, header and permissions included (quota_max_entry_size): ENOSPC. */
  maxNodeSize: number;
  /** Open transactions per connection (quota_max_transaction): ENOSPC once more than this. */
  transactionsPerConnection: number;
  /** Permissions per node set by a guest (quota_nb_perms_per_node): ENOSPC. */
  permsPerNode: number;
  /** Distinct nodes one guest transaction may touch (quota_trans_nodes): ENOSPC. */
  nodesPerTransaction: number;
  /** Path length below the guest's /local/domain/<id>/ (quota_max_path_len): EINVAL. */
  maxRelativePath: number;
  /** Replies a guest may have waiting before its requests stop being read (quota_req_outstanding). */
  outstandingRequests: number;

  /** Replies a privileged connection may have waiting before its requests stop being read. */
  privilegedOutstandingRequests: number;
  /**
   * Bytes of undelivered watch events per connection. Past it a guest's further events are
   * dropped (xenstored drops them at its memory quota); a privileged connection is closed, so
   * its owner notices instead of silently missing events.
   */
  maxQueuedEventBytes: number;
  /**
   * Open connections per guest domain (ours: in Xen a guest has one ring, so C xenstored needs no
   * such limit; our per-domain sockets do). Further connections are closed at once. Not dom0.
   */
  connectionsPerDomain: number;
  /**
   * Bytes a guest domain's open transactions may hold (paths, values and permissions they
   * changed, across all its connections): ENOMEM past it, as C xenstored's hard memory quota
   * (quota_memory_per_domain_hard, 2.5 MiB) answers. Ours counts only what transactions hold,
   * the part that is unbounded otherwise. Not dom0.
   */
  transactionBytesPerDomain: number;
}

export const DEFAULT_LIMITS: Readonly<XenstoredLimits> = Object.freeze({
  nodesPerDomain: 1000,
  watchesPerDomain: 128,
  maxNodeSize: 2048,
  transactionsPerConnection: 10,
  permsPerNode: 5,
  nodesPerTransaction: 1024,
  maxRelativePath: 2048,
  outstandingRequests: 20,
  privilegedOutstandingRequests: 1024,
  maxQueuedEventBytes: 4 * 1024 * 1024,
  connectionsPerDomain: 8,
  transactionBytesPerDomain: 2 * 1024 * 1024 + 512 * 1024,
});
