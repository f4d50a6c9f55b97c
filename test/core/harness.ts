/**
 * A small discrete-time host for core tests, in the spirit of squeezed's squeeze_test: Xen's
 * memory accounting (free = total - dom0 - guests), guests whose balloon drivers follow their
 * targets at a rate and can misbehave (hidden floor or ceiling, stuck, intermittently stuck,
 * slow), and checks that fail loudly:
 *   - a setTarget that raises a target must find maxmem already raised (raise before growing);
 *   - a setMaxmem must never cut below the domain's target (lower after shrinking);
 *   - no target above static-max or the policy max, none below the policy min;
 *   - a guest following its target must never find the host out of memory (two-phase: grow
 *     only into memory that is free);
 *   - no negative free memory, ever.
 * Unlike squeezed's harness, violations are collected and the tests assert there are none.
 */
import { initialState, step, type CoreState, type StepResult } from '../../src/core/index.js';
import type { Action, DomainObservation, Observation, ReservationObservation } from '../../src/core/types.js';
import type { Policy } from '../../src/policy/index.js';
import { MiB, report } from './fixtures.js';

export interface GuestSpec {
  domid: number;
  name?: string;
  /** MiB */
  staticMax: number;
  /** MiB the domain starts with (its target too). */
  start: number;
  /** Committed_AS in MiB, constant or a function of time (ms). */
  committedAs?: number | ((tMs: number) => number);
  /**
   * Memory its programs really touch (MiB; anonymous, in RAM or swapped out when it holds too
   * little). Default: all of Committed_AS but the page cache (what the reports said before).
   */
  uses?: number;
  /** Balloon driver speed, MiB/s (both ways). */
  rate?: number;
  /** Never goes below this (MiB) whatever its target says. */
  floor?: number;
  /** Never goes above this (MiB). */
  ceiling?: number;
  /** Does not move at all while this returns true. */
  stuck?: (tMs: number) => boolean;
  /** Publishes reports (default true). */
  reports?: boolean | ((tMs: number) => boolean);
  /** Kernel footprint (MiB) not visible in MemTotal. */
  overhead?: number;
}

interface Guest {
  spec: GuestSpec;
  currentKib: number;
  targetKib: number;
  maxmemKib: number;
  pswpin: number;
  reportAtMs: number | null;
  lastReport: ReturnType<typeof report> | null;
}

export interface HarnessOptions {
  totalMiB: number;
  dom0MiB?: number;
  policy: Policy;
  /** Replace the core's step (negative controls: a broken core must be caught). */
  stepFn?: (s: CoreState, o: Observation, p: Policy, now: number) => StepResult;
}

export class Harness {
  readonly guests = new Map<number, Guest>();
  readonly violations: string[] = [];
  readonly history: { tMs: number; targets: Map<number, number>; currents: Map<number, number>; freeKib: number }[] = [];
  reservations: ReservationObservation[] = [];
  state: CoreState = initialState();
  last: StepResult | null = null;
  tMs = 0;
  targetWrites = 0;
  private readonly totalKib: number;
  private readonly dom0Kib: number;

  constructor(private readonly opts: HarnessOptions) {
    this.totalKib = opts.totalMiB * MiB;
    this.dom0Kib = (opts.dom0MiB ?? 0) * MiB;
  }

  add(spec: GuestSpec): void {
    const kib = spec.start * MiB;
    if (kib > this.freeKib()) this.violations.push(`t=${this.tMs}: no room to create dom${spec.domid}`);
    this.guests.set(spec.domid, {
      spec,
      currentKib: kib,
      targetKib: kib,
      maxmemKib: spec.staticMax * MiB + 1024,
      pswpin: 0,
      reportAtMs: null,
      lastReport: null,
    });
  }

  remove(domid: number): void {
    this.guests.delete(domid);
  }

  freeKib(): number {
    let used = this.dom0Kib;
    for (const g of this.guests.values()) used += g.currentKib;
    return this.totalKib - used;
  }

  observation(): Observation {
    const domains: DomainObservation[] = [
      {
        domid: 0, name: 'Domain-0', currentKib: this.dom0Kib, maxmemKib: this.dom0Kib + 1024, staticMaxKib: null,
        targetKib: this.dom0Kib, videoramKib: 0, dying: false, shutdown: false, hvm: false, report: null, reportAtMs: null,
      },
    ];
    for (const g of this.guests.values()) {
      domains.push({
        domid: g.spec.domid,
        name: g.spec.name ?? `vm${g.spec.domid}`,
        currentKib: g.currentKib,
        maxmemKib: g.maxmemKib,
        staticMaxKib: g.spec.staticMax * MiB,
        targetKib: g.targetKib,
        videoramKib: 0,
        dying: false,
        shutdown: false,
        hvm: false,
        report: g.lastReport,
        reportAtMs: g.reportAtMs,
      });
    }
    return {
      host: { totalKib: this.totalKib, freeKib: Math.max(0, this.freeKib()), scrubKib: 0, outstandingKib: 0 },
      domains,
      reservations: this.reservations,
    };
  }

  private publishReports(): void {
    for (const g of this.guests.values()) {
      const r = g.spec.reports;
      const publishes = r === undefined ? true : typeof r === 'function' ? r(this.tMs) : r;
      if (!publishes) continue;
      const overhead = g.spec.overhead ?? 49;
      const committed = committedAt(g.spec, this.tMs);
      const total = g.currentKib / MiB - overhead;
      // With `uses`: in use = what fits of it next to the cache (10M buffers + 100M cached, 1M
      // of it shmem), the rest in swap.
      const uses = g.spec.uses;
      const swapped = uses === undefined ? 0 : Math.max(0, uses - Math.max(0, total - 109));
      g.lastReport = report({
        committedAs: committed,
        total,
        free: uses === undefined ? Math.max(0, total - committed) : Math.max(0, total - 109 - uses),
        swapFree: 1024 - swapped,
        balloonCurrent: g.currentKib / MiB,
        pswpin: g.pswpin,
        uptimeS: 1000 + this.tMs / 1000,
        psiSomeUs: null,
      });
      g.reportAtMs = this.tMs;
    }
  }

  /** One control interval: reports, a core step, its actions, then the guests move. */
  tick(intervalMs = this.opts.policy.intervalMs): StepResult {
    this.publishReports();
    const stepFn = this.opts.stepFn ?? step;
    const result = stepFn(this.state, this.observation(), this.opts.policy, this.tMs);
    this.state = result.state;
    this.last = result;
    for (const a of result.actions) this.apply(a);
    this.moveGuests(intervalMs);
    this.tMs += intervalMs;
    this.record();
    return result;
  }

  run(ms: number): void {
    const end = this.tMs + ms;
    while (this.tMs < end) this.tick();
  }

  private apply(a: Action): void {
    const g = this.guests.get(a.domid);
    if (!g) {
      if (a.kind !== 'flag' && a.domid !== 0) this.violations.push(`t=${this.tMs}: action for unknown dom${a.domid}`);
      return;
    }
    const domain = this.last?.explanation.domains.find((d) => d.domid === a.domid);
    if (a.kind === 'setTarget') {
      this.targetWrites++;
      if (a.kib > g.spec.staticMax * MiB) this.violations.push(`t=${this.tMs}: dom${a.domid} target ${a.kib} above static-max`);
      if (domain?.maxKib != null && a.kib > domain.maxKib) this.violations.push(`t=${this.tMs}: dom${a.domid} target above policy max`);
      if (domain?.minKib != null && a.kib < domain.minKib) this.violations.push(`t=${this.tMs}: dom${a.domid} target below policy min`);
      if (a.kib > g.targetKib && g.maxmemKib < a.kib) {
        this.violations.push(`t=${this.tMs}: dom${a.domid} target raised to ${a.kib} before maxmem (${g.maxmemKib})`);
      }
      g.targetKib = a.kib;
    } else if (a.kind === 'setMaxmem') {
      if (a.kib < g.targetKib) this.violations.push(`t=${this.tMs}: dom${a.domid} maxmem ${a.kib} cut below target ${g.targetKib}`);
      g.maxmemKib = a.kib;
    }
  }

  private moveGuests(intervalMs: number): void {
    // Shrinking guests first within an interval would hide a two-phase bug; grow first.
    const order = [...this.guests.values()].sort((a, b) => (b.targetKib - b.currentKib) - (a.targetKib - a.currentKib));
    for (const g of order) {
      const s = g.spec;
      if (s.stuck?.(this.tMs)) continue;
      const step = (s.rate ?? 256) * MiB * (intervalMs / 1000);
      let goal = Math.min(g.targetKib, g.maxmemKib);
      if (s.floor !== undefined) goal = Math.max(goal, s.floor * MiB);
      if (s.ceiling !== undefined) goal = Math.min(goal, s.ceiling * MiB);
      if (goal > g.currentKib) {
        const want = Math.min(step, goal - g.currentKib);
        const free = this.freeKib();
        if (want > free) {
          this.violations.push(`t=${this.tMs}: dom${s.domid} wants ${want} KiB but only ${free} is free`);
        }
        g.currentKib += Math.max(0, Math.min(want, free));
      } else if (goal < g.currentKib) {
        g.currentKib -= Math.min(step, g.currentKib - goal);
      }
      // Swap-in when what it uses does not fit in what it holds (its page cache goes first).
      const capacity = g.currentKib / MiB - (s.overhead ?? 49);
      const shortMiB = s.uses === undefined
        ? Math.max(0, committedAt(s, this.tMs) - capacity)
        : Math.max(0, s.uses - capacity);
      g.pswpin += Math.round((shortMiB * 256 * intervalMs) / 1000 / 4);
      if (this.freeKib() < 0) this.violations.push(`t=${this.tMs}: host free memory negative`);
    }
  }

  private record(): void {
    const targets = new Map<number, number>();
    const currents = new Map<number, number>();
    for (const [id, g] of this.guests) {
      targets.set(id, g.targetKib);
      currents.set(id, g.currentKib);
    }
    this.history.push({ tMs: this.tMs, targets, currents, freeKib: this.freeKib() });
  }

  guest(domid: number): Guest {
    const g = this.guests.get(domid);
    if (!g) throw new Error(`no dom${domid}`);
    return g;
  }

  reservationState(id: string): string | undefined {
    return this.last?.explanation.reservations.find((r) => r.id === id)?.state;
  }
}

function committedAt(s: GuestSpec, tMs: number): number {
  const c = s.committedAs ?? 150;
  return typeof c === 'function' ? c(tMs) : c;
}
