/**
 * The guest-side publisher, behaving like xenballoon-report (native/xenballoon-report.c): it
 * samples the guest every `poll`, publishes when something a controller cares about changed —
 * a memory figure (MemTotal, Committed_AS, MemFree, MemAvailable, swap used, balloon) by
 * `thresholdKib`, paging events (swap-in/out, major faults, refaults) by `thresholdEvents`, any
 * OOM kill, PSI stall time by `thresholdStallUs` — and at least every `heartbeat`, never more
 * often than every `minInterval`. Defaults are the native publisher's.
 */
import type { GuestReport } from '../../report/types.js';

export interface ReporterConfig {
  pollMs: number;
  heartbeatMs: number;
  minIntervalMs: number;
  thresholdKib: number;
  thresholdEvents: number;
  thresholdStallUs: number;
}

export const DEFAULT_REPORTER: ReporterConfig = {
  pollMs: 1000,
  heartbeatMs: 10_000,
  minIntervalMs: 250,
  thresholdKib: 16 * 1024,
  thresholdEvents: 1024,
  thresholdStallUs: 10_000,
};

export class ReportPublisher {
  private seq = 0;
  private last: GuestReport | null = null;
  private lastAtMs = -Infinity;
  private nextPollMs = 0;

  constructor(readonly config: ReporterConfig) {}

  /** Called as time passes; returns a report when one is published now. */
  poll(nowMs: number, sample: (seq: number) => GuestReport): GuestReport | null {
    if (nowMs < this.nextPollMs) return null;
    this.nextPollMs = nowMs + this.config.pollMs;
    const candidate = sample(this.seq + 1);
    const last = this.last;
    if (last !== null) {
      const due = nowMs - this.lastAtMs >= this.config.heartbeatMs || this.significant(last, candidate);
      if (!due || nowMs - this.lastAtMs < this.config.minIntervalMs) return null;
    }
    this.seq += 1;
    this.last = candidate;
    this.lastAtMs = nowMs;
    return candidate;
  }

  private significant(a: GuestReport, b: GuestReport): boolean {
    const t = this.config.thresholdKib;
    const moved = (x: number | null, y: number | null) => Math.abs((x ?? 0) - (y ?? 0)) >= t;
    const swapUsed = (r: GuestReport) => (r.mem.swapTotalKib ?? 0) - (r.mem.swapFreeKib ?? 0);
    if (moved(a.mem.totalKib, b.mem.totalKib) || moved(a.mem.committedAsKib, b.mem.committedAsKib) ||
      moved(a.mem.freeKib, b.mem.freeKib) || moved(a.mem.availableKib, b.mem.availableKib) ||
      Math.abs(swapUsed(a) - swapUsed(b)) >= t || moved(a.balloonCurrentKib, b.balloonCurrentKib)) {
      return true;
    }
    const grew = (x: number | null, y: number | null) => Math.max(0, (y ?? 0) - (x ?? 0));
    if (grew(a.counters.oomKill, b.counters.oomKill) > 0) return true;
    const events = grew(a.counters.pswpin, b.counters.pswpin) + grew(a.counters.pswpout, b.counters.pswpout) +
      grew(a.counters.pgmajfault, b.counters.pgmajfault) + grew(a.counters.workingsetRefault, b.counters.workingsetRefault);
    if (events > 0 && events >= this.config.thresholdEvents) return true;
    const stall = grew(a.pressure?.someTotalUs ?? null, b.pressure?.someTotalUs ?? null);
    return stall > 0 && stall >= this.config.thresholdStallUs;
  }
}
