/**
 * The guest model can fail in each way the benchmark counts: swap-in (eatmem re-writes pages that
 * went to swap), OOM kills (RAM + swap cannot hold an allocation), stalls (PSI full while pages
 * come back from swap), and it does less work when it stalls. Each counter is shown non-zero
 * where it should be, and zero where the cause is absent, so no column is zero by construction.
 */
import { describe, expect, it } from 'vitest';
import { type GuestOsConfig, LinuxGuest } from '../../src/sim/guest/linux-guest.js';
import { Prng } from '../../src/sim/prng.js';
import { Eatmem, type EatmemConfig } from '../../src/sim/workloads/eatmem.js';
import { eatmemConfig, guestOs, MiB } from './configs.js';

const os = (over: Partial<GuestOsConfig> = {}): GuestOsConfig => guestOs({
  fileWsKib: 16 * MiB, touchRateKibPerMs: 0.25, swapRateKibPerMs: 50 * MiB / 1000, diskRateKibPerMs: 50 * MiB / 1000, ...over,
});

const eat = (over: Partial<EatmemConfig> = {}): EatmemConfig => eatmemConfig({ maxSleepMs: 10_000, ...over });

/** A guest of fixed size (no balloon moves) running eatmem for `ms`. */
function run(totKib: number, osOver: Partial<GuestOsConfig>, eatOver: Partial<EatmemConfig>, ms = 300_000) {
  const w = new Eatmem(eat(eatOver), new Prng(11));
  const g = new LinuxGuest(os(osOver), w, totKib);
  for (let t = 0; t < ms; t += 100) {
    g.tick(100);
    g.checkInvariants();
  }
  return { g, w };
}

describe('a guest model that can fail', () => {
  it('swaps pages back in when eatmem re-writes a chunk that did not fit, and not when each page is written once', () => {
    const small = run(400 * MiB, {}, {});
    expect(small.g.counters.swapInKib).toBeGreaterThan(100 * MiB);
    expect(small.g.report(1).counters.pswpin).toBeGreaterThan(0);
    const once = run(400 * MiB, {}, { maxWrites: 1 });
    expect(once.g.counters.swapOutKib).toBeGreaterThan(0);
    expect(once.g.counters.swapInKib).toBeLessThan(small.g.counters.swapInKib / 10);
    const big = run(2048 * MiB, {}, {});
    expect(big.g.counters.swapInKib).toBe(0);
  });

  it('OOM-kills eatmem at once on a guest without swap whose chunk exceeds its RAM, never with enough swap', () => {
    const noSwap = run(400 * MiB, { swapKib: 0 }, {});
    expect(noSwap.g.counters.oomKills).toBeGreaterThan(0);
    expect(noSwap.g.report(1).counters.oomKill).toBe(noSwap.g.counters.oomKills);
    const withSwap = run(400 * MiB, {}, {});
    expect(withSwap.g.counters.oomKills).toBe(0);
  });

  it('stalls (PSI full) and completes less work while pages come back from swap', () => {
    const small = run(400 * MiB, {}, {});
    const big = run(2048 * MiB, {}, {});
    expect(small.g.counters.fullMs).toBeGreaterThan(10_000);
    expect(small.g.report(1).pressure?.fullTotalUs).toBeGreaterThan(0);
    expect(big.g.counters.fullMs).toBe(0);
    // The same seed draws the same chunks: the guest that swaps gets through fewer page writes.
    expect(small.w.workDone()).toBeLessThan(big.w.workDone() * 0.9);
    expect(big.w.workDone()).toBeGreaterThan(0);
  });

  it('counts each page 1..max_writes times: about (1 + W) / 2 writes per page of a chunk', () => {
    const w = new Eatmem(eat({ maxChunkKib: 64 * MiB, maxWrites: 9, maxSleepMs: 0 }), new Prng(2));
    let pagesWritten = 0;
    let last = 0;
    for (let t = 0; t < 60_000; t += 10) {
      w.advance(10, 10);
      if (w.chunks !== last) {
        last = w.chunks;
      }
    }
    pagesWritten = w.workDone();
    // Mean chunk 32 MiB = 8192 pages, 5 writes each on average, so ~40960 page writes per chunk.
    const perChunk = pagesWritten / Math.max(1, w.chunks);
    expect(perChunk).toBeGreaterThan(8192 * 5 * 0.6);
    expect(perChunk).toBeLessThan(8192 * 5 * 1.4);
  });

  it("Committed_AS can over- or under-state the workload's memory (os.committed_scale)", () => {
    const committed = (scale: number) => {
      const w = new Eatmem(eat({ maxChunkKib: 64 * MiB, maxSleepMs: 0, faultRateKibPerMs: 1 }), new Prng(4));
      const g = new LinuxGuest(os({ committedScale: scale }), w, 1024 * MiB);
      g.tick(100);
      g.tick(100);
      return { committed: g.snapshot().committedKib, chunk: w.chunkKib };
    };
    const one = committed(1);
    expect(one.committed).toBe(72 * MiB + one.chunk);
    expect(committed(2).committed).toBe(72 * MiB + 2 * one.chunk);
    expect(committed(0.5).committed).toBe(72 * MiB + 0.5 * one.chunk);
  });
});
