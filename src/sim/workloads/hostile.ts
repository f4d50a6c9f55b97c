/**
 * Hostile guests (issue 11): workloads whose guest writes forged reports from its own xenstore
 * connection, as an attacker inside a guest can. They use no memory beyond the OS; what they
 * attack is the report. The guest model's own sample is the starting point, so the forgery is
 * consistent with what the domain holds (MemTotal, the balloon's current_kb): no trust check can
 * reject it, and only the allocation's fair shares keep it from taking others' memory.
 *
 *   liar              every `period`: MemFree ~0, all of `swap` used, Committed_AS `committed`,
 *                     PSI 100 %, swap-in climbing
 *   flipper           the lie and the truth in turn, each for `flip`
 *   silent-after-lie  the lie for `lie_for`, then nothing at all
 *   qubes-liar        one Qubes-format value (`used`), written once and never refreshed
 */
import type { GuestReport } from '../../report/types.js';
import { type Demand, NO_DEMAND, type Workload } from './types.js';

export type HostileKind = 'liar' | 'flipper' | 'silent-after-lie' | 'qubes-liar';

export interface HostileConfig {
  periodMs: number;
  flipMs: number;
  lieForMs: number;
  swapKib: number;
  committedKib: number;
  usedKib: number;
}

export class Hostile implements Workload {
  private nextAtMs = 0;
  private pswpin = 0;
  private psiUs = 0;
  private written = false;

  constructor(readonly kind: HostileKind, private readonly c: HostileConfig) {}

  demand(): Demand {
    return NO_DEMAND;
  }
  advance(): void {}
  kill(): void {}

  /**
   * What the guest publishes now instead of the honest publisher: a report, or null (nothing
   * now). `sample` is what the honest publisher would have sampled.
   */
  forge(nowMs: number, sample: (seq: number) => GuestReport): GuestReport | null {
    if (nowMs < this.nextAtMs) return null;
    this.nextAtMs = nowMs + this.c.periodMs;
    const honest = sample(Math.floor(nowMs / this.c.periodMs) + 1);
    switch (this.kind) {
      case 'liar':
        return this.lie(honest);
      case 'flipper':
        return Math.floor(nowMs / this.c.flipMs) % 2 === 0 ? this.lie(honest) : honest;
      case 'silent-after-lie':
        return nowMs < this.c.lieForMs ? this.lie(honest) : null;
      case 'qubes-liar':
        // Written once, never refreshed: Qubes' writer only writes on change.
        if (this.written) return null;
        this.written = true;
        return {
          ...honest,
          format: 'qubes',
          seq: null,
          uptimeS: null,
          mem: { totalKib: null, freeKib: null, availableKib: null, buffersKib: null, cachedKib: null, shmemKib: null, swapTotalKib: null, swapFreeKib: null, committedAsKib: null, usedKib: this.c.usedKib },
          counters: { pswpin: null, pswpout: null, pgmajfault: null, workingsetRefault: null, oomKill: null },
          pressure: null,
          balloonCurrentKib: null,
        };
    }
  }

  private lie(honest: GuestReport): GuestReport {
    const total = honest.mem.totalKib ?? 0;
    this.pswpin += 25_600; // 100 MiB of swap-in per report
    this.psiUs += this.c.periodMs * 1000; // stalled all the time
    return {
      ...honest,
      mem: {
        ...honest.mem,
        freeKib: Math.min(total, 1000),
        availableKib: Math.min(total, 1000),
        buffersKib: 0,
        cachedKib: 0,
        shmemKib: 0,
        swapTotalKib: this.c.swapKib,
        swapFreeKib: 0,
        committedAsKib: this.c.committedKib,
      },
      counters: { ...honest.counters, pswpin: (honest.counters.pswpin ?? 0) + this.pswpin },
      pressure: { someAvg10: 100, fullAvg10: 100, someTotalUs: (honest.pressure?.someTotalUs ?? 0) + this.psiUs, fullTotalUs: (honest.pressure?.fullTotalUs ?? 0) + this.psiUs },
    };
  }
}
