/**
 * Constants of the xenstore wire protocol (xen/io/xs_wire.h, docs/misc/xenstore.txt): message
 * types, the error names exchanged instead of errno numbers, and the size limits both sides
 * enforce. Pure data: no I/O.
 */

/** Message types, numbered as in `enum xsd_sockmsg_type`. */
export const XsType = {
  CONTROL: 0,
  DIRECTORY: 1,
  READ: 2,
  GET_PERMS: 3,
  WATCH: 4,
  UNWATCH: 5,
  TRANSACTION_START: 6,
  TRANSACTION_END: 7,
  INTRODUCE: 8,
  RELEASE: 9,
  GET_DOMAIN_PATH: 10,
  WRITE: 11,
  MKDIR: 12,
  RM: 13,
  SET_PERMS: 14,
  WATCH_EVENT: 15,
  ERROR: 16,
  IS_DOMAIN_INTRODUCED: 17,
  RESUME: 18,
  SET_TARGET: 19,
  // 20 was XS_RESTRICT, removed upstream; it is answered like any unknown type.
  RESET_WATCHES: 21,
  DIRECTORY_PART: 22,
} as const;

export type XsTypeName = keyof typeof XsType;
export type XsTypeCode = (typeof XsType)[XsTypeName];

const typeNames = new Map<number, XsTypeName>(
  (Object.entries(XsType) as [XsTypeName, number][]).map(([name, code]) => [code, name]),
);

/** The symbolic name of a message type, or undefined for a number the protocol does not define. */
export function xsTypeName(type: number): XsTypeName | undefined {
  return typeNames.get(type);
}

/**
 * Error names in xs_wire.h's table order. New errors are only ever appended upstream; a name a
 * client does not know is read as EINVAL by libxenstore.
 */
export const XS_ERROR_NAMES = [
  'EINVAL',
  'EACCES',
  'EEXIST',
  'EISDIR',
  'ENOENT',
  'ENOMEM',
  'ENOSPC',
  'EIO',
  'ENOTEMPTY',
  'ENOSYS',
  'EROFS',
  'EBUSY',
  'EAGAIN',
  'EISCONN',
  'E2BIG',
  'EPERM',
] as const;

export type XsErrorName = (typeof XS_ERROR_NAMES)[number];

const errorNameSet: ReadonlySet<string> = new Set(XS_ERROR_NAMES);

export function isXsErrorName(name: string): name is XsErrorName {
  return errorNameSet.has(name);
}

/** Linux errno numbers of the protocol's error names (x86_64), for code that needs the number. */
export const XS_ERRNO: Readonly<Record<XsErrorName, number>> = {
  EPERM: 1,
  ENOENT: 2,
  EIO: 5,
  E2BIG: 7,
  EAGAIN: 11,
  ENOMEM: 12,
  EACCES: 13,
  EBUSY: 16,
  EEXIST: 17,
  EISDIR: 21,
  EINVAL: 22,
  ENOSPC: 28,
  EROFS: 30,
  ENOSYS: 38,
  ENOTEMPTY: 39,
  EISCONN: 106,
};

/** Size of `struct xsd_sockmsg`: four little-endian uint32 (type, req_id, tx_id, len). */
export const XS_HEADER_SIZE = 16;
/** XENSTORE_PAYLOAD_MAX: the largest payload either side may send. */
export const XS_PAYLOAD_MAX = 4096;
/** XENSTORE_ABS_PATH_MAX: the longest absolute path. */
export const XS_ABS_PATH_MAX = 3072;
/** XENSTORE_REL_PATH_MAX: the longest path relative to a domain's home. */
export const XS_REL_PATH_MAX = 2048;
/** DOMID_SELF, accepted by IS_DOMAIN_INTRODUCED. */
export const DOMID_SELF = 0x7ff0;
/** DOMID_FIRST_RESERVED: domids at or above this are not real domains. */
export const DOMID_FIRST_RESERVED = 0x7ff0;
