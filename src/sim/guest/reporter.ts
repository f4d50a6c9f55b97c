/**
 * The guest-side publisher, behaving like xenballoon-report: it samples the guest every `poll`,
 * publishes when something a controller cares about changed by more than a threshold (memory
 * figures, new swap-in or OOM kills, pressure), and at least every `heartbeat` otherwise, and
 * never more often than `minInterval`.
 */
import type { GuestReport } from '../../report/types.js';

export interface ReporterConfig {
  pollMs: number;
  heartbeatMs: number;
  minIntervalMs: number;
  /** A memory figure (MemTotal, MemAvailable, Committed_AS, SwapFree) moving this much is news. */
  thresholdKib: number;
  /** PSI some avg10 moving this many points is news. */
  pressurePoints: number;
}

export const DEFAULT_REPORTER: ReporterConfig = {
  pollMs: 1000,
  heartbeatMs: 10_000,
  minIntervalMs: 250,
  thresholdKib: 4096,
  pressurePoints: 1,
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
    if (nowMs - this.lastAtMs < this.config.minIntervalMs) return null;
    const candidate = sample(this.seq + 1);
    if (this.last !== null && nowMs - this.lastAtMs < this.config.heartbeatMs && !this.significant(this.last, candidate)) {
      return null;
    }
    this.seq += 1;
    this.last = candidate;
    this.lastAtMs = nowMs;
    return candidate;
  }

  private significant(a: GuestReport, b: GuestReport): boolean {
    const t = this.config.thresholdKib;
    const moved = (x: number | null, y: number | null) => Math.abs((x ?? 0) - (y ?? 0)) >= t;
    if (moved(a.mem.totalKib, b.mem.totalKib) || moved(a.mem.availableKib, b.mem.availableKib) ||
      moved(a.mem.committedAsKib, b.mem.committedAsKib) || moved(a.mem.swapFreeKib, b.mem.swapFreeKib)) {
      return true;
    }
    if ((b.counters.pswpin ?? 0) > (a.counters.pswpin ?? 0) || (b.counters.oomKill ?? 0) > (a.counters.oomKill ?? 0)) {
      return true;
    }
    const pa = a.pressure?.someAvg10 ?? 0;
    const pb = b.pressure?.someAvg10 ?? 0;
    return Math.abs(pa - pb) >= this.config.pressurePoints;
  }
}
