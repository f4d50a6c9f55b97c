/**
 * Everything the core works out about one domain before memory is divided: whether it is
 * managed, its report history and rates, its need, its floor and ceiling, whether it is stuck,
 * its four allocation levels (allocate.ts), and what a reservation may not take from it.
 */
import { settingsFor } from '../policy/effective.js';
import type { DomainSettings, Estimator, Policy } from '../policy/schema.js';
import type { DomainObservation } from './types.js';
import type { UnmanagedReason, ReportState } from './explain.js';
import { resolveLimits } from './limits.js';
import { estimateWithFallback, headroomKib, inUseKib, measureOverhead, pressureStepKib, readPressure, unswappableKib, usedKib, useLevelKib } from './need.js';
import { ingest, sampleOf } from './signals.js';
import { HELD_PEAK_MS, reportProblem } from './trust.js';
import { damp } from './damping.js';
import type { DomainState, Rates, Sample } from './state.js';

/** libxl's LIBXL_MAXMEM_CONSTANT: maxmem = target + videoram + 1 MiB. */
export const MAXMEM_SLACK_KIB = 1024;

/** Of a guest's MemFree, this much is left alone when shrinking it (its kernel's watermarks). */
export const GUEST_FREE_MARGIN_KIB = 8 * 1024;

const NO_SIGNALS: readonly string[] = Object.freeze([]);
const NO_FLIPS: readonly number[] = Object.freeze([]);

export type Mode =
  /** need known: allocated by need */
  | 'normal'
  /** need unknown (no report yet, nothing usable in it): target held */
  | 'hold'
  /** its trusted report went stale (or was rejected) long enough ago: decays to its last use */
  | 'decay';

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
  /** The admin's floor alone (policy `min`). */
  adminMinKib: number;
  /** Its weighted fair share of what managed domains can have (step.ts fills it in); null until then. */
  fairKib: number | null;
  /** Its report floor was lowered to its fair share (explanations). */
  floorCapped: boolean;
  /** Why its current report was rejected by the trust checks, or null. */
  reportRejected: string | null;
  /** Its claims flip: its levels are held at their recent peak. */
  damped: boolean;
  /** What set minKib (explanations). */
  floor: 'min' | 'kernel' | 'oom';
  weight: number;
  levels: [number, number, number, number];
  /** What it demonstrably uses (level L1: footprint + in use + swap used + part of its cache + cushion), or null. */
  useKib: number | null;
  /**
   * What reservations may not take from it: its need while it is active (its need rose, or it
   * showed pressure, within need.active_for), its floor otherwise. A new domain waits for
   * memory that active domains need; idle domains give theirs down to the floor.
   */
  protectKib: number;
  estimator: Estimator | null;
  estimateKib: number | null;
  coreKib: number | null;
  needKib: number | null;
  headroomKib: number | null;
  pressureSignals: readonly string[];
  active: boolean;
  /**
   * Memory free inside the guest now (its last MemFree, less what it gave back since, less a
   * margin): a shrink takes this at once, since it costs the guest no reclaim; only the rest of
   * a shrink is held to rate.down.
   */
  guestFreeKib: number;
  reportState: ReportState;
  reportAgeMs: number | null;
  rates: Rates | null;
  reset: boolean;
  /** The state carried to the next step (smoothing fills in lastDownMs / lastUpMs). */
  next: DomainState;
}

/** Whole pages (rounded down), inside [min, max]. */
function clampPages(minKib: number, maxKib: number, x: number): number {
  return Math.min(maxKib, Math.max(minKib, Math.floor(x / 4) * 4));
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
}

/** @param duplicate another entry of the observation already has this domid: ignore this one. */
export function prepareDomain(
  d: DomainObservation,
  prevIn: DomainState | undefined,
  ctx: PrepareContext,
  duplicate = false,
): DomainWork {
  const { policy, nowMs } = ctx;
  const valid = !duplicate && validObservation(d);
  const name = typeof d.name === 'string' ? d.name : '';
  // A domid now naming another domain is a new domain: forget the old one's history.
  const prev = prevIn && prevIn.name === name ? prevIn : undefined;
  const videoramKib = isKib(d.videoramKib) ? d.videoramKib : 0;
  const currentKib = valid ? Math.max(0, d.currentKib - videoramKib) : 0;
  const targetKib = valid && d.targetKib !== null ? d.targetKib : currentKib;
  // The observation is its own identity (domid, name): no object per domain for the lookup.
  const settings = valid ? settingsFor(policy, typeof d.name === 'string' ? d : { domid: d.domid, name }) : null;

  let unmanagedReason: UnmanagedReason | null = null;
  if (!valid || !settings) unmanagedReason = 'invalid';
  else if (d.dying) unmanagedReason = 'dying';
  else if (d.shutdown) unmanagedReason = 'shutdown';
  else if (d.domid === 0 && !policy.host.manage_dom0) unmanagedReason = 'dom0';
  // The toolstack writes memory/target once it has built the domain. Before that (`xl create`
  // in progress: no memory yet, its maxmem about to be set by libxl) the domain is not ours:
  // a target or maxmem written now would be computed from nothing and break the build.
  else if (d.domid !== 0 && d.targetKib === null) unmanagedReason = 'building';
  else if (!settings.manage) unmanagedReason = 'policy';
  else if (d.pinned === true) unmanagedReason = 'pinned';

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

  // What the hypervisor saw it hold lately: the bound a report is checked against.
  const rawCurrent = valid ? d.currentKib : 0;
  const peakKept = prev !== undefined && nowMs - prev.heldPeakAtMs < HELD_PEAK_MS && prev.heldPeakKib > rawCurrent;
  const heldPeakKib = peakKept && prev ? prev.heldPeakKib : rawCurrent;
  const heldPeakAtMs = peakKept && prev ? prev.heldPeakAtMs : nowMs;

  // Trust: a report that contradicts what the hypervisor knows is treated as no report.
  const rawReport = valid ? d.report : null;
  const rawAtMs = rawReport && typeof d.reportAtMs === 'number' && Number.isFinite(d.reportAtMs) ? d.reportAtMs : null;
  const lastSample = prev?.samples[prev.samples.length - 1] ?? null;
  const rejectedReason = rawReport
    ? reportProblem(rawReport, { heldPeakKib, targetKib: valid ? d.targetKib : null, staticMaxKib }, lastSample, rawReport.uptimeS)
    : null;
  const rawIsNew = rawAtMs !== null && rawAtMs !== prev?.lastReportAtMs;
  const rejections = (prev?.rejections ?? 0) + (rejectedReason !== null && rawIsNew ? 1 : 0);

  // Report history: a report is new when its arrival time changed.
  let samples: readonly Sample[] = prev?.samples ?? [];
  let rates = prev?.rates ?? null;
  let overheadKib = prev?.overheadKib ?? null;
  let resets = prev?.resets ?? 0;
  let reset = false;
  let heldAtReportKib: number | null = null;
  const report = rejectedReason === null ? rawReport : null;
  const reportAtMs = report ? rawAtMs : null;
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
    heldAtReportKib = held;
  } else if (prev && report) {
    heldAtReportKib = prev.heldAtReportKib;
  }
  const reportAgeMs = reportAtMs !== null ? Math.max(0, nowMs - reportAtMs) : null;
  const staleAfter = settings?.need.stale_after ?? 60_000;
  const reportState: ReportState = reportAtMs === null ? 'none' : (reportAgeMs ?? 0) > staleAfter ? 'stale' : 'fresh';

  const next: DomainState = {
    name,
    samples,
    lastReportAtMs: rawAtMs ?? prev?.lastReportAtMs ?? null,
    rates,
    resets,
    overheadKib,
    pressureBoostKib: reset ? null : (prev?.pressureBoostKib ?? null),
    lastPressureMs: prev?.lastPressureMs ?? null,
    lastRaiseMs: prev?.lastRaiseMs ?? null,
    activeUntilMs: reset ? null : (prev?.activeUntilMs ?? null),
    lastCoreKib: prev?.lastCoreKib ?? null,
    lastInUseKib: reset ? null : (prev?.lastInUseKib ?? null),
    lastDownMs: prev?.lastDownMs ?? null,
    lastUpMs: prev?.lastUpMs ?? null,
    progressAtMs: prev?.progressAtMs ?? nowMs,
    progressCurrentKib: prev?.progressCurrentKib ?? currentKib,
    stuck: false,
    uncooperative: false,
    ceiling: prev?.ceiling ?? null,
    staticMaxKib,
    heldAtReportKib,
    heldPeakKib,
    heldPeakAtMs,
    lastTrustedAtMs: reportAtMs ?? prev?.lastTrustedAtMs ?? null,
    rejections,
    rejectedReason,
    lastUseKib: reset ? null : (prev?.lastUseKib ?? null),
    lastNeedKib: prev?.lastNeedKib ?? null,
    needDir: prev?.needDir ?? 0,
    flipsAtMs: prev?.flipsAtMs ?? NO_FLIPS,
    dampUntilMs: prev?.dampUntilMs ?? null,
    peakLevels: prev?.peakLevels ?? null,
  };  const work: DomainWork = {
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
    adminMinKib: 0,
    fairKib: null,
    floorCapped: false,
    reportRejected: rejectedReason,
    damped: false,
    floor: 'min',
    weight: settings?.weight ?? 1,
    levels: [0, 0, 0, 0],
    useKib: null,
    protectKib: 0,
    estimator: null,
    estimateKib: null,
    coreKib: null,
    needKib: null,
    headroomKib: null,
    pressureSignals: NO_SIGNALS,
    active: false,
    guestFreeKib: 0,
    reportState,
    reportAgeMs,
    rates: reportState === 'fresh' ? rates : null,
    reset,
    next,
  };

  if (unmanagedReason !== null || !settings) {
    next.ceiling = null;
    next.pressureBoostKib = null;
    return work;
  }

  const s = settings;
  const fresh = reportState === 'fresh' && report !== null;
  const inUse = fresh && report ? inUseKib(report.mem) : null;
  // Floors from the report never rise above what the hypervisor confirms it holds.
  const limits = resolveLimits(s, staticMaxKib, overheadKib, fresh && report ? unswappableKib(report.mem) : null, currentKib);
  const { minKib, maxKib } = limits;

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
  const reportedFree = report?.mem.freeKib;
  if (reportState === 'fresh' && heldAtReportKib !== null && typeof reportedFree === 'number' && Number.isFinite(reportedFree)) {
    // What it gave back since the report came out of its free memory first.
    const gaveBack = Math.max(0, heldAtReportKib - currentKib);
    work.guestFreeKib = Math.max(0, Math.min(reportedFree, currentKib) - gaveBack - GUEST_FREE_MARGIN_KIB);
  }
  let levels: [number, number, number, number];
  let protectKib: number;
  work.minKib = minKib;
  work.maxKib = maxKib;
  work.adminMinKib = limits.adminMinKib;
  work.floor = limits.floor;

  // Claims decay: once its last trusted report is older than stale_after (it fell silent, its
  // reports are rejected, or a Qubes value was never refreshed), what protected memory above
  // its use level stops doing so; the target drifts down to that level within rate.down.
  const lastTrusted = next.lastTrustedAtMs;
  const silent = !est && next.lastUseKib !== null && lastTrusted !== null && nowMs - lastTrusted > staleAfter;
  if (silent && next.lastUseKib !== null) {
    const keep = clampPages(minKib, maxKib, Math.min(targetKib, next.lastUseKib));
    levels = [minKib, keep, keep, keep];
    protectKib = minKib;
    work.mode = 'decay';
    work.useKib = keep;
    next.pressureBoostKib = null;
  } else if (!est) {
    // Unknown need: hold the target where it is (never zero, never "free it all").
    const held = clampPages(minKib, maxKib, targetKib);
    levels = [held, held, held, held];
    protectKib = held;
    work.mode = 'hold';
    next.pressureBoostKib = null;
  } else {
    const scaled = s.need.factor * est.kib;
    const core = (overheadKib ?? 0) + scaled;
    // In RAM or in swap: what a reservation's squeeze is measured against, and the base of the
    // domain's use level.
    const used = report ? usedKib(report.mem) : null;
    const reading = readPressure(rates, s.pressure);
    // Pressure feedback is an amount added to the estimate (not a level), so when the estimate
    // falls (a program freed memory) the need falls with it and only the correction remains.
    let boost = next.pressureBoostKib;
    if (isNew && reading.pressured) {
      next.lastPressureMs = nowMs;
      // Pressure while it holds less than its estimate is explained by the shortfall; only
      // pressure with the estimate met says the estimate is too low.
      const estimateMet = currentKib + tolerance >= core;
      if (estimateMet && (next.lastRaiseMs === null || nowMs - next.lastRaiseMs >= policy.intervalMs)) {
        const burst = (rates?.swapInKibps ?? 0) * 1; // a second's worth of what it swapped in
        // One step per interval while it lasts (senpai-like): evidence from a report can be a
        // second old, so a single reading never jumps the need to what the guest held then.
        boost = Math.min(Math.max(0, maxKib - core), (boost ?? 0) + Math.max(pressureStepKib(s, currentKib), burst));
        next.lastRaiseMs = nowMs;
      }
    } else if (boost !== null && (next.lastPressureMs === null || nowMs - next.lastPressureMs >= s.pressure.quiet)) {
      boost -= (s.pressure.decay * ctx.dtMs) / 1000;
    }
    if (boost !== null && boost <= 0) boost = null;
    next.pressureBoostKib = boost;
    const coreEff = core + (boost ?? 0);
    const rose =
      next.lastCoreKib !== null && coreEff - next.lastCoreKib >= Math.max(s.hysteresis, 0.1 * next.lastCoreKib);
    // Memory in use climbing (a database warming its pool, say) is activity too, even when
    // Committed_AS promised it long ago.
    const using = isNew && inUse !== null && next.lastInUseKib !== null && inUse - next.lastInUseKib >= s.hysteresis;
    if (rose || using || (isNew && reading.pressured)) next.activeUntilMs = nowMs + s.need.active_for;
    next.lastCoreKib = coreEff;
    if (isNew && inUse !== null) next.lastInUseKib = inUse;
    const active = next.activeUntilMs !== null && nowMs < next.activeUntilMs;
    const headroom = headroomKib(s, scaled);
    const l0 = minKib;
    const l2 = Math.max(l0, clampPages(minKib, maxKib, coreEff + headroom));
    // What it uses (in RAM or swap, with part of its page cache) comes before what Committed_AS
    // promised it but it never touched, and before its headroom: when memory is short the
    // allocation prices memory above this level higher (host.idle_tax).
    const use = report && used !== null ? useLevelKib(s, report.mem, overheadKib ?? 0, used) : null;
    const l1 = use === null ? l2 : Math.min(l2, Math.max(l0, clampPages(minKib, maxKib, use)));
    const l3 = s.surplus === 'share' ? Math.max(l2, maxKib) : l2;
    levels = [l0, l1, l2, l3];
    // What it used and held at this report: where its target decays to if it falls silent.
    if (isNew) next.lastUseKib = Math.min(l1, Math.max(minKib, currentKib));
    // Damping: a guest whose claims flip is held at the larger of its recent claims.
    const damped = damp(next, levels, isNew, nowMs, s.hysteresis);
    work.damped = damped;
    work.useKib = use === null ? null : levels[1];
    // Reservations take an idle domain's memory down to its floor, but push no more than
    // `squeeze` of what it uses (in RAM or swap: a guest already pushed into swap gives no
    // more) into swap; an active one keeps its core need.
    const squeezeFloor = used === null ? 0 : clampPages(minKib, maxKib, (overheadKib ?? 0) + used - s.squeeze);
    protectKib = active ? Math.max(l0, clampPages(minKib, maxKib, coreEff)) : Math.min(l2, Math.max(l0, squeezeFloor));
    work.mode = 'normal';
    work.estimator = est.estimator;
    work.estimateKib = est.kib;
    work.coreKib = Math.round(coreEff);
    work.needKib = levels[2];
    work.headroomKib = Math.round(headroom);
    work.pressureSignals = reading.signals;
    work.active = active;
  }

  if (next.stuck && gap > 0) {
    // It cannot give memory back now: count what it holds, so others cover its share.
    work.stuckDown = true;
    levels = levels.map((l) => Math.max(l, currentKib)) as typeof levels;
    protectKib = Math.max(protectKib, currentKib);
  }
  if (ceiling) {
    const cap = Math.max(minKib, Math.min(maxKib, ceiling.kib));
    work.ceilingKib = cap;
    levels = levels.map((l) => Math.min(l, cap)) as typeof levels;
    protectKib = Math.min(protectKib, cap);
  }
  next.stuck = next.stuck || ceiling !== null;
  work.levels = levels;
  work.protectKib = protectKib;
  return work;
}
