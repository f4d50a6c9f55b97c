/**
 * What the core remembers between steps. Immutable: `step` returns a new CoreState and never
 * changes the one it was given, so a caller may keep, compare or replay states.
 */

/** Counters from one guest report, kept to derive rates from consecutive reports. */
export interface Sample {
  atMs: number;
  uptimeS: number | null;
  pswpin: number | null;
  pgmajfault: number | null;
  refault: number | null;
  psiSomeUs: number | null;
  psiSomeAvg10: number | null;
}

/** Rates derived from the two reports at least a second apart; null where unknown. */
export interface Rates {
  swapInKibps: number | null;
  majorFaultsPs: number | null;
  refaultKibps: number | null;
  /** Share of wall time some task was stalled on memory, 0..1. */
  psiSome: number | null;
  /** Time between the two reports the rates come from. */
  spanMs: number;
}

export interface DomainState {
  name: string;
  /** Recent report samples, oldest first (at most a few). */
  samples: readonly Sample[];
  /** reportAtMs of the last report ingested (a new value means a new report). */
  lastReportAtMs: number | null;
  rates: Rates | null;
  /** Times a reboot (counter or uptime going backwards) was seen. */
  resets: number;
  /** The guest kernel's own footprint: memory held minus MemTotal, last measured. */
  overheadKib: number | null;
  /** Added to the estimate under pressure (KiB), decaying after a quiet period; null when none. */
  pressureBoostKib: number | null;
  lastPressureMs: number | null;
  lastRaiseMs: number | null;
  /** Until then the domain counts as active (need rose or pressure seen): its need is protected. */
  activeUntilMs: number | null;
  /** Core need at the last step, to see it rise. */
  lastCoreKib: number | null;
  /** Memory in use (MemTotal - MemFree - Buffers - Cached + Shmem) at the last report. */
  lastInUseKib: number | null;
  /** When a shrink / growth of this domain's target was last written (rate limits). */
  lastDownMs: number | null;
  lastUpMs: number | null;
  /** Progress tracking: when and where the domain last was at, or moved toward, its target. */
  progressAtMs: number;
  progressCurrentKib: number;
  stuck: boolean;
  uncooperative: boolean;
  /** A domain that could not grow is offered at most this much until untilMs. */
  ceiling: { kib: number; untilMs: number } | null;
  /** static-max as last seen (used if xenstore stops showing it). */
  staticMaxKib: number | null;
  /** What the domain held when its last report was taken (to age its MemFree). */
  heldAtReportKib: number | null;
  /** The most the hypervisor saw it hold (tot_pages * 4) lately, and since when (trust.ts). */
  heldPeakKib: number;
  heldPeakAtMs: number;
  /** reportAtMs of the last report that passed the trust checks. */
  lastTrustedAtMs: number | null;
  /** Reports rejected by the trust checks, in all; why the current one was (null: it was not). */
  rejections: number;
  rejectedReason: string | null;
  /**
   * Its use level at its last trusted report, no more than it held then: what a silent guest's
   * target decays to once its report is stale (claims decay).
   */
  lastUseKib: number | null;
  /** Damping: the need at its last report, the direction it last moved, when it reversed. */
  lastNeedKib: number | null;
  needDir: -1 | 0 | 1;
  flipsAtMs: readonly number[];
  /** While damped (its claims flip), its levels are held at their recent peak. */
  dampUntilMs: number | null;
  peakLevels: readonly [number, number, number] | null;
}

export interface CoreState {
  lastStepMs: number | null;
  domains: ReadonlyMap<number, DomainState>;
}

export function initialState(): CoreState {
  return { lastStepMs: null, domains: new Map() };
}
