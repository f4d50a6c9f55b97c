/**
 * The GuestReport as zod schemas, the one definition its types (types.ts) are inferred from: the
 * invariants every parser promises and the simulator's reports must also satisfy. Also the mapping from zod issues to our
 * rejection reasons, shared by the format parsers.
 */
import { z } from 'zod';
import { COUNTER_MAX, KIB_MAX, PSI_AVG_MAX_BP } from './limits.js';
import { reject, type Rejection } from './result.js';

export const kibSchema = z.number().int().min(0).max(KIB_MAX);
export const counterSchema = z.number().int().min(0).max(COUNTER_MAX);

const nullableKib = kibSchema.nullable();
const nullableCounter = counterSchema.nullable();

export const reportFormatSchema = z.enum(['v1', 'paper', 'qubes']);

/** /proc/meminfo figures in KiB (src/report/proc.ts names the meminfo line of each). */
export const reportMemSchema = z.strictObject({
  totalKib: nullableKib,
  freeKib: nullableKib,
  availableKib: nullableKib,
  buffersKib: nullableKib,
  cachedKib: nullableKib,
  shmemKib: nullableKib,
  swapTotalKib: nullableKib,
  swapFreeKib: nullableKib,
  committedAsKib: nullableKib,
  /** Qubes' meminfo-writer publishes only this: MemTotal - MemFree - Buffers - Cached + swap used. */
  usedKib: nullableKib,
});

/** Cumulative counters since the guest booted (/proc/vmstat), in events or pages. */
export const reportCountersSchema = z.strictObject({
  pswpin: nullableCounter,
  pswpout: nullableCounter,
  pgmajfault: nullableCounter,
  /** workingset_refault_anon + workingset_refault_file (or the older workingset_refault). */
  workingsetRefault: nullableCounter,
  oomKill: nullableCounter,
});

/** /proc/pressure/memory: averages in percent, totals in microseconds stalled since boot. */
export const reportPressureSchema = z.strictObject({
  someAvg10: z.number().min(0).max(PSI_AVG_MAX_BP / 100),
  fullAvg10: z.number().min(0).max(PSI_AVG_MAX_BP / 100),
  someTotalUs: counterSchema,
  fullTotalUs: counterSchema,
});

/** The GuestReport type (src/report/types.ts) is inferred from this: one definition. */
export const guestReportSchema = z.strictObject({
  format: reportFormatSchema,
  /** Publisher's sequence number (v1); null for formats without one. */
  seq: nullableCounter,
  /** Seconds since the guest booted; a smaller value than last time means the guest rebooted. */
  uptimeS: nullableCounter,
  mem: reportMemSchema,
  counters: reportCountersSchema,
  pressure: reportPressureSchema.nullable(),
  /** The balloon driver's own view (info/current_kb), when published. */
  balloonCurrentKib: nullableKib,
});

type Mem = z.infer<typeof reportMemSchema>;

/**
 * Memory figures that cannot exceed MemTotal / SwapTotal. Only hard invariants of the kernel's
 * accounting are checked here; plausibility (Committed_AS far above memory is normal with
 * overcommit) is left to the bounds and to the policy's max.
 */
export function consistencyProblem(
  mem: Pick<Mem, 'totalKib' | 'freeKib' | 'availableKib' | 'buffersKib' | 'cachedKib' | 'shmemKib' | 'swapTotalKib' | 'swapFreeKib'>,
): string | null {
  const t = mem.totalKib;
  if (t !== null) {
    if (t === 0) return 'MemTotal is 0';
    const parts: [string, number | null][] = [
      ['MemFree', mem.freeKib],
      ['MemAvailable', mem.availableKib],
      ['Buffers', mem.buffersKib],
      ['Cached', mem.cachedKib],
      ['Shmem', mem.shmemKib],
    ];
    for (const [name, v] of parts) if (v !== null && v > t) return `${name} ${v} kB exceeds MemTotal ${t} kB`;
  }
  if (mem.swapTotalKib !== null && mem.swapFreeKib !== null && mem.swapFreeKib > mem.swapTotalKib)
    return `SwapFree ${mem.swapFreeKib} kB exceeds SwapTotal ${mem.swapTotalKib} kB`;
  return null;
}

/** Qubes' "used" figure from meminfo fields, or null when one of them is unknown. */
export function usedKibOf(
  mem: Pick<Mem, 'totalKib' | 'freeKib' | 'buffersKib' | 'cachedKib' | 'swapTotalKib' | 'swapFreeKib'>,
): number | null {
  const { totalKib, freeKib, buffersKib, cachedKib, swapTotalKib, swapFreeKib } = mem;
  if (totalKib === null || freeKib === null || buffersKib === null || cachedKib === null) return null;
  if (swapTotalKib === null || swapFreeKib === null) return null;
  const used = totalKib - freeKib - buffersKib - cachedKib + (swapTotalKib - swapFreeKib);
  return Math.min(KIB_MAX, Math.max(0, used));
}

/** Turns the first zod issue into our rejection. */
export function rejectionFromZod(error: z.ZodError, what: string): Rejection {
  const issue = error.issues[0];
  if (issue === undefined) return reject('malformed_line', `${what}: invalid`);
  const field = issue.path.map(String).join('.') || what;
  switch (issue.code) {
    case 'unrecognized_keys':
      return reject('unknown_key', `${what}: unknown key ${issue.keys.map((k) => JSON.stringify(k.slice(0, 40))).join(', ')}`);
    case 'invalid_type':
      return reject('missing_field', `${what}: ${field} is missing`);
    case 'too_big':
    case 'too_small':
      return reject('out_of_range', `${what}: ${field} out of range (${issue.message})`);
    case 'custom':
      return reject('inconsistent', `${what}: ${issue.message}`);
    case 'invalid_value':
      return reject('bad_version', `${what}: ${field}: ${issue.message}`);
    default:
      return reject('out_of_range', `${what}: ${field}: ${issue.message}`);
  }
}
