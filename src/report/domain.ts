/**
 * Which report a domain published, read from the keys the daemon watches. Paths are relative
 * to the domain's home, /local/domain/<domid>.
 */
import { parsePaperReport } from './paper.js';
import { parseQubesMeminfo } from './qubes.js';
import type { ReportResult } from './result.js';
import type { GuestValue } from './text.js';
import { parseV1 } from './v1.js';

export const REPORT_PATHS = {
  /** Our v1 record (xenballoon-report). */
  v1: 'data/xenballoon/report',
  /** The paper's raw /proc/meminfo, or Qubes' one number. */
  meminfo: 'memory/meminfo',
  /** The paper's raw /proc/vmstat. */
  vmstat: 'memory/vmstat',
  /** The paper's /proc/uptime. */
  uptime: 'memory/uptime',
} as const;

/** Absolute path of a report key for a domain. */
export function reportPath(domid: number, key: keyof typeof REPORT_PATHS): string {
  return `/local/domain/${domid}/${REPORT_PATHS[key]}`;
}

/** The values read at REPORT_PATHS; null/undefined when the node is absent. */
export interface DomainReportValues {
  v1?: GuestValue | null;
  meminfo?: GuestValue | null;
  vmstat?: GuestValue | null;
  uptime?: GuestValue | null;
}

function present(v: GuestValue | null | undefined): v is GuestValue {
  return v !== null && v !== undefined && v.length > 0;
}

/**
 * Parses whatever the domain published: the v1 record when there is one (a bad v1 record is
 * rejected, not replaced by an older format), else memory/meminfo as Qubes' one number or the
 * paper's raw text. Returns null when nothing was published yet (absent or empty nodes, e.g.
 * ones dom0 pre-created): that is not the guest's fault and must not count as a rejection.
 */
export function parseDomainReport(values: DomainReportValues): ReportResult | null {
  if (present(values.v1)) return parseV1(values.v1);
  if (!present(values.meminfo)) return null;
  // /proc/meminfo text always has "Name:" lines; Qubes' value is a bare number.
  const m = values.meminfo;
  const hasColon = typeof m === 'string' ? m.includes(':') : m.includes(0x3a);
  return hasColon ? parsePaperReport({ meminfo: m, vmstat: values.vmstat, uptime: values.uptime }) : parseQubesMeminfo(m);
}
