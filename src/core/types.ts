/**
 * The decision core's inputs and outputs. `step(state, observation, policy, now)` is a pure
 * function of these; the daemon, the simulator and the benchmarks all build an Observation,
 * call step, and apply its Actions in order.
 *
 * Units: memory in KiB (as Xen and xenstore use them), time in milliseconds (`now` is injected).
 * Contract shared by src/core, src/daemon and src/sim. Extend freely; do not rename.
 */
import type { GuestReport } from '../report/types.js';

export interface HostObservation {
  /** physinfo total_pages * 4. */
  totalKib: number;
  /** physinfo free_pages * 4 (not counting pages still being scrubbed). */
  freeKib: number;
  /** physinfo scrub_pages * 4: released by a domain, free once Xen has scrubbed them. */
  scrubKib: number;
  /** physinfo outstanding_pages * 4: claimed by domains being built, not yet populated. */
  outstandingKib: number;
}

export interface DomainObservation {
  domid: number;
  name: string;
  /** tot_pages * 4: what the domain holds now. */
  currentKib: number;
  /** max_pages * 4: the hypervisor's hard cap (xc_domain_setmaxmem). */
  maxmemKib: number;
  /** memory/static-max from xenstore; null when absent or unreadable. */
  staticMaxKib: number | null;
  /** memory/target as last read from xenstore; null when absent. */
  targetKib: number | null;
  /** memory/videoram (HVM), counted inside maxmem by libxl; 0 when absent. */
  videoramKib: number;
  /**
   * outstanding_pages * 4: memory claimed for this domain (being built) and not populated yet.
   * Host free memory already excludes it; optional (0 when absent).
   */
  outstandingKib?: number;
  dying: boolean;
  shutdown: boolean;
  hvm: boolean;
  /**
   * The operator holds this domain's target (a pin: `xl mem-set`, `xenballoonctl pin`): the core
   * leaves it as it is and counts what it holds as fixed. Optional (false when absent).
   */
  pinned?: boolean;
  /** The latest valid report and when it arrived (ms, the injected clock); null if none yet. */
  report: GuestReport | null;
  reportAtMs: number | null;
}

/** Memory promised to something that is not a running domain yet (a domain being created). */
export interface ReservationObservation {
  id: string;
  kib: number;
  createdAtMs: number;
  expiresAtMs: number;
}

export interface Observation {
  host: HostObservation;
  domains: DomainObservation[];
  reservations: ReservationObservation[];
}

export type DomainFlag = 'stuck' | 'uncooperative';

export type Action =
  | { kind: 'setMaxmem'; domid: number; kib: number }
  | { kind: 'setTarget'; domid: number; kib: number }
  | { kind: 'flag'; domid: number; flag: DomainFlag; on: boolean };
