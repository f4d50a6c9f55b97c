/**
 * Node permissions. On the wire a permission is a letter and a domid: `n` none, `r` read,
 * `w` write, `b` both. The first entry names the owner and gives the access of every domain not
 * listed after it. Privileged callers (dom0, the dom0 socket) and the owner have full access.
 */
import type { XsPermission, XsPermKind } from '../../xen/xenstore-types.js';

export const PERM_NONE = 0;
export const PERM_READ = 1;
export const PERM_WRITE = 2;
/** Not a wire permission: granted to the owner and to privileged callers (needed by SET_PERMS). */
export const PERM_OWNER = 8;
export const PERM_ALL = PERM_READ | PERM_WRITE | PERM_OWNER;

export interface Perm {
  readonly id: number;
  /** PERM_READ | PERM_WRITE bits. */
  readonly bits: number;
}

/** Who is asking: the domain a connection acts as, and whether it is privileged. */
export interface Caller {
  readonly domid: number;
  readonly privileged: boolean;
}

const LETTERS = ['n', 'r', 'w', 'b'] as const;

export function formatPerm(p: Perm): string {
  return `${LETTERS[p.bits & 3]}${p.id}`;
}

/**
 * Parses one wire permission such as `b0` or `r12`. Like xenstored (strtol with base 0) it
 * accepts decimal, `0x` hex and leading-zero octal domids; anything else is undefined.
 */
export function parsePerm(s: string): Perm | undefined {
  const bits = LETTERS.indexOf(s.charAt(0) as (typeof LETTERS)[number]);
  if (bits < 0) return undefined;
  const num = s.slice(1);
  let id: number;
  if (/^0[xX][0-9a-fA-F]+$/.test(num)) id = parseInt(num.slice(2), 16);
  else if (/^0[0-7]*$/.test(num)) id = parseInt(num, 8);
  else if (/^[1-9][0-9]*$/.test(num)) id = parseInt(num, 10);
  else return undefined;
  if (!Number.isSafeInteger(id) || id > 0xffffffff) return undefined;
  return { id, bits };
}

/** What `caller` may do on a node with these permissions (PERM_* bits, including PERM_OWNER). */
export function accessFor(caller: Caller, perms: readonly Perm[]): number {
  const owner = perms[0];
  if (caller.privileged || owner === undefined || owner.id === caller.domid) return PERM_ALL;
  for (let i = 1; i < perms.length; i++) {
    const p = perms[i]!;
    if (p.id === caller.domid) return p.bits;
  }
  return owner.bits;
}

const KIND_BITS: Record<XsPermKind, number> = { none: PERM_NONE, read: PERM_READ, write: PERM_WRITE, both: PERM_READ | PERM_WRITE };
const BITS_KIND: readonly XsPermKind[] = ['none', 'read', 'write', 'both'];

export function toXsPermission(p: Perm): XsPermission {
  return { domid: p.id, perm: BITS_KIND[p.bits & 3]! };
}

export function fromXsPermission(p: XsPermission): Perm {
  return { id: p.domid, bits: KIND_BITS[p.perm] };
}
