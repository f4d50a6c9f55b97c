/**
 * Strategy-proof allocation: what one guest reports can never take another guest's fair share.
 *
 *   fair_i = admin min_i + weighted water-filling of (budget - sum of admin mins) over
 *            (max_i - admin min_i)                     (independent of every report)
 *
 * Two guarantees follow (docs/policy.md, "What a guest can and cannot do"):
 * - a floor that comes from a report (kernel footprint, OOM guard) is at most what the
 *   hypervisor confirms the domain holds (limits.ts), and is lowered to fair_i when floors would
 *   otherwise take from others' guaranteed shares; the admin's min is the only hard floor;
 * - memory is divided in two rounds: first every domain's use level (L1, what it demonstrably
 *   uses) capped at max(floor, fair_i), which always fits, so each gets at least
 *   min(use_i, fair_i) whatever the others report; then what is left over, over the rest of
 *   the levels, priced as in allocate.ts (use above the fair share before need above use).
 * When every need fits the budget the two rounds give what one round gives, so that common case
 * takes one round (allocate.ts).
 */
import { allocate, NEED_TIER, PAGE_KIB, sumLevels, TIERS, type AllocItem, type Allocation } from './allocate.js';
import type { DomainWork } from './domain.js';
import { waterfill } from './waterfill.js';

/** Each domain's weighted fair share of `budgetKib` (whole pages), from policy alone. */
export function fairShares(works: readonly DomainWork[], budgetKib: number): Float64Array {
  const n = works.length;
  const out = new Float64Array(n);
  const caps = new Float64Array(n);
  const weights = new Float64Array(n);
  let mins = 0;
  for (let i = 0; i < n; i++) {
    const w = works[i] as DomainWork;
    out[i] = w.adminMinKib;
    mins += w.adminMinKib;
    caps[i] = Math.max(0, w.maxKib - w.adminMinKib);
    weights[i] = w.weight;
  }
  const add = waterfill(caps, weights, budgetKib - mins);
  for (let i = 0; i < n; i++) out[i] = (out[i] ?? 0) + Math.floor((add[i] ?? 0) / PAGE_KIB) * PAGE_KIB;
  return out;
}

/**
 * Lowers report floors above the fair share to it (in place: the works are this step's) when
 * the floors and the uses within fair shares do not all fit.
 * A stuck domain stays counted at what it holds; a ceiling still caps.
 */
export function capReportFloors(works: readonly DomainWork[], fair: Float64Array, budgetKib: number): void {
  // Only when floors would take from others' guaranteed shares: while every domain's floor and
  // every use within its fair share fit the budget together, a floor the hypervisor confirms
  // (a database's memory it cannot swap) stays; lowering it then only makes it swap.
  let firstRound = 0;
  for (let i = 0; i < works.length; i++) {
    const w = works[i] as DomainWork;
    const f = fair[i] ?? 0;
    w.fairKib = f;
    firstRound += Math.max(w.levels[0], Math.min(w.levels[1], f));
  }
  if (firstRound <= budgetKib) return;
  for (let i = 0; i < works.length; i++) {
    const w = works[i] as DomainWork;
    const f = fair[i] ?? 0;
    // A held target (need unknown) is no floor above the fair share either: memory above it
    // is given up when others need it within theirs.
    if (w.mode === 'hold' && w.levels[0] > Math.max(w.minKib, f)) {
      let l0 = Math.max(w.minKib, f);
      if (w.stuckDown) l0 = Math.max(l0, w.currentKib);
      if (l0 < w.levels[0]) w.levels = [l0, w.levels[1], w.levels[2], w.levels[3]];
    }
    if (w.floor === 'min' || w.minKib <= f) continue;
    const min = Math.max(w.adminMinKib, Math.min(w.maxKib, f));
    if (min >= w.minKib) continue;
    let l0 = min;
    if (w.stuckDown) l0 = Math.max(l0, w.currentKib);
    if (w.ceilingKib !== null) l0 = Math.min(l0, w.ceilingKib);
    if (l0 >= w.levels[0]) continue;
    w.minKib = min;
    w.levels = [l0, w.levels[1], w.levels[2], w.levels[3]];
    // protectKib (what a reservation may not take) is left as it is: a new domain is no guest
    // with a fair share, and it may not push this one below what it cannot swap.
    w.floorCapped = true;
  }
}

function level(it: AllocItem, k: number): number {
  const l = it.levels;
  return (k < l.length ? l[k] : l[l.length - 1]) ?? 0;
}

/** The two rounds (see the top of this file); one round when every need fits. */
export function allocateFair(
  items: readonly AllocItem[],
  fair: Float64Array,
  budgetKib: number,
  useTax: number,
): Allocation {
  const sums = sumLevels(items);
  if ((sums[NEED_TIER] ?? 0) <= budgetKib) return allocate(items, budgetKib, useTax);
  const n = items.length;
  const first: AllocItem[] = new Array<AllocItem>(n);
  const rest: AllocItem[] = new Array<AllocItem>(n);
  for (let i = 0; i < n; i++) {
    const it = items[i] as AllocItem;
    const g = Math.max(level(it, 0), fair[i] ?? 0);
    const l1 = level(it, 1);
    const l2 = level(it, NEED_TIER);
    const l3 = level(it, TIERS - 1);
    // Round one: what it uses, up to the fair share. Round two: the rest, priced as in
    // allocate.ts (use before need above use). Round one does not cover need above use within
    // the fair share: on the shipped scenarios that hands idle guests' untouched Committed_AS
    // ahead of databases' working sets (scale-1000 swapped 2.3 TB instead of 8 GB).
    const c1 = Math.min(l1, g);
    first[i] = { levels: [level(it, 0), c1], weight: it.weight };
    rest[i] = { levels: [0, l1 - c1, l2 - c1, l3 - c1], weight: it.weight };
  }
  const a = allocate(first, budgetKib, useTax);
  let given = 0;
  for (let i = 0; i < n; i++) given += a.kib[i] ?? 0;
  const b = allocate(rest, Math.max(0, budgetKib - given), useTax);
  const kib = new Float64Array(n);
  for (let i = 0; i < n; i++) kib[i] = (a.kib[i] ?? 0) + (b.kib[i] ?? 0);
  const partialTier = a.partialTier < TIERS ? a.partialTier : b.partialTier;
  return {
    kib,
    partialTier,
    sumMinKib: sums[0] ?? 0,
    sumNeedKib: sums[NEED_TIER] ?? 0,
    sumLevelKib: sums,
    overcommitted: a.overcommitted,
  };
}
