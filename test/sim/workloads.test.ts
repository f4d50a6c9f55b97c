import { describe, expect, it } from 'vitest';
import { LinuxGuest } from '../../src/sim/guest/linux-guest.js';
import { Prng, streamFor } from '../../src/sim/prng.js';
import { Batch } from '../../src/sim/workloads/batch.js';
import { Database } from '../../src/sim/workloads/database.js';
import { Eatmem } from '../../src/sim/workloads/eatmem.js';
import { parseTraceCsv, TraceReplay } from '../../src/sim/workloads/trace.js';
import type { Workload } from '../../src/sim/workloads/types.js';
import { WebServer } from '../../src/sim/workloads/web.js';
import { eatmemConfig, MiB } from './configs.js';

const eatmemCfg = eatmemConfig;

interface Phase {
  kind: 'sleep' | 'write';
  startMs: number;
  endMs: number;
  chunkKib: number;
}

/** Runs a workload unimpeded (run time = wall time unless `runShare` says otherwise). */
function phases(w: Eatmem, ms: number, runShare = 1, dt = 10): Phase[] {
  const out: Phase[] = [];
  let cur: Phase | null = null;
  for (let t = 0; t < ms; t += dt) {
    const kind = w.chunkKib > 0 ? 'write' : 'sleep';
    if (!cur || cur.kind !== kind || (kind === 'write' && cur.chunkKib !== w.chunkKib)) {
      if (cur) out.push({ ...cur, endMs: t });
      cur = { kind, startMs: t, endMs: t, chunkKib: w.chunkKib };
    }
    w.advance(dt, dt * runShare);
  }
  return out;
}

describe('eatmem', () => {
  it('mallocs chunks of whole pages up to max and sleeps whole seconds up to max', () => {
    const w = new Eatmem(eatmemCfg({ maxChunkKib: 64 * MiB, maxSleepMs: 5000 }), new Prng(7));
    const ps = phases(w, 600_000, 1, 1);
    const writes = ps.filter((p) => p.kind === 'write');
    const sleeps = ps.filter((p) => p.kind === 'sleep').slice(1);
    expect(writes.length).toBeGreaterThan(100);
    for (const p of writes) {
      expect(p.chunkKib % 4).toBe(0);
      expect(p.chunkKib).toBeGreaterThanOrEqual(4);
      expect(p.chunkKib).toBeLessThanOrEqual(64 * MiB);
    }
    // Sleeps are 0..5 whole seconds (a zero-second sleep merges two writes).
    for (const p of sleeps) expect(p.endMs - p.startMs).toBeLessThanOrEqual(5000 + 10);
    const lengths = new Set(sleeps.map((p) => Math.round((p.endMs - p.startMs) / 1000)));
    expect([...lengths].every((s) => s >= 0 && s <= 5)).toBe(true);
    expect(lengths.size).toBeGreaterThanOrEqual(4);
    // Uniform sizes: the mean is about half the maximum.
    const mean = writes.reduce((s, p) => s + p.chunkKib, 0) / writes.length;
    expect(mean / (64 * MiB)).toBeGreaterThan(0.35);
    expect(mean / (64 * MiB)).toBeLessThan(0.65);
  });

  it('takes the time faulting and writing every page costs, and longer when it is stalled', () => {
    const cfg = eatmemCfg({ faultRateKibPerMs: 100 * MiB / 1000, writeMs: 0.001, maxWrites: 3 });
    const fast = phases(new Eatmem(cfg, new Prng(3)), 120_000).filter((p) => p.kind === 'write');
    const slow = phases(new Eatmem(cfg, new Prng(3)), 240_000, 0.5).filter((p) => p.kind === 'write');
    const first = fast[0] as Phase;
    // Per page: 4 KiB at 100 MiB/s (0.039 ms) + one extra write on average (0.001 ms).
    const expectMs = (first.chunkKib / 4) * (4 / (100 * MiB / 1000) + 0.001);
    expect(first.endMs - first.startMs).toBeGreaterThanOrEqual(expectMs - 20);
    expect(first.endMs - first.startMs).toBeLessThanOrEqual(expectMs + 20);
    // Same seed, same chunk; half the run time makes it take twice as long.
    expect((slow[0] as Phase).chunkKib).toBe(first.chunkKib);
    expect(((slow[0] as Phase).endMs - (slow[0] as Phase).startMs) / (first.endMs - first.startMs)).toBeCloseTo(2, 1);
  });

  it('commits the whole chunk at malloc and touches it page by page, then frees it', () => {
    // A seed whose first chunk is big enough to watch being written.
    let seed = 1;
    const first = (s: number) => {
      const probe = new Eatmem(eatmemCfg({ startDelayMs: 1000 }), new Prng(s));
      probe.advance(1000, 1000);
      return probe.chunkKib;
    };
    while (first(seed) < 64 * MiB) seed++;
    const w = new Eatmem(eatmemCfg({ startDelayMs: 1000 }), new Prng(seed));
    expect(w.demand().committedKib).toBe(0);
    w.advance(1000, 1000);
    const chunk = w.chunkKib;
    expect(chunk).toBeGreaterThanOrEqual(64 * MiB);
    expect(w.demand()).toMatchObject({ committedKib: chunk, anonKib: 0, hotAnonKib: 0 });
    w.advance(10, 10);
    const d = w.demand();
    expect(d.committedKib).toBe(chunk);
    expect(d.anonKib).toBeGreaterThan(0);
    expect(d.anonKib).toBeLessThan(chunk);
    w.advance(10_000, 10_000);
    // Every page faulted in; now the re-writes: the whole chunk is touched again.
    expect(w.chunks).toBe(0);
    expect(w.demand()).toMatchObject({ committedKib: chunk, anonKib: chunk, hotAnonKib: chunk });
    expect(w.demand().anonTouchKibPerMs).toBeGreaterThan(0);
    w.advance(10_000, 10_000);
    expect(w.chunks).toBe(1);
    expect(w.demand().anonKib).toBe(0);
  });

  it('reproduces the same sequence for the same seed and a different one for another', () => {
    const seq = (seed: number) => phases(new Eatmem(eatmemCfg(), streamFor(seed, 'guest:eatmem-1')), 300_000).map((p) => p.chunkKib);
    expect(seq(1)).toEqual(seq(1));
    expect(seq(1)).not.toEqual(seq(2));
  });

  it('stops after an OOM kill and starts again after the restart delay', () => {
    const w = new Eatmem(eatmemCfg(), new Prng(5));
    w.advance(100, 100);
    w.kill();
    expect(w.demand().committedKib).toBe(0);
    w.advance(9000, 9000);
    expect(w.demand().committedKib).toBe(0);
    for (let t = 0; t < 70_000 && w.chunkKib === 0; t += 100) w.advance(100, 100);
    expect(w.chunkKib).toBeGreaterThan(0);
  });
});

function runInGuest(w: Workload, memKib: number, ms: number, each?: (g: LinuxGuest, t: number) => void): LinuxGuest {
  const g = new LinuxGuest({
    reservedKib: 60 * MiB, kernelKib: 40 * MiB, anonKib: 100 * MiB, committedKib: 300 * MiB, fileWsKib: 64 * MiB,
    touchRateKibPerMs: 1, swapKib: 1024 * MiB, swapRateKibPerMs: 400, diskRateKibPerMs: 400, bootMs: 0,
  }, w, memKib);
  for (let t = 0; t < ms; t += 1000) {
    g.tick(1000);
    g.checkInvariants();
    each?.(g, t);
  }
  return g;
}

describe('other workloads', () => {
  it('web server: its page cache grows into the free memory and stays there', () => {
    const w = new WebServer({ baseAnonKib: 256 * MiB, loadAnonKib: 256 * MiB, hotFileKib: 512 * MiB, streamKibPerMs: 2 * MiB / 1000, touchRateKibPerMs: 200, periodMs: 3_600_000, restartAfterMs: 10_000 }, new Prng(1));
    const early: number[] = [];
    const g = runInGuest(w, 4096 * MiB, 3_600_000, (g, t) => {
      if (t === 60_000) early.push(g.snapshot().cachedKib);
    });
    const s = g.snapshot();
    expect(s.cachedKib).toBeGreaterThan((early[0] ?? 0) + 1024 * MiB);
    expect(s.freeKib).toBeLessThan(200 * MiB);
    expect(s.anonKib).toBeGreaterThanOrEqual(356 * MiB);
    expect(s.anonKib).toBeLessThanOrEqual(612 * MiB);
    expect(g.counters.swapOutKib).toBe(0);
  });

  it('database: the buffer pool warms up, then stays flat; committed is there from the start', () => {
    const w = new Database({ poolKib: 2048 * MiB, otherAnonKib: 128 * MiB, hotFraction: 0.8, warmupMs: 300_000, fileWsKib: 128 * MiB, touchRateKibPerMs: 1000, streamKibPerMs: 0, restartAfterMs: 30_000 }, new Prng(1));
    const anon: number[] = [];
    runInGuest(w, 4096 * MiB, 900_000, (g) => anon.push(g.snapshot().anonKib));
    expect(w.demand().committedKib).toBe((2048 + 256) * MiB);
    expect(anon[10] as number).toBeLessThan(600 * MiB);
    const late = anon.slice(-300);
    expect(Math.min(...late)).toBe(Math.max(...late));
    expect(Math.max(...late)).toBe((2048 + 128 + 100) * MiB);
  });

  it('batch: a job commits its spike up front, fills it over the ramp, then frees it', () => {
    const w = new Batch({ baseAnonKib: 128 * MiB, minSpikeKib: 1024 * MiB, maxSpikeKib: 2048 * MiB, meanGapMs: 120_000, rampMs: 30_000, maxHoldMs: 60_000, touchRateKibPerMs: 100, startDelayMs: 0, restartAfterMs: 10_000 }, new Prng(4));
    const samples: { committed: number; anon: number }[] = [];
    for (let t = 0; t < 3_600_000; t += 1000) {
      const d = w.demand();
      samples.push({ committed: d.committedKib, anon: d.anonKib });
      w.advance(1000, 1000);
    }
    const base = 128 * MiB * 1.5;
    const spikes = samples.filter((s) => s.committed > base);
    expect(w.jobs).toBeGreaterThan(5);
    expect(spikes.length).toBeGreaterThan(0);
    // Committed leads: at a job's first second anon is still near base.
    const starts = samples.filter((s, i) => s.committed > base && (samples[i - 1]?.committed ?? 0) <= base);
    for (const s of starts) expect(s.anon).toBeLessThan(200 * MiB);
    expect(Math.max(...samples.map((s) => s.anon))).toBeLessThanOrEqual((128 + 2048) * MiB);
    expect(samples.filter((s) => s.committed === base).length).toBeGreaterThan(100);
  });

  it('trace replay follows the recorded steps and loops', () => {
    const points = parseTraceCsv('time_s,anon_kib,file_kib,committed_kib\n0,1000,50,2000\n10,3000,60,4000\n20,500,0,500\n', 't.csv');
    const w: Workload = new TraceReplay({ points, hotFraction: 0.5, touchRateKibPerMs: 1, loop: true, restartAfterMs: 0 });
    const at = (ms: number) => {
      const seen: number[] = [];
      for (let t = 0; t < ms; t += 1000) {
        seen.push(w.demand().anonKib);
        w.advance(1000, 1000);
      }
      return seen;
    };
    const seen = at(50_000);
    expect(seen.slice(0, 10).every((a) => a === 1000)).toBe(true);
    expect(seen.slice(10, 20).every((a) => a === 3000)).toBe(true);
    expect(seen[20]).toBe(500);
    expect(seen).toContain(1000);
    expect(seen.slice(30)).toContain(3000);
    expect(w.demand().committedKib).toBeGreaterThanOrEqual(w.demand().anonKib);
  });

  it('trace files are checked line by line', () => {
    expect(() => parseTraceCsv('time,anon\n1,2\n', 'x.csv')).toThrow(/x.csv: the header must name time_s/);
    expect(() => parseTraceCsv('time_s,anon_kib,file_kib\n0,1,2\n1,-5,2\n', 'x.csv')).toThrow(/x.csv:3: anon_kib '-5'/);
    expect(() => parseTraceCsv('time_s,anon_kib,file_kib\n5,1,2\n5,1,2\n', 'x.csv')).toThrow(/x.csv:3: time_s must increase/);
    expect(() => parseTraceCsv('time_s,anon_kib,file_kib\n', 'x.csv')).toThrow(/no data rows/);
  });
});
