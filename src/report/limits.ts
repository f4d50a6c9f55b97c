/**
 * Bounds every guest-supplied value is checked against. The C publisher (native/common.h) uses
 * the same numbers, so a record it writes is never one the daemon rejects.
 */

/** A real xenstored refuses a value larger than this from an unprivileged domain. */
export const V1_MAX_BYTES = 2048;
/** Raw /proc text (the paper's memory/meminfo, memory/vmstat): xenstore's payload limit. */
export const RAW_MAX_BYTES = 4096;
/** Qubes' memory/meminfo is one decimal number. */
export const QUBES_MAX_BYTES = 32;
/** memory/uptime ("12345.67 890.12"). */
export const UPTIME_MAX_BYTES = 64;

/** Largest memory figure (KiB) we believe: 1 PiB, more than any Xen host can address. */
export const KIB_MAX = 2 ** 40;
/** Largest counter/integer: exact in a JavaScript number. */
export const COUNTER_MAX = Number.MAX_SAFE_INTEGER;
/** PSI averages are percentages; v1 carries them in hundredths of a percent (basis points). */
export const PSI_AVG_MAX_BP = 10_000;
