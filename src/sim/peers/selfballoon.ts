/**
 * The founding paper's selfballooning: every guest runs the seed's bash xenballoond, which
 * once a second sets its own balloon target from its own /proc/meminfo. No dom0 policy exists
 * (the paper's dom0 side was a launcher script and a monitor).
 *
 * Source: xen-project/xen tools/xenballoon/xenballoond (version 080630) and
 * tools/xenballoon/xenballoon.conf (defaults), Magenheimer, Xen Summit 2008.
 *
 * Rules implemented, per guest, from that guest's report only (no global view):
 * - cur  = MemTotal; high-water mark of MemTotal kept as the script's XENBALLOON_MAXMEMFILE.
 * - goal = max(Committed_AS, minmem); minmem = XENBALLOON_MINMEM if set, else the xenlinux
 *   minimum_target curve applied to that high-water mark (`xenlinuxMinimumMib`).
 * - cur > goal: target = cur - (cur - goal) / downhysteresis (10);
 *   cur < goal: target = cur + (goal - cur) / uphysteresis (1); every 1 s (XENBALLOON_SELF_INTERVAL).
 *
 * Simplifications:
 * - The script reads /proc/meminfo live every second; a simulated guest's view is its latest
 *   published report, so convergence runs at the report's cadence, not faster.
 * - The script writes /proc/xen/balloon inside the guest; here that is a setTarget for the
 *   guest's own domid (the simulated balloon driver follows memory/target). The script
 *   rewrites the same value every second; unchanged rewrites are dropped (they move nothing).
 * - Integer arithmetic in KiB instead of bytes (differences below 1 KiB).
 * - A guest whose report lacks MemTotal or Committed_AS is left alone (the script would have
 *   nothing to compute either).
 *
 * Launching: the paper's dom0 script launched domains one after another, "watching memory
 * usage to determine when it is OK to launch another one": FreeMemoryLauncher, waiting as
 * long as it takes unless a patience is given.
 */
import type { Action, Observation } from '../../core/types.js';
import type { Controller } from '../controller.js';
import {
  DEFAULT_FREE_LAUNCH,
  FreeLaunchPeer,
  mib,
  runningGuests,
  xenlinuxMinimumMib,
  type FreeLaunchOptions,
} from './common.js';

export interface SelfballoonOptions {
  intervalMs?: number;
  downHysteresis?: number;
  upHysteresis?: number;
  /** XENBALLOON_MINMEM in MiB; 0 (the default) means the xenlinux curve. */
  minMemMib?: number;
  launch?: Partial<FreeLaunchOptions>;
}

interface GuestState {
  highWaterTotalKib: number;
  lastTargetKib: number | null;
}

export class SelfballoonPeer extends FreeLaunchPeer implements Controller {
  readonly name = 'selfballoon' as const;
  readonly intervalMs: number;
  private readonly down: number;
  private readonly up: number;
  private readonly minMemMib: number;
  private readonly guests = new Map<number, GuestState>();

  constructor(opts: SelfballoonOptions = {}) {
    super('selfballoon', { ...DEFAULT_FREE_LAUNCH, ...opts.launch });
    this.intervalMs = opts.intervalMs ?? 1000;
    this.down = opts.downHysteresis ?? 10;
    this.up = opts.upHysteresis ?? 1;
    this.minMemMib = opts.minMemMib ?? 0;
  }

  step(obs: Observation, _nowMs: number): Action[] {
    const actions: Action[] = [];
    const live = runningGuests(obs);
    const liveIds = new Set(live.map((d) => d.domid));
    for (const domid of [...this.guests.keys()]) if (!liveIds.has(domid)) this.guests.delete(domid);

    for (const d of live) {
      const total = d.report?.mem.totalKib ?? null;
      const committed = d.report?.mem.committedAsKib ?? null;
      if (total === null || committed === null) continue;
      let g = this.guests.get(d.domid);
      if (g === undefined) {
        g = { highWaterTotalKib: 0, lastTargetKib: null };
        this.guests.set(d.domid, g);
      }
      g.highWaterTotalKib = Math.max(g.highWaterTotalKib, total);
      const target = this.targetFor(total, committed, g.highWaterTotalKib);
      if (target !== g.lastTargetKib) {
        g.lastTargetKib = target;
        actions.push({ kind: 'setTarget', domid: d.domid, kib: target });
      }
    }
    return actions;
  }

  /** The script's selftarget + balloon_to_target, for one guest. */
  targetFor(curKib: number, committedAsKib: number, highWaterTotalKib: number): number {
    const minKib = mib(this.minMemMib !== 0 ? this.minMemMib : xenlinuxMinimumMib(highWaterTotalKib));
    const goal = Math.max(committedAsKib, minKib);
    if (curKib > goal) return this.down === 0 ? goal : curKib - Math.floor((curKib - goal) / this.down);
    if (curKib < goal) return curKib + Math.floor((goal - curKib) / this.up);
    return goal;
  }
}
