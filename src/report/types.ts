/**
 * What a guest told us about its memory, after validation (src/report parses every format into
 * this). Every number is finite, non-negative and within the bounds the parser enforces; a field
 * the format does not carry is null, never 0, so the core can tell "zero" from "unknown".
 *
 * Contract shared by src/report (producer), src/core (consumer) and src/sim (producer of
 * simulated reports). Extend freely; do not rename.
 */
export type ReportFormat = 'v1' | 'paper' | 'qubes';

export interface ReportMem {
  totalKib: number | null;
  freeKib: number | null;
  availableKib: number | null;
  buffersKib: number | null;
  cachedKib: number | null;
  shmemKib: number | null;
  swapTotalKib: number | null;
  swapFreeKib: number | null;
  committedAsKib: number | null;
  /** Qubes' meminfo-writer publishes only this: MemTotal - MemFree - Buffers - Cached + swap used. */
  usedKib: number | null;
}

/** Cumulative counters since the guest booted (/proc/vmstat), in events or pages. */
export interface ReportCounters {
  pswpin: number | null;
  pswpout: number | null;
  pgmajfault: number | null;
  /** workingset_refault_anon + workingset_refault_file (or the older workingset_refault). */
  workingsetRefault: number | null;
  oomKill: number | null;
}

/** /proc/pressure/memory: averages in percent, totals in microseconds stalled since boot. */
export interface ReportPressure {
  someAvg10: number;
  fullAvg10: number;
  someTotalUs: number;
  fullTotalUs: number;
}

export interface GuestReport {
  format: ReportFormat;
  /** Publisher's sequence number (v1); null for formats without one. */
  seq: number | null;
  /** Seconds since the guest booted; a smaller value than last time means the guest rebooted. */
  uptimeS: number | null;
  mem: ReportMem;
  counters: ReportCounters;
  pressure: ReportPressure | null;
  /** The balloon driver's own view (info/current_kb), when published. */
  balloonCurrentKib: number | null;
}
