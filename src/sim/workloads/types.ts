/**
 * A workload is what runs inside a simulated guest: it says how much memory it holds and how it
 * touches it, and advances in time. The guest model turns that into residency, swapping, page
 * cache and stalls, and tells the workload how much of each tick it could actually run (a
 * workload stalled on swap makes less progress, as a real one does).
 *
 * Units: KiB and milliseconds.
 */
export interface Demand {
  /** Anonymous memory its processes hold (pages touched at least once). */
  anonKib: number;
  /** Its share of Committed_AS: everything malloc'd, touched or not. */
  committedKib: number;
  /** Of anonKib, the part it keeps touching now (its anonymous working set). */
  hotAnonKib: number;
  /** How fast it touches that set while running, KiB per ms of run time. */
  anonTouchKibPerMs: number;
  /** File data it keeps re-reading (its file working set). */
  fileWsKib: number;
  /** How fast it reads that set while running, KiB per ms of run time. */
  fileTouchKibPerMs: number;
  /** New file data read through the page cache, KiB per ms of wall time (grows the cache). */
  fileStreamKibPerMs: number;
  /** Of the time it stalls, the share during which all its tasks stall (PSI full vs some). */
  fullStallShare: number;
}

export interface Workload {
  readonly kind: string;
  demand(): Demand;
  /** `wallMs` passed; for `runMs` of it the workload was not stalled on memory. */
  advance(wallMs: number, runMs: number): void;
  /** The OOM killer killed its biggest process: its memory is gone; it restarts later. */
  kill(): void;
  /** Work completed so far in the workload's own unit (eatmem: page writes); absent: not counted. */
  workDone?(): number;
  /**
   * A hostile workload (hostile.ts) publishes its own reports instead of the honest publisher:
   * the report to publish now, or null for none. Absent on honest workloads.
   */
  forge?(nowMs: number, sample: (seq: number) => import('../../report/types.js').GuestReport): import('../../report/types.js').GuestReport | null;
}

export const NO_DEMAND: Demand = Object.freeze({
  anonKib: 0,
  committedKib: 0,
  hotAnonKib: 0,
  anonTouchKibPerMs: 0,
  fileWsKib: 0,
  fileTouchKibPerMs: 0,
  fileStreamKibPerMs: 0,
  fullStallShare: 1,
});

/** Shared by the workloads that come back after an OOM kill (a service manager restarts them). */
export class RestartClock {
  private downMs = 0;

  constructor(private readonly restartAfterMs: number) {}

  kill(): void {
    this.downMs = this.restartAfterMs;
  }

  /** Advances the clock; true while the workload is dead. */
  down(wallMs: number): boolean {
    if (this.downMs <= 0) return false;
    this.downMs -= wallMs;
    return true;
  }

  get isDown(): boolean {
    return this.downMs > 0;
  }
}
