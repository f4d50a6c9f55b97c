/**
 * Qubes OS qmemman: dom0 balances memory in proportion to each VM's preferred size, computed
 * from the one "used" number the VM publishes, and frees memory for a new VM on request.
 *
 * Source: QubesOS/qubes-core-admin qubes/qmemman/algo.py (pref, balance, balloon),
 * qubes/qmemman/systemstate.py (free memory, mem_set, do_balance, do_balloon, significance),
 * qubes/tools/qmemmand.py (watches, the request socket and its lock),
 * qubes/vm/qubesvm.py (request size); QubesOS/qubes-linux-utils qmemman/meminfo-writer.c
 * and qubes-meminfo-writer.service (the guest side: 30000 KB threshold, 100 ms poll).
 *
 * Rules implemented:
 * - The guest's meminfo-writer publishes used = MemTotal - MemFree - Buffers - Cached +
 *   SwapTotal - SwapFree (MemTotal replaced by the balloon's current size when known) only
 *   when it moved by more than 30000 KiB, or by more than 15000 KiB while growing and
 *   used x 1.3 > MemTotal. qmemman rebalances on each such publication and on every domain
 *   list change.
 * - pref = max(min(1.3 x used, max), 200 MiB); dom0: min(1.3 x used + 350 MiB, max).
 *   Xen free = physinfo free / 1.00781 - sum(max(0, last target - current)); 50 MiB kept free.
 * - Enough memory: every domain gets pref + its share of the rest in proportion to pref
 *   (x 0.999), capped at max with the excess spread over the others. Short: donors above pref
 *   by 10 MiB or more go to pref; acceptors get actual + their pref share of
 *   (Xen free - 50 MiB - donors' surplus), as the published code computes it.
 * - A balance is carried out only if significant: Xen free below 35 MiB, or a domain with
 *   0 < last target < pref would gain more than 15 MiB, or sum of |target changes| +
 *   |Xen free - 50 MiB| > 150 MiB. Donors are set first; before growing an acceptor qmemman
 *   waits (up to 5 x 100 ms) until free memory stays >= 45 MiB after the grow, and if it
 *   never does, flags the donors that did not move (no_progress) or moved too little
 *   (slow_memset_react), gives the acceptor what is free and stops.
 * - Setting a target (mem_set): setmaxmem(target + 1 MiB), then memory/target = target - 16 MiB.
 * - The request socket: a launch sends memory= + 4 MiB + 1.5 MiB per vCPU. Every 100 ms:
 *   success (OK) when Xen free >= size + 25 MiB (targets still far above actual are pulled
 *   back first); failure (FAIL) when free grew by less than 300 MiB over the last 3 s, or when
 *   donors above pref cannot cover size + 50 MiB - free; otherwise donors are asked for 1.05 x
 *   their proportional share. A donor whose memory did not move since the previous 100 ms is
 *   no_progress (left out until it catches up). Balancing is suspended from the request until
 *   the client disconnects: after the new domain is created (launched), or at once on FAIL.
 *
 * Simplifications:
 * - KiB arithmetic instead of bytes (rounding differences below 1 KiB).
 * - The meminfo-writer runs in the guest every 100 ms on live /proc; here it is emulated
 *   from each guest's latest report (a report in Qubes' own format carries `usedKib` directly).
 * - Dying or shut-down domains are dropped from the domain list at once.
 * - Outstanding claims are subtracted from physinfo free.
 * - The 16 MiB target offset assumes a guest sees 16 MiB less than Xen gives it; a simulated
 *   guest balloons to memory/target exactly, so qmemman counts those 16 MiB as assigned but
 *   unused — what it would also do on real guests without that gap.
 */
import type { Action, DomainObservation, Observation } from '../../core/types.js';
import type { GuestReport } from '../../report/types.js';
import type { Controller, LaunchRequest, LaunchStatus } from '../controller.js';
import { mib } from './common.js';

export const QMEMMAN = {
  balloonDelayMs: 100,
  xenFreeMemLeftKib: mib(50),
  xenFreeMemMinKib: mib(25),
  memOverheadFactor: 1 / 1.00781,
  checkPeriodS: 3,
  checkMibPerS: 100,
  minTotalMemoryTransferKib: mib(150),
  minMemChangeWhenUnderPrefKib: mib(15),
  cacheFactor: 1.3,
  minPrefKib: mib(200),
  dom0MemBoostKib: mib(350),
  reqSafetyNetFactor: 1.05,
  maxmemConstantKib: mib(1),
  guestTargetOffsetKib: mib(16),
  /** qubes-meminfo-writer.service: `meminfo-writer 30000 100000`. */
  writerThresholdKib: 30000,
  requestBaseOverheadKib: mib(4),
  requestPerVcpuOverheadKib: mib(1.5),
  balanceRetries: 5,
} as const;

export interface QDomain {
  domid: number;
  memoryCurrentKib: number;
  /** max(current, last target): what the domain uses or may use at any time. */
  memoryActualKib: number;
  memoryMaximumKib: number;
  memUsedKib: number | null;
  lastTargetKib: number;
  noProgress: boolean;
  slowMemsetReact: boolean;
  /** The emulated meminfo-writer's last published value (0 = nothing yet). */
  writerPrevUsedKib: number;
  /** Published but not yet read by qmemman (it reads the key once it holds the lock). */
  pendingUsedKib: number | null;
  /** When the report the writer last looked at arrived (its /proc does not change in between). */
  writerSeenReportAtMs: number | null;
}

export function prefMem(d: QDomain): number {
  const used = (d.memUsedKib ?? 0) * QMEMMAN.cacheFactor;
  if (d.domid === 0) return Math.trunc(Math.min(used + QMEMMAN.dom0MemBoostKib, d.memoryMaximumKib));
  return Math.trunc(Math.max(Math.min(used, d.memoryMaximumKib), QMEMMAN.minPrefKib));
}

function neededMem(d: QDomain): number {
  return prefMem(d) - d.memoryActualKib;
}

function balanced(d: QDomain): boolean {
  return d.memUsedKib !== null && !d.noProgress;
}

export type MemsetRequest = [domid: number, targetKib: number];

/** algo.balloon: what to take from donors so that `memsize` more is free. Empty: impossible. */
export function balloonRequests(memsizeKib: number, doms: QDomain[]): MemsetRequest[] {
  const donors: Array<[number, number]> = [];
  let available = 0;
  for (const d of doms) {
    if (!balanced(d)) continue;
    const need = neededMem(d);
    if (need < 0) {
      donors.push([d.domid, -need]);
      available -= need;
    }
  }
  if (available < memsizeKib) return [];
  const scale = memsizeKib / available;
  const byId = new Map(doms.map((d) => [d.domid, d]));
  return donors.map(([domid, surplus]) => {
    const borrowed = surplus * scale * QMEMMAN.reqSafetyNetFactor;
    return [domid, Math.trunc((byId.get(domid)?.memoryActualKib ?? 0) - borrowed)];
  });
}

/** algo.balance: targets for every balanced domain, donors first. */
export function balanceRequests(xenFreeKib: number, doms: QDomain[]): MemsetRequest[] {
  let totalNeeded = 0;
  let totalPref = 0;
  let totalPrefAcceptors = 0;
  const donors: QDomain[] = [];
  const acceptors: QDomain[] = [];
  for (const d of doms) {
    if (!balanced(d)) continue;
    const need = neededMem(d);
    if (need < 0 || d.memoryActualKib >= d.memoryMaximumKib) {
      donors.push(d);
    } else {
      acceptors.push(d);
      totalPrefAcceptors += prefMem(d);
    }
    totalNeeded += need;
    totalPref += prefMem(d);
  }
  const totalAvailable = xenFreeKib - totalNeeded;
  if (totalAvailable > 0) return balanceWhenEnough(doms, totalPref, totalAvailable);
  return balanceWhenLow(xenFreeKib, totalPrefAcceptors, donors, acceptors);
}

function balanceWhenEnough(doms: QDomain[], totalPref: number, totalAvailable: number): MemsetRequest[] {
  const targets = new Map<number, number>();
  let left = 0;
  let acceptorsCount = 0;
  const included = doms.filter(balanced);
  for (const d of included) {
    const pref = prefMem(d);
    let target = Math.trunc(0.999 * (pref + (pref / totalPref) * totalAvailable));
    if (target > d.memoryMaximumKib) {
      left += target - d.memoryMaximumKib;
      target = d.memoryMaximumKib;
    } else {
      acceptorsCount += 1;
    }
    targets.set(d.domid, target);
  }
  while (left > 0 && acceptorsCount > 0) {
    let newLeft = 0;
    let newCount = acceptorsCount;
    for (const d of included) {
      let target = targets.get(d.domid) ?? 0;
      if (target < d.memoryMaximumKib) {
        const bonus = Math.trunc(0.999 * (left / acceptorsCount));
        if (target + bonus >= d.memoryMaximumKib) {
          newLeft += target + bonus - d.memoryMaximumKib;
          target = d.memoryMaximumKib;
          newCount -= 1;
        } else {
          target += bonus;
        }
      }
      targets.set(d.domid, target);
    }
    left = newLeft;
    acceptorsCount = newCount;
  }
  const donorsRq: MemsetRequest[] = [];
  const acceptorsRq: MemsetRequest[] = [];
  for (const d of included) {
    const target = targets.get(d.domid) ?? 0;
    (target < d.memoryActualKib ? donorsRq : acceptorsRq).push([d.domid, target]);
  }
  return [...donorsRq, ...acceptorsRq];
}

function balanceWhenLow(
  xenFreeKib: number,
  totalPrefAcceptors: number,
  donors: QDomain[],
  acceptors: QDomain[],
): MemsetRequest[] {
  const donorsRq: MemsetRequest[] = [];
  let squeezed = xenFreeKib;
  for (const d of donors) {
    const avail = -neededMem(d);
    if (avail < mib(10)) continue;
    // As published: the donors' surplus is subtracted from, not added to, what acceptors share.
    squeezed -= avail;
    donorsRq.push([d.domid, prefMem(d)]);
  }
  if (squeezed < 0) return donorsRq;
  const acceptorsRq: MemsetRequest[] = acceptors.map((d) => {
    const share = (prefMem(d) / totalPrefAcceptors) * squeezed;
    return [d.domid, Math.min(Math.trunc(0.999 * (d.memoryActualKib + share)), d.memoryMaximumKib)];
  });
  return [...donorsRq, ...acceptorsRq];
}

/** is_balance_req_significant: is this rebalance worth doing? */
export function balanceIsSignificant(reqs: MemsetRequest[], xenfreeKib: number, doms: Map<number, QDomain>): boolean {
  if (QMEMMAN.xenFreeMemLeftKib - xenfreeKib > QMEMMAN.minMemChangeWhenUnderPrefKib) return true;
  let total = 0;
  for (const [domid, kib] of reqs) {
    const d = doms.get(domid);
    if (d === undefined) continue;
    const change = kib - d.lastTargetKib;
    total += Math.abs(change);
    if (d.lastTargetKib > 0 && d.lastTargetKib < prefMem(d) && change > QMEMMAN.minMemChangeWhenUnderPrefKib) return true;
  }
  return total + Math.abs(xenfreeKib - QMEMMAN.xenFreeMemLeftKib) > QMEMMAN.minTotalMemoryTransferKib;
}

/** The emulated meminfo-writer: "used" from a report, or null when it cannot be computed. */
export function usedFromReport(r: GuestReport): { usedKib: number; totalKib: number } | null {
  const m = r.mem;
  const total = r.balloonCurrentKib ?? m.totalKib;
  if (m.usedKib !== null) return { usedKib: m.usedKib, totalKib: total ?? m.usedKib };
  if (total === null || m.freeKib === null || m.buffersKib === null || m.cachedKib === null) return null;
  if (m.swapTotalKib === null || m.swapFreeKib === null) return null;
  const used = total - m.buffersKib - m.cachedKib - m.freeKib + m.swapTotalKib - m.swapFreeKib;
  return used < 0 ? null : { usedKib: used, totalKib: total };
}

/** meminfo-writer.c parse(): would this value be written to memory/meminfo? */
export function writerPublishes(usedKib: number, prevKib: number, totalKib: number): boolean {
  const diff = Math.abs(usedKib - prevKib);
  const t = QMEMMAN.writerThresholdKib;
  return (
    diff > t ||
    prevKib === 0 ||
    (usedKib > prevKib && Math.trunc(usedKib / 10) > Math.trunc((totalKib + 12) / 13) && diff > Math.trunc(t / 2))
  );
}

export interface QmemmanOptions {
  /** vCPUs per new VM, for the request overhead (Qubes' default is 2). */
  vcpus?: number;
}

interface Request {
  req: LaunchRequest;
  memsizeKib: number;
  state: 'queued' | 'ballooning' | 'ok' | 'failed';
  reason: string;
}

interface BalloonOp {
  kind: 'balloon';
  requestId: string;
  niter: number;
  ring: number[];
  prevActual: Map<number, number> | null;
}

interface BalanceOp {
  kind: 'balance';
  reqs: MemsetRequest[];
  index: number;
  tries: number;
  prevActual: Map<number, number>;
}

export class QmemmanPeer implements Controller {
  readonly name = 'qmemman' as const;
  readonly intervalMs = QMEMMAN.balloonDelayMs;
  private readonly vcpus: number;
  private readonly doms = new Map<number, QDomain>();
  private readonly requests = new Map<string, Request>();
  private readonly queue: string[] = [];
  private requestSeq = 0;
  private op: BalloonOp | BalanceOp | null = null;
  /** A request got OK; the global lock stays with its client until the domain is created. */
  private lockHolder: string | null = null;
  private balanceWanted = false;
  private allPhysKib = 0;
  private freeKibNow = 0;
  /** sum(max(0, last target - current)), kept up to date by refreshMemActual and memSet. */
  private assignedButUnusedKib = 0;

  constructor(opts: QmemmanOptions = {}) {
    this.vcpus = opts.vcpus ?? 2;
  }

  step(obs: Observation, _nowMs: number): Action[] {
    const actions: Action[] = [];
    this.allPhysKib = Math.trunc(obs.host.totalKib * QMEMMAN.memOverheadFactor);
    this.freeKibNow = obs.host.freeKib - obs.host.outstandingKib;
    const live = obs.domains.filter((d) => !d.dying && !d.shutdown).sort((a, b) => a.domid - b.domid);
    if (this.syncDomainList(live)) this.balanceWanted = true;
    this.runMeminfoWriters(live);
    this.refreshMemActual(live);

    if (this.op?.kind === 'balance') {
      this.continueBalance(this.op, actions);
      return actions;
    }
    if (this.op?.kind === 'balloon') {
      this.balloonIteration(this.op, actions);
      return actions;
    }
    if (this.lockHolder !== null) return actions;
    const head = this.queue[0];
    if (head !== undefined) {
      const r = this.requests.get(head);
      if (r !== undefined) {
        r.state = 'ballooning';
        for (const d of this.doms.values()) d.noProgress = false;
        this.op = { kind: 'balloon', requestId: head, niter: 0, ring: [], prevActual: null };
        this.balloonIteration(this.op, actions);
        return actions;
      }
      this.queue.shift();
    }
    if (this.readPublishedMeminfo()) this.balanceWanted = true;
    if (this.balanceWanted) {
      this.balanceWanted = false;
      this.doBalance(actions);
    }
    return actions;
  }

  requestLaunch(req: LaunchRequest, _obs: Observation, _nowMs: number): string {
    this.requestSeq += 1;
    const id = `qmemman-${this.requestSeq}`;
    const vcpus = req.vcpus ?? this.vcpus;
    const memsizeKib = req.memoryKib + QMEMMAN.requestBaseOverheadKib + vcpus * QMEMMAN.requestPerVcpuOverheadKib;
    this.requests.set(id, { req, memsizeKib, state: 'queued', reason: '' });
    this.queue.push(id);
    return id;
  }

  launchStatus(id: string, _obs: Observation, _nowMs: number): LaunchStatus {
    const r = this.requests.get(id);
    if (r === undefined) return { state: 'fail', reason: `unknown request ${id}` };
    if (r.state === 'ok') return { state: 'go' };
    if (r.state === 'failed') return { state: 'fail', reason: r.reason };
    return { state: 'wait' };
  }

  /** The client disconnects: the lock is released and the domain list refreshed. */
  launched(id: string, _domid: number | null, _nowMs: number): void {
    const r = this.requests.get(id);
    if (r === undefined) return;
    this.requests.delete(id);
    const q = this.queue.indexOf(id);
    if (q >= 0) this.queue.splice(q, 1);
    if (this.op?.kind === 'balloon' && this.op.requestId === id) this.op = null;
    if (this.lockHolder === id) {
      this.lockHolder = null;
      this.balanceWanted = true;
    }
  }

  /** For tests and explanations. */
  inspect(): { domains: QDomain[]; operation: 'balloon' | 'balance' | null; locked: boolean } {
    return {
      domains: [...this.doms.values()].map((d) => ({ ...d })),
      operation: this.op?.kind ?? null,
      locked: this.lockHolder !== null,
    };
  }

  /** Xen free as qmemman counts it (get_free_xen_memory). */
  freeXenKib(): number {
    const xenFree = Math.trunc(this.freeKibNow * QMEMMAN.memOverheadFactor);
    return xenFree - this.assignedButUnusedKib;
  }

  private syncDomainList(live: DomainObservation[]): boolean {
    let changed = false;
    const ids = new Set(live.map((d) => d.domid));
    for (const domid of [...this.doms.keys()]) {
      if (!ids.has(domid)) {
        this.doms.delete(domid);
        changed = true;
      }
    }
    if (!changed && live.length === this.doms.size) return false;
    for (const d of live) {
      if (this.doms.has(d.domid)) continue;
      changed = true;
      this.doms.set(d.domid, {
        domid: d.domid,
        memoryCurrentKib: d.currentKib,
        memoryActualKib: d.currentKib,
        memoryMaximumKib: this.allPhysKib,
        memUsedKib: null,
        lastTargetKib: d.targetKib ?? 0,
        noProgress: false,
        slowMemsetReact: false,
        writerPrevUsedKib: 0,
        pendingUsedKib: null,
        writerSeenReportAtMs: null,
      });
    }
    return changed;
  }

  private runMeminfoWriters(live: DomainObservation[]): void {
    for (const o of live) {
      const d = this.doms.get(o.domid);
      if (d === undefined || o.report === null) continue;
      if (o.reportAtMs !== null && o.reportAtMs === d.writerSeenReportAtMs) continue;
      d.writerSeenReportAtMs = o.reportAtMs;
      const u = usedFromReport(o.report);
      if (u === null || !writerPublishes(u.usedKib, d.writerPrevUsedKib, u.totalKib)) continue;
      d.writerPrevUsedKib = u.usedKib;
      d.pendingUsedKib = u.usedKib;
    }
  }

  /** meminfo_changed for every published value: read it; true if there was any. */
  private readPublishedMeminfo(): boolean {
    let any = false;
    for (const d of this.doms.values()) {
      if (d.pendingUsedKib === null) continue;
      d.memUsedKib = d.pendingUsedKib;
      d.pendingUsedKib = null;
      any = true;
    }
    return any;
  }

  private refreshMemActual(live: DomainObservation[]): void {
    for (const o of live) {
      const d = this.doms.get(o.domid);
      if (d === undefined) continue;
      d.memoryCurrentKib = o.currentKib;
      d.memoryActualKib = Math.max(o.currentKib, d.lastTargetKib);
      d.memoryMaximumKib = o.staticMaxKib ?? this.allPhysKib;
    }
    this.assignedButUnusedKib = 0;
    for (const d of this.doms.values()) this.assignedButUnusedKib += Math.max(0, d.lastTargetKib - d.memoryCurrentKib);
  }

  private memSet(domid: number, kib: number, actions: Action[]): void {
    const d = this.doms.get(domid);
    if (d === undefined) return;
    // Xen would refuse a negative size; qmemman can compute one when free memory is very short.
    const target = Math.max(0, Math.trunc(kib));
    this.assignedButUnusedKib +=
      Math.max(0, target - d.memoryCurrentKib) - Math.max(0, d.lastTargetKib - d.memoryCurrentKib);
    d.lastTargetKib = target;
    actions.push({ kind: 'setMaxmem', domid, kib: target + QMEMMAN.maxmemConstantKib });
    actions.push({ kind: 'setTarget', domid, kib: Math.max(0, target - QMEMMAN.guestTargetOffsetKib) });
  }

  /** One 100 ms iteration of do_balloon. */
  private balloonIteration(op: BalloonOp, actions: Action[]): void {
    const r = this.requests.get(op.requestId);
    if (r === undefined) {
      this.op = null;
      return;
    }
    const xenfree = this.freeXenKib();
    if (xenfree >= r.memsizeKib + QMEMMAN.xenFreeMemMinKib) {
      this.inhibitBalloonUp(actions);
      this.endRequest(op, r, 'ok', '');
      return;
    }
    const checkPeriod = Math.max(1, Math.trunc((QMEMMAN.checkPeriodS * 1000) / QMEMMAN.balloonDelayMs));
    const checkDelta = mib(QMEMMAN.checkPeriodS * QMEMMAN.checkMibPerS);
    const slot = op.niter % checkPeriod;
    if (op.niter >= checkPeriod && xenfree < (op.ring[slot] ?? 0) + checkDelta) {
      this.endRequest(op, r, 'failed', `free memory grew by less than ${checkDelta} KiB in ${QMEMMAN.checkPeriodS} s`);
      return;
    }
    op.ring[slot] = xenfree;
    if (op.prevActual !== null) {
      for (const [domid, prev] of op.prevActual) {
        const d = this.doms.get(domid);
        if (d !== undefined && prev === d.memoryActualKib) d.noProgress = true;
      }
    }
    const reqs = balloonRequests(r.memsizeKib + QMEMMAN.xenFreeMemLeftKib - xenfree, [...this.doms.values()]);
    if (reqs.length === 0) {
      this.endRequest(op, r, 'failed', `donors cannot free ${r.memsizeKib} KiB`);
      return;
    }
    op.prevActual = new Map();
    for (const [domid, kib] of reqs) {
      this.memSet(domid, kib, actions);
      op.prevActual.set(domid, this.doms.get(domid)?.memoryActualKib ?? 0);
    }
    op.niter += 1;
  }

  private endRequest(op: BalloonOp, r: Request, state: 'ok' | 'failed', reason: string): void {
    r.state = state;
    r.reason = reason;
    this.op = null;
    if (this.queue[0] === op.requestId) this.queue.shift();
    // On OK the client keeps the connection (and the lock) until its domain exists.
    if (state === 'ok') this.lockHolder = op.requestId;
  }

  /**
   * Kept as published; inert since memory_actual became max(current, last target), which is
   * never more than 200 KiB below the last target.
   */
  private inhibitBalloonUp(actions: Action[]): void {
    for (const d of this.doms.values()) {
      if (d.memoryActualKib + 200 < d.lastTargetKib) this.memSet(d.domid, d.memoryActualKib, actions);
    }
  }

  private clearOutdatedErrorMarkers(): void {
    for (const d of this.doms.values()) {
      if (d.memUsedKib === null) continue;
      if (d.memoryActualKib <= d.lastTargetKib + QMEMMAN.xenFreeMemLeftKib / 2 || d.memoryActualKib < prefMem(d)) {
        d.slowMemsetReact = false;
        d.noProgress = false;
      }
    }
  }

  private doBalance(actions: Action[]): void {
    this.clearOutdatedErrorMarkers();
    const xenfree = this.freeXenKib();
    const reqs = balanceRequests(xenfree - QMEMMAN.xenFreeMemLeftKib, [...this.doms.values()]);
    if (!balanceIsSignificant(reqs, xenfree, this.doms)) return;
    const prevActual = new Map([...this.doms.values()].map((d) => [d.domid, d.memoryActualKib]));
    const op: BalanceOp = { kind: 'balance', reqs, index: 0, tries: QMEMMAN.balanceRetries, prevActual };
    this.op = op;
    this.advanceBalance(op, actions);
  }

  /** After a 100 ms sleep: re-read the domains, count the try, and carry on. */
  private continueBalance(op: BalanceOp, actions: Action[]): void {
    op.tries -= 1;
    if (op.tries <= 0) {
      this.abortBalance(op, actions);
      return;
    }
    this.advanceBalance(op, actions);
  }

  private advanceBalance(op: BalanceOp, actions: Action[]): void {
    while (op.index < op.reqs.length) {
      const rq = op.reqs[op.index];
      if (rq === undefined) break;
      const [domid, kib] = rq;
      const d = this.doms.get(domid);
      if (d === undefined) {
        op.index += 1;
        op.tries = QMEMMAN.balanceRetries;
        continue;
      }
      if (this.freeXenKib() - (kib - d.memoryActualKib) < 0.9 * QMEMMAN.xenFreeMemLeftKib) return; // wait 100 ms
      this.memSet(domid, kib, actions);
      op.index += 1;
      op.tries = QMEMMAN.balanceRetries;
    }
    this.op = null;
  }

  /** Waiting did not help: blame the donors that did not give back, give what is free, stop. */
  private abortBalance(op: BalanceOp, actions: Action[]): void {
    const rq = op.reqs[op.index];
    this.op = null;
    if (rq === undefined) return;
    const [domid] = rq;
    for (const [domid2] of op.reqs) {
      if (domid2 === domid) break;
      const d2 = this.doms.get(domid2);
      if (d2 === undefined) continue;
      if (d2.memoryActualKib > d2.lastTargetKib + QMEMMAN.xenFreeMemLeftKib / 4) {
        if (op.prevActual.get(domid2) === d2.memoryActualKib) d2.noProgress = true;
        else d2.slowMemsetReact = true;
      }
    }
    const d = this.doms.get(domid);
    if (d !== undefined) this.memSet(domid, this.freeXenKib() + d.memoryActualKib - QMEMMAN.xenFreeMemLeftKib, actions);
  }
}
