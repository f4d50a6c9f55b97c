/**
 * One control step: observation in, actions and explanation out. Pure: no clock, no I/O; the
 * same inputs always give the same outputs.
 *
 *   budget      = free + scrub - outstanding + what managed domains hold
 *                 - reserve - growth unmanaged domains were promised
 *   allocatable = budget - the reservations (first come first served, whole) that fit without
 *                 pushing active domains below their need; the others wait, costing nothing
 *   desired     = allocate(levels, allocatable)                      (allocate.ts)
 *   shrink      = toward desired at most rate.down per second (and, when the memory is wanted
 *                 elsewhere, the guest's free memory at once); no change smaller than the
 *                 hysteresis unless the memory is wanted
 *   grow        = toward desired, only into memory free now (less reserve, promises and
 *                 reservations), needs before surplus, shared in proportion when short
 *   actions     = shrinks (target, then lower maxmem), then grows (raise maxmem, then target),
 *                 then flag changes
 */
import type { Policy } from '../policy/schema.js';
import { formatKib } from '../policy/units.js';
import { NEED_TIER, TIERS } from './allocate.js';
import { allocateFair, capReportFloors, fairShares } from './fairshare.js';
import { MAXMEM_SLACK_KIB, prepareDomain, type DomainWork } from './domain.js';
import type {
  Bound,
  DomainExplanation,
  Explanation,
  HostExplanation,
  Limiter,
  ReservationExplanation,
} from './explain.js';
import type { CoreState, DomainState } from './state.js';
import type { Action, Observation, ReservationObservation } from './types.js';

export interface StepResult {
  state: CoreState;
  actions: Action[];
  explanation: Explanation;
}

function kib(x: unknown): number {
  return typeof x === 'number' && Number.isFinite(x) && x > 0 ? x : 0;
}

/** The observation's domains by domid (a copy, sorted only if they are not already). */
function sortedByDomid<T extends { domid: number }>(list: readonly T[]): T[] {
  for (let i = 1; i < list.length; i++) {
    if ((list[i - 1] as T).domid > (list[i] as T).domid) return [...list].sort((a, b) => a.domid - b.domid);
  }
  return list.slice();
}

function pageFloor(x: number): number {
  return Math.floor(x / 4) * 4;
}

/** Memory a managed domain may still take to reach `targetKib` (what it holds or has claimed aside). */
function promise(targetKib: number, w: DomainWork): number {
  return Math.max(0, targetKib - w.currentKib - w.claimedKib);
}

interface Plan {
  w: DomainWork;
  desired: number;
  newTarget: number;
  limiter: Limiter;
  bound: Bound;
}

export function step(state: CoreState, observation: Observation, policy: Policy, nowMs: number): StepResult {
  const intervalMs = policy.intervalMs;
  const dtMs =
    state.lastStepMs === null ? intervalMs : Math.min(10 * intervalMs, Math.max(0, nowMs - state.lastStepMs));
  const host = observation.host;
  const totalKib = kib(host.totalKib);
  const scrubKib = kib(host.scrubKib);
  const outstandingKib = kib(host.outstandingKib);
  const freeKib = Math.max(0, kib(host.freeKib) + scrubKib - outstandingKib);
  const reserve = policy.host.reserve;
  const reserveKib = Math.round(reserve.kind === 'kib' ? reserve.kib : reserve.fraction * totalKib);

  // Reservations: held until they expire, served first come first served.
  const held: ReservationObservation[] = [];
  const expired: ReservationObservation[] = [];
  for (const r of observation.reservations ?? []) {
    if (!(kib(r.kib) > 0)) continue;
    if (Number.isFinite(r.expiresAtMs) && nowMs >= r.expiresAtMs) expired.push(r);
    else held.push(r);
  }
  held.sort((a, b) => a.createdAtMs - b.createdAtMs || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const reservedKib = held.reduce((s, r) => s + r.kib, 0);

  // Per-domain work, in domid order (deterministic whatever order the observation lists them).
  const domains = sortedByDomid(observation.domains);
  const ctx = { policy, nowMs, dtMs };
  const works: DomainWork[] = new Array<DomainWork>(domains.length);
  for (let i = 0; i < domains.length; i++) {
    const d = domains[i] as (typeof domains)[number];
    works[i] = prepareDomain(d, state.domains.get(d.domid), ctx, i > 0 && domains[i - 1]?.domid === d.domid);
  }
  const managed: DomainWork[] = [];
  const unmanaged: DomainWork[] = [];
  let fixedPromiseKib = 0;
  // What managed domains hold, counting memory Xen claimed for a domain being built.
  let managedKib = 0;
  let promisedBefore = 0;
  let needsKib = 0;
  let reportFloors = false;
  for (const w of works) {
    if (w.unmanagedReason === null) {
      managed.push(w);
      managedKib += w.currentKib + w.claimedKib;
      promisedBefore += promise(w.targetKib, w);
      needsKib += w.levels[NEED_TIER];
      if (w.floor !== 'min' || w.mode === 'hold') reportFloors = true;
    } else {
      unmanaged.push(w);
      fixedPromiseKib += w.promiseKib;
    }
  }
  promisedBefore += fixedPromiseKib;
  const budgetKib = freeKib + managedKib - reserveKib - fixedPromiseKib;
  // Fair shares (policy alone) bound what reports can do: floors from reports, and claims above
  // a fair share (served only from memory nobody else needs). Not needed when no floor comes
  // from a report and every need fits.
  const fairNeeded = reportFloors || needsKib > budgetKib - reservedKib;
  let fair = fairNeeded ? fairShares(managed, budgetKib) : null;
  if (fair) capReportFloors(managed, fair, budgetKib);
  let activeNeedKib = 0;
  for (const w of managed) activeNeedKib += w.protectKib;
  // Reservations take memory from the budget, but not what active domains need right now.
  // Whole reservations only, first come first served: one that cannot be met without pushing
  // active domains below their need waits, and costs nobody anything while it waits.
  let honouredKib = 0;
  for (const r of held) {
    if (budgetKib - honouredKib - r.kib < activeNeedKib) break;
    honouredKib += r.kib;
  }
  const allocatableKib = budgetKib - honouredKib;
  if (fair && honouredKib > 0) fair = fairShares(managed, allocatableKib);
  if (!fair && needsKib > allocatableKib) fair = fairShares(managed, allocatableKib);
  if (fair) for (let i = 0; i < managed.length; i++) (managed[i] as DomainWork).fairKib = fair[i] ?? 0;
  // A DomainWork is an allocation item (its levels and weight).
  const alloc = allocateFair(managed, fair ?? new Float64Array(0), allocatableKib, policy.host.idle_tax);

  // Reservations already covered by free memory before this step: nobody may grow into them.
  const readyBeforeKib = readyPrefix(held, freeKib - reserveKib - promisedBefore);

  const plans: Plan[] = managed.map((w, i) => {
    const a = alloc.kib[i] ?? w.levels[0];
    let desired = a;
    if (w.stuckDown && a <= w.currentKib + (w.settings?.hysteresis ?? 0)) {
      // Leave its target for it to reach (an intermittently stuck guest carries on); only
      // bring it inside [min, max] if the policy moved them.
      desired = Math.min(w.maxKib, Math.max(w.minKib, w.targetKib));
    } else if (w.stuckDown) {
      desired = Math.min(a, w.maxKib);
    }
    const limiter: Limiter = w.stuckDown && desired === w.targetKib ? 'stuck' : 'none';
    return { w, desired, newTarget: w.targetKib, limiter, bound: boundOf(w, a, alloc.partialTier) };
  });

  // Is memory wanted right now (a reservation not yet covered, or growth that does not fit in
  // what is free)? Then shrinks smaller than the hysteresis still happen: the deadband is
  // there to avoid churn, not to leave a reservation 10 MiB short forever.
  const protectedKib = Math.max(honouredKib, readyBeforeKib);
  const roomBefore = freeKib - reserveKib - promisedBefore - protectedKib;
  let growthDemand = 0;
  for (const p of plans) {
    if (p.desired > p.w.targetKib) growthDemand += promise(p.desired, p.w) - promise(p.w.targetKib, p.w);
  }
  const memoryWanted = readyBeforeKib < honouredKib || growthDemand > roomBefore;

  // Phase 1: shrinks (rate-limited below what the domain holds; free above it).
  for (const p of plans) {
    const { w } = p;
    const s = w.settings;
    if (!s) continue;
    const old = w.targetKib;
    const forcedMax = old > w.maxKib;
    if (p.desired >= old && !forcedMax) continue;
    const windowMaxMs = Math.max(intervalMs, Math.ceil((1000 * s.hysteresis) / s.rate.down));
    const windowMs = w.next.lastDownMs === null ? windowMaxMs : Math.min(windowMaxMs, nowMs - w.next.lastDownMs);
    const held = Math.min(old, w.currentKib);
    let allowed = (s.rate.down * Math.max(0, windowMs)) / 1000;
    if (memoryWanted) {
      // Needed elsewhere: memory free inside the guest goes back at once (less what a shrink in
      // flight will take); only the rest is held to rate.down.
      allowed += Math.max(0, w.guestFreeKib - Math.max(0, w.currentKib - old));
    }
    let t = Math.max(p.desired, pageFloor(held - allowed));
    t = Math.min(t, old);
    if (forcedMax) t = Math.min(t, w.maxKib);
    t = Math.max(t, Math.min(old, w.minKib));
    const minChange = memoryWanted ? 4 : s.hysteresis;
    if (old - t < minChange && !(forcedMax && t < old)) {
      p.limiter = old - p.desired >= s.hysteresis ? 'rate-down' : 'deadband';
      continue;
    }
    p.newTarget = t;
    p.limiter = t > p.desired ? 'rate-down' : 'none';
    w.next.lastDownMs = nowMs;
  }

  // Phase 2: growth, only into memory that is free now.
  let room = freeKib - reserveKib - protectedKib - fixedPromiseKib;
  interface Grow {
    p: Plan;
    goal: number;
    /** Growth toward what it uses, toward its need, and into surplus (served in that order). */
    usePart: number;
    needPart: number;
    extraPart: number;
  }
  const grows: Grow[] = [];
  for (const p of plans) {
    const { w } = p;
    const s = w.settings;
    if (!s) continue;
    const old = w.targetKib;
    if (p.newTarget !== old || p.desired <= old) {
      room -= promise(p.newTarget, w);
      continue;
    }
    room -= promise(old, w);
    const belowMin = old < w.minKib;
    if (p.desired - old < s.hysteresis && !belowMin) {
      p.limiter = 'deadband';
      continue;
    }
    let goal = p.desired;
    if (s.rate.up !== null) {
      const windowMaxMs = Math.max(intervalMs, Math.ceil((1000 * s.hysteresis) / s.rate.up));
      const windowMs = w.next.lastUpMs === null ? windowMaxMs : Math.min(windowMaxMs, nowMs - w.next.lastUpMs);
      goal = Math.min(goal, pageFloor(old + (s.rate.up * Math.max(0, windowMs)) / 1000));
      if (goal < p.desired) p.limiter = 'rate-up';
      if (goal - old < s.hysteresis && !belowMin) continue;
    }
    const extra = promise(goal, w) - promise(old, w);
    const upTo = (level: number) => Math.min(extra, Math.max(0, promise(Math.min(goal, level), w) - promise(old, w)));
    const usePart = upTo(w.levels[1]);
    const needPart = upTo(w.levels[NEED_TIER]) - usePart;
    grows.push({ p, goal, usePart, needPart, extraPart: extra - usePart - needPart });
  }
  const grantU = shareOut(grows.map((g) => g.usePart), room);
  room -= grantU.used;
  const grantA = shareOut(grows.map((g) => g.needPart), room);
  room -= grantA.used;
  const grantB = shareOut(grows.map((g) => g.extraPart), room);
  room -= grantB.used;
  grows.forEach((g, i) => {
    const { p } = g;
    const { w } = p;
    const s = w.settings;
    if (!s) return;
    const old = w.targetKib;
    const grant = (grantU.kib[i] ?? 0) + (grantA.kib[i] ?? 0) + (grantB.kib[i] ?? 0);
    const full = grant >= g.usePart + g.needPart + g.extraPart;
    const t = full ? g.goal : Math.min(g.goal, pageFloor(Math.max(old, w.currentKib + w.claimedKib) + grant));
    if (!full) p.limiter = 'free-memory';
    if (t - old < s.hysteresis && t < g.goal && old >= w.minKib) return;
    // Never write a target below the floor: a domain under it waits until the whole way to
    // the floor is free (the allocation is shrinking others for it).
    if (t <= old || t < w.minKib) return;
    p.newTarget = t;
    w.next.lastUpMs = nowMs;
  });

  const actions = buildActions(plans);

  // Flags change only when they change.
  for (const w of managed) {
    const prev = state.domains.get(w.domid);
    const was = prev && prev.name === w.name ? prev : undefined;
    if ((was?.stuck ?? false) !== w.next.stuck) actions.push({ kind: 'flag', domid: w.domid, flag: 'stuck', on: w.next.stuck });
    if ((was?.uncooperative ?? false) !== w.next.uncooperative) {
      actions.push({ kind: 'flag', domid: w.domid, flag: 'uncooperative', on: w.next.uncooperative });
    }
  }
  for (const w of unmanaged) {
    const prev = state.domains.get(w.domid);
    if (prev && prev.name === w.name) {
      if (prev.stuck) actions.push({ kind: 'flag', domid: w.domid, flag: 'stuck', on: false });
      if (prev.uncooperative) actions.push({ kind: 'flag', domid: w.domid, flag: 'uncooperative', on: false });
    }
  }

  // After the step: what targets still promise, and what each reservation can count on.
  let promisedAfter = fixedPromiseKib;
  let floorsKib = 0;
  let shrinkingCount = 0;
  let shrinkingKib = 0;
  let allocatedKib = 0;
  for (const p of plans) {
    promisedAfter += promise(p.newTarget, p.w);
    floorsKib += p.w.levels[0];
    allocatedKib += p.desired;
    if (p.desired < p.w.targetKib) {
      shrinkingCount++;
      shrinkingKib += Math.max(0, Math.min(p.w.targetKib, p.w.currentKib) - p.desired);
    }
  }
  let fixedKib = fixedPromiseKib;
  for (const w of unmanaged) fixedKib += w.currentKib + w.videoramKib;
  const availableKib = freeKib - reserveKib - promisedAfter;
  const capacityKib = freeKib - reserveKib - fixedPromiseKib + managedKib - floorsKib;
  const reservations = evaluateReservations(held, expired, {
    nowMs,
    spareKib: Math.max(0, budgetKib - activeNeedKib),
    availableKib,
    capacityKib,
    honouredKib,
    shrinkingCount,
    shrinkingKib,
  });

  const hostExplanation: HostExplanation = {
    totalKib,
    freeKib,
    scrubKib,
    outstandingKib,
    reserveKib,
    reservedKib,
    honouredKib,
    fixedKib,
    managedKib,
    budgetKib,
    allocatableKib,
    allocatedKib,
    minsKib: alloc.sumMinKib,
    usesKib: alloc.sumLevelKib[1] ?? 0,
    needsKib: alloc.sumNeedKib,
    shortKib: Math.max(0, alloc.sumNeedKib - allocatableKib),
    surplusKib: Math.max(0, allocatableKib - allocatedKib),
    promisedKib: promisedAfter,
    growthRoomKib: Math.max(0, room),
    overcommitted: alloc.overcommitted,
  };


  const nextDomains = new Map<number, DomainState>();
  for (const w of works) if (!nextDomains.has(w.domid)) nextDomains.set(w.domid, w.next);

  const untrusted: Explanation['untrusted'] = [];
  for (const w of managed) {
    if (w.reportRejected !== null) untrusted.push({ domid: w.domid, name: w.name, reason: w.reportRejected, count: w.next.rejections });
  }
  const explanation = { atMs: nowMs, intervalMs, untrusted, host: hostExplanation, reservations } as Explanation;
  // Per-domain explanations are built when first read: a caller that only applies the actions
  // (the simulator, most daemon steps) does not pay for thousands of records it never looks at.
  let domainsExplained: DomainExplanation[] | null = null;
  Object.defineProperty(explanation, 'domains', {
    enumerable: true,
    get(): DomainExplanation[] {
      if (domainsExplained === null) {
        const planOf = new Map<DomainWork, Plan>();
        for (const p of plans) planOf.set(p.w, p);
        domainsExplained = works.map((w) => explainDomain(w, planOf.get(w)));
      }
      return domainsExplained;
    },
  });
  return { state: { lastStepMs: nowMs, domains: nextDomains }, actions, explanation };
}

/** Proportional grants of `room` over requests, whole KiB; all requests when room suffices. */
function shareOut(requests: number[], room: number): { kib: number[]; used: number } {
  const total = requests.reduce((s, r) => s + r, 0);
  if (total <= 0 || room <= 0) return { kib: requests.map(() => 0), used: 0 };
  const f = Math.min(1, room / total);
  const kibs = requests.map((r) => (f >= 1 ? r : Math.floor(r * f)));
  return { kib: kibs, used: kibs.reduce((s, k) => s + k, 0) };
}

function buildActions(plans: Plan[]): Action[] {
  const shrinkPhase: Action[] = [];
  const growPhase: Action[] = [];
  for (const p of plans) {
    const { w } = p;
    const wantMax = p.newTarget + w.videoramKib + MAXMEM_SLACK_KIB;
    // Xen keeps maxmem in pages: compare in pages, or an odd KiB value is rewritten forever.
    const setMax = w.domid !== 0 && Math.floor(w.obs.maxmemKib / 4) !== Math.floor(wantMax / 4);
    const targetChanged = p.newTarget !== w.obs.targetKib;
    if (p.newTarget < w.targetKib) {
      shrinkPhase.push({ kind: 'setTarget', domid: w.domid, kib: p.newTarget });
      if (setMax) shrinkPhase.push({ kind: 'setMaxmem', domid: w.domid, kib: wantMax });
    } else if (p.newTarget > w.targetKib || targetChanged) {
      if (setMax) growPhase.push({ kind: 'setMaxmem', domid: w.domid, kib: wantMax });
      growPhase.push({ kind: 'setTarget', domid: w.domid, kib: p.newTarget });
    } else if (setMax) {
      (wantMax < w.obs.maxmemKib ? shrinkPhase : growPhase).push({ kind: 'setMaxmem', domid: w.domid, kib: wantMax });
    }
  }
  return [...shrinkPhase, ...growPhase];
}

function boundOf(w: DomainWork, a: number, partialTier: number): Bound {
  if (w.mode === 'hold') return 'hold';
  if (w.mode === 'decay') return 'decay';
  if (w.stuckDown) return 'stuck';
  if (w.ceilingKib !== null && a >= w.ceilingKib && w.ceilingKib < w.maxKib) return 'ceiling';
  if (a >= w.maxKib) return 'max';
  if (a <= w.minKib) return 'min';
  if (partialTier < TIERS && a < (w.levels[partialTier] ?? a)) return 'share';
  // Its use met in full, its need not: memory ran out in the tier of what domains use.
  if (a < w.levels[NEED_TIER]) return 'use';
  return 'need';
}

function readyPrefix(held: ReservationObservation[], availableKib: number): number {
  let cum = 0;
  for (const r of held) {
    if (cum + r.kib > availableKib) break;
    cum += r.kib;
  }
  return cum;
}

interface ReservationContext {
  nowMs: number;
  /** What reservations could get without pushing active domains below their need. */
  spareKib: number;
  availableKib: number;
  capacityKib: number;
  honouredKib: number;
  shrinkingCount: number;
  shrinkingKib: number;
}

/**
 * Each held reservation, first come first served: ready when free memory (less the reserve and
 * what targets still promise) covers it and every earlier one; impossible when even every
 * managed domain at its floor would not make room; pending otherwise.
 */
function evaluateReservations(
  held: readonly ReservationObservation[],
  expired: readonly ReservationObservation[],
  ctx: ReservationContext,
): ReservationExplanation[] {
  const out: ReservationExplanation[] = [];
  let cum = 0;
  for (const r of held) {
    const before = cum;
    cum += r.kib;
    const ageMs = Math.max(0, ctx.nowMs - r.createdAtMs);
    if (cum <= ctx.availableKib) {
      out.push({ id: r.id, kib: r.kib, state: 'ready', reason: null, ageMs });
    } else if (cum > ctx.capacityKib) {
      const left = Math.max(0, ctx.capacityKib - before);
      const earlier = before > 0 ? ` after ${formatKib(before)} reserved earlier` : '';
      out.push({
        id: r.id,
        kib: r.kib,
        state: 'impossible',
        reason: `minimums of running domains leave only ${formatKib(left)}${earlier}; ${formatKib(r.kib)} requested`,
        ageMs,
      });
    } else if (cum <= ctx.honouredKib) {
      out.push({
        id: r.id,
        kib: r.kib,
        state: 'pending',
        reason:
          `freeing memory: shrinking ${ctx.shrinkingCount} domain(s) by ${formatKib(ctx.shrinkingKib)} ` +
          `(at most rate.down each); ${formatKib(Math.max(0, ctx.availableKib - before))} free for it now`,
        ageMs,
      });
    } else {
      out.push({
        id: r.id,
        kib: r.kib,
        state: 'pending',
        reason:
          `waiting: running domains need the memory (busy ones their need, idle ones what they use); ` +
          `${formatKib(Math.max(0, cum - ctx.spareKib))} short until they need less`,
        ageMs,
      });
    }
  }
  for (const r of expired) {
    out.push({ id: r.id, kib: r.kib, state: 'expired', reason: 'expired before it was used', ageMs: Math.max(0, ctx.nowMs - r.createdAtMs) });
  }
  return out;
}

function explainDomain(w: DomainWork, p: Plan | undefined): DomainExplanation {
  const flags: string[] = [];
  if (w.next.stuck) flags.push('stuck');
  if (w.next.uncooperative) flags.push('uncooperative');
  if (w.pressureSignals.length > 0) flags.push('pressure', ...w.pressureSignals.map((s) => `pressure:${s}`));
  if (w.active) flags.push('active');
  if (p && w.mode === 'hold') flags.push('hold');
  if (w.reportState === 'stale') flags.push('stale');
  if (w.reportState === 'none') flags.push('no-report');
  if (w.reset) flags.push('reset');
  if (w.reportRejected !== null) flags.push('report-rejected');
  if (w.floorCapped) flags.push('floor-capped');
  if (p && w.fairKib !== null && w.needKib !== null && w.needKib > w.fairKib && p.desired < w.needKib) flags.push('claim-capped');
  if (w.damped) flags.push('damped');
  if (p && w.mode === 'decay') flags.push('decay');
  const managedDomain = p !== undefined;
  return {
    domid: w.domid,
    name: w.name,
    managed: managedDomain,
    unmanagedReason: w.unmanagedReason,
    currentKib: w.currentKib,
    targetKib: w.obs.targetKib ?? null,
    newTargetKib: p ? p.newTarget : null,
    desiredKib: p ? p.desired : null,
    needKib: p ? w.needKib : null,
    coreNeedKib: p ? w.coreKib : null,
    useKib: p ? w.useKib : null,
    estimator: w.estimator,
    estimateKib: w.estimateKib,
    overheadKib: w.next.overheadKib,
    headroomKib: w.headroomKib,
    pressureBoostKib: w.next.pressureBoostKib === null ? null : Math.round(w.next.pressureBoostKib),
    minKib: p ? w.minKib : null,
    maxKib: p ? w.maxKib : null,
    weight: p ? w.weight : null,
    shareKib: p ? p.desired - w.minKib : null,
    bound: p ? p.bound : 'unmanaged',
    fairShareKib: p ? w.fairKib : null,
    reportRejected: w.reportRejected,
    reportRejections: w.next.rejections,
    limiter: p ? p.limiter : 'none',
    flags,
    report: { state: w.reportState, ageMs: w.reportAgeMs, format: w.obs.report?.format ?? null },
    rates: w.rates,
  };
}
