/**
 * The trust stage: a guest's report is a claim, checked against facts the guest cannot forge
 * before anything uses it. What the hypervisor says the domain holds (tot_pages), the target we
 * set and its static-max bound the memory a report may describe; cumulative counters only go
 * back when the guest rebooted (its uptime goes back too). A report that fails a check is
 * rejected with a reason and the domain is treated as having no report (docs/policy.md, "What
 * a guest can and cannot do").
 */
import type { GuestReport } from '../report/types.js';
import type { Sample } from './state.js';

/** A report may describe a little more than tot_pages shows (it can be a moment old). */
const SLACK_KIB = 4 * 1024;
/** How long the most a domain held is remembered, for reports taken while it was shrinking. */
export const HELD_PEAK_MS = 30_000;

export interface Confirmed {
  /** The most the hypervisor saw the domain hold recently (tot_pages * 4, videoram included). */
  heldPeakKib: number;
  /** memory/target, written by us; null when absent. */
  targetKib: number | null;
  /** static-max: the most it can ever hold. */
  staticMaxKib: number;
}

/** The most memory a report may describe as the guest's RAM. */
export function ramBoundKib(c: Confirmed): number {
  const held = Math.max(c.heldPeakKib, c.targetKib ?? 0);
  return held + Math.max(SLACK_KIB, held / 32);
}

function over(name: string, v: number | null, bound: number): string | null {
  return v !== null && v > bound ? `${name} ${v} kB is more than the domain holds (at most ${Math.round(bound)} kB)` : null;
}

function back(name: string, prev: number | null, next: number | null): string | null {
  return prev !== null && next !== null && next < prev ? `${name} went back (${prev} -> ${next}) while the guest's uptime went on` : null;
}

/**
 * Why this report cannot be true, or null when it is consistent.
 * @param last the last trusted report's sample (counters), or null.
 */
export function reportProblem(r: GuestReport, c: Confirmed, last: Sample | null, uptimeNow: number | null): string | null {
  const bound = ramBoundKib(c);
  const m = r.mem;
  const p =
    over('MemTotal', m.totalKib, bound) ??
    over('the balloon current_kb', r.balloonCurrentKib, bound) ??
    // Qubes' one number is RAM in use plus swap in use; swap is not confirmed by anything, so
    // it may claim at most static-max of it.
    (r.format === 'qubes' ? over('used memory (RAM + swap)', m.usedKib, bound + c.staticMaxKib) : null);
  if (p) return p;
  // Counters are cumulative since boot: going back without the uptime going back is a lie.
  if (last && last.uptimeS !== null && uptimeNow !== null && uptimeNow >= last.uptimeS) {
    return (
      back('pswpin', last.pswpin, r.counters.pswpin) ??
      back('pgmajfault', last.pgmajfault, r.counters.pgmajfault) ??
      back('workingset_refault', last.refault, r.counters.workingsetRefault) ??
      back('the PSI total', last.psiSomeUs, r.pressure?.someTotalUs ?? null)
    );
  }
  return null;
}
