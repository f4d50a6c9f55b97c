/**
 * A Linux-like guest's memory, at the level a balloon controller can see and cause:
 *
 *   domain pages (tot_pages) = reserved (kernel image, struct pages: never in MemTotal)
 *                            + MemTotal
 *   MemTotal = kernel (slab, page tables: unreclaimable)
 *            + anonymous memory resident (the OS's daemons + the workload)
 *            + page cache (the file working set + cold cache from streaming reads)
 *            + free
 *
 * Reclaim takes memory in LRU order: cold cache, then cold anonymous memory (to swap), then the
 * OS's slowly-touched anon, then the file working set, then the workload's hot anon — so cache is
 * reclaimed before anything is swapped. Pages of a working set that are not resident are faulted
 * back in as the workload touches them (swap-in / refault), which stalls it: the stall is what
 * PSI reports and what slows the workload down. The OOM killer runs when an allocation cannot be
 * met from free memory, cache or swap (anon > RAM + swap). The balloon driver (balloon.ts) gives
 * memory back to Xen only out of what reclaim can free: it never OOMs the guest itself.
 *
 * Sources: the kernel footprint (~50 MiB outside MemTotal for a Debian 12 PV guest with 256 MiB
 * maxmem) is measured (../shared/research/xen-lab.md); min_free_kbytes = sqrt(16 x lowmem KiB)
 * and the watermarks (low = 5/4 min, high = 3/2 min) and MemAvailable follow mm/page_alloc.c and
 * mm/show_mem.c; PSI some/full as in Documentation/accounting/psi.rst.
 */
import type { GuestReport } from '../../report/types.js';
import { PAGE_KIB } from '../units.js';
import type { Demand, Workload } from '../workloads/types.js';

export interface GuestOsConfig {
  /** Kernel memory outside MemTotal (image, struct pages for maxmem). */
  reservedKib: number;
  /** Slab, page tables, stacks: inside MemTotal, never reclaimed here. */
  kernelKib: number;
  /** The OS's own processes' anonymous memory (touched slowly). */
  anonKib: number;
  /** The OS's share of Committed_AS. */
  committedKib: number;
  /** The workload's Committed_AS is its commitments times this (default 1; scenario os.committed_scale). */
  committedScale?: number;
  /** Binaries and libraries the OS keeps re-reading. */
  fileWsKib: number;
  /** How fast the OS touches its own anon and files (daemons waking), KiB per ms. */
  touchRateKibPerMs: number;
  swapKib: number;
  /** Swap device throughput, KiB per ms (each direction shares it). */
  swapRateKibPerMs: number;
  /** Disk throughput for file reads, KiB per ms. */
  diskRateKibPerMs: number;
  bootMs: number;
}

/** The reserved footprint: 49.5 MiB measured at maxmem 256 MiB, of which struct pages (64 bytes
 * per 4 KiB page of maxmem) scale with maxmem. */
export function defaultReservedKib(maxmemKib: number): number {
  return 47_612 + Math.round(maxmemKib / 64);
}

export interface GuestCounters {
  /** KiB swapped in/out since boot (vmstat counts pages: KiB / 4). */
  swapInKib: number;
  swapOutKib: number;
  majorFaults: number;
  refaultKib: number;
  oomKills: number;
  /** ms stalled (PSI some / full totals). */
  someMs: number;
  fullMs: number;
}

/** What the balloon driver and the harness need from the guest. */
export interface MemorySnapshot {
  totKib: number;
  memTotalKib: number;
  freeKib: number;
  availableKib: number;
  cachedKib: number;
  anonKib: number;
  swapUsedKib: number;
  committedKib: number;
  /** Free memory plus cache nobody re-reads: memory the guest holds without using. */
  idleKib: number;
}

const PSI_WINDOW_MS = 10_000;

export class LinuxGuest {
  readonly counters: GuestCounters = {
    swapInKib: 0,
    swapOutKib: 0,
    majorFaults: 0,
    refaultKib: 0,
    oomKills: 0,
    someMs: 0,
    fullMs: 0,
  };
  /** PSI avg10, percent. */
  someAvg10 = 0;
  fullAvg10 = 0;

  private tot: number;
  private booted = false;
  private bootLeftMs: number;
  private uptimeMs = 0;
  private readonly minWm: number;
  private readonly lowWm: number;
  private readonly highWm: number;

  // Categories inside MemTotal (KiB, fractional while the model runs; free is what is left).
  private kernel = 0;
  private osRes = 0;
  private osSwap = 0;
  private workRes = 0;
  private workSwap = 0;
  private cacheWs = 0;
  private cacheCold = 0;
  private committed = 0;
  private demand: Demand;
  private ioDebtMs = 0;
  /** Time the balloon's worker spent in reclaim since the last tick (PSI some). */
  private balloonStallMs = 0;

  constructor(
    readonly os: GuestOsConfig,
    private workload: Workload,
    initialTotKib: number,
  ) {
    this.tot = initialTotKib;
    this.bootLeftMs = os.bootMs;
    const lowmem = Math.max(0, initialTotKib - os.reservedKib);
    this.minWm = Math.min(262_144, Math.max(128, Math.floor(Math.sqrt(lowmem * 16))));
    this.lowWm = this.minWm * 1.25;
    this.highWm = this.minWm * 1.5;
    this.demand = workload.demand();
  }

  get isBooted(): boolean {
    return this.booted;
  }

  get totKib(): number {
    return this.tot;
  }

  get uptimeSeconds(): number {
    return this.uptimeMs / 1000;
  }

  get workloadKind(): string {
    return this.workload.kind;
  }

  /** Runs another workload from now on (sim-host's set-guest); memory follows its demand. */
  setWorkload(w: Workload): void {
    this.workload = w;
    if (this.booted) this.demand = w.demand();
  }

  private get memTotal(): number {
    return Math.max(0, this.tot - this.os.reservedKib);
  }

  private get free(): number {
    return this.memTotal - this.kernel - this.osRes - this.workRes - this.cacheWs - this.cacheCold;
  }

  private get swapFree(): number {
    return Math.max(0, this.os.swapKib - this.osSwap - this.workSwap);
  }

  private hotTarget(): number {
    return Math.min(this.demand.hotAnonKib, this.workRes + this.workSwap);
  }

  private fileWsTarget(): number {
    return this.os.fileWsKib + this.demand.fileWsKib;
  }

  // ---- the balloon driver's side --------------------------------------------------------------

  /**
   * The balloon asks for `kib` pages back (inflating). Returns what it got, whole pages, taken
   * from free memory above the min watermark and then from what light reclaim frees (cache, then
   * anon to swap within this tick's swap bandwidth). Never OOMs, never takes the kernel's.
   */
  balloonTake(kib: number, dtMs: number): number {
    if (!this.booted) return 0;
    const want = Math.floor(kib / PAGE_KIB) * PAGE_KIB;
    if (want <= 0) return 0;
    const spare = Math.max(0, this.free - this.minWm);
    if (spare < want) {
      const swapBudget = this.os.swapRateKibPerMs * dtMs;
      const r = this.reclaim(want - spare, swapBudget, true);
      // Reclaim by the balloon's worker stalls a task in reclaim: PSI some, not full.
      this.balloonStallMs += Math.min(dtMs, r.swappedOut / this.os.swapRateKibPerMs);
    }
    const got = Math.floor(Math.min(want, Math.max(0, this.free - this.minWm)) / PAGE_KIB) * PAGE_KIB;
    this.tot -= got;
    return got;
  }

  /** Xen populated `kib` more pages for the guest (the balloon deflating): they arrive free. */
  balloonGive(kib: number): void {
    this.tot += kib;
  }

  // ---- time -----------------------------------------------------------------------------------

  tick(dtMs: number): void {
    this.uptimeMs += dtMs;
    if (!this.booted) {
      this.bootLeftMs -= dtMs;
      if (this.bootLeftMs <= 0) this.boot();
      return;
    }
    const d = this.demand;

    // 1. Pay for I/O started earlier (swap-out during allocation) before anything runs.
    const pay = Math.min(this.ioDebtMs, dtMs);
    this.ioDebtMs -= pay;
    const avail = dtMs - pay;

    // 2. How much of the rest the workload runs vs. waits on faults for non-resident pages.
    const hot = this.hotTarget();
    const hotRes = Math.min(hot, this.workRes);
    const mAnon = hot > 0 ? (hot - hotRes) / hot : 0;
    const osTotal = this.osRes + this.osSwap;
    const mOs = osTotal > 0 ? this.osSwap / osTotal : 0;
    const ws = this.fileWsTarget();
    const mFile = ws > 0 ? Math.max(0, ws - this.cacheWs) / ws : 0;
    const tight = this.free - this.minWm < PAGE_KIB * 256;
    const swapCost = (tight ? 2 : 1) / this.os.swapRateKibPerMs;
    const fileCost = 1 / this.os.diskRateKibPerMs;
    const osShare = this.os.fileWsKib / Math.max(1, ws);
    const slowdown = 1 + d.anonTouchKibPerMs * mAnon * swapCost + d.fileTouchKibPerMs * mFile * fileCost;
    const runMs = avail / slowdown;
    const missAnon = d.anonTouchKibPerMs * runMs * mAnon;
    const missFile = d.fileTouchKibPerMs * runMs * mFile + this.os.touchRateKibPerMs * avail * mFile * osShare;
    const missOs = this.os.touchRateKibPerMs * avail * mOs;
    // The OS's own faults stall its daemons (some) but not the workload.
    const osStallMs = Math.min(avail, missOs * (1 / this.os.swapRateKibPerMs));

    // 3. The workload runs.
    this.workload.advance(dtMs, runMs);
    const next = this.workload.demand();

    // 4. Faulted pages come back (each needs a page; when memory is tight another goes out).
    this.swapIn('work', missAnon);
    this.swapIn('os', missOs);
    this.refault(missFile);

    // 5. The workload's allocations and frees.
    this.demand = next;
    this.resizeWorkAnon(next.anonKib);
    this.committed = this.os.committedKib + next.committedKib * (this.os.committedScale ?? 1);

    // 6. The file working set follows the workload; streaming reads fill free memory with cache.
    const newWs = this.fileWsTarget();
    if (this.cacheWs > newWs) {
      this.cacheCold += this.cacheWs - newWs;
      this.cacheWs = newWs;
    }
    const stream = next.fileStreamKibPerMs * dtMs;
    if (stream > 0) {
      const room = Math.max(0, this.free - this.highWm);
      this.cacheCold += Math.min(stream, room);
    }

    // 7. Pressure: time the workload could not run, and the OS's own stalls.
    const stalled = pay + (avail - runMs);
    const some = Math.min(dtMs, Math.max(stalled, osStallMs, this.balloonStallMs));
    this.balloonStallMs = 0;
    const full = Math.min(dtMs, stalled * d.fullStallShare);
    this.counters.someMs += some;
    this.counters.fullMs += full;
    const a = 1 - Math.exp(-dtMs / PSI_WINDOW_MS);
    this.someAvg10 += ((100 * some) / dtMs - this.someAvg10) * a;
    this.fullAvg10 += ((100 * full) / dtMs - this.fullAvg10) * a;
  }

  private boot(): void {
    this.booted = true;
    const room = Math.max(0, this.memTotal - this.minWm);
    this.kernel = Math.min(this.os.kernelKib, room);
    this.osRes = Math.min(this.os.anonKib, room - this.kernel);
    this.osSwap = 0;
    this.cacheWs = Math.min(this.os.fileWsKib, room - this.kernel - this.osRes);
    this.committed = this.os.committedKib;
    this.demand = this.workload.demand();
  }

  // ---- memory management ----------------------------------------------------------------------

  /** Frees at least `need` KiB if it can (LRU order); anon goes to swap within `swapBudget`. */
  private reclaim(need: number, swapBudget: number, includeHot: boolean): { freed: number; swappedOut: number } {
    let left = need;
    let swappedOut = 0;
    const take = (avail: number): number => Math.max(0, Math.min(left, avail));
    const swapTake = (avail: number): number => {
      const n = Math.max(0, Math.min(left, avail, this.swapFree, swapBudget - swappedOut));
      swappedOut += n;
      return n;
    };
    let n = take(this.cacheCold);
    this.cacheCold -= n;
    left -= n;
    if (left > 0) {
      const hotRes = Math.min(this.hotTarget(), this.workRes);
      n = swapTake(this.workRes - hotRes);
      this.workRes -= n;
      this.workSwap += n;
      left -= n;
    }
    if (left > 0) {
      n = swapTake(this.osRes);
      this.osRes -= n;
      this.osSwap += n;
      left -= n;
    }
    if (left > 0) {
      n = take(this.cacheWs);
      this.cacheWs -= n;
      left -= n;
    }
    if (left > 0 && includeHot) {
      n = swapTake(this.workRes);
      this.workRes -= n;
      this.workSwap += n;
      left -= n;
    }
    this.counters.swapOutKib += swappedOut;
    return { freed: need - left, swappedOut };
  }

  /**
   * Pages were just added to a category (new anon, swapped back in, read into the cache): if
   * free memory fell below the min watermark, reclaim the difference in LRU order — which may
   * take pages this very allocation added, as Linux's LRU would. Returns what could not be
   * reclaimed (0 when the books are fine) and what went to swap.
   */
  private settle(): { short: number; swappedOut: number } {
    const deficit = this.minWm - this.free;
    if (deficit <= 0) return { short: 0, swappedOut: 0 };
    // Allocation-time reclaim is not limited by this tick's bandwidth: the allocating task
    // waits for the writes (charged as I/O debt by the caller).
    const r = this.reclaim(deficit, Infinity, true);
    return { short: Math.max(0, deficit - r.freed), swappedOut: r.swappedOut };
  }

  private swapIn(which: 'work' | 'os', kib: number): void {
    if (kib <= 0) return;
    const swapped = which === 'work' ? this.workSwap : this.osSwap;
    const back = Math.min(kib, swapped);
    // Misses beyond what is swapped out are pages cycling through swap: in and out again.
    const cycling = kib - back;
    this.counters.swapInKib += kib;
    this.counters.majorFaults += kib / PAGE_KIB;
    this.counters.refaultKib += kib;
    if (cycling > 0) this.counters.swapOutKib += cycling;
    if (back <= 0) return;
    // The page's swap slot is freed as it comes in, so there is always room to swap another out.
    if (which === 'work') {
      this.workSwap -= back;
      this.workRes += back;
    } else {
      this.osSwap -= back;
      this.osRes += back;
    }
    const { short } = this.settle();
    if (short > 0) {
      if (which === 'work') {
        this.workRes -= short;
        this.workSwap += short;
      } else {
        this.osRes -= short;
        this.osSwap += short;
      }
    }
  }

  private refault(kib: number): void {
    if (kib <= 0) return;
    const missing = Math.max(0, this.fileWsTarget() - this.cacheWs);
    const n = Math.min(kib, missing);
    this.counters.majorFaults += kib / PAGE_KIB;
    this.counters.refaultKib += kib;
    if (n <= 0) return;
    this.cacheWs += n;
    const r = this.settle();
    this.ioDebtMs += r.swappedOut / this.os.swapRateKibPerMs;
    this.cacheWs -= Math.min(this.cacheWs, r.short);
  }

  private resizeWorkAnon(targetKib: number): void {
    const current = this.workRes + this.workSwap;
    if (targetKib < current) {
      // Freed pages come proportionally from resident and swapped memory.
      const f = current > 0 ? (current - targetKib) / current : 0;
      this.workRes -= this.workRes * f;
      this.workSwap -= this.workSwap * f;
      return;
    }
    const grow = targetKib - current;
    if (grow <= 0) return;
    this.workRes += grow;
    const r = this.settle();
    this.ioDebtMs += r.swappedOut / this.os.swapRateKibPerMs;
    if (r.short > 1e-6) this.oomKill();
  }

  /** The OOM killer: the workload is the biggest process; it dies and its memory is freed. */
  private oomKill(): void {
    this.counters.oomKills += 1;
    this.workRes = 0;
    this.workSwap = 0;
    this.workload.kill();
    this.demand = this.workload.demand();
    this.committed = this.os.committedKib + this.demand.committedKib * (this.os.committedScale ?? 1);
  }

  // ---- what the guest shows ---------------------------------------------------------------------

  snapshot(): MemorySnapshot {
    const free = Math.max(0, this.free);
    const cache = this.cacheWs + this.cacheCold;
    return {
      totKib: this.tot,
      memTotalKib: this.memTotal,
      freeKib: free,
      availableKib: Math.max(0, free - this.highWm) + cache - Math.min(cache / 2, this.lowWm),
      cachedKib: cache,
      anonKib: this.osRes + this.workRes,
      swapUsedKib: this.osSwap + this.workSwap,
      committedKib: this.committed,
      idleKib: free + this.cacheCold,
    };
  }

  /** The statistics xenballoon-report would publish now (format v1). */
  report(seq: number): GuestReport {
    const s = this.snapshot();
    const k = (x: number) => Math.round(x);
    const pages = (kib: number) => Math.floor(kib / PAGE_KIB);
    return {
      format: 'v1',
      seq,
      uptimeS: Math.floor(this.uptimeMs / 1000),
      mem: {
        totalKib: k(s.memTotalKib),
        freeKib: k(s.freeKib),
        availableKib: k(s.availableKib),
        buffersKib: 0,
        cachedKib: k(s.cachedKib),
        shmemKib: 0,
        swapTotalKib: k(this.os.swapKib),
        swapFreeKib: k(this.swapFree),
        committedAsKib: k(s.committedKib),
        usedKib: null,
      },
      counters: {
        pswpin: pages(this.counters.swapInKib),
        pswpout: pages(this.counters.swapOutKib),
        pgmajfault: Math.floor(this.counters.majorFaults),
        workingsetRefault: pages(this.counters.refaultKib),
        oomKill: this.counters.oomKills,
      },
      pressure: {
        someAvg10: Math.round(this.someAvg10 * 100) / 100,
        fullAvg10: Math.round(this.fullAvg10 * 100) / 100,
        someTotalUs: Math.floor(this.counters.someMs * 1000),
        fullTotalUs: Math.floor(this.counters.fullMs * 1000),
      },
      balloonCurrentKib: k(this.tot),
    };
  }

  /** Internal consistency, for tests: categories are non-negative and fit in MemTotal. */
  checkInvariants(): void {
    const parts = { kernel: this.kernel, osRes: this.osRes, osSwap: this.osSwap, workRes: this.workRes, workSwap: this.workSwap, cacheWs: this.cacheWs, cacheCold: this.cacheCold };
    for (const [name, v] of Object.entries(parts)) {
      if (!(v >= -1e-6) || !Number.isFinite(v)) throw new Error(`guest ${name} = ${v}`);
    }
    if (this.booted && this.free < -1e-6) throw new Error(`guest free memory negative: ${this.free}`);
    if (this.osSwap + this.workSwap > this.os.swapKib + 1e-6) throw new Error('swap over-used');
  }
}
