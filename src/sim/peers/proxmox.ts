/**
 * Proxmox VE automatic memory allocation (auto-ballooning), run by pvestatd every 10 s.
 *
 * Source: proxmox/pve-manager PVE/AutoBalloon.pm (compute_alg1) and PVE/Service/pvestatd.pm
 * (auto_balloning: host goal, 100 MiB maxchange, the 10 s update loop).
 *
 * Rules implemented (KiB):
 * - goal = total x 0.80 - used: the change in guest memory that would bring host usage to 80 %.
 *   Nothing is done unless |goal| > 10 MiB.
 * - Candidates: running VMs with a balloon_min and shares != 0 (default shares 1000). A VM whose
 *   guest reports free memory > 25 % of balloon_min (and is at or above balloon_min) "has
 *   enough free memory"; the others are "under pressure".
 * - Growing: first among VMs under pressure; if that made no progress, among all. Shrinking:
 *   first among VMs with enough free memory; if no progress, among all.
 * - Within a group: desired = balloon_min + (sum(balloon - balloon_min) + rest) x shares /
 *   sum(shares), clamped to [balloon_min, maxmem]; each VM moves toward desired by at most
 *   100 MiB per round; repeated while memory is left and something moved.
 * - A target is written only if it differs from the VM's current balloon size.
 *
 * Mapping to the simulated Xen host (Proxmox runs KVM):
 * - host total/used (/proc/meminfo of the KVM host) -> physinfo total, and total minus
 *   (free + scrub - claims).
 * - balloon (QMP query-balloon "actual") -> tot_pages; maxmem (VM `memory`) -> static-max;
 *   balloon_min (VM `balloon`) -> the guest's memory= by default (override with
 *   `balloonMinKib`); freemem (virtio-balloon free memory) -> report MemFree.
 *
 * Simplifications: no VM is locked for migration; a safety cap of 1000 rounds on the
 * redistribution loop (the Perl loop has none; it always ends in practice).
 *
 * Launching: Proxmox has no reservation API (KVM does not populate a VM at start); on Xen a
 * domain needs its memory free, so a launch goes when free memory covers it.
 */
import type { Action, Observation } from '../../core/types.js';
import type { Controller, LaunchRequest } from '../controller.js';
import {
  DEFAULT_FREE_LAUNCH,
  FreeLaunchPeer,
  GuestBook,
  mib,
  runningGuests,
  usableFreeKib,
  type FreeLaunchOptions,
  type GuestConfig,
} from './common.js';

export const PROXMOX = {
  intervalMs: 10_000,
  targetUsage: 0.8,
  maxChangeKib: mib(100),
  deadbandKib: mib(10),
  defaultShares: 1000,
  maxRounds: 1000,
} as const;

export interface ProxmoxVm {
  domid: number;
  /** Current balloon size. */
  balloonKib: number;
  balloonMinKib: number;
  maxmemKib: number;
  /** The guest's free memory, when its balloon driver reports it. */
  freememKib: number | null;
  shares: number;
}

/** AutoBalloon::compute_alg1: new balloon sizes, keyed by domid, for the VMs it moves. */
export function computeAlg1(vms: ProxmoxVm[], goalKib: number, maxChangeKib: number): Map<number, number> {
  const byId = new Map(vms.map((v) => [v.domid, v]));
  const all: number[] = [];
  const underPressure: number[] = [];
  const enoughFree: number[] = [];
  for (const v of [...vms].sort((a, b) => a.domid - b.domid)) {
    if (!v.balloonKib || !v.balloonMinKib || v.shares === 0) continue;
    all.push(v.domid);
    if (v.freememKib && v.freememKib > v.balloonMinKib * 0.25 && v.balloonKib >= v.balloonMinKib) enoughFree.push(v.domid);
    else underPressure.push(v.domid);
  }

  const res = new Map<number, number>();
  const change = (ids: number[], amount: number): number => {
    let rest = amount;
    let repeat = true;
    let progress = 1;
    let rounds = 0;
    const done = new Set<number>();
    while (rest !== 0 && repeat && progress !== 0 && rounds < PROXMOX.maxRounds) {
      rounds += 1;
      repeat = false;
      progress = 0;
      let sharesTotal = 0;
      let allocOld = 0;
      for (const id of ids) {
        const v = byId.get(id);
        if (v === undefined || done.has(id)) continue;
        allocOld += (res.get(id) ?? v.balloonKib) - v.balloonMinKib;
        sharesTotal += v.shares || PROXMOX.defaultShares;
      }
      const allocNew = allocOld + rest;
      let changes = 0;
      for (const id of ids) {
        const v = byId.get(id);
        if (v === undefined || done.has(id)) continue;
        const shares = v.shares || PROXMOX.defaultShares;
        let desired = v.balloonMinKib + Math.trunc((allocNew / sharesTotal) * shares);
        if (desired > v.maxmemKib) {
          desired = v.maxmemKib;
          repeat = true;
        } else if (desired < v.balloonMinKib) {
          desired = v.balloonMinKib;
          repeat = true;
        }
        let balloon: number;
        if (amount > 0 && desired - v.balloonKib > 0) {
          balloon = Math.min(v.balloonKib + maxChangeKib, desired);
        } else if (desired - v.balloonKib < 0) {
          balloon = Math.max(v.balloonKib - maxChangeKib, desired);
        } else {
          done.add(id);
          continue;
        }
        const diff = balloon - v.balloonKib;
        if (diff !== 0) {
          const old = res.get(id) ?? v.balloonKib;
          res.set(id, balloon);
          const delta = balloon - old;
          if (delta !== 0) {
            changes += delta;
            progress += Math.abs(diff);
            repeat = true;
          }
        }
      }
      rest -= changes;
    }
    return rest;
  };

  if (goalKib > PROXMOX.deadbandKib) {
    const rest = change(underPressure, goalKib);
    if (rest >= goalKib) change(all, rest);
  } else if (goalKib < -PROXMOX.deadbandKib) {
    const rest = change(enoughFree, goalKib);
    if (rest <= goalKib) change(all, rest);
  }
  return res;
}

export interface ProxmoxOptions {
  /** The VM's `balloon` (minimum memory) from its memory=/maxmem=. */
  balloonMinKib?: (cfg: GuestConfig) => number;
  shares?: number;
  /** Host usage to aim for (the node's ballooning-target, 80 % by default). */
  targetUsage?: number;
  launch?: Partial<FreeLaunchOptions>;
}

export class ProxmoxPeer extends FreeLaunchPeer implements Controller {
  readonly name = 'proxmox' as const;
  readonly intervalMs = PROXMOX.intervalMs;
  private readonly balloonMin: (cfg: GuestConfig) => number;
  private readonly shares: number;
  private readonly targetUsage: number;
  private readonly book = new GuestBook();

  constructor(opts: ProxmoxOptions = {}) {
    super('proxmox', { ...DEFAULT_FREE_LAUNCH, ...opts.launch });
    this.balloonMin = opts.balloonMinKib ?? ((cfg) => cfg.memoryKib);
    this.shares = opts.shares ?? PROXMOX.defaultShares;
    this.targetUsage = opts.targetUsage ?? PROXMOX.targetUsage;
  }

  step(obs: Observation, _nowMs: number): Action[] {
    const live = runningGuests(obs);
    this.book.retain(live.map((d) => d.domid));
    const total = obs.host.totalKib;
    const used = total - (usableFreeKib(obs) + obs.host.scrubKib);
    const goal = Math.trunc(total * this.targetUsage - used);
    const vms: ProxmoxVm[] = live.map((d) => ({
      domid: d.domid,
      balloonKib: d.currentKib,
      balloonMinKib: this.balloonMin(this.book.configOf(d)),
      maxmemKib: d.staticMaxKib ?? d.maxmemKib,
      freememKib: d.report?.mem.freeKib ?? null,
      shares: this.shares,
    }));
    const res = computeAlg1(vms, goal, PROXMOX.maxChangeKib);
    const actions: Action[] = [];
    const current = new Map(live.map((d) => [d.domid, d.currentKib]));
    for (const [domid, kib] of [...res].sort((a, b) => a[0] - b[0])) {
      const target = Math.trunc(kib);
      if (target !== current.get(domid)) actions.push({ kind: 'setTarget', domid, kib: target });
    }
    return actions;
  }

  protected override guestLaunched(domid: number, req: LaunchRequest): void {
    this.book.record(domid, req);
  }
}
