/**
 * A snapshot: a host's state written down as JSON (docs/snapshot.md), for `xenballoonctl plan`
 * and for bug reports. Validated with zod; converted to the core's Observation with the guest
 * reports parsed by src/report exactly as the daemon parses them.
 */
import { z } from 'zod';
// The parsers one by one, not report/index.js: that also brings the tracker (node:util).
import { parsePaperReport } from '../report/paper.js';
import { parsePressureText } from '../report/proc.js';
import { parseQubesMeminfo } from '../report/qubes.js';
import type { ReportResult } from '../report/result.js';
import { parseV1 } from '../report/v1.js';
import type { GuestReport } from '../report/types.js';
import type { DomainObservation, Observation } from './types.js';

const kib = z.number().int().min(0).max(2 ** 50);

export const SnapshotReportSchema = z
  .strictObject({
    /** The text of /proc/meminfo (the paper's memory/meminfo). */
    meminfo: z.string().max(65_536).optional(),
    /** The text of /proc/vmstat (counters: swap-in, faults, refaults). */
    vmstat: z.string().max(65_536).optional(),
    /** The text of /proc/uptime. */
    uptime: z.string().max(256).optional(),
    /** The text of /proc/pressure/memory. */
    pressure: z.string().max(4096).optional(),
    /** A v1 record as the guest publishes it in data/xenballoon/report. */
    v1: z.string().max(4096).optional(),
    /** Qubes' one number (KiB) from memory/meminfo. */
    qubes: z.string().max(64).optional(),
    /** How old the report was when the snapshot was taken (ms; default 0). */
    age_ms: z.number().int().min(0).optional(),
  })
  .refine((r) => [r.meminfo, r.v1, r.qubes].filter((x) => x !== undefined).length === 1, {
    message: 'a report needs exactly one of meminfo, v1 or qubes',
  });

export const SnapshotDomainSchema = z.strictObject({
  domid: z.number().int().min(0).max(0x7fef),
  name: z.string().max(256),
  current_kib: kib,
  /** memory/static-max; null or absent when unknown. */
  static_max_kib: kib.nullable().optional(),
  /** memory/target; null or absent when the domain has none. */
  target_kib: kib.nullable().optional(),
  /** The hypervisor's max_pages x 4; default target (or current) + videoram + 1 MiB. */
  maxmem_kib: kib.optional(),
  videoram_kib: kib.optional(),
  dying: z.boolean().optional(),
  shutdown: z.boolean().optional(),
  hvm: z.boolean().optional(),
  report: SnapshotReportSchema.nullable().optional(),
});

export const SnapshotSchema = z.strictObject({
  /** The clock the snapshot was taken at (ms); default 0. */
  now_ms: z.number().int().min(0).optional(),
  host: z.strictObject({
    total_kib: kib,
    free_kib: kib,
    scrub_kib: kib.optional(),
    outstanding_kib: kib.optional(),
  }),
  domains: z.array(SnapshotDomainSchema).max(100_000),
  reservations: z
    .array(
      z.strictObject({
        id: z.string().min(1).max(128),
        kib: kib,
        /** Age when the snapshot was taken (ms; default 0). */
        age_ms: z.number().int().min(0).optional(),
      }),
    )
    .optional(),
});
export type Snapshot = z.output<typeof SnapshotSchema>;

export interface SnapshotObservation {
  observation: Observation;
  nowMs: number;
  /** Reports that did not parse: the domain is planned as if it had none (as the daemon would). */
  rejected: { domid: number; name: string; reason: string }[];
}

function parseSnapshotReport(r: z.output<typeof SnapshotReportSchema>): ReportResult {
  let result: ReportResult;
  if (r.v1 !== undefined) result = parseV1(r.v1);
  else if (r.qubes !== undefined) result = parseQubesMeminfo(r.qubes);
  else result = parsePaperReport({ meminfo: r.meminfo ?? '', vmstat: r.vmstat ?? null, uptime: r.uptime ?? null });
  if (!result.ok || r.pressure === undefined || result.report.pressure !== null) return result;
  const pressure = parsePressureText(r.pressure);
  if (!pressure.ok) return pressure;
  const p = pressure.value;
  const report: GuestReport = {
    ...result.report,
    pressure: { someAvg10: p.someAvg10Bp / 100, fullAvg10: p.fullAvg10Bp / 100, someTotalUs: p.someTotalUs, fullTotalUs: p.fullTotalUs },
  };
  return { ok: true, report };
}

export function observationFromSnapshot(s: Snapshot): SnapshotObservation {
  const nowMs = s.now_ms ?? 0;
  const rejected: SnapshotObservation['rejected'] = [];
  const domains: DomainObservation[] = s.domains.map((d) => {
    let report: GuestReport | null = null;
    let reportAtMs: number | null = null;
    if (d.report) {
      const parsed = parseSnapshotReport(d.report);
      if (parsed.ok) {
        report = parsed.report;
        reportAtMs = nowMs - (d.report.age_ms ?? 0);
      } else {
        rejected.push({ domid: d.domid, name: d.name, reason: `${parsed.reason}: ${parsed.detail}` });
      }
    }
    const target = d.target_kib ?? null;
    const videoram = d.videoram_kib ?? 0;
    return {
      domid: d.domid,
      name: d.name,
      currentKib: d.current_kib,
      maxmemKib: d.maxmem_kib ?? (target ?? d.current_kib) + videoram + 1024,
      staticMaxKib: d.static_max_kib ?? null,
      targetKib: target,
      videoramKib: videoram,
      dying: d.dying ?? false,
      shutdown: d.shutdown ?? false,
      hvm: d.hvm ?? false,
      report,
      reportAtMs,
    };
  });
  return {
    nowMs,
    rejected,
    observation: {
      host: {
        totalKib: s.host.total_kib,
        freeKib: s.host.free_kib,
        scrubKib: s.host.scrub_kib ?? 0,
        outstandingKib: s.host.outstanding_kib ?? 0,
      },
      domains,
      reservations: (s.reservations ?? []).map((r) => ({
        id: r.id,
        kib: r.kib,
        createdAtMs: nowMs - (r.age_ms ?? 0),
        expiresAtMs: Number.MAX_SAFE_INTEGER,
      })),
    },
  };
}
