/**
 * What dom0 must create for a new domain so its guest can publish. libxl already makes
 * /local/domain/<id>/data owned by the guest, so xenballoon-report can create its own
 * data/xenballoon/report; other toolstacks may not. Provisioning makes
 * data/xenballoon exist and belong to the guest (dom0 may read it), idempotently. For guests
 * that publish the paper's or Qubes' format it can also pre-create memory/meminfo,
 * memory/vmstat and memory/uptime owned by the guest, as Qubes' dom0 does (under libxl a guest
 * cannot create nodes in memory/).
 */
import type { XenstoreNodeOps, XsPermission } from '../xen/xenstore-types.js';

/** Domain ids from DOMID_FIRST_RESERVED (0x7FF0) up are not real domains. */
const DOMID_LIMIT = 0x7ff0;

export interface ProvisionOptions {
  /** Also pre-create memory/meminfo, memory/vmstat, memory/uptime for legacy guests. */
  legacyMemoryNodes?: boolean;
}

export interface ProvisionResult {
  created: string[];
  /** Existed with another owner; given to the guest. */
  fixed: string[];
  unchanged: string[];
}

/** Owned by the guest (full access), nobody else but dom0 (which reads it). */
export function guestOwnedPerms(domid: number): XsPermission[] {
  return [
    { domid, perm: 'none' },
    { domid: 0, perm: 'read' },
  ];
}

export function guestNodes(domid: number, opts: ProvisionOptions = {}): string[] {
  const home = `/local/domain/${domid}`;
  const nodes = [`${home}/data/xenballoon`];
  if (opts.legacyMemoryNodes) nodes.push(`${home}/memory/meminfo`, `${home}/memory/vmstat`, `${home}/memory/uptime`);
  return nodes;
}

function isNotFound(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === 'ENOENT';
}

/**
 * Makes every node the guest needs exist and belong to it. Safe to run again (at daemon start,
 * on @introduceDomain, on reconcile): nodes that already belong to the guest are left as they
 * are, including extra entries an administrator added.
 */
export async function provisionGuestNodes(
  xs: XenstoreNodeOps,
  domid: number,
  opts: ProvisionOptions = {},
): Promise<ProvisionResult> {
  if (!Number.isInteger(domid) || domid <= 0 || domid >= DOMID_LIMIT)
    throw new RangeError(`provisionGuestNodes: ${domid} is not a guest domain id`);
  const result: ProvisionResult = { created: [], fixed: [], unchanged: [] };
  for (const path of guestNodes(domid, opts)) {
    let perms: XsPermission[] | null;
    try {
      perms = await xs.getPermissions(path);
    } catch (err) {
      if (!isNotFound(err)) throw err;
      perms = null;
    }
    if (perms === null) {
      await xs.mkdir(path);
      await xs.setPermissions(path, guestOwnedPerms(domid));
      result.created.push(path);
    } else if (perms[0]?.domid !== domid) {
      await xs.setPermissions(path, guestOwnedPerms(domid));
      result.fixed.push(path);
    } else {
      result.unchanged.push(path);
    }
  }
  return result;
}
