/**
 * The v1 guest record (docs/guest-protocol.md): what xenballoon-report writes to
 * data/xenballoon/report. `v=1` on the first line, then `key=value` lines in a fixed order,
 * each value a decimal integer; optional keys are left out when the guest's kernel lacks them.
 *
 * formatV1 produces byte-for-byte what native/stats.c xb_format_v1 produces (tests check it on
 * the same /proc input); parseV1 is the daemon's strict reader.
 */
import { z } from 'zod';
import { COUNTER_MAX, PSI_AVG_MAX_BP, V1_MAX_BYTES } from './limits.js';
import type { MeminfoFields, PressureFields, VmstatCounters } from './proc.js';
import { quote, reject, type Parsed, type ReportResult } from './result.js';
import { consistencyProblem, counterSchema, kibSchema, rejectionFromZod, usedKibOf } from './schema.js';
import { checkGuestText, decimal, splitLines, type GuestValue } from './text.js';
import type { GuestReport } from './types.js';

/** Everything a v1 record carries, flat, in the record's units. null = key left out. */
export interface V1Record {
  seq: number;
  uptimeS: number;
  memTotalKib: number;
  memFreeKib: number;
  memAvailableKib: number | null;
  buffersKib: number;
  cachedKib: number;
  shmemKib: number | null;
  swapTotalKib: number;
  swapFreeKib: number;
  committedAsKib: number;
  balloonCurrentKib: number | null;
  pswpin: number | null;
  pswpout: number | null;
  pgmajfault: number | null;
  workingsetRefault: number | null;
  oomKill: number | null;
  /** The four PSI fields are all present or all null. Averages in hundredths of a percent. */
  psiSomeAvg10Bp: number | null;
  psiFullAvg10Bp: number | null;
  psiSomeTotalUs: number | null;
  psiFullTotalUs: number | null;
}

const psiAvgSchema = z.number().int().min(0).max(PSI_AVG_MAX_BP);

/** The record's keys in publication order; the order is part of the format. */
const V1_FIELDS = [
  ['seq', 'seq', counterSchema],
  ['uptime_s', 'uptimeS', counterSchema],
  ['mem_total_kib', 'memTotalKib', kibSchema],
  ['mem_free_kib', 'memFreeKib', kibSchema],
  ['mem_available_kib', 'memAvailableKib', kibSchema.optional()],
  ['buffers_kib', 'buffersKib', kibSchema],
  ['cached_kib', 'cachedKib', kibSchema],
  ['shmem_kib', 'shmemKib', kibSchema.optional()],
  ['swap_total_kib', 'swapTotalKib', kibSchema],
  ['swap_free_kib', 'swapFreeKib', kibSchema],
  ['committed_as_kib', 'committedAsKib', kibSchema],
  ['balloon_current_kib', 'balloonCurrentKib', kibSchema.optional()],
  ['pswpin', 'pswpin', counterSchema.optional()],
  ['pswpout', 'pswpout', counterSchema.optional()],
  ['pgmajfault', 'pgmajfault', counterSchema.optional()],
  ['workingset_refault', 'workingsetRefault', counterSchema.optional()],
  ['oom_kill', 'oomKill', counterSchema.optional()],
  ['psi_some_avg10_bp', 'psiSomeAvg10Bp', psiAvgSchema.optional()],
  ['psi_full_avg10_bp', 'psiFullAvg10Bp', psiAvgSchema.optional()],
  ['psi_some_total_us', 'psiSomeTotalUs', counterSchema.optional()],
  ['psi_full_total_us', 'psiFullTotalUs', counterSchema.optional()],
] as const satisfies readonly (readonly [string, keyof V1Record, z.ZodType])[];

type V1Key = (typeof V1_FIELDS)[number][0];
export const V1_KEYS: readonly V1Key[] = V1_FIELDS.map(([key]) => key);

const v1Schema = z.strictObject(
  Object.fromEntries(V1_FIELDS.map(([key, , schema]) => [key, schema])) as {
    [F in (typeof V1_FIELDS)[number] as F[0]]: F[2];
  },
);

/** The record's meminfo figures, as the other formats carry them. */
function memOf(r: V1Record): MeminfoFields {
  return {
    totalKib: r.memTotalKib,
    freeKib: r.memFreeKib,
    availableKib: r.memAvailableKib,
    buffersKib: r.buffersKib,
    cachedKib: r.cachedKib,
    shmemKib: r.shmemKib,
    swapTotalKib: r.swapTotalKib,
    swapFreeKib: r.swapFreeKib,
    committedAsKib: r.committedAsKib,
  };
}

/** The rules of the format beyond each field's own range: the reader and the writer share them. */
function recordProblem(r: V1Record): string | null {
  const psi = [r.psiSomeAvg10Bp, r.psiFullAvg10Bp, r.psiSomeTotalUs, r.psiFullTotalUs].filter((x) => x !== null).length;
  if (psi !== 0 && psi !== 4) return 'PSI fields must be all present or all absent';
  return consistencyProblem(memOf(r));
}

const KEY_LINE = /^([a-z0-9_]{1,32})=(.*)$/;

/** Reads a v1 record strictly into its fields. */
export function parseV1Record(input: GuestValue): Parsed<V1Record> {
  const text = checkGuestText(input, V1_MAX_BYTES);
  if (!text.ok) return text;
  if (!text.value.endsWith('\n')) return reject('malformed_line', 'record does not end with a newline');
  const lines = splitLines(text.value);
  if (!lines.ok) return lines;
  const [first, ...rest] = lines.value;
  if (first !== 'v=1') {
    const v = /^v=(.*)$/.exec(first ?? '');
    return reject('bad_version', v ? `version ${quote(v[1] ?? '')} is not supported (this daemon reads v=1)` : 'first line is not v=1');
  }
  const values: Record<string, number> = Object.create(null) as Record<string, number>;
  for (const [i, line] of rest.entries()) {
    const m = KEY_LINE.exec(line);
    if (m === null) return reject('malformed_line', `line ${i + 2}: ${quote(line)}`);
    const [, key = '', raw = ''] = m;
    if (key in values || key === 'v') return reject('duplicate_key', `${quote(key)} appears twice`);
    // Canonical decimal only: no sign, no leading zeros, no spaces.
    if (!/^(0|[1-9][0-9]*)$/.test(raw)) return reject('bad_number', `${key}=${quote(raw)} is not a decimal integer`);
    const n = decimal(raw, COUNTER_MAX);
    if (typeof n !== 'number') return reject('out_of_range', `${key}=${quote(raw)} is too large`);
    values[key] = n;
  }
  const checked = v1Schema.safeParse(values);
  if (!checked.success) return rejectionFromZod(checked.error, 'v1 record');
  const data: Record<string, number | undefined> = checked.data;
  // The schema made every required key present, so only optional ones can become null.
  const record = Object.fromEntries(V1_FIELDS.map(([key, field]) => [field, data[key] ?? null])) as unknown as V1Record;
  const problem = recordProblem(record);
  if (problem !== null) return reject('inconsistent', `v1 record: ${problem}`);
  return { ok: true, value: record };
}

/** The GuestReport a v1 record stands for. */
export function reportFromV1(r: V1Record): GuestReport {
  const mem = memOf(r);
  const psi =
    r.psiSomeAvg10Bp !== null && r.psiFullAvg10Bp !== null && r.psiSomeTotalUs !== null && r.psiFullTotalUs !== null
      ? {
          someAvg10: r.psiSomeAvg10Bp / 100,
          fullAvg10: r.psiFullAvg10Bp / 100,
          someTotalUs: r.psiSomeTotalUs,
          fullTotalUs: r.psiFullTotalUs,
        }
      : null;
  return {
    format: 'v1',
    seq: r.seq,
    uptimeS: r.uptimeS,
    mem: { ...mem, usedKib: usedKibOf(mem) },
    counters: {
      pswpin: r.pswpin,
      pswpout: r.pswpout,
      pgmajfault: r.pgmajfault,
      workingsetRefault: r.workingsetRefault,
      oomKill: r.oomKill,
    },
    pressure: psi,
    balloonCurrentKib: r.balloonCurrentKib,
  };
}

/** The daemon's reader of data/xenballoon/report. Never throws. */
export function parseV1(input: GuestValue): ReportResult {
  const r = parseV1Record(input);
  return r.ok ? { ok: true, report: reportFromV1(r.value) } : r;
}

/**
 * Encodes a record exactly as xenballoon-report does. Throws RangeError when the record breaks
 * the format's rules (a bug in the caller, e.g. the simulator passing a fraction): the result
 * is always a record parseV1 accepts.
 */
export function formatV1(r: V1Record): string {
  let out = 'v=1\n';
  for (const [key, field, schema] of V1_FIELDS) {
    const v = r[field];
    if (v === null || v === undefined) {
      if (!schema.safeParse(undefined).success) throw new RangeError(`formatV1: ${field} is required`);
      continue;
    }
    if (!schema.safeParse(v).success) throw new RangeError(`formatV1: ${field}=${String(v)} is not a valid ${key}`);
    out += `${key}=${v}\n`;
  }
  const problem = recordProblem(r);
  if (problem !== null) throw new RangeError(`formatV1: ${problem}`);
  return out;
}

/** What xenballoon-report reads from one guest, as text. */
export interface ProcSample {
  meminfo: MeminfoFields;
  uptimeS: number;
  vmstat: VmstatCounters | null;
  pressure: PressureFields | null;
  balloonCurrentKib: number | null;
}

/**
 * The record xenballoon-report builds from a sample (a port of native/stats.c xb_collect):
 * requires the fields the format requires, and clamps the figures the kernel reads without a
 * common lock (MemFree and friends to MemTotal, SwapFree to SwapTotal).
 */
export function v1RecordFromSample(s: ProcSample, seq: number): Parsed<V1Record> {
  const m = s.meminfo;
  const required = {
    MemTotal: m.totalKib, MemFree: m.freeKib, Buffers: m.buffersKib, Cached: m.cachedKib,
    SwapTotal: m.swapTotalKib, SwapFree: m.swapFreeKib, Committed_AS: m.committedAsKib,
  };
  for (const [name, v] of Object.entries(required)) if (v === null) return reject('missing_field', `meminfo has no ${name}`);
  const total = m.totalKib as number;
  if (total === 0) return reject('inconsistent', 'MemTotal is 0');
  const clamp = (v: number | null, max: number) => (v === null ? null : Math.min(v, max));
  const swapTotal = m.swapTotalKib as number;
  const psi = s.pressure;
  return {
    ok: true,
    value: {
      seq,
      uptimeS: s.uptimeS,
      memTotalKib: total,
      memFreeKib: clamp(m.freeKib, total) as number,
      memAvailableKib: clamp(m.availableKib, total),
      buffersKib: clamp(m.buffersKib, total) as number,
      cachedKib: clamp(m.cachedKib, total) as number,
      shmemKib: clamp(m.shmemKib, total),
      swapTotalKib: swapTotal,
      swapFreeKib: clamp(m.swapFreeKib, swapTotal) as number,
      committedAsKib: m.committedAsKib as number,
      balloonCurrentKib: s.balloonCurrentKib,
      pswpin: s.vmstat?.pswpin ?? null,
      pswpout: s.vmstat?.pswpout ?? null,
      pgmajfault: s.vmstat?.pgmajfault ?? null,
      workingsetRefault: s.vmstat?.workingsetRefault ?? null,
      oomKill: s.vmstat?.oomKill ?? null,
      psiSomeAvg10Bp: psi?.someAvg10Bp ?? null,
      psiFullAvg10Bp: psi?.fullAvg10Bp ?? null,
      psiSomeTotalUs: psi?.someTotalUs ?? null,
      psiFullTotalUs: psi?.fullTotalUs ?? null,
    },
  };
}
