/**
 * The paper's eatmem, as native/eatmem.c implements it: forever { malloc a chunk of random size
 * (1..max, whole 4 KiB pages); go through it page by page, writing each page a random number of
 * times (1..max_writes) before moving on; free it; sleep a random whole number of seconds
 * (0..max_sleep) }.
 *
 * Time is modelled: every page is faulted in (zero-fill, at `fault_rate`) and then written n more
 * times (`write_time` each), and that work only advances while the process runs, so a guest that
 * must swap to make room holds the chunk longer, as a real one does. A page is never touched
 * again once eatmem moved past it, so nothing of the chunk itself is swapped back in; the cost of
 * a short guest is swap-out, and the OS pages pushed out with it. Committed_AS includes the whole
 * chunk from the malloc on, before a page is touched.
 */
import type { Prng } from '../prng.js';
import { PAGE_KIB } from '../units.js';
import { type Demand, NO_DEMAND, RestartClock, type Workload } from './types.js';

export interface EatmemConfig {
  maxChunkKib: number;
  maxSleepMs: number;
  /** Each page is written 1..maxWrites times in a row. */
  maxWrites: number;
  /** First touch of a page (fault + zero-fill), KiB per ms of run time. */
  faultRateKibPerMs: number;
  /** Each further write to a page already mapped, ms. */
  writeMs: number;
  /** Sleep before the first chunk (rc.local starts it after boot). */
  startDelayMs: number;
  restartAfterMs: number;
}

type Phase = { kind: 'sleep'; leftMs: number } | { kind: 'write'; chunkKib: number; doneKib: number; kibPerMs: number };

export class Eatmem implements Workload {
  readonly kind = 'eatmem';
  private phase: Phase;
  private readonly restart: RestartClock;
  /** Chunks written and freed so far. */
  chunks = 0;

  constructor(private readonly cfg: EatmemConfig, private readonly rng: Prng) {
    this.phase = { kind: 'sleep', leftMs: cfg.startDelayMs };
    this.restart = new RestartClock(cfg.restartAfterMs);
  }

  /** The chunk being written now (0 while sleeping): what the paper's eatmem published. */
  get chunkKib(): number {
    return this.phase.kind === 'write' ? this.phase.chunkKib : 0;
  }

  demand(): Demand {
    const p = this.phase;
    if (this.restart.isDown || p.kind === 'sleep') return NO_DEMAND;
    return { ...NO_DEMAND, anonKib: p.doneKib, committedKib: p.chunkKib };
  }

  /** Run time the chunk still needs if nothing stalls it. */
  runLeftMs(): number {
    const p = this.phase;
    return p.kind === 'write' ? (p.chunkKib - p.doneKib) / p.kibPerMs : 0;
  }

  advance(wallMs: number, runMs: number): void {
    if (this.restart.down(wallMs)) {
      if (!this.restart.isDown) this.phase = { kind: 'sleep', leftMs: 0 };
      return;
    }
    let wall = wallMs;
    let run = runMs;
    // A tick can end one phase and start the next (a short chunk, a zero-second sleep).
    for (let guard = 0; guard < 4 && wall > 0; guard++) {
      const p = this.phase;
      if (p.kind === 'sleep') {
        const used = Math.min(wall, p.leftMs);
        p.leftMs -= used;
        wall -= used;
        run = Math.min(run, wall);
        if (p.leftMs <= 0) this.startChunk();
        continue;
      }
      const left = p.chunkKib - p.doneKib;
      if (run * p.kibPerMs < left) {
        p.doneKib += run * p.kibPerMs;
        return;
      }
      const usedMs = left / p.kibPerMs;
      run -= usedMs;
      wall -= usedMs;
      this.chunks += 1;
      this.phase = { kind: 'sleep', leftMs: this.rng.int(0, Math.floor(this.cfg.maxSleepMs / 1000)) * 1000 };
    }
  }

  private startChunk(): void {
    const maxPages = Math.max(1, Math.floor(this.cfg.maxChunkKib / PAGE_KIB));
    const chunkKib = this.rng.int(1, maxPages) * PAGE_KIB;
    // Each page gets 1..maxWrites writes; over a chunk's many pages the mean is what counts.
    const extraWrites = (Math.max(1, this.cfg.maxWrites) - 1) / 2;
    const msPerPage = PAGE_KIB / this.cfg.faultRateKibPerMs + extraWrites * this.cfg.writeMs;
    this.phase = { kind: 'write', chunkKib, doneKib: 0, kibPerMs: PAGE_KIB / msPerPage };
  }

  kill(): void {
    this.restart.kill();
    this.phase = { kind: 'sleep', leftMs: 0 };
  }
}
