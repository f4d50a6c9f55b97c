/**
 * The paper's eatmem: forever { malloc a chunk of random size (1..max, whole 4 KiB pages); write
 * each page a random number of times (1..max_writes); free it; sleep a random whole number of
 * seconds (0..max_sleep) }. The paper (Magenheimer, Xen Summit 2008) says each page is written
 * "repeatedly a random number of times" and that guests "can be observed doing some swapping".
 *
 * The writes are modelled as sweeps over the chunk: sweep 1 faults every page in (zero-fill, at
 * `fault_rate`); sweep k (2..max_writes) writes again every page whose count (uniform in
 * 1..max_writes) is at least k: in expectation the share (max_writes - k + 1) / max_writes of the
 * pages, scattered over the chunk, `write_time` each. A page written in sweep 1 and pushed to swap
 * while the rest of the chunk was faulted in is therefore touched again in a later sweep and comes
 * back (swap-in), as on a real guest whose chunk does not fit in RAM. The mean number of writes
 * per page, (1 + max_writes) / 2, and so the run time of a chunk on a guest that does not swap,
 * are the same as writing each page n times in a row (native/eatmem.c's order).
 *
 * Time only advances while the process runs (the guest model stalls it on faults), so a guest
 * that must swap holds the chunk longer. Committed_AS includes the whole chunk from the malloc
 * on, before a page is touched. Work done is counted in page writes.
 */
import type { Prng } from '../prng.js';
import { PAGE_KIB } from '../units.js';
import { type Demand, NO_DEMAND, RestartClock, type Workload } from './types.js';

export interface EatmemConfig {
  maxChunkKib: number;
  maxSleepMs: number;
  /** Each page is written 1..maxWrites times (in sweeps, see above). */
  maxWrites: number;
  /** First touch of a page (fault + zero-fill), KiB per ms of run time. */
  faultRateKibPerMs: number;
  /** Each further write to a page already mapped, ms. */
  writeMs: number;
  /** Sleep before the first chunk (rc.local starts it after boot). */
  startDelayMs: number;
  restartAfterMs: number;
}

type Phase =
  | { kind: 'sleep'; leftMs: number }
  /** Sweep `sweep` (1-based) over the chunk: `doneKib` of it covered, at `kibPerMs` of run time. */
  | { kind: 'write'; chunkKib: number; sweep: number; doneKib: number; kibPerMs: number };

export class Eatmem implements Workload {
  readonly kind = 'eatmem';
  private phase: Phase;
  private readonly restart: RestartClock;
  /** Chunks written and freed so far. */
  chunks = 0;
  /** Page writes completed (the work done). */
  pageWrites = 0;

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
    if (p.sweep === 1) return { ...NO_DEMAND, anonKib: p.doneKib, committedKib: p.chunkKib };
    // Re-writing: the whole chunk is its working set; pages are touched at the write speed.
    return { ...NO_DEMAND, anonKib: p.chunkKib, committedKib: p.chunkKib, hotAnonKib: p.chunkKib, anonTouchKibPerMs: PAGE_KIB / this.writeMs };
  }

  /** Run time the current sweep still needs if nothing stalls it. */
  runLeftMs(): number {
    const p = this.phase;
    return p.kind === 'write' ? (p.chunkKib - p.doneKib) / p.kibPerMs : 0;
  }

  /** Share of the chunk's pages written in sweep k: those whose random count (1..W) is >= k. */
  private share(sweep: number): number {
    const w = Math.max(1, this.cfg.maxWrites);
    return (w - sweep + 1) / w;
  }

  /** A write costs at least a nanosecond (a zero write_time would make sweeps free and infinite-rate). */
  private get writeMs(): number {
    return Math.max(1e-6, this.cfg.writeMs);
  }

  advance(wallMs: number, runMs: number): void {
    if (this.restart.down(wallMs)) {
      if (!this.restart.isDown) this.phase = { kind: 'sleep', leftMs: 0 };
      return;
    }
    let wall = wallMs;
    let run = runMs;
    // A tick can end several phases (sweeps over a resident chunk take well under a tick).
    for (let guard = 0; guard < 8 + 2 * this.cfg.maxWrites && wall > 0; guard++) {
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
      const perPage = this.share(p.sweep) / PAGE_KIB;
      if (run * p.kibPerMs < left) {
        p.doneKib += run * p.kibPerMs;
        this.pageWrites += run * p.kibPerMs * perPage;
        return;
      }
      const usedMs = left / p.kibPerMs;
      this.pageWrites += left * perPage;
      run -= usedMs;
      wall -= usedMs;
      if (p.sweep < Math.max(1, this.cfg.maxWrites)) {
        this.phase = this.sweepPhase(p.chunkKib, p.sweep + 1);
        // The re-writes start next tick: the guest sizes a tick's run time from the demand at its
        // start, and from here on that demand touches the whole chunk (some of it maybe swapped).
        if (p.sweep === 1) return;
        continue;
      }
      this.chunks += 1;
      this.phase = { kind: 'sleep', leftMs: this.rng.int(0, Math.floor(this.cfg.maxSleepMs / 1000)) * 1000 };
    }
  }

  private startChunk(): void {
    const maxPages = Math.max(1, Math.floor(this.cfg.maxChunkKib / PAGE_KIB));
    this.phase = this.sweepPhase(this.rng.int(1, maxPages) * PAGE_KIB, 1);
  }

  /** Sweep 1 faults each page in; sweep k writes the share of pages still due, each write_time. */
  private sweepPhase(chunkKib: number, sweep: number): Phase {
    const msPerPage = sweep === 1 ? PAGE_KIB / this.cfg.faultRateKibPerMs : this.share(sweep) * this.writeMs;
    return { kind: 'write', chunkKib, sweep, doneKib: 0, kibPerMs: PAGE_KIB / msPerPage };
  }

  workDone(): number {
    return this.pageWrites;
  }

  kill(): void {
    this.restart.kill();
    this.phase = { kind: 'sleep', leftMs: 0 };
  }
}
