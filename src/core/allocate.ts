/**
 * Dividing the budget among managed domains, tier by tier. Each domain has three non-decreasing
 * levels (KiB, whole 4 KiB pages):
 *
 *   L0 min           its floor
 *   L1 need          kernel footprint + estimate x factor + pressure boost + headroom
 *   L2 surplus cap   max when its surplus mode is `share`, else L1
 *
 * Everyone gets L0. Then each tier is filled in turn: if the budget left covers every domain's
 * step from one level to the next, all get it; otherwise that tier is shared by weighted
 * water-filling and allocation stops. So when memory is short, what the needs exceed the floors
 * by is shared by weight, max-min fair: a domain whose need is small keeps all of it (headroom
 * included, its cushion against the next spike) before a large one gets more. Monotone in the
 * budget, deterministic, O(n log n).
 */
import { waterfill } from './waterfill.js';

export const TIERS = 3;
export const PAGE_KIB = 4;

export interface AllocItem {
  /** L0..L2, whole KiB, non-decreasing. */
  levels: readonly [number, number, number];
  weight: number;
}

export interface Allocation {
  /** Per item, whole KiB. */
  kib: Float64Array;
  /** The tier that was only partly filled (1..2), or 3 when every tier was filled. */
  partialTier: number;
  sumMinKib: number;
  /** Sum of L1 (everyone's need). */
  sumNeedKib: number;
  sumLevelKib: number[];
  /** The minimums alone exceed the budget (everyone is at L0 regardless). */
  overcommitted: boolean;
}

export function sumLevels(items: readonly AllocItem[]): number[] {
  const sums = new Array<number>(TIERS).fill(0);
  for (const it of items) for (let k = 0; k < TIERS; k++) sums[k] = (sums[k] ?? 0) + (it.levels[k] ?? 0);
  return sums;
}

export function allocate(items: readonly AllocItem[], budgetKib: number): Allocation {
  const n = items.length;
  const kib = new Float64Array(n);
  const sums = sumLevels(items);
  for (let i = 0; i < n; i++) kib[i] = items[i]?.levels[0] ?? 0;
  let left = budgetKib - (sums[0] ?? 0);
  const base = { sumMinKib: sums[0] ?? 0, sumNeedKib: sums[1] ?? 0, sumLevelKib: sums };
  if (left < 0) return { kib, partialTier: 1, ...base, overcommitted: true };
  for (let k = 1; k < TIERS; k++) {
    const step = (sums[k] ?? 0) - (sums[k - 1] ?? 0);
    if (left >= step) {
      for (let i = 0; i < n; i++) kib[i] = items[i]?.levels[k] ?? 0;
      left -= step;
      continue;
    }
    const caps = new Float64Array(n);
    const weights = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const it = items[i];
      caps[i] = it ? (it.levels[k] ?? 0) - (it.levels[k - 1] ?? 0) : 0;
      weights[i] = it?.weight ?? 1;
    }
    const add = waterfill(caps, weights, left);
    // Whole pages: Xen keeps memory in 4 KiB pages, so a target that is not one is rewritten.
    for (let i = 0; i < n; i++) kib[i] = (kib[i] ?? 0) + Math.floor((add[i] ?? 0) / PAGE_KIB) * PAGE_KIB;
    return { kib, partialTier: k, ...base, overcommitted: false };
  }
  return { kib, partialTier: TIERS, ...base, overcommitted: false };
}
