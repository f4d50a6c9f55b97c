/**
 * A database with a large, steady working set: its buffer pool is anonymous memory that warms up
 * over `warmup` after start (pages are read in as queries touch them) and then stays; most of it
 * is hot. Committed_AS is the pool plus connections. A small hot file set (WAL, indexes read via
 * the cache) and a trickle of cold reads (backups, logs).
 */
import type { Prng } from '../prng.js';
import { type Demand, NO_DEMAND, RestartClock, type Workload } from './types.js';

export interface DatabaseConfig {
  poolKib: number;
  /** Connections, sort buffers: allocated with the pool. */
  otherAnonKib: number;
  hotFraction: number;
  warmupMs: number;
  fileWsKib: number;
  touchRateKibPerMs: number;
  streamKibPerMs: number;
  restartAfterMs: number;
}

export class Database implements Workload {
  readonly kind = 'database';
  private t = 0;
  private readonly restart: RestartClock;
  private readonly jitter: number;

  constructor(private readonly cfg: DatabaseConfig, rng: Prng) {
    this.restart = new RestartClock(cfg.restartAfterMs);
    this.jitter = rng.uniform(0.9, 1.1);
  }

  demand(): Demand {
    if (this.restart.isDown) return NO_DEMAND;
    const c = this.cfg;
    const warm = c.warmupMs > 0 ? Math.min(1, this.t / (c.warmupMs * this.jitter)) : 1;
    const pool = c.poolKib * warm;
    return {
      anonKib: pool + c.otherAnonKib,
      committedKib: c.poolKib + c.otherAnonKib * 2,
      hotAnonKib: pool * c.hotFraction,
      anonTouchKibPerMs: c.touchRateKibPerMs,
      fileWsKib: c.fileWsKib,
      fileTouchKibPerMs: c.touchRateKibPerMs * 0.1,
      fileStreamKibPerMs: c.streamKibPerMs,
      fullStallShare: 0.5,
    };
  }

  advance(wallMs: number): void {
    if (this.restart.down(wallMs)) {
      if (!this.restart.isDown) this.t = 0;
      return;
    }
    this.t += wallMs;
  }

  kill(): void {
    this.restart.kill();
    this.t = 0;
  }
}
