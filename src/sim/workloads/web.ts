/**
 * A page-cache heavy web server: modest anonymous memory (workers) that follows the request load,
 * a large content set of which a hot part is re-read constantly, and a stream of cold reads that
 * grows the page cache into whatever memory the guest has free. Load follows a daily-like cycle
 * (one `period`) with seeded noise.
 */
import type { Prng } from '../prng.js';
import { type Demand, RestartClock, type Workload } from './types.js';
import { NO_DEMAND } from './types.js';

export interface WebConfig {
  baseAnonKib: number;
  /** Extra worker memory at full load. */
  loadAnonKib: number;
  /** Hot content at full load (at zero load half of it stays hot). */
  hotFileKib: number;
  /** Cold content read per ms at full load. */
  streamKibPerMs: number;
  touchRateKibPerMs: number;
  periodMs: number;
  restartAfterMs: number;
}

export class WebServer implements Workload {
  readonly kind = 'web';
  private t = 0;
  private load = 0.5;
  private readonly phase: number;
  private readonly restart: RestartClock;

  constructor(private readonly cfg: WebConfig, private readonly rng: Prng) {
    this.phase = rng.uniform(0, 2 * Math.PI);
    this.restart = new RestartClock(cfg.restartAfterMs);
    this.load = this.loadAt(0);
  }

  private loadAt(t: number): number {
    const cycle = 0.5 + 0.4 * Math.sin((2 * Math.PI * t) / this.cfg.periodMs + this.phase);
    return Math.min(1, Math.max(0, cycle));
  }

  demand(): Demand {
    if (this.restart.isDown) return NO_DEMAND;
    const c = this.cfg;
    const anon = c.baseAnonKib + this.load * c.loadAnonKib;
    return {
      anonKib: anon,
      committedKib: anon * 1.5,
      hotAnonKib: anon * 0.5,
      anonTouchKibPerMs: c.touchRateKibPerMs * 0.2,
      fileWsKib: c.hotFileKib * (0.5 + 0.5 * this.load),
      fileTouchKibPerMs: c.touchRateKibPerMs * this.load,
      fileStreamKibPerMs: c.streamKibPerMs * this.load,
      fullStallShare: 0.3,
    };
  }

  advance(wallMs: number): void {
    if (this.restart.down(wallMs)) return;
    this.t += wallMs;
    // Noise as a slow random walk around the cycle, so targets do not chase white noise.
    const noise = (this.rng.next() - 0.5) * 0.02 * Math.sqrt(wallMs / 1000);
    this.load = Math.min(1, Math.max(0, 0.9 * this.load + 0.1 * this.loadAt(this.t) + noise));
  }

  kill(): void {
    this.restart.kill();
  }
}
