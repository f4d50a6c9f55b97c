/**
 * The decision core: `step(state, observation, policy, nowMs)` -> { state, actions, explanation }.
 * Pure (no clock, file or socket), deterministic, O(n log n) in the number of domains. The
 * daemon, the simulator and the benchmarks all run this same code. docs/policy.md explains the
 * algorithm and its formulas.
 */
export { step, type StepResult } from './step.js';
export { initialState, type CoreState, type DomainState, type Rates, type Sample } from './state.js';
export type {
  Bound,
  DomainExplanation,
  Explanation,
  HostExplanation,
  Limiter,
  ReportState,
  ReservationExplanation,
  ReservationState,
  UnmanagedReason,
} from './explain.js';
export type {
  Action,
  DomainFlag,
  DomainObservation,
  HostObservation,
  Observation,
  ReservationObservation,
} from './types.js';
export { xenlinuxMinimumKib, resolveLimits } from './limits.js';
export { estimate, estimateWithFallback } from './need.js';
export { waterfill, waterfillPriced } from './waterfill.js';
export { allocate } from './allocate.js';
export { GUEST_FREE_MARGIN_KIB, MAXMEM_SLACK_KIB } from './domain.js';
export { observationFromSnapshot, SnapshotSchema, type Snapshot, type SnapshotObservation } from './snapshot.js';
