/**
 * The guest's balloon driver: follows `memory/target` at a finite rate, in both directions, and
 * can fail to reach it the ways squeezed's simulator exercises (xapi-project/xen-api
 * ocaml/squeezed/test): a hidden floor (or ceiling) it will not pass, stuck (never moves),
 * intermittently stuck, slow. When Xen or the guest cannot give it pages it backs off as Linux's
 * driver does (retry delay doubling up to 32 s, reset on progress). It only ever takes memory the
 * guest can free (linux-guest.ts balloonTake), so it never OOMs the guest.
 */
import { PAGE_KIB } from '../units.js';
import type { LinuxGuest } from './linux-guest.js';

export interface BalloonConfig {
  /** Deflate (grow) and inflate (shrink) speeds, KiB per ms. */
  upRateKibPerMs: number;
  downRateKibPerMs: number;
  /** Hidden floor / ceiling (KiB of domain memory) the driver will not pass; null = none. */
  floorKib: number | null;
  ceilingKib: number | null;
  /** Stuck from this guest-uptime on (ms), for `stuckForMs` (null = for ever). */
  stuckFromMs: number | null;
  stuckForMs: number | null;
  /** Intermittently stuck: stuck for `stuckMs` out of every `periodMs`, starting at `phaseMs`. */
  intermittent: { periodMs: number; stuckMs: number; phaseMs: number } | null;
}

export interface HostPort {
  /** Ask Xen for pages (populate_physmap); returns KiB granted. */
  populate(kib: number): number;
  /** Give pages back to Xen (decrease_reservation); returns KiB released. */
  release(kib: number): number;
}

const MIN_RETRY_MS = 1000;
const MAX_RETRY_MS = 32_000;
/** Xen's balloon works in pages; closer than this counts as reached. */
const SLACK_KIB = 4;

export class BalloonDriver {
  /** memory/target as the driver last read it (KiB). */
  target: number;
  /** Time since the driver started (stuck windows are measured on it). */
  ageMs = 0;
  private waitMs = 0;
  private retryMs = MIN_RETRY_MS;
  /** Rate budget left over from rounding to whole pages, so the long-run rate is exact. */
  private credit = 0;

  constructor(
    public config: BalloonConfig,
    private readonly guest: LinuxGuest,
    private readonly host: HostPort,
    initialTargetKib: number,
  ) {
    this.target = initialTargetKib;
  }

  isStuck(): boolean {
    const c = this.config;
    const t = this.ageMs;
    if (c.stuckFromMs !== null && t >= c.stuckFromMs && (c.stuckForMs === null || t < c.stuckFromMs + c.stuckForMs)) {
      return true;
    }
    if (c.intermittent) {
      const { periodMs, stuckMs, phaseMs } = c.intermittent;
      if (periodMs > 0 && (t + phaseMs) % periodMs < stuckMs) return true;
    }
    return false;
  }

  /** Where the driver is actually heading: the target, clamped by any hidden floor or ceiling. */
  effectiveTarget(): number {
    let t = this.target;
    if (this.config.floorKib !== null) t = Math.max(t, this.config.floorKib);
    if (this.config.ceilingKib !== null) t = Math.min(t, this.config.ceilingKib);
    return t;
  }

  step(dtMs: number): void {
    this.ageMs += dtMs;
    if (!this.guest.isBooted) return;
    if (this.waitMs > 0) {
      this.waitMs -= dtMs;
      if (this.waitMs > 0) return;
    }
    if (this.isStuck()) return;
    const cur = this.guest.totKib;
    const goal = this.effectiveTarget();
    if (Math.abs(goal - cur) < SLACK_KIB) return;
    const rate = goal < cur ? this.config.downRateKibPerMs : this.config.upRateKibPerMs;
    const budget = this.credit + rate * dtMs;
    const want = Math.min(budget, Math.abs(goal - cur));
    let moved: number;
    if (goal < cur) {
      const got = this.guest.balloonTake(want, dtMs);
      const released = got > 0 ? this.host.release(got) : 0;
      if (released < got) this.guest.balloonGive(got - released);
      moved = released;
    } else {
      moved = this.host.populate(want);
      if (moved > 0) this.guest.balloonGive(moved);
    }
    this.credit = want === budget && budget - moved < PAGE_KIB ? budget - moved : 0;
    if (moved > 0) {
      this.retryMs = MIN_RETRY_MS;
    } else if (want >= SLACK_KIB) {
      this.waitMs = this.retryMs;
      this.retryMs = Math.min(MAX_RETRY_MS, this.retryMs * 2);
    }
  }
}
