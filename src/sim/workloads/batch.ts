/**
 * Batch jobs with spikes: a small resident service, and jobs arriving at random (Poisson, mean
 * `meanGap`) that malloc a large spike up front (Committed_AS jumps), fill it over `ramp`, work
 * on it for a random time up to `maxHold`, and free it.
 */
import type { Prng } from '../prng.js';
import { type Demand, NO_DEMAND, RestartClock, type Workload } from './types.js';

export interface BatchConfig {
  baseAnonKib: number;
  maxSpikeKib: number;
  minSpikeKib: number;
  meanGapMs: number;
  rampMs: number;
  maxHoldMs: number;
  touchRateKibPerMs: number;
  startDelayMs: number;
  restartAfterMs: number;
}

type Phase = { kind: 'wait'; leftMs: number } | { kind: 'job'; spikeKib: number; t: number; holdMs: number };

export class Batch implements Workload {
  readonly kind = 'batch';
  private phase: Phase;
  private readonly restart: RestartClock;
  jobs = 0;

  constructor(private readonly cfg: BatchConfig, private readonly rng: Prng) {
    this.phase = { kind: 'wait', leftMs: cfg.startDelayMs + rng.exponential(cfg.meanGapMs) };
    this.restart = new RestartClock(cfg.restartAfterMs);
  }

  demand(): Demand {
    if (this.restart.isDown) return NO_DEMAND;
    const c = this.cfg;
    let spikeAnon = 0;
    let spikeCommitted = 0;
    if (this.phase.kind === 'job') {
      const p = this.phase;
      spikeCommitted = p.spikeKib;
      spikeAnon = c.rampMs > 0 ? p.spikeKib * Math.min(1, p.t / c.rampMs) : p.spikeKib;
    }
    return {
      anonKib: c.baseAnonKib + spikeAnon,
      committedKib: c.baseAnonKib * 1.5 + spikeCommitted,
      hotAnonKib: spikeAnon,
      anonTouchKibPerMs: spikeAnon > 0 ? c.touchRateKibPerMs : 0,
      fileWsKib: 0,
      fileTouchKibPerMs: 0,
      fileStreamKibPerMs: 0,
      fullStallShare: 1,
    };
  }

  advance(wallMs: number, runMs: number): void {
    if (this.restart.down(wallMs)) return;
    const p = this.phase;
    if (p.kind === 'wait') {
      p.leftMs -= wallMs;
      if (p.leftMs <= 0) {
        this.phase = {
          kind: 'job',
          spikeKib: this.rng.uniform(this.cfg.minSpikeKib, this.cfg.maxSpikeKib),
          t: 0,
          holdMs: this.rng.uniform(0.2, 1) * this.cfg.maxHoldMs,
        };
      }
      return;
    }
    // A job progresses only while it runs: a job stalled on swap takes longer.
    p.t += runMs;
    if (p.t >= this.cfg.rampMs + p.holdMs) {
      this.jobs += 1;
      this.phase = { kind: 'wait', leftMs: this.rng.exponential(this.cfg.meanGapMs) };
    }
  }

  kill(): void {
    this.restart.kill();
    this.phase = { kind: 'wait', leftMs: this.rng.exponential(this.cfg.meanGapMs) };
  }
}
