/**
 * Xenstore types shared by the libxenstore binding (src/xen/xenstore.ts), our xenstore server
 * (src/sim) and code that only needs a few operations (provisioning, the daemon's tests).
 * Contract: extend freely, do not rename.
 */

/** One entry of a node's permission list; the first entry names the owner and the default. */
export type XsPermKind = 'none' | 'read' | 'write' | 'both';
export interface XsPermission {
  domid: number;
  perm: XsPermKind;
}

/** The subset of the binding that provisioning a guest's nodes needs. */
export interface XenstoreNodeOps {
  /** Creates the node (and missing parents); an existing node is left as it is. */
  mkdir(path: string): Promise<void>;
  /** Throws XenStoreError with code 'ENOENT' when the node does not exist. */
  getPermissions(path: string): Promise<XsPermission[]>;
  setPermissions(path: string, perms: XsPermission[]): Promise<void>;
}
