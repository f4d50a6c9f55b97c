/**
 * Linux's in-kernel selfballooning (drivers/xen/xen-selfballoon.c, Dan Magenheimer 2009-2011,
 * removed in Linux 5.3 with tmem): a worker in each guest sets the guest's own balloon target from
 * the kernel's own counters. Like the 2008 script (selfballoon.ts) it has no host-wide view.
 *
 * Rules and constants, as in that file (Linux 4.x, its last form):
 * - every `selfballoon_interval` = 5 s;
 * - goal = vm_memory_committed() (Committed_AS) + totalreserve_pages + selfballoon_reserved_mb,
 *   where reserved_mb defaults (at init, when it is 0) to 10 % of totalram_pages — "to make
 *   selfballoon not so aggressive";
 * - cur = totalram_pages (MemTotal); cur > goal: tgt = cur - (cur - goal) / downhysteresis (8);
 *   cur < goal: tgt = cur + (goal - cur) / uphysteresis (1);
 * - floor (selfballoon_min_usable_mb = 0: the piecewise curve "ending in ~3 % slope") from
 *   useful = max_pfn - totalreserve: < 16 MiB: no ballooning; < 64 MiB: reserve + 16 MiB +
 *   (useful - 16 MiB)/2; < 512 MiB: reserve + 40 MiB + (useful - 40 MiB)/8; else reserve +
 *   99 MiB + (useful - 99 MiB)/32;
 * - the balloon target written is tgt + (balloon current_pages - totalram_pages): the pages
 *   outside MemTotal are added back.
 *
 * Mapping to the simulator: totalram = the report's MemTotal; Committed_AS from the report;
 * balloon current_pages = the report's balloon current (else Xen's tot_pages); max_pfn of a PV
 * guest covers its maxmem, so max_pfn = static-max. totalreserve_pages (the zones' high
 * watermarks plus lowmem_reserve) is approximated by the high watermark, 1.5 x min_free_kbytes =
 * 1.5 x sqrt(16 x MemTotal) (mm/page_alloc.c); reserved_mb is fixed from the first MemTotal seen,
 * as the kernel fixes it at boot. It needed tmem to be enabled; here it runs without (tmem only
 * added frontswap repatriation room, not modelled).
 */
import type { Action, Observation } from '../../core/types.js';
import type { Controller } from '../controller.js';
import { DEFAULT_FREE_LAUNCH, FreeLaunchPeer, mib, runningGuests, type FreeLaunchOptions } from './common.js';

export const SELFBALLOON_KERNEL = {
  intervalMs: 5_000,
  downHysteresis: 8,
  upHysteresis: 1,
  /** Default selfballoon_reserved_mb: this share of totalram at init. */
  reservedShare: 0.1,
} as const;

export interface SelfballoonKernelOptions {
  launch?: Partial<FreeLaunchOptions>;
}

/** totalreserve_pages, approximated by the high watermark (KiB). */
export function totalReserveKib(memTotalKib: number): number {
  const minFree = Math.min(262_144, Math.max(128, Math.floor(Math.sqrt(16 * memTotalKib))));
  return Math.floor(minFree * 1.5);
}

/** The piecewise floor (KiB) for selfballoon_min_usable_mb = 0. */
export function kernelFloorKib(maxPfnKib: number, reserveKib: number): number {
  const useful = maxPfnKib - reserveKib;
  if (useful < mib(16)) return maxPfnKib;
  if (useful < mib(64)) return reserveKib + mib(16) + Math.floor((useful - mib(16)) / 2);
  if (useful < mib(512)) return reserveKib + mib(40) + Math.floor((useful - mib(40)) / 8);
  return reserveKib + mib(99) + Math.floor((useful - mib(99)) / 32);
}

/** One worker pass: the new totalram target (KiB) for a guest. */
export function kernelSelfballoonTarget(v: { curKib: number; committedKib: number; reservedKib: number; maxPfnKib: number }): number {
  const reserve = totalReserveKib(v.curKib);
  const goal = v.committedKib + reserve + v.reservedKib;
  let tgt = v.curKib;
  if (v.curKib > goal) tgt = v.curKib - Math.floor((v.curKib - goal) / SELFBALLOON_KERNEL.downHysteresis);
  else if (v.curKib < goal) tgt = v.curKib + Math.floor((goal - v.curKib) / SELFBALLOON_KERNEL.upHysteresis);
  return Math.max(tgt, kernelFloorKib(v.maxPfnKib, reserve));
}

export class SelfballoonKernelPeer extends FreeLaunchPeer implements Controller {
  readonly name = 'selfballoon-kernel' as const;
  readonly intervalMs = SELFBALLOON_KERNEL.intervalMs;
  /** selfballoon_reserved_mb per guest, fixed at its first report (the kernel's init). */
  private readonly reserved = new Map<number, number>();
  private readonly last = new Map<number, number>();

  constructor(opts: SelfballoonKernelOptions = {}) {
    super('selfballoon-kernel', { ...DEFAULT_FREE_LAUNCH, ...opts.launch });
  }

  step(obs: Observation, _nowMs: number): Action[] {
    const actions: Action[] = [];
    const live = runningGuests(obs);
    const ids = new Set(live.map((d) => d.domid));
    for (const m of [this.reserved, this.last]) for (const id of [...m.keys()]) if (!ids.has(id)) m.delete(id);
    for (const d of live) {
      const cur = d.report?.mem.totalKib ?? null;
      const committed = d.report?.mem.committedAsKib ?? null;
      if (cur === null || committed === null) continue;
      let reservedKib = this.reserved.get(d.domid);
      if (reservedKib === undefined) {
        reservedKib = mib(Math.floor((cur * SELFBALLOON_KERNEL.reservedShare) / 1024));
        this.reserved.set(d.domid, reservedKib);
      }
      const maxPfnKib = d.staticMaxKib ?? d.maxmemKib;
      const tgt = kernelSelfballoonTarget({ curKib: cur, committedKib: committed, reservedKib, maxPfnKib });
      const outside = Math.max(0, (d.report?.balloonCurrentKib ?? d.currentKib) - cur);
      const target = Math.min(maxPfnKib, tgt + outside);
      if (target !== this.last.get(d.domid)) {
        this.last.set(d.domid, target);
        actions.push({ kind: 'setTarget', domid: d.domid, kib: target });
      }
    }
    return actions;
  }
}
