/**
 * A domain's floor and ceiling in KiB, from its settings, its static-max and its measured kernel
 * footprint.
 */
import type { DomainSettings } from '../policy/schema.js';

/**
 * The Linux (xenlinux) balloon driver's minimum_target curve: the least memory a guest with
 * `maxKib` of maximum memory was allowed to balloon down to. Piecewise linear in MiB:
 * < 128: 8 + max/2; < 512: 40 + max/4; < 2048: 104 + max/8; else 296 + max/32.
 */
export function xenlinuxMinimumKib(maxKib: number): number {
  const mib = maxKib / 1024;
  let minMib: number;
  if (mib < 128) minMib = 8 + mib / 2;
  else if (mib < 512) minMib = 40 + mib / 4;
  else if (mib < 2048) minMib = 104 + mib / 8;
  else minMib = 296 + mib / 32;
  return Math.floor(minMib * 1024);
}

export interface Limits {
  minKib: number;
  maxKib: number;
  /** The admin's floor alone (policy `min`): the only floor a report cannot move. */
  adminMinKib: number;
  /** What set the floor: `min`, the kernel guard (min_usable) or the OOM guard. */
  floor: 'min' | 'kernel' | 'oom';
}

/**
 * @param unswappableKib what the guest uses that cannot go to swap (from its report), or null:
 *   the floor then also keeps that much usable, so ballooning can never cause an OOM kill.
 * @param confirmedKib what the hypervisor confirms the domain holds, or null: the guards come
 *   from the guest's own report, so they never raise its floor above that (a report cannot
 *   make a domain's floor grow; the admin's `min` is the only floor a report cannot move).
 */
export function resolveLimits(
  s: DomainSettings,
  staticMaxKib: number,
  overheadKib: number | null,
  unswappableKib: number | null = null,
  confirmedKib: number | null = null,
): Limits {
  const whole = Math.max(0, staticMaxKib);
  let maxKib: number;
  switch (s.max.kind) {
    case 'static-max':
      maxKib = whole;
      break;
    case 'kib':
      maxKib = Math.min(s.max.kib, whole);
      break;
    case 'fraction':
      maxKib = Math.floor(s.max.fraction * whole);
      break;
  }
  let minKib: number;
  switch (s.min.kind) {
    case 'auto':
      minKib = xenlinuxMinimumKib(whole);
      break;
    case 'kib':
      minKib = s.min.kib;
      break;
    case 'fraction':
      minKib = Math.floor(s.min.fraction * whole);
      break;
  }
  const adminMinKib = minKib;
  let floor: Limits['floor'] = 'min';
  const bound = confirmedKib === null ? Infinity : Math.max(adminMinKib, confirmedKib);
  if (overheadKib !== null && overheadKib + s.min_usable > minKib) {
    minKib = Math.ceil(Math.min(bound, overheadKib + s.min_usable));
    if (minKib > adminMinKib) floor = 'kernel';
  }
  if (unswappableKib !== null) {
    const oom = Math.min(bound, (overheadKib ?? 0) + unswappableKib + s.min_usable);
    if (oom > minKib) {
      minKib = Math.ceil(oom);
      floor = 'oom';
    }
  }
  // Whole pages: the floor rounds up, the ceiling down.
  const maxPages = Math.floor(maxKib / 4) * 4;
  const minPages = Math.ceil(minKib / 4) * 4;
  const adminPages = Math.min(Math.ceil(adminMinKib / 4) * 4, maxPages);
  return { minKib: Math.min(minPages, maxPages), maxKib: maxPages, adminMinKib: adminPages, floor };
}
