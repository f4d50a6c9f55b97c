/**
 * Everything the core works out about one domain before memory is divided: whether it is
 * managed, its report history and rates, its need, its floor and ceiling, whether it is stuck,
 * and its five allocation levels (allocate.ts).
 */
import { settingsFor } from '../policy/effective.js';
import type { DomainSettings, Estimator, Policy } from '../policy/schema.js';
import type { DomainObservation } from './types.js';
import type { UnmanagedReason, ReportState } from './explain.js';
import { resolveLimits } from './limits.js';
import { estimateWithFallback, headroomKib, measureOverhead, pressureStepKib, readPressure } from './need.js';
import { ingest, sampleOf } from './signals.js';
import type { DomainState, Rates, Sample } from './state.js';

/** libxl's LIBXL_MAXMEM_CONSTANT: maxmem = target + videoram + 1 MiB. */
export const MAXMEM_SLACK_KIB = 1024;

export type Mode =
  /** need known: allocated by need */
  | 'normal'
  /** need unknown (no report, stale, nothing usable in it): target held */
  | 'hold';

export interface DomainWork {
  obs: DomainObservation;
  domid: number;
  name: string;
  settings: DomainSettings | null;
  unmanagedReason: UnmanagedReason | null;
  /** What it holds, less videoram (the unit memory/target is in). */
  currentKib: number;
  /** Claimed for it by Xen and not populated yet (a domain being built). */
  claimedKib: number;
  /** memory/target, or currentKib when absent. */
  targetKib: number;
  videoramKib: number;
  /** Memory it may still take on its own: min(target, maxmem) - current, when positive. */
  promiseKib: number;
  mode: Mode;
  /** Cannot shrink: counted at what it holds (its target is left for it to reach). */
  stuckDown: boolean;
  /** Could not grow: capped at what it holds until the retry time. */
  ceilingKib: number | null;
  minKib: number;
  maxKib: number;
  weight: number;
  levels: [number, number, number, number, number];
  estimator: Estimator | null;
  estimateKib: number | null;
  coreKib: number | null;
  needKib: number | null;
  headroomKib: number | null;
  pressureSignals: string[];
  active: boolean;
  reportState: ReportState;
  reportAgeMs: number | null;
  rates: Rates | null;
  reset: boolean;
  /** The state carried to the next step (smoothing fills in lastDownMs / lastUpMs). */
  next: DomainState;
}

function isKib(x: unknown): x is number {
  return typeof x === 'number' && Number.isFinite(x) && x >= 0 && x <= 2 ** 50;
}

function validObservation(d: DomainObservation): boolean {
  return (
    Number.isInteger(d.domid) && d.domid >= 0 && d.domid < 0x10000 &&
    isKib(d.currentKib) && isKib(d.maxmemKib) &&
    (d.staticMaxKib === null || isKib(d.staticMaxKib)) &&
    (d.targetKib === null || isKib(d.targetKib))
  );
}

export interface PrepareContext {
  policy: Policy;
  nowMs: number;
  /** Time since the previous step (bounded), for decays. */
  dtMs: number;
  duplicate: boolean;
}

export function prepareDomain(d: DomainObservation, prevIn: DomainState | undefined, ctx: PrepareContext): DomainWork {
  const { policy, nowMs } = ctx;
  const valid = !ctx.duplicate && validObservation(d);
  const name = typeof d.name === 'string' ? d.name : '';
  // A domid now naming another domain is a new domain: forget the old one's history.
  const prev = prevIn && prevIn.name === name ? prevIn : undefined;
  const videoramKib = isKib(d.videoramKib) ? d.videoramKib : 0;
  const currentKib = valid ? Math.max(0, d.currentKib - videoramKib) : 0;
  const targetKib = valid && d.targetKib !== null ? d.targetKib : currentKib;
  const settings = valid ? settingsFor(policy, { domid: d.domid, name }) : null;

  let unmanagedReason: UnmanagedReason | null = null;
  if (!valid || !settings) unmanagedReason = 'invalid';
  else if (d.dying) unmanagedReason = 'dying';
  else if (d.shutdown) unmanagedReason = 'shutdown';
  else if (d.domid === 0 && !policy.host.manage_dom0) unmanagedReason = 'dom0';
  else if (!settings.manage) unmanagedReason = 'policy';

  const capKib = valid ? Math.max(0, d.maxmemKib - videoramKib) : 0;
  // Growth it may still take on its own; what Xen already claimed for it is out of free memory.
  const claimedKib = valid && isKib(d.outstandingKib) ? d.outstandingKib : 0;
  const promiseKib =
    valid && !d.dying && !d.shutdown && d.targetKib !== null
      ? Math.max(0, Math.min(d.targetKib, capKib) - currentKib - claimedKib)
      : 0;

  const staticMaxKib =
    valid && d.staticMaxKib !== null
      ? d.staticMaxKib
      : (prev?.staticMaxKib ?? Math.max(0, (valid ? d.maxmemKib : 0) - videoramKib - MAXMEM_SLACK_KIB));

  // Report history: a report is new when its arrival time changed.
  let samples: readonly Sample[] = prev?.samples ?? [];
  let rates = prev?.rates ?? null;
  let overheadKib = prev?.overheadKib ?? null;
  let resets = prev?.resets ?? 0;
  let reset = false;
  const report = valid ? d.report : null;
  const reportAtMs = report && typeof d.reportAtMs === 'number' && Number.isFinite(d.reportAtMs) ? d.reportAtMs : null;
  const isNew = report !== null && reportAtMs !== null && reportAtMs !== prev?.lastReportAtMs;
  const tolerance = settings?.stuck.tolerance ?? 4096;
  if (isNew && report && reportAtMs !== null) {
    const got = ingest(samples, sampleOf(report, reportAtMs));
    samples = got.samples;
    rates = got.rates;
    if (got.reset) {
      reset = true;
      resets++;
      overheadKib = null;
    }
    const settled = Math.abs(currentKib - targetKib) <= tolerance;
    const held = report.balloonCurrentKib ?? (settled ? currentKib : null);
    overheadKib = measureOverhead(held, report.mem) ?? overheadKib;
  }
  const reportAgeMs = reportAtMs !== null ? Math.max(0, nowMs - reportAtMs) : null;
  const staleAfter = settings?.need.stale_after ?? 60_000;
  const reportState: ReportState = reportAtMs === null ? 'none' : (reportAgeMs ?? 0) > staleAfter ? 'stale' : 'fresh';

  const base: Omit<DomainWork, 'next'> = {
    obs: d,
    domid: d.domid,
    name,
    settings,
    unmanagedReason,
    currentKib,
    claimedKib,
    targetKib,
    videoramKib,
    promiseKib,
    mode: 'hold',
    stuckDown: false,
    ceilingKib: null,
    minKib: 0,
    maxKib: 0,
    weight: settings?.weight ?? 1,
    levels: [0, 0, 0, 0, 0],
    estimator: null,
    estimateKib: null,
    coreKib: null,
    needKib: null,
    headroomKib: null,
    pressureSignals: [],
    active: false,
    reportState,
    reportAgeMs,
    rates: reportState === 'fresh' ? rates : null,
    reset,
  };
  const next: DomainState = {
    name,
    samples,
    lastReportAtMs: reportAtMs ?? prev?.lastReportAtMs ?? null,
    rates,
    resets,
    overheadKib,
    pressureFloorKib: reset ? null : (prev?.pressureFloorKib ?? null),
    lastPressureMs: prev?.lastPressureMs ?? null,
    lastRaiseMs: prev?.lastRaiseMs ?? null,
    activeUntilMs: reset ? null : (prev?.activeUntilMs ?? null),
    lastCoreKib: prev?.lastCoreKib ?? null,
    lastDownMs: prev?.lastDownMs ?? null,
    lastUpMs: prev?.lastUpMs ?? null,
    progressAtMs: prev?.progressAtMs ?? nowMs,
    progressCurrentKib: prev?.progressCurrentKib ?? currentKib,
    stuck: false,
    uncooperative: false,
    ceiling: prev?.ceiling ?? null,
    staticMaxKib,
  };
  if (unmanagedReason !== null || !settings) {
    return { ...base, next: { ...next, ceiling: null, pressureFloorKib: null } };
  }

  const s = settings;
  const limits = resolveLimits(s, staticMaxKib, overheadKib);
  const { minKib, maxKib } = limits;
  const clamp = (x: number) => Math.min(maxKib, Math.max(minKib, Math.floor(x / 4) * 4));

  // Progress toward the target (squeezed's stuck detection, with a tolerance wide enough that a
  // driver settling a page table's worth off target is not "stuck").
  const gap = currentKib - targetKib;
  const atTarget = Math.abs(gap) <= tolerance;
  const moved = (next.progressCurrentKib - currentKib) * Math.sign(gap) >= Math.max(256, tolerance / 4);
  if (!prev || atTarget || moved) {
    next.progressAtMs = nowMs;
    next.progressCurrentKib = currentKib;
  }
  const since = nowMs - next.progressAtMs;
  next.stuck = !atTarget && since >= s.stuck.after;
  next.uncooperative = !atTarget && since >= s.stuck.uncooperative_after;

  let ceiling = next.ceiling;
  if (ceiling && (nowMs >= ceiling.untilMs || currentKib > ceiling.kib + tolerance)) ceiling = null;
  if (next.stuck && gap < 0 && !ceiling) ceiling = { kib: currentKib, untilMs: nowMs + s.stuck.retry };
  next.ceiling = ceiling;

  const est = reportState === 'fresh' && report ? estimateWithFallback(s.need.estimator, report.mem) : null;
  let levels: [number, number, number, number, number];
  const work: Omit<DomainWork, 'next'> = { ...base, minKib, maxKib };

  if (!est) {
    // Unknown need: hold the target where it is (never zero, never "free it all").
    const held = clamp(targetKib);
    levels = [held, held, held, held, held];
    work.mode = 'hold';
    next.pressureFloorKib = null;
  } else {
    const scaled = s.need.factor * est.kib;
    const core = (overheadKib ?? 0) + scaled;
    const reading = readPressure(rates, s.pressure);
    let floor = next.pressureFloorKib;
    if (isNew && reading.pressured) {
      next.lastPressureMs = nowMs;
      // Pressure while it holds less than its estimate is explained by the shortfall; only
      // pressure with the estimate met says the estimate is too low.
      const estimateMet = currentKib + tolerance >= core;
      if (estimateMet && (next.lastRaiseMs === null || nowMs - next.lastRaiseMs >= policy.intervalMs)) {
        const burst = (rates?.swapInKibps ?? 0) * 1; // a second's worth of what it swapped in
        const raised = Math.max(core, currentKib) + Math.max(pressureStepKib(s, currentKib), burst);
        floor = Math.min(maxKib, Math.max(floor ?? 0, raised));
        next.lastRaiseMs = nowMs;
      }
    } else if (floor !== null && (next.lastPressureMs === null || nowMs - next.lastPressureMs >= s.pressure.quiet)) {
      floor -= (s.pressure.decay * ctx.dtMs) / 1000;
    }
    if (floor !== null && floor <= core) floor = null;
    next.pressureFloorKib = floor;
    const coreEff = Math.max(core, floor ?? 0);
    const rose =
      next.lastCoreKib !== null && coreEff - next.lastCoreKib >= Math.max(s.hysteresis, 0.1 * next.lastCoreKib);
    if (rose || (isNew && reading.pressured)) next.activeUntilMs = nowMs + s.pressure.quiet;
    next.lastCoreKib = coreEff;
    const active = next.activeUntilMs !== null && nowMs < next.activeUntilMs;
    const headroom = headroomKib(s, scaled);
    const l0 = minKib;
    const l2 = Math.max(l0, clamp(coreEff));
    const l1 = active ? l2 : l0;
    const l3 = Math.max(l2, clamp(coreEff + headroom));
    const l4 = s.surplus === 'share' ? Math.max(l3, maxKib) : l3;
    levels = [l0, l1, l2, l3, l4];
    Object.assign(work, {
      mode: 'normal' as const,
      estimator: est.estimator,
      estimateKib: est.kib,
      coreKib: Math.round(coreEff),
      needKib: l3,
      headroomKib: Math.round(headroom),
      pressureSignals: reading.signals,
      active,
    });
  }

  if (next.stuck && gap > 0) {
    // It cannot give memory back now: count what it holds, so others cover its share.
    work.stuckDown = true;
    levels = levels.map((l) => Math.max(l, currentKib)) as typeof levels;
  }
  if (ceiling) {
    const cap = Math.max(minKib, Math.min(maxKib, ceiling.kib));
    work.ceilingKib = cap;
    levels = levels.map((l) => Math.min(l, cap)) as typeof levels;
  }
  next.stuck = next.stuck || ceiling !== null;
  return { ...work, levels, next };
}
