/**
 * Why the core decided what it did: one record for the host, one per domain, one per
 * reservation. `xenballoonctl explain/status/plan`, the daemon's logs and the simulator's
 * launcher all read this. Memory in KiB, times in ms.
 */
import type { ReportFormat } from '../report/types.js';
import type { Estimator } from '../policy/schema.js';
import type { Rates } from './state.js';

/** Which limit set the domain's allocation (before smoothing). */
export type Bound =
  /** its floor (min, or min_usable above its kernel) */
  | 'min'
  /** its ceiling (max / static-max) */
  | 'max'
  /** its need (estimate + headroom), fully met */
  | 'need'
  /** memory was short: it got what it demonstrably uses, and a share of the rest of its need */
  | 'use'
  /** memory was short: it got a weighted share of what was contested */
  | 'share'
  /** its need is unknown (no report yet): target held */
  | 'hold'
  /** its trusted report is stale or rejected: its target decays to what it last used */
  | 'decay'
  /** it cannot shrink: counted at what it holds */
  | 'stuck'
  /** it could not grow: offered no more than it holds until the retry time */
  | 'ceiling'
  /** not managed: its memory counts as fixed */
  | 'unmanaged';

/** What kept the new target from being the allocation this step. */
export type Limiter =
  | 'none'
  /** change smaller than the hysteresis */
  | 'deadband'
  /** shrink limited by rate.down */
  | 'rate-down'
  /** growth limited by rate.up */
  | 'rate-up'
  /** growth limited by memory free now (two-phase: grow only into freed memory) */
  | 'free-memory'
  /** stuck: its target is left for it to reach */
  | 'stuck';

export type UnmanagedReason = 'dom0' | 'policy' | 'pinned' | 'dying' | 'shutdown' | 'building' | 'invalid';

export type ReportState = 'fresh' | 'stale' | 'none';

export interface DomainExplanation {
  domid: number;
  name: string;
  managed: boolean;
  unmanagedReason: UnmanagedReason | null;
  /** What it holds now (tot_pages, less videoram). */
  currentKib: number;
  /** memory/target as observed; null if absent. */
  targetKib: number | null;
  /** The target after this step (equal to targetKib when unchanged); null when unmanaged. */
  newTargetKib: number | null;
  /** Where the allocation wants it (the new target moves toward it). */
  desiredKib: number | null;
  /** Estimate + headroom (after pressure), clamped to [min, max]; null when unknown. */
  needKib: number | null;
  /** Need without headroom: kernel footprint + estimate x factor + pressure boost. */
  coreNeedKib: number | null;
  /**
   * What it demonstrably uses (kernel footprint + memory in use + swap in use + pressure boost +
   * min_headroom), clamped to [min, need]: met before anyone's need when memory is short.
   */
  useKib: number | null;
  estimator: Estimator | null;
  /** The estimator's value (guest-visible KiB, before factor). */
  estimateKib: number | null;
  overheadKib: number | null;
  headroomKib: number | null;
  /** Added to the estimate because of pressure (decays after a quiet period). */
  pressureBoostKib: number | null;
  minKib: number | null;
  maxKib: number | null;
  weight: number | null;
  /** desired - min: what it got above its floor. */
  shareKib: number | null;
  bound: Bound;
  limiter: Limiter;
  /**
   * Its weighted fair share of what managed domains can have (policy alone, no report moves it);
   * null when not worked out (every need fit and no floor came from a report).
   */
  fairShareKib: number | null;
  /** Why its current report was rejected by the trust checks (it counts as no report), or null. */
  reportRejected: string | null;
  /** Reports rejected by the trust checks since the core first saw the domain. */
  reportRejections: number;
  /**
   * stuck, uncooperative, pressure, active, hold, stale, reset, no-report; from the trust
   * stage: report-rejected, floor-capped (a report floor lowered to the fair share),
   * claim-capped (need above the fair share, not met), damped (its claims flip), decay.
   */
  flags: string[];
  report: { state: ReportState; ageMs: number | null; format: ReportFormat | null };
  rates: Rates | null;
}

export interface HostExplanation {
  totalKib: number;
  /** physinfo free + scrub - outstanding claims. */
  freeKib: number;
  scrubKib: number;
  outstandingKib: number;
  reserveKib: number;
  /** Held (unexpired) reservations. */
  reservedKib: number;
  /** The part of them the allocation set aside (the rest waits for active domains). */
  honouredKib: number;
  /** Memory of unmanaged domains (current + growth they were promised). */
  fixedKib: number;
  /** What managed domains hold. */
  managedKib: number;
  /** free + managed - reserve - unmanaged growth: what managed domains can share. */
  budgetKib: number;
  /** budget - honoured reservations. */
  allocatableKib: number;
  allocatedKib: number;
  minsKib: number;
  /** Sum of what domains demonstrably use (their use levels, L1). */
  usesKib: number;
  needsKib: number;
  /** needs - allocatable, when positive. */
  shortKib: number;
  /** Allocatable memory nobody was given (kept free). */
  surplusKib: number;
  /** Memory targets above current still promise (after this step). */
  promisedKib: number;
  /** Free memory growth could use this step (after reserve, promises, reservations). */
  growthRoomKib: number;
  /** The minimums alone do not fit. */
  overcommitted: boolean;
}

export type ReservationState = 'ready' | 'pending' | 'impossible' | 'expired';

export interface ReservationExplanation {
  id: string;
  kib: number;
  /**
   * ready: free memory (less the reserve and what targets still promise) covers this and every
   * earlier reservation now; create the domain. pending: not yet, memory is being freed (or
   * kept for domains under pressure, see reason). impossible: even with every running domain at
   * its floor it does not fit (reason says by how much). expired: past expiresAtMs, ignored.
   */
  state: ReservationState;
  reason: string | null;
  ageMs: number;
}

/** A domain whose current report the trust checks rejected (cheap: built every step). */
export interface UntrustedReport {
  domid: number;
  name: string;
  reason: string;
  /** Rejections since the core first saw the domain. */
  count: number;
}

export interface Explanation {
  atMs: number;
  intervalMs: number;
  /** Managed domains whose current report was rejected (it counts as no report). */
  untrusted: UntrustedReport[];
  host: HostExplanation;
  domains: DomainExplanation[];
  reservations: ReservationExplanation[];
}
