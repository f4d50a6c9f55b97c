/**
 * "How big a domain can I start now, and after shrinking the others?" (XAPI's
 * host-compute-free-memory, with xenballoond's policy). Answered by the decision core itself: a
 * reservation of a trial size is added to the host and the core says whether it is ready now,
 * honoured (other domains are shrunk for it within their policy), or impossible; a binary search
 * finds the largest size for each, and running the core forward (guests obeying at once, shrinks
 * at the policy's rates) says how long the honoured one takes. Pure: `xenballoonctl capacity`
 * runs it on the daemon's snapshot or on a snapshot file, so both give the same answer as `plan`.
 */
import { initialState, step, type Explanation } from '../core/index.js';
import type { Observation } from '../core/types.js';
import type { Policy } from '../policy/index.js';
import { runUntil } from './settle.js';

export const PROBE_ID = 'capacity-probe';
/** Sizes are searched to the MiB: finer answers mean nothing for a domain's memory= */
const GRAIN_KIB = 1024;

export interface Capacity {
  /** A domain this large can start now: free memory covers it without anyone shrinking. */
  freeNowKib: number;
  /** The largest domain that can start once others shrink within their policy (floors, and idle guests' use less `squeeze`). */
  largestKib: number;
  /** How long until `largestKib` is free, at the policy's rates (guests assumed to follow at once); null past an hour. */
  largestAfterMs: number | null;
  /** What every managed domain at its floor would leave: more than `largestKib` only once busy guests need less. */
  atFloorsKib: number;
  /** For a size asked about: whether and when it could start. */
  size?: { kib: number; state: 'now' | 'after-shrinking' | 'waits-for-busy-guests' | 'impossible'; afterMs: number | null; reason: string | null };
}

function withProbe(obs: Observation, kib: number, nowMs: number): Observation {
  const probe = { id: PROBE_ID, kib, createdAtMs: nowMs + 1, expiresAtMs: Number.MAX_SAFE_INTEGER };
  return { ...obs, reservations: [...obs.reservations, probe] };
}

function judge(obs: Observation, policy: Policy, nowMs: number, kib: number): { e: Explanation; honoured: boolean } {
  const e = step(initialState(), withProbe(obs, kib, nowMs), policy, nowMs).explanation;
  // The probe comes last: it is honoured only if every earlier reservation is too.
  return { e, honoured: e.host.honouredKib >= e.host.reservedKib };
}

function probeState(e: Explanation): string | undefined {
  return e.reservations.find((r) => r.id === PROBE_ID)?.state;
}

/** The largest multiple of GRAIN_KIB in [0, maxKib] for which `ok` holds (ok is monotone). */
function largest(maxKib: number, ok: (kib: number) => boolean): number {
  let lo = 0;
  let hi = Math.floor(maxKib / GRAIN_KIB);
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (ok(mid * GRAIN_KIB)) lo = mid;
    else hi = mid - 1;
  }
  return lo * GRAIN_KIB;
}

function timeToReady(obs: Observation, policy: Policy, nowMs: number, kib: number): number | null {
  if (kib <= 0) return 0;
  const run = runUntil(withProbe(obs, kib, nowMs), policy, nowMs, (r) => probeState(r.explanation) === 'ready');
  return run.reached ? run.elapsedMs : null;
}

export function capacity(obs: Observation, policy: Policy, nowMs: number, sizeKib?: number): Capacity {
  const total = obs.host.totalKib;
  const freeNowKib = largest(total, (k) => probeState(judge(obs, policy, nowMs, k).e) === 'ready');
  const largestKib = Math.max(freeNowKib, largest(total, (k) => {
    const j = judge(obs, policy, nowMs, k);
    return j.honoured && probeState(j.e) !== 'impossible';
  }));
  const atFloorsKib = Math.max(largestKib, largest(total, (k) => probeState(judge(obs, policy, nowMs, k).e) !== 'impossible'));
  const out: Capacity = {
    freeNowKib, largestKib, largestAfterMs: largestKib === freeNowKib ? 0 : timeToReady(obs, policy, nowMs, largestKib), atFloorsKib,
  };
  if (sizeKib !== undefined && sizeKib > 0) {
    const j = judge(obs, policy, nowMs, sizeKib);
    const st = probeState(j.e);
    const reason = j.e.reservations.find((r) => r.id === PROBE_ID)?.reason ?? null;
    if (st === 'ready') out.size = { kib: sizeKib, state: 'now', afterMs: 0, reason: null };
    else if (st === 'impossible') out.size = { kib: sizeKib, state: 'impossible', afterMs: null, reason };
    else if (j.honoured) out.size = { kib: sizeKib, state: 'after-shrinking', afterMs: timeToReady(obs, policy, nowMs, sizeKib), reason };
    else out.size = { kib: sizeKib, state: 'waits-for-busy-guests', afterMs: null, reason };
  }
  return out;
}
