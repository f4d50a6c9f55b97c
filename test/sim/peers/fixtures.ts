/**
 * Synthetic Observations and a toy host for peer tests. The toy host only moves each guest's
 * tot_pages toward min(target, maxmem) at a given rate (or not at all, when stuck) and keeps
 * free = total - sum(tot_pages); it is not the simulator, just enough to watch a peer's loop.
 */
import type { Action, DomainObservation, Observation } from '../../../src/core/types.js';
import type { GuestReport, ReportMem } from '../../../src/report/types.js';
import type { Controller } from '../../../src/sim/controller.js';

export const MiB = 1024;
export const GiB = 1024 * 1024;

export function report(mem: Partial<ReportMem>, extra: Partial<GuestReport> = {}): GuestReport {
  return {
    format: 'v1',
    seq: 1,
    uptimeS: 100,
    mem: {
      totalKib: null,
      freeKib: null,
      availableKib: null,
      buffersKib: null,
      cachedKib: null,
      shmemKib: null,
      swapTotalKib: null,
      swapFreeKib: null,
      committedAsKib: null,
      usedKib: null,
      ...mem,
    },
    counters: { pswpin: null, pswpout: null, pgmajfault: null, workingsetRefault: null, oomKill: null },
    pressure: null,
    balloonCurrentKib: null,
    ...extra,
  };
}

export function dom(d: Partial<DomainObservation> & { domid: number; currentKib: number }): DomainObservation {
  return {
    name: `guest${d.domid}`,
    maxmemKib: d.currentKib,
    staticMaxKib: d.maxmemKib ?? d.currentKib,
    targetKib: d.currentKib,
    videoramKib: 0,
    dying: false,
    shutdown: false,
    hvm: false,
    report: null,
    reportAtMs: null,
    ...d,
  };
}

export function observation(
  host: Partial<Observation['host']> & { totalKib: number; freeKib: number },
  domains: DomainObservation[],
): Observation {
  return { host: { scrubKib: 0, outstandingKib: 0, ...host }, domains, reservations: [] };
}

export interface ToyGuest {
  domid: number;
  currentKib: number;
  targetKib: number;
  maxmemKib: number;
  staticMaxKib: number;
  /** KiB per second the balloon moves; Infinity = at once. */
  rateKibPerS?: number;
  /** A stuck balloon never moves. */
  stuck?: boolean;
  /** Builds the guest's report from its state (null: publishes nothing). */
  report?: (g: ToyGuest) => GuestReport | null;
  hvm?: boolean;
}

export interface LoggedAction {
  atMs: number;
  action: Action;
}

export class ToyHost {
  constructor(
    public totalKib: number,
    public guests: ToyGuest[],
  ) {}

  freeKib(): number {
    return this.totalKib - this.guests.reduce((s, g) => s + g.currentKib, 0);
  }

  guest(domid: number): ToyGuest {
    const g = this.guests.find((x) => x.domid === domid);
    if (g === undefined) throw new Error(`no guest ${domid}`);
    return g;
  }

  observe(nowMs: number): Observation {
    return observation(
      { totalKib: this.totalKib, freeKib: this.freeKib() },
      this.guests.map((g) =>
        dom({
          domid: g.domid,
          currentKib: g.currentKib,
          targetKib: g.targetKib,
          maxmemKib: g.maxmemKib,
          staticMaxKib: g.staticMaxKib,
          hvm: g.hvm ?? false,
          report: g.report?.(g) ?? null,
          reportAtMs: g.report ? nowMs : null,
        }),
      ),
    );
  }

  apply(actions: Action[]): void {
    for (const a of actions) {
      if (a.kind === 'flag') continue;
      const g = this.guest(a.domid);
      if (a.kind === 'setTarget') g.targetKib = a.kib;
      else g.maxmemKib = a.kib;
    }
  }

  advance(ms: number): void {
    for (const g of this.guests) {
      if (g.stuck) continue;
      const want = Math.min(g.targetKib, g.maxmemKib);
      const step = ((g.rateKibPerS ?? Infinity) * ms) / 1000;
      const delta = want - g.currentKib;
      if (delta > 0) g.currentKib += Math.min(delta, step, Math.max(0, this.freeKib()));
      else g.currentKib += Math.max(delta, -step);
    }
  }

  /** Step the controller every intervalMs from `fromMs` up to (not including) `toMs`. */
  run(c: Controller, fromMs: number, toMs: number, log: LoggedAction[] = []): LoggedAction[] {
    for (let t = fromMs; t < toMs; t += c.intervalMs) {
      const actions = c.step(this.observe(t), t);
      for (const action of actions) log.push({ atMs: t, action });
      this.apply(actions);
      this.advance(c.intervalMs);
    }
    return log;
  }
}

export function targetsOf(log: LoggedAction[], domid: number): number[] {
  return log.flatMap((l) => (l.action.kind === 'setTarget' && l.action.domid === domid ? [l.action.kib] : []));
}
