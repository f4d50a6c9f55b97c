import { describe, expect, it } from 'vitest';
import { type BalloonConfig, BalloonDriver } from '../../src/sim/guest/balloon.js';
import { defaultReservedKib, type GuestOsConfig, LinuxGuest } from '../../src/sim/guest/linux-guest.js';
import { DEFAULT_REPORTER, ReportPublisher } from '../../src/sim/guest/reporter.js';
import { XenHost } from '../../src/sim/host/xen-host.js';
import { Steady } from '../../src/sim/workloads/steady.js';
import { type Demand, NO_DEMAND, type Workload } from '../../src/sim/workloads/types.js';
import { guestOs, MiB } from './configs.js';

const os = guestOs;

const balloonCfg = (over: Partial<BalloonConfig> = {}): BalloonConfig => ({
  upRateKibPerMs: 1024 * MiB / 1000,
  downRateKibPerMs: 1024 * MiB / 1000,
  floorKib: null,
  ceilingKib: null,
  stuckFromMs: null,
  stuckForMs: null,
  intermittent: null,
  ...over,
});

/** A workload that streams cold file data through the cache and holds some anon. */
class Streamer implements Workload {
  readonly kind = 'streamer';
  constructor(private readonly anonKib: number, private readonly streamKibPerMs: number) {}
  demand(): Demand {
    return { ...NO_DEMAND, anonKib: this.anonKib, committedKib: this.anonKib, fileStreamKibPerMs: this.streamKibPerMs };
  }
  advance(): void {}
  kill(): void {}
}

function setup(opts: { memoryKib: number; maxmemKib?: number; os?: Partial<GuestOsConfig>; workload: Workload; balloon?: Partial<BalloonConfig>; hostKib?: number }) {
  const host = new XenHost({
    totalKib: opts.hostKib ?? 4096 * MiB,
    xenOverheadKib: 0,
    perDomainOverheadKib: 0,
    scrubRateKibPerMs: 1e9,
    teardownRateKibPerMs: 1e9,
    buildRateKibPerMs: 1e9,
    claims: true,
  });
  const r = host.createDomain({ name: 'g', memoryKib: opts.memoryKib, initialMaxKib: opts.maxmemKib ?? opts.memoryKib * 2, prebuilt: true });
  if (!r.ok) throw new Error(r.reason);
  const guest = new LinuxGuest(os(opts.os), opts.workload, opts.memoryKib);
  const balloon = new BalloonDriver(balloonCfg(opts.balloon), guest, {
    populate: (kib) => host.populate(r.domid, kib),
    release: (kib) => host.release(r.domid, kib),
  }, opts.memoryKib);
  let now = 0;
  // One tick boots the guest (bootMs 0), so tests start with a running balloon driver.
  const run = (ms: number, each?: () => void) => {
    for (let t = 0; t < ms; t += 100) {
      balloon.step(100);
      guest.tick(100);
      host.tick(100);
      now += 100;
      guest.checkInvariants();
      expect(host.domain(r.domid)?.totKib).toBe(guest.totKib);
      each?.();
    }
  };
  balloon.step(100);
  guest.tick(100);
  return { host, guest, balloon, domid: r.domid, run, now: () => now };
}

describe('Linux guest model', () => {
  it('shows MemTotal as domain memory minus the measured kernel footprint', () => {
    // xen-lab.md: maxmem 256 MiB; at 128 MiB MemTotal is 79364 kB, at 100 MiB 50692 kB.
    const reserved = defaultReservedKib(256 * MiB);
    for (const [mem, total] of [[128 * MiB, 79_364], [100 * MiB, 50_692]] as const) {
      const g = new LinuxGuest(os({ reservedKib: reserved }), new Steady({ anonKib: 0, committedKib: 0, hotFraction: 0, touchRateKibPerMs: 0, fileWsKib: 0 }), mem);
      g.tick(1);
      expect(g.snapshot().memTotalKib).toBe(total);
    }
  });

  it('grows the page cache into free memory and reclaims it before swapping anything', () => {
    const s = setup({ memoryKib: 1024 * MiB, workload: new Streamer(200 * MiB, 100 * MiB / 1000) });
    s.run(20_000);
    const filled = s.guest.snapshot();
    expect(filled.cachedKib).toBeGreaterThan(600 * MiB);
    expect(filled.freeKib).toBeLessThan(20 * MiB);
    expect(s.guest.counters.swapOutKib).toBe(0);

    s.balloon.target = 200 * MiB;
    let cacheWhenSwapStarted: number | null = null;
    const cacheSeen: number[] = [];
    s.run(20_000, () => {
      const cache = s.guest.snapshot().cachedKib;
      cacheSeen.push(cache);
      if (cacheWhenSwapStarted === null && s.guest.counters.swapOutKib > 0) cacheWhenSwapStarted = cache;
    });
    // The balloon got below what anon + kernel need, so something was swapped: but only once
    // the cache was gone (in the very tick swapping started, nothing of it was left).
    expect(s.guest.counters.swapOutKib).toBeGreaterThan(0);
    expect(cacheWhenSwapStarted).not.toBeNull();
    expect(cacheWhenSwapStarted).toBeLessThan(1 * MiB);
    // ...and the cache had been shrinking while nothing was swapped.
    expect(cacheSeen[0]).toBeLessThan(filled.cachedKib);
  });

  it("an allocation burst swaps out its own older pages before the OS's", () => {
    // A chunk much bigger than the guest, written once page by page (eatmem): what no longer
    // fits is the chunk's own pages written a moment ago, not the daemons' memory.
    const w = new Steady({ anonKib: 0, committedKib: 0, hotFraction: 0, touchRateKibPerMs: 0, fileWsKib: 0 });
    const s = setup({ memoryKib: 200 * MiB, os: { fileWsKib: 16 * MiB }, workload: w });
    s.run(1000);
    for (let mib = 100; mib <= 400; mib += 100) {
      w.set({ anonKib: mib * MiB, committedKib: 400 * MiB });
      s.run(100);
    }
    expect(s.guest.counters.swapOutKib).toBeGreaterThan(200 * MiB);
    expect(s.guest.snapshot().anonKib).toBeGreaterThan(24 * MiB);
    const internals = s.guest as unknown as { osSwap: number; cacheWs: number };
    expect(internals.osSwap).toBe(0);
    expect(internals.cacheWs).toBe(16 * MiB);
  });

  it('OOM-kills the workload when its anon exceeds RAM + swap, not before', () => {
    const fits = setup({ memoryKib: 512 * MiB, os: { swapKib: 256 * MiB }, workload: new Steady({ anonKib: 600 * MiB, committedKib: 0, hotFraction: 0, touchRateKibPerMs: 0, fileWsKib: 0 }) });
    fits.run(30_000);
    expect(fits.guest.counters.oomKills).toBe(0);
    expect(fits.guest.snapshot().swapUsedKib).toBeGreaterThan(100 * MiB);

    const over = setup({ memoryKib: 512 * MiB, os: { swapKib: 256 * MiB }, workload: new Steady({ anonKib: 800 * MiB, committedKib: 0, hotFraction: 0, touchRateKibPerMs: 0, fileWsKib: 0 }) });
    over.run(30_000);
    expect(over.guest.counters.oomKills).toBe(1);
    expect(over.guest.report(1).counters.oomKill).toBe(1);
    // The killed workload's memory is gone.
    expect(over.guest.snapshot().anonKib).toBeLessThanOrEqual(24 * MiB);
  });

  it('the balloon never OOMs the guest: it takes only what reclaim frees, and stops', () => {
    const s = setup({ memoryKib: 512 * MiB, os: { swapKib: 0 }, workload: new Steady({ anonKib: 300 * MiB, committedKib: 300 * MiB, hotFraction: 1, touchRateKibPerMs: 1, fileWsKib: 0 }) });
    s.run(5000);
    s.balloon.target = 64 * MiB;
    s.run(60_000);
    expect(s.guest.counters.oomKills).toBe(0);
    const snap = s.guest.snapshot();
    // Nothing to swap to: the balloon stopped where anon + kernel + OS begin.
    expect(snap.anonKib).toBeCloseTo(324 * MiB, -2);
    expect(s.guest.totKib).toBeGreaterThan(50 * MiB + 12 * MiB + 324 * MiB);
    expect(s.guest.totKib).toBeLessThan(50 * MiB + 12 * MiB + 324 * MiB + 8 * MiB);
  });

  it('with swap, ballooning down pushes anon out (counted) but still never OOMs', () => {
    const s = setup({ memoryKib: 512 * MiB, workload: new Steady({ anonKib: 300 * MiB, committedKib: 300 * MiB, hotFraction: 0.5, touchRateKibPerMs: 10, fileWsKib: 0 }) });
    s.run(5000);
    s.balloon.target = 200 * MiB;
    s.run(60_000);
    expect(s.guest.counters.oomKills).toBe(0);
    expect(s.guest.counters.swapOutKib).toBeGreaterThan(100 * MiB);
    expect(s.guest.totKib).toBe(200 * MiB);
  });

  it('swaps a hot working set that does not fit in and out, and reports the stall as pressure', () => {
    const s = setup({ memoryKib: 512 * MiB, workload: new Steady({ anonKib: 600 * MiB, committedKib: 600 * MiB, hotFraction: 1, touchRateKibPerMs: 100, fileWsKib: 0 }) });
    s.run(30_000);
    const r = s.guest.report(1);
    expect(s.guest.counters.swapInKib).toBeGreaterThan(50 * MiB);
    expect(r.counters.pswpin).toBe(Math.floor(s.guest.counters.swapInKib / 4));
    expect(r.pressure?.someAvg10).toBeGreaterThan(20);
    expect(r.pressure?.fullAvg10).toBeLessThanOrEqual(r.pressure?.someAvg10 ?? 0);
    expect(r.pressure?.someTotalUs).toBeGreaterThan(10_000_000);
  });

  it('has no pressure when the working set fits', () => {
    const s = setup({ memoryKib: 1024 * MiB, workload: new Steady({ anonKib: 300 * MiB, committedKib: 600 * MiB, hotFraction: 1, touchRateKibPerMs: 100, fileWsKib: 0 }) });
    s.run(30_000);
    const r = s.guest.report(1);
    expect(s.guest.counters.swapInKib).toBe(0);
    expect(r.pressure).toMatchObject({ someAvg10: 0, fullAvg10: 0, someTotalUs: 0 });
    expect(r.mem.committedAsKib).toBe(672 * MiB);
    expect(r.mem.swapFreeKib).toBe(1024 * MiB);
  });
});

describe('balloon driver', () => {
  const idle = () => new Steady({ anonKib: 0, committedKib: 0, hotFraction: 0, touchRateKibPerMs: 0, fileWsKib: 0 });

  it('follows the target at its rate in both directions', () => {
    const s = setup({ memoryKib: 512 * MiB, maxmemKib: 1024 * MiB, workload: idle(), balloon: { upRateKibPerMs: 100 * MiB / 1000, downRateKibPerMs: 50 * MiB / 1000 } });
    s.balloon.target = 300 * MiB;
    s.run(2000);
    expect(s.guest.totKib).toBe(412 * MiB);
    s.run(3000);
    expect(s.guest.totKib).toBe(300 * MiB);
    s.balloon.target = 900 * MiB;
    s.run(2000);
    expect(s.guest.totKib).toBe(500 * MiB);
  });

  it('stops at a hidden floor without telling anyone', () => {
    const s = setup({ memoryKib: 512 * MiB, workload: idle(), balloon: { floorKib: 400 * MiB } });
    s.balloon.target = 200 * MiB;
    s.run(5000);
    expect(s.guest.totKib).toBe(400 * MiB);
  });

  it('a stuck driver never moves', () => {
    const s = setup({ memoryKib: 512 * MiB, workload: idle(), balloon: { stuckFromMs: 0, stuckForMs: null } });
    s.balloon.target = 200 * MiB;
    s.run(30_000);
    expect(s.guest.totKib).toBe(512 * MiB);
  });

  it('an intermittently stuck driver moves only outside its stuck windows', () => {
    const s = setup({ memoryKib: 1024 * MiB, workload: idle(), balloon: { downRateKibPerMs: 10 * MiB / 1000, intermittent: { periodMs: 4000, stuckMs: 2000, phaseMs: 0 } } });
    s.balloon.target = 200 * MiB;
    const steps: { moved: boolean; stuck: boolean }[] = [];
    let last = s.guest.totKib;
    s.run(16_000, () => {
      steps.push({ moved: s.guest.totKib !== last, stuck: s.balloon.isStuck() });
      last = s.guest.totKib;
    });
    // 16 s: half of it stuck, so about 8 s of movement at 10 MiB/s...
    expect(1024 * MiB - s.guest.totKib).toBeGreaterThan(75 * MiB);
    expect(1024 * MiB - s.guest.totKib).toBeLessThan(85 * MiB);
    // ...exactly in the windows where it is not stuck.
    expect(steps.filter((x) => x.stuck).length).toBeGreaterThan(70);
    expect(steps.every((x) => x.moved === !x.stuck)).toBe(true);
  });

  it('a slow driver takes its time', () => {
    const s = setup({ memoryKib: 512 * MiB, workload: idle(), balloon: { downRateKibPerMs: 8 * MiB / 1000 } });
    s.balloon.target = 256 * MiB;
    s.run(10_000);
    expect(s.guest.totKib).toBe(432 * MiB);
  });

  it('backs off (1, 2, 4, 8 s ...) while Xen has no memory, and grows after the next retry', () => {
    const s = setup({ memoryKib: 1024 * MiB, maxmemKib: 2048 * MiB, hostKib: 1536 * MiB, workload: idle() });
    const other = s.host.createDomain({ name: 'other', memoryKib: 512 * MiB, initialMaxKib: 512 * MiB, prebuilt: true });
    if (!other.ok) throw new Error(other.reason);
    expect(s.host.physinfo().freeKib).toBe(0);
    s.balloon.target = 1536 * MiB;
    s.run(10_000);
    expect(s.guest.totKib).toBe(1024 * MiB);
    // Memory appears at 10 s; attempts were at ~0, 1, 3, 7 s, so the next is at ~15 s.
    s.host.destroyDomain(other.domid);
    s.run(4000);
    expect(s.guest.totKib).toBe(1024 * MiB);
    s.run(3000);
    expect(s.guest.totKib).toBe(1536 * MiB);
  });

  it('honours maxmem: a target above the cap stops at the cap', () => {
    const s = setup({ memoryKib: 512 * MiB, maxmemKib: 600 * MiB, workload: idle() });
    s.balloon.target = 900 * MiB;
    s.run(3000);
    expect(s.guest.totKib).toBe(600 * MiB);
  });
});

describe('report publisher', () => {
  it('publishes the first sample, then on significant change, then on heartbeat', () => {
    const p = new ReportPublisher({ ...DEFAULT_REPORTER, heartbeatMs: 10_000 });
    const g = new LinuxGuest(os(), new Steady({ anonKib: 0, committedKib: 0, hotFraction: 0, touchRateKibPerMs: 0, fileWsKib: 0 }), 512 * MiB);
    g.tick(1);
    const sample = (seq: number) => g.report(seq);
    const at: number[] = [];
    for (let t = 0; t <= 25_000; t += 100) if (p.poll(t, sample)) at.push(t);
    expect(at).toEqual([0, 10_000, 20_000]);
  });

  it('publishes within a poll of a change above the threshold, with increasing seq', () => {
    const w = new Steady({ anonKib: 0, committedKib: 0, hotFraction: 0, touchRateKibPerMs: 0, fileWsKib: 0 });
    const g = new LinuxGuest(os(), w, 512 * MiB);
    const p = new ReportPublisher(DEFAULT_REPORTER);
    const seqs: number[] = [];
    const at: number[] = [];
    for (let t = 0; t <= 5000; t += 100) {
      if (t === 2500) w.set({ anonKib: 15 * MiB, committedKib: 15 * MiB });
      if (t === 3500) w.set({ anonKib: 100 * MiB, committedKib: 100 * MiB });
      g.tick(100);
      const r = p.poll(t, (seq) => g.report(seq));
      if (r) {
        at.push(t);
        seqs.push(r.seq ?? -1);
      }
    }
    // 15 MiB is below the 16 MiB threshold; 100 MiB is news at the next poll.
    expect(at).toEqual([0, 4000]);
    expect(seqs).toEqual([1, 2]);
  });
  it('publishes every poll while the guest stalls or pages, and only on heartbeat when quiet', () => {
    const count = (w: Steady) => {
      const g = new LinuxGuest(os(), w, 512 * MiB);
      const p = new ReportPublisher(DEFAULT_REPORTER);
      let n = 0;
      for (let t = 0; t < 60_000; t += 100) {
        g.tick(100);
        if (t >= 30_000 && p.poll(t, (seq) => g.report(seq))) n++;
      }
      return n;
    };
    expect(count(new Steady({ anonKib: 600 * MiB, committedKib: 600 * MiB, hotFraction: 1, touchRateKibPerMs: 100, fileWsKib: 0 }))).toBe(30);
    expect(count(new Steady({ anonKib: 100 * MiB, committedKib: 100 * MiB, hotFraction: 1, touchRateKibPerMs: 100, fileWsKib: 0 }))).toBe(3);
  });
});
