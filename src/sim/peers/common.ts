/**
 * What every peer needs and no peer should re-derive differently: which domains a host
 * controller manages, how much memory is really available to start a new domain, what each
 * guest was configured with (xl's memory= and maxmem=), and the "is there enough free memory"
 * launcher used by the systems that have no reservation API (static, selfballoon, mom, proxmox),
 * with FreeLaunchPeer, the launch side those four share.
 *
 * Memory is KiB and time is ms, as everywhere else. Nothing here reads a clock.
 */
import type { DomainObservation, Observation } from '../../core/types.js';
import type { Controller, LaunchRequest, LaunchStatus } from '../controller.js';

export const KIB_PER_MIB = 1024;

export function mib(n: number): number {
  return n * KIB_PER_MIB;
}

/** Running guests (domid > 0, neither dying nor shut down), in domid order. */
export function runningGuests(obs: Observation): DomainObservation[] {
  return obs.domains
    .filter((d) => d.domid > 0 && !d.dying && !d.shutdown)
    .sort((a, b) => a.domid - b.domid);
}

/**
 * Memory Xen could hand to a new domain right now: free pages minus pages already claimed by
 * domains being built. Pages still being scrubbed are not usable yet.
 */
export function usableFreeKib(obs: Observation): number {
  return obs.host.freeKib - obs.host.outstandingKib;
}

export function domainNames(obs: Observation): Set<string> {
  return new Set(obs.domains.map((d) => d.name));
}

/** A guest's configuration as its owner wrote it: xl's memory= and maxmem=, in KiB. */
export interface GuestConfig {
  memoryKib: number;
  maxmemKib: number;
}

/**
 * Remembers each guest's configured memory= and maxmem=. Guests launched through the peer are
 * recorded from their LaunchRequest; a guest seen without one (present when the run started)
 * is read at first sight, when its target still equals memory= (libxl writes memory/target =
 * memory= at creation) and static-max is its maxmem=.
 */
export class GuestBook {
  private readonly byDomid = new Map<number, GuestConfig>();

  record(domid: number, req: LaunchRequest): void {
    this.byDomid.set(domid, { memoryKib: req.memoryKib, maxmemKib: req.maxmemKib });
  }

  configOf(d: DomainObservation): GuestConfig {
    let c = this.byDomid.get(d.domid);
    if (c === undefined) {
      c = {
        memoryKib: d.targetKib ?? d.currentKib,
        maxmemKib: d.staticMaxKib ?? d.maxmemKib,
      };
      this.byDomid.set(d.domid, c);
    }
    return c;
  }

  /** Drop domains that no longer exist (a domid may be reused by a later guest). */
  retain(live: Iterable<number>): void {
    const keep = new Set(live);
    for (const domid of [...this.byDomid.keys()]) if (!keep.has(domid)) this.byDomid.delete(domid);
  }
}

export interface FreeLaunchOptions {
  /**
   * Memory a build needs on top of memory= (libxl_domain_need_memory adds 1 MiB,
   * LIBXL_PV_EXTRA_MEMORY, for a PV guest).
   */
  buildOverheadKib: number;
  /**
   * How long a launch may wait for free memory before it is given up. Infinity: the paper's
   * launcher script kept watching until another guest fitted.
   */
  patienceMs: number;
}

export const DEFAULT_FREE_LAUNCH: FreeLaunchOptions = { buildOverheadKib: 1024, patienceMs: Infinity };

interface FreeLaunch {
  req: LaunchRequest;
  askedAtMs: number;
  state: 'waiting' | 'held' | 'failed';
  reason: string;
}

/**
 * "Start the next guest once free memory covers it", one guest at a time in request order:
 * what an operator (or the paper's dom0 script) does on a host without a reservation API.
 * Memory promised to a launch that was told "go" but has not been created yet is held back
 * from the next one.
 */
export class FreeMemoryLauncher {
  private seq = 0;
  private readonly launches = new Map<string, FreeLaunch>();

  constructor(
    private readonly prefix: string,
    private readonly opts: FreeLaunchOptions,
  ) {}

  request(req: LaunchRequest, nowMs: number): string {
    this.seq += 1;
    const id = `${this.prefix}-${this.seq}`;
    this.launches.set(id, { req, askedAtMs: nowMs, state: 'waiting', reason: '' });
    return id;
  }

  status(id: string, obs: Observation, nowMs: number): LaunchStatus {
    const l = this.launches.get(id);
    if (l === undefined) return { state: 'fail', reason: `unknown launch ${id}` };
    if (l.state === 'held') return { state: 'go' };
    if (l.state === 'failed') return { state: 'fail', reason: l.reason };
    if (this.headOfQueue() !== id) return { state: 'wait' };
    const needKib = l.req.memoryKib + this.opts.buildOverheadKib;
    const availKib = usableFreeKib(obs) - this.heldKib(obs);
    if (availKib >= needKib) {
      l.state = 'held';
      return { state: 'go' };
    }
    if (nowMs - l.askedAtMs >= this.opts.patienceMs) {
      l.state = 'failed';
      l.reason = `${l.req.name} needs ${needKib} KiB free, the host has ${Math.max(0, availKib)} KiB`;
      return { state: 'fail', reason: l.reason };
    }
    return { state: 'wait' };
  }

  /** The request it answered, so the peer can record the new guest's configuration. */
  launched(id: string): LaunchRequest | null {
    const l = this.launches.get(id);
    this.launches.delete(id);
    return l?.req ?? null;
  }

  /**
   * Memory promised to launches told "go" whose domain does not exist yet. Once it exists (its
   * name appears) its pages and Xen's claim for the rest already show in the observation.
   */
  heldKib(obs: Observation): number {
    const existing = domainNames(obs);
    let sum = 0;
    for (const l of this.launches.values()) {
      if (l.state === 'held' && !existing.has(l.req.name)) sum += l.req.memoryKib + this.opts.buildOverheadKib;
    }
    return sum;
  }

  private headOfQueue(): string | null {
    for (const [id, l] of this.launches) if (l.state === 'waiting') return id;
    return null;
  }
}

/**
 * The launch side of the peers without a reservation API (static, selfballoon, mom, proxmox):
 * every launch waits in a FreeMemoryLauncher until free memory covers it. A peer that keeps
 * its guests' configuration (a GuestBook) overrides guestLaunched.
 */
export abstract class FreeLaunchPeer implements Pick<Controller, 'requestLaunch' | 'launchStatus' | 'launched'> {
  private readonly launcher: FreeMemoryLauncher;

  protected constructor(prefix: string, launch: FreeLaunchOptions) {
    this.launcher = new FreeMemoryLauncher(prefix, launch);
  }

  requestLaunch(req: LaunchRequest, _obs: Observation, nowMs: number): string {
    return this.launcher.request(req, nowMs);
  }

  launchStatus(id: string, obs: Observation, nowMs: number): LaunchStatus {
    return this.launcher.status(id, obs, nowMs);
  }

  launched(id: string, domid: number | null, _nowMs: number): void {
    const req = this.launcher.launched(id);
    if (req !== null && domid !== null) this.guestLaunched(domid, req);
  }

  /** A guest this peer launched exists now, as `domid`. */
  protected guestLaunched(_domid: number, _req: LaunchRequest): void {}
}

/**
 * The xenlinux balloon driver's minimum_target() (2008), as the seed's xenballoond applies it:
 * a floor in MiB from a memory size in KiB. Piecewise: < 125 MiB: 8 + pages/512; < 500 MiB:
 * 40 + pages/1024; < 2000 MiB: 104 + pages/2048; else 296 + pages/8192 (pages of 4 KiB).
 */
export function xenlinuxMinimumMib(sizeKib: number): number {
  const mb = Math.floor(sizeKib / 1024);
  const pages = Math.floor(sizeKib / 4);
  if (mb < 125) return 8 + Math.floor(pages / 512);
  if (mb < 500) return 40 + Math.floor(pages / 1024);
  if (mb < 2000) return 104 + Math.floor(pages / 2048);
  return 296 + Math.floor(pages / 8192);
}
