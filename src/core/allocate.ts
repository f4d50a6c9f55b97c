/**
 * Dividing the budget among managed domains. Each domain has four non-decreasing levels (KiB,
 * whole 4 KiB pages):
 *
 *   L0 min           its floor
 *   L1 use           what it demonstrably uses: kernel footprint + memory in use + swap in use
 *                    + part of its page cache + a cushion, at most L2
 *   L2 need          kernel footprint + estimate x factor + pressure boost + headroom
 *   L3 surplus cap   max when its surplus mode is `share`, else L2
 *
 * Everyone gets L0. When the budget covers every need, all get L2 and the surplus tier is shared
 * by weighted water-filling. Otherwise memory from L0 to L2 is shared by priced weighted
 * water-filling (waterfill.ts): a KiB above a domain's use level costs it 1 / (1 - idle tax) of
 * its share, so what guests promised but never touched (Committed_AS above use, headroom) goes
 * before other guests' working sets, while within a price the contested amount is shared by
 * weight, max-min fair. Monotone in the budget, deterministic, O(n log n).
 */
import { waterfill, waterfillPriced } from './waterfill.js';

export const TIERS = 4;
export const PAGE_KIB = 4;
/** The level that is the domain's need (estimate + headroom). */
export const NEED_TIER = 2;

export interface AllocItem {
  /** L0..L(TIERS-1), whole KiB, non-decreasing (fewer levels: the last one repeats). */
  levels: readonly number[];
  weight: number;
}

export interface Allocation {
  /** Per item, whole KiB. */
  kib: Float64Array;
  /** The tier that was only partly filled (1..TIERS-1), or TIERS when every tier was filled. */
  partialTier: number;
  sumMinKib: number;
  /** Sum of the need level (L2). */
  sumNeedKib: number;
  sumLevelKib: number[];
  /** The minimums alone exceed the budget (everyone is at L0 regardless). */
  overcommitted: boolean;
}

/** Level k of an item (an item with fewer levels stays at its last). */
function level(it: AllocItem | undefined, k: number): number {
  if (!it) return 0;
  const l = it.levels;
  return (k < l.length ? l[k] : l[l.length - 1]) ?? 0;
}

export function sumLevels(items: readonly AllocItem[]): number[] {
  const sums = new Array<number>(TIERS).fill(0);
  for (const it of items) for (let k = 0; k < TIERS; k++) sums[k] = (sums[k] ?? 0) + level(it, k);
  return sums;
}

/**
 * @param useTax when memory is short, how much more memory above what a domain uses costs it
 *   than memory below (VMware's idle memory tax): 0 shares use and need alike (one tier from the
 *   floor to the need), 1 meets every domain's use before anyone's need (strict tiers); between,
 *   a KiB above use costs 1 / (1 - useTax) KiB of the domain's share.
 */
export function allocate(items: readonly AllocItem[], budgetKib: number, useTax = 1): Allocation {
  const n = items.length;
  const kib = new Float64Array(n);
  const sums = sumLevels(items);
  for (let i = 0; i < n; i++) kib[i] = level(items[i], 0);
  let left = budgetKib - (sums[0] ?? 0);
  const base = { sumMinKib: sums[0] ?? 0, sumNeedKib: sums[NEED_TIER] ?? 0, sumLevelKib: sums };
  if (left < 0) return { kib, partialTier: 1, ...base, overcommitted: true };
  // The use and need tiers are shared together, above-use memory priced by the tax.
  const needStep = (sums[NEED_TIER] ?? 0) - (sums[0] ?? 0);
  if (left < needStep) {
    const first = new Float64Array(n);
    const second = new Float64Array(n);
    const weights = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const it = items[i];
      first[i] = level(it, 1) - level(it, 0);
      second[i] = level(it, NEED_TIER) - level(it, 1);
      weights[i] = it?.weight ?? 1;
    }
    const k = useTax >= 1 ? Infinity : 1 / (1 - Math.max(0, useTax));
    const add = waterfillPriced(first, second, weights, k, left);
    for (let i = 0; i < n; i++) kib[i] = (kib[i] ?? 0) + Math.floor((add[i] ?? 0) / PAGE_KIB) * PAGE_KIB;
    let partial = NEED_TIER;
    for (let i = 0; i < n; i++) if ((kib[i] ?? 0) < level(items[i], 1)) partial = 1;
    return { kib, partialTier: partial, ...base, overcommitted: false };
  }
  for (let i = 0; i < n; i++) kib[i] = level(items[i], NEED_TIER);
  left -= needStep;
  for (let k = NEED_TIER + 1; k < TIERS; k++) {
    const step = (sums[k] ?? 0) - (sums[k - 1] ?? 0);
    if (left >= step) {
      for (let i = 0; i < n; i++) kib[i] = level(items[i], k);
      left -= step;
      continue;
    }
    const caps = new Float64Array(n);
    const weights = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const it = items[i];
      caps[i] = level(it, k) - level(it, k - 1);
      weights[i] = it?.weight ?? 1;
    }
    const add = waterfill(caps, weights, left);
    // Whole pages: Xen keeps memory in 4 KiB pages, so a target that is not one is rewritten.
    for (let i = 0; i < n; i++) kib[i] = (kib[i] ?? 0) + Math.floor((add[i] ?? 0) / PAGE_KIB) * PAGE_KIB;
    return { kib, partialTier: k, ...base, overcommitted: false };
  }
  return { kib, partialTier: TIERS, ...base, overcommitted: false };
}
