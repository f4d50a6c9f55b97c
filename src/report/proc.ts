/**
 * Strict parsers of raw Linux /proc text: /proc/meminfo, /proc/vmstat, /proc/pressure/memory
 * and /proc/uptime, as the paper's guests published them (memory/meminfo, memory/vmstat,
 * memory/uptime) and as xenballoon-report reads them. Unknown lines are allowed (every kernel
 * version adds some) but must follow the file's grammar; known lines are range- and
 * unit-checked; duplicated keys are refused.
 */
import { z } from 'zod';
import { COUNTER_MAX, KIB_MAX } from './limits.js';
import { quote, reject, type Parsed } from './result.js';
import { counterSchema, kibSchema, rejectionFromZod } from './schema.js';
import { decimal, splitLines } from './text.js';
import type { ReportCounters, ReportMem } from './types.js';

/** The meminfo fields a controller needs (KiB); null when the kernel does not show them. */
export type MeminfoFields = Omit<ReportMem, 'usedKib'>;

/** The /proc/meminfo line each field is read from; complete by type, so no field is forgotten. */
const MEMINFO_LINES = {
  totalKib: 'MemTotal',
  freeKib: 'MemFree',
  availableKib: 'MemAvailable',
  buffersKib: 'Buffers',
  cachedKib: 'Cached',
  shmemKib: 'Shmem',
  swapTotalKib: 'SwapTotal',
  swapFreeKib: 'SwapFree',
  committedAsKib: 'Committed_AS',
} as const satisfies Record<keyof MeminfoFields, string>;
type MeminfoName = (typeof MEMINFO_LINES)[keyof MeminfoFields];
const MEMINFO_NAMES: ReadonlySet<string> = new Set(Object.values(MEMINFO_LINES));

const meminfoKnown = z.looseObject(
  Object.fromEntries([...MEMINFO_NAMES].map((k) => [k, kibSchema.optional()])) as Record<
    MeminfoName,
    z.ZodOptional<typeof kibSchema>
  >,
);

// "Name:   12345 kB" or "HugePages_Total:   0"; names as the kernel writes them.
const MEMINFO_LINE = /^([A-Za-z0-9_()]{1,64}): *([0-9]{1,20})(?: (\S{1,8}))?$/;

/** Parses /proc/meminfo text (already through checkGuestText). */
export function parseMeminfoText(text: string): Parsed<MeminfoFields> {
  const lines = splitLines(text);
  if (!lines.ok) return lines;
  const values: Record<string, number> = Object.create(null) as Record<string, number>;
  const seen = new Set<string>();
  for (const [i, line] of lines.value.entries()) {
    const m = MEMINFO_LINE.exec(line);
    if (m === null) return reject('malformed_line', `meminfo line ${i + 1}: ${quote(line)}`);
    const [, name = '', digits = '', unit] = m;
    if (seen.has(name)) return reject('duplicate_key', `meminfo: ${quote(name)} appears twice`);
    seen.add(name);
    if (unit !== undefined && unit !== 'kB') return reject('bad_unit', `meminfo ${quote(name)}: unit ${quote(unit)}, expected kB`);
    if (!MEMINFO_NAMES.has(name)) continue;
    if (unit === undefined) return reject('bad_unit', `meminfo ${quote(name)}: no unit, expected kB`);
    const n = decimal(digits, COUNTER_MAX);
    if (n === 'syntax') return reject('bad_number', `meminfo ${quote(name)}: ${quote(digits)}`);
    if (n === 'range') return reject('out_of_range', `meminfo ${name}: ${quote(digits)} kB is beyond any memory`);
    values[name] = n;
  }
  const checked = meminfoKnown.safeParse(values);
  if (!checked.success) return rejectionFromZod(checked.error, 'meminfo');
  const out = Object.fromEntries(
    Object.entries(MEMINFO_LINES).map(([field, name]) => [field, values[name] ?? null]),
  ) as MeminfoFields;
  return { ok: true, value: out };
}

/** Counters since boot; null when the kernel does not have them. */
export type VmstatCounters = ReportCounters;

const VMSTAT_KNOWN = [
  'pswpin', 'pswpout', 'pgmajfault', 'oom_kill',
  'workingset_refault', 'workingset_refault_anon', 'workingset_refault_file',
] as const;
type VmstatKnown = (typeof VMSTAT_KNOWN)[number];
const vmstatKnown = z.looseObject(
  Object.fromEntries(VMSTAT_KNOWN.map((k) => [k, counterSchema.optional()])) as Record<
    VmstatKnown,
    z.ZodOptional<typeof counterSchema>
  >,
);
const VMSTAT_LINE = /^([a-z0-9_]{1,64}) ([0-9]{1,20})$/;

/** Parses /proc/vmstat text (already through checkGuestText). */
export function parseVmstatText(text: string): Parsed<VmstatCounters> {
  const lines = splitLines(text);
  if (!lines.ok) return lines;
  const values: Partial<Record<VmstatKnown, number>> = {};
  const seen = new Set<string>();
  for (const [i, line] of lines.value.entries()) {
    const m = VMSTAT_LINE.exec(line);
    if (m === null) return reject('malformed_line', `vmstat line ${i + 1}: ${quote(line)}`);
    const [, name = '', digits = ''] = m;
    if (seen.has(name)) return reject('duplicate_key', `vmstat: ${quote(name)} appears twice`);
    seen.add(name);
    if (!(VMSTAT_KNOWN as readonly string[]).includes(name)) continue;
    const n = decimal(digits, COUNTER_MAX);
    if (typeof n !== 'number') return reject('out_of_range', `vmstat ${name}: ${quote(digits)} is too large`);
    values[name as VmstatKnown] = n;
  }
  const checked = vmstatKnown.safeParse(values);
  if (!checked.success) return rejectionFromZod(checked.error, 'vmstat');
  let refault: number | null = values.workingset_refault ?? null;
  const anon = values.workingset_refault_anon;
  const file = values.workingset_refault_file;
  if (anon !== undefined || file !== undefined) {
    refault = (anon ?? 0) + (file ?? 0);
    if (refault > COUNTER_MAX) return reject('out_of_range', 'vmstat: workingset_refault_anon + _file is too large');
  }
  return {
    ok: true,
    value: {
      pswpin: values.pswpin ?? null,
      pswpout: values.pswpout ?? null,
      pgmajfault: values.pgmajfault ?? null,
      workingsetRefault: refault,
      oomKill: values.oom_kill ?? null,
    },
  };
}

/** /proc/pressure/memory with the averages in basis points (hundredths of a percent). */
export interface PressureFields {
  someAvg10Bp: number;
  fullAvg10Bp: number;
  someTotalUs: number;
  fullTotalUs: number;
}

const PSI_LINE =
  /^(some|full) avg10=([0-9]{1,3})\.([0-9]{2}) avg60=([0-9]{1,3})\.([0-9]{2}) avg300=([0-9]{1,3})\.([0-9]{2}) total=([0-9]{1,20})$/;

/** Parses /proc/pressure/memory text: both the `some` and the `full` line are required. */
export function parsePressureText(text: string): Parsed<PressureFields> {
  const lines = splitLines(text);
  if (!lines.ok) return lines;
  const got: Partial<Record<'some' | 'full', { avgBp: number; totalUs: number }>> = {};
  for (const [i, line] of lines.value.entries()) {
    const m = PSI_LINE.exec(line);
    if (m === null) return reject('malformed_line', `pressure line ${i + 1}: ${quote(line)}`);
    const kind = m[1] as 'some' | 'full';
    if (got[kind] !== undefined) return reject('duplicate_key', `pressure: two '${kind}' lines`);
    const avgs = [2, 4, 6].map((g) => Number(m[g]) * 100 + Number(m[g + 1]));
    if (avgs.some((a) => a > 10_000)) return reject('out_of_range', `pressure ${kind}: an average above 100%`);
    const total = decimal(m[8] ?? '', COUNTER_MAX);
    if (typeof total !== 'number') return reject('out_of_range', `pressure ${kind}: total is too large`);
    got[kind] = { avgBp: avgs[0] as number, totalUs: total };
  }
  if (got.some === undefined) return reject('missing_field', "pressure: no 'some' line");
  if (got.full === undefined) return reject('missing_field', "pressure: no 'full' line");
  return {
    ok: true,
    value: {
      someAvg10Bp: got.some.avgBp,
      fullAvg10Bp: got.full.avgBp,
      someTotalUs: got.some.totalUs,
      fullTotalUs: got.full.totalUs,
    },
  };
}

/** Parses /proc/uptime ("12345.67 890.12") into whole seconds since boot. */
export function parseUptimeText(text: string): Parsed<number> {
  const m = /^([0-9]{1,20})\.[0-9]{2} [0-9]{1,20}\.[0-9]{2}\n?$/.exec(text);
  if (m === null) return reject('malformed_line', `uptime: ${quote(text)}`);
  const s = decimal(m[1] ?? '', COUNTER_MAX);
  if (typeof s !== 'number') return reject('out_of_range', 'uptime: too large');
  return { ok: true, value: s };
}

/** A sysfs KiB value ("131072\n"), e.g. the balloon driver's info/current_kb. */
export function parseSysfsKib(text: string): Parsed<number> {
  const m = /^([0-9]{1,20})\n?$/.exec(text);
  if (m === null) return reject('bad_number', `sysfs value ${quote(text)}`);
  const n = decimal(m[1] ?? '', KIB_MAX);
  if (typeof n !== 'number') return reject('out_of_range', 'sysfs value beyond any memory');
  return { ok: true, value: n };
}
