/**
 * What a domain needs, from its latest report (docs/policy.md has the formulas):
 *
 *   estimate = committed_as | used | available            (guest-visible KiB)
 *   core     = overhead + factor x estimate               (overhead: the kernel's own footprint,
 *                                                          measured as memory held - MemTotal)
 *   core'    = max(core, pressure floor)                  (pressure raises it, fast)
 *   need     = core' + max(headroom x factor x estimate, min_headroom)
 *
 * An estimator whose fields the report lacks falls back to the next one that works
 * (committed_as -> used -> available); with none, the need is unknown and the target is held.
 */
import type { Estimator } from '../policy/schema.js';
import type { DomainSettings } from '../policy/schema.js';
import type { ReportMem } from '../report/types.js';
import type { Rates } from './state.js';

const ORDER: Estimator[] = ['committed_as', 'used', 'available'];

function num(x: number | null | undefined): number | null {
  return typeof x === 'number' && Number.isFinite(x) && x >= 0 ? x : null;
}

/** One estimator's value from a report, or null when the report lacks what it needs. */
export function estimate(estimator: Estimator, mem: ReportMem): number | null {
  switch (estimator) {
    case 'committed_as':
      return num(mem.committedAsKib);
    case 'used': {
      const total = num(mem.totalKib);
      const free = num(mem.freeKib);
      if (total !== null && free !== null) {
        const cached = num(mem.cachedKib) ?? 0;
        const shmem = num(mem.shmemKib) ?? 0;
        // tmpfs/shm pages sit in Cached but cannot be dropped: count them as used.
        const reclaimable = (num(mem.buffersKib) ?? 0) + Math.max(0, cached - shmem);
        const swapTotal = num(mem.swapTotalKib);
        const swapFree = num(mem.swapFreeKib);
        const swapUsed = swapTotal !== null && swapFree !== null ? Math.max(0, swapTotal - swapFree) : 0;
        return Math.max(0, total - free - reclaimable) + swapUsed;
      }
      return num(mem.usedKib);
    }
    case 'available': {
      const total = num(mem.totalKib);
      const avail = num(mem.availableKib);
      return total !== null && avail !== null ? Math.max(0, total - avail) : null;
    }
  }
}

/**
 * Memory the guest's kernel cannot just drop: MemTotal - MemFree - Buffers - (Cached - Shmem),
 * i.e. anonymous memory, tmpfs and kernel memory in RAM (swap not counted). Qubes' one number
 * (which includes swap in use) when that is all there is.
 */
export function inUseKib(mem: ReportMem): number | null {
  const total = num(mem.totalKib);
  const free = num(mem.freeKib);
  if (total !== null && free !== null) {
    const cached = num(mem.cachedKib) ?? 0;
    const reclaimable = (num(mem.buffersKib) ?? 0) + Math.max(0, cached - (num(mem.shmemKib) ?? 0));
    return Math.max(0, total - free - reclaimable);
  }
  return num(mem.usedKib);
}

/** Page cache the guest's kernel could drop: Buffers + (Cached - Shmem); null when unknown. */
export function reclaimableCacheKib(mem: ReportMem): number | null {
  const cached = num(mem.cachedKib);
  const buffers = num(mem.buffersKib);
  if (cached === null && buffers === null) return null;
  return (buffers ?? 0) + Math.max(0, (cached ?? 0) - (num(mem.shmemKib) ?? 0));
}

/** What the guest uses in RAM or in swap: in use + swap used (the `used` estimate, factor 1). */
export function usedKib(mem: ReportMem): number | null {
  return estimate('used', mem);
}

/**
 * A domain's use level: kernel footprint + used (RAM and swap) + `need.cache_in_use` of its page
 * cache + min_headroom. What a guest demonstrably holds on to, as opposed to what Committed_AS
 * promised it; page cache counts in part because only the re-read part of it is a working set.
 */
export function useLevelKib(settings: DomainSettings, mem: ReportMem, overheadKib: number, used: number): number {
  const cache = reclaimableCacheKib(mem) ?? 0;
  return overheadKib + used + settings.need.cache_in_use * cache + settings.need.min_headroom;
}

/**
 * The least memory (above the kernel's own footprint) that keeps the guest out of the OOM
 * killer: what it uses that cannot go to swap (in use - free swap), when positive.
 */
export function unswappableKib(mem: ReportMem): number | null {
  const used = inUseKib(mem);
  if (used === null) return null;
  const swapFree = num(mem.swapFreeKib) ?? 0;
  return Math.max(0, used - swapFree);
}

/** Each estimator followed by its fallbacks (built once: the core asks for every domain). */
const FALLBACKS: Record<Estimator, readonly Estimator[]> = {
  committed_as: [],
  used: [],
  available: [],
};
for (const e of ORDER) FALLBACKS[e] = [e, ...ORDER.filter((x) => x !== e)];

/** The configured estimator, or the first fallback the report supports. */
export function estimateWithFallback(preferred: Estimator, mem: ReportMem): { estimator: Estimator; kib: number } | null {
  for (const e of FALLBACKS[preferred]) {
    const kib = estimate(e, mem);
    if (kib !== null) return { estimator: e, kib };
  }
  return null;
}

/**
 * The guest kernel's own footprint: memory the domain holds that the guest's MemTotal does not
 * show. `heldKib` should come from the same instant as MemTotal (the balloon driver's
 * current_kb in the report), or be the hypervisor's count when the domain is not ballooning.
 * Implausible values (negative, more than half of what it holds) are refused.
 */
export function measureOverhead(heldKib: number | null, mem: ReportMem): number | null {
  const total = num(mem.totalKib);
  if (heldKib === null || total === null) return null;
  const overhead = heldKib - total;
  if (overhead < 0 || overhead > heldKib / 2) return null;
  return overhead;
}

export interface PressureReading {
  pressured: boolean;
  /** Which signals crossed their thresholds (for explanations). */
  signals: readonly string[];
}

function over(v: number | null, t: number | null): boolean {
  return v !== null && t !== null && v > t;
}

const CALM: PressureReading = Object.freeze({ pressured: false, signals: Object.freeze([]) });

export function readPressure(rates: Rates | null, s: DomainSettings['pressure']): PressureReading {
  // Most domains are calm most of the time: they share one reading (nothing allocated).
  if (
    !rates ||
    !(over(rates.swapInKibps, s.swap_in) || over(rates.majorFaultsPs, s.major_faults) ||
      over(rates.refaultKibps, s.refaults) || over(rates.psiSome, s.psi_some))
  ) {
    return CALM;
  }
  const signals: string[] = [];
  if (over(rates.swapInKibps, s.swap_in)) signals.push('swap-in');
  if (over(rates.majorFaultsPs, s.major_faults)) signals.push('major-faults');
  if (over(rates.refaultKibps, s.refaults)) signals.push('refaults');
  if (over(rates.psiSome, s.psi_some)) signals.push('psi');
  return { pressured: true, signals };
}

/** How much a pressured domain's need is raised above what it holds, per raise. */
export function pressureStepKib(settings: DomainSettings, currentKib: number): number {
  const step = settings.pressure.step;
  const kib = step.kind === 'kib' ? step.kib : step.fraction * currentKib;
  return Math.max(kib, settings.need.min_headroom);
}

export function headroomKib(settings: DomainSettings, scaledEstimateKib: number): number {
  return Math.max(settings.need.headroom * scaledEstimateKib, settings.need.min_headroom);
}
