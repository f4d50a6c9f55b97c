/**
 * oVirt MOM (Memory Overcommitment Manager) with oVirt's default balloon policy.
 *
 * Source: oVirt/vdsm static/etc/vdsm/mom.d/02-balloon.policy (the policy oVirt ships; the
 * grow rule there scales guest free memory by host pressure, unlike oVirt/mom
 * doc/balloon.rules which uses a fixed 20 %), oVirt/mom doc/mom-balloon.conf (intervals,
 * sample-history-length), mom/Monitor.py (StatAvg over the sample history),
 * mom/Collectors/HostMemory.py, mom/HypervisorInterfaces/libvirtInterface.py (guest fields),
 * mom/Controllers/Balloon.py.
 *
 * Rules implemented (KiB):
 * - Monitors sample every 5 s and keep the last 10 samples; the policy runs every 10 s.
 * - host_free_percent = mean(host mem_free) / host mem_available.
 * - guest_free_percent = host_free_percent - 0.05 when host_free_percent <= 0.05 (critical:
 *   "force guest to swap"), else 0.20 x host_free_percent / 0.20.
 * - guest_used = mean(balloon_cur) - mean(mem_unused);
 *   floor = max(balloon_min, guest_used + guest_free_percent x balloon_cur).
 * - host_free_percent < 0.20: shrink to max(0.95 x balloon_cur, floor) if that is not above
 *   balloon_cur; otherwise grow a ballooned guest to min(max(1.05 x balloon_cur, floor),
 *   balloon_max). A change is made only if it exceeds 0.25 % of balloon_cur.
 * - Guaranteed-memory rule: a guest below balloon_min is set to balloon_min.
 * - A guest whose statistics are incomplete is left out (MOM's monitor is "not ready").
 *
 * Mapping to the simulated Xen host (MOM itself runs on KVM/libvirt):
 * - host mem_free (MemFree + Buffers + Cached of a KVM host) -> Xen free + scrub - claims;
 *   host mem_available (MemTotal) -> physinfo total.
 * - guest balloon_cur (libvirt current memory) -> tot_pages; balloon_max (libvirt max
 *   memory) -> static-max; mem_unused (virtio-balloon "unused" = the guest's MemFree) ->
 *   report MemFree. MOM's guest mem_available (virtio "available" = the guest's MemTotal) is
 *   not used by this policy.
 * - balloon_min (libvirt memtune min_guarantee / oVirt "physical memory guaranteed") -> the
 *   guest's memory= by default (override with `guaranteedKib`).
 * - setVmBalloonTarget -> setTarget; MOM leaves maxmem alone.
 *
 * Launching: MOM has no reservation API (oVirt's engine schedules by committed memory, and
 * KVM starts a VM without populating it); on Xen a domain needs its memory free, so a launch
 * goes when free memory covers it (FreeMemoryLauncher).
 */
import type { Action, Observation } from '../../core/types.js';
import type { Controller, LaunchRequest } from '../controller.js';
import {
  DEFAULT_FREE_LAUNCH,
  FreeLaunchPeer,
  GuestBook,
  runningGuests,
  type FreeLaunchOptions,
  type GuestConfig,
} from './common.js';

export const MOM = {
  monitorIntervalMs: 5_000,
  policyIntervalMs: 10_000,
  sampleHistoryLength: 10,
  pressureThreshold: 0.2,
  pressureCritical: 0.05,
  minGuestFreePercent: 0.2,
  maxBalloonChangePercent: 0.05,
  minBalloonChangePercent: 0.0025,
} as const;

export interface MomOptions {
  /** balloon_min for a guest from its memory=/maxmem=. */
  guaranteedKib?: (cfg: GuestConfig) => number;
  launch?: Partial<FreeLaunchOptions>;
}

interface GuestSamples {
  balloonCur: number[];
  memUnused: number[];
  ready: boolean;
}

function push(history: number[], value: number): void {
  history.push(value);
  if (history.length > MOM.sampleHistoryLength) history.shift();
}

function mean(xs: number[]): number {
  return xs.reduce((s, x) => s + x, 0) / xs.length;
}

export interface MomGuestView {
  balloonCurKib: number;
  balloonMaxKib: number;
  balloonMinKib: number;
  meanBalloonCurKib: number;
  meanMemUnusedKib: number;
}

/** The default balloon policy for one guest: the new balloon target, or null for no change. */
export function momBalloonTarget(hostFreePercent: number, g: MomGuestView): number | null {
  const guestFreePercent =
    hostFreePercent <= MOM.pressureCritical
      ? hostFreePercent - 0.05
      : MOM.minGuestFreePercent * (hostFreePercent / MOM.pressureThreshold);
  const cur = g.balloonCurKib;
  const used = g.meanBalloonCurKib - g.meanMemUnusedKib;
  const floor = Math.max(g.balloonMinKib, used + guestFreePercent * cur);
  const bigEnough = (v: number) => Math.abs(v - cur) > MOM.minBalloonChangePercent * cur;
  let target: number | null = null;
  if (hostFreePercent < MOM.pressureThreshold) {
    let size = cur * (1 - MOM.maxBalloonChangePercent);
    if (size < floor) size = floor;
    if (size <= cur && bigEnough(size)) target = size;
  } else if (cur < g.balloonMaxKib) {
    let size = cur * (1 + MOM.maxBalloonChangePercent);
    if (size < floor) size = floor;
    if (size > g.balloonMaxKib) size = g.balloonMaxKib;
    if (bigEnough(size)) target = size;
  }
  if (cur < g.balloonMinKib) target = g.balloonMinKib;
  return target === null ? null : Math.trunc(target);
}

export class MomPeer extends FreeLaunchPeer implements Controller {
  readonly name = 'mom' as const;
  readonly intervalMs = MOM.monitorIntervalMs;
  private readonly guaranteed: (cfg: GuestConfig) => number;
  private readonly book = new GuestBook();
  private readonly hostMemFree: number[] = [];
  private readonly guests = new Map<number, GuestSamples>();
  private lastPolicyMs: number | null = null;

  constructor(opts: MomOptions = {}) {
    super('mom', { ...DEFAULT_FREE_LAUNCH, ...opts.launch });
    this.guaranteed = opts.guaranteedKib ?? ((cfg) => cfg.memoryKib);
  }

  step(obs: Observation, nowMs: number): Action[] {
    const live = runningGuests(obs);
    this.collect(obs, live);
    if (this.lastPolicyMs !== null && nowMs - this.lastPolicyMs < MOM.policyIntervalMs) return [];
    this.lastPolicyMs = nowMs;

    const hostFreePercent = mean(this.hostMemFree) / obs.host.totalKib;
    const actions: Action[] = [];
    for (const d of live) {
      const s = this.guests.get(d.domid);
      if (s === undefined || !s.ready) continue;
      const target = momBalloonTarget(hostFreePercent, {
        balloonCurKib: d.currentKib,
        balloonMaxKib: d.staticMaxKib ?? d.maxmemKib,
        balloonMinKib: this.guaranteed(this.book.configOf(d)),
        meanBalloonCurKib: mean(s.balloonCur),
        meanMemUnusedKib: mean(s.memUnused),
      });
      if (target !== null) actions.push({ kind: 'setTarget', domid: d.domid, kib: target });
    }
    return actions;
  }

  private collect(obs: Observation, live: ReturnType<typeof runningGuests>): void {
    push(this.hostMemFree, obs.host.freeKib + obs.host.scrubKib - obs.host.outstandingKib);
    const ids = new Set(live.map((d) => d.domid));
    for (const domid of [...this.guests.keys()]) if (!ids.has(domid)) this.guests.delete(domid);
    this.book.retain(ids);
    for (const d of live) {
      let s = this.guests.get(d.domid);
      if (s === undefined) {
        s = { balloonCur: [], memUnused: [], ready: false };
        this.guests.set(d.domid, s);
      }
      const unused = d.report?.mem.freeKib ?? null;
      // Monitor.collect: incomplete data keeps the history but marks the guest not ready.
      s.ready = unused !== null;
      if (unused === null) continue;
      push(s.balloonCur, d.currentKib);
      push(s.memUnused, unused);
    }
  }

  protected override guestLaunched(domid: number, req: LaunchRequest): void {
    this.book.record(domid, req);
  }
}
