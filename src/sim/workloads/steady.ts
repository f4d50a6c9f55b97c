/**
 * A fixed demand, changeable at run time: for tests, and for `sim-host` where a test sets a
 * guest's need directly (e.g. "this guest now holds 300 MiB") to watch a controller react.
 */
import { type Demand, NO_DEMAND, type Workload } from './types.js';

export interface SteadyConfig {
  anonKib: number;
  committedKib: number;
  /** Share of anon touched repeatedly. */
  hotFraction: number;
  touchRateKibPerMs: number;
  fileWsKib: number;
}

export class Steady implements Workload {
  readonly kind = 'steady';
  private dead = false;

  constructor(public cfg: SteadyConfig) {}

  set(cfg: Partial<SteadyConfig>): void {
    this.cfg = { ...this.cfg, ...cfg };
    this.dead = false;
  }

  demand(): Demand {
    if (this.dead) return NO_DEMAND;
    const c = this.cfg;
    return {
      anonKib: c.anonKib,
      committedKib: Math.max(c.committedKib, c.anonKib),
      hotAnonKib: c.anonKib * c.hotFraction,
      anonTouchKibPerMs: c.touchRateKibPerMs,
      fileWsKib: c.fileWsKib,
      fileTouchKibPerMs: c.fileWsKib > 0 ? c.touchRateKibPerMs : 0,
      fileStreamKibPerMs: 0,
      fullStallShare: 1,
    };
  }

  advance(): void {}

  /** A steady workload stays dead until a test sets it again: the OOM kill stays visible. */
  kill(): void {
    this.dead = true;
  }
}
