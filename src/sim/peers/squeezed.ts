/**
 * XenServer / XCP-ng squeezed: proportional ballooning inside each VM's dynamic range, with a
 * reservation API the toolstack calls before it builds a VM.
 *
 * Source: xapi-project/xen-api ocaml/squeezed/lib/squeeze.ml (Squeezer, Proportional,
 * Stuckness_monitor, change_host_free_memory), ocaml/squeezed/src/squeeze_xen.ml (make_host,
 * execute_action, cooperative flags, constants), ocaml/squeezed/src/memory_server.ml and
 * squeezed.ml (balance thread, reserve_memory), ocaml/xenopsd memory model (maxmem offsets).
 *
 * Rules implemented:
 * - Guest need is not used. Each VM has [dynamic-min, dynamic-max]; one gamma for all:
 *   target = dynamic-min + gamma x (dynamic-max - dynamic-min), gamma = surplus / sum(range)
 *   clamped to [0, 1], surplus = host free + sum(actual - dynamic-min - 2 x 4 KiB) - goal.
 * - Host free = free + pages being scrubbed - reservations held; while 4 MiB or more is still
 *   being scrubbed squeezed waits (make_host) and does nothing else.
 * - Two phases: while any active domain must shrink, only shrinking targets are written;
 *   growing ones only once nothing needs to shrink.
 * - maxmem follows the target as a hard cap (plus 1 MiB for HVM, 0 for PV): raised before a
 *   target goes up, lowered after a target goes down; any maxmem above target is lowered.
 * - A domain not moving toward its target for more than 5 s is stuck: left out (others cover
 *   its share) until it moves again; the monitor is fresh for each operation, as in squeezed.
 *   A domain that is declared stuck gets target = maxmem = min(target, actual) clipped to its
 *   range. A domain that has not been on its target for more than 20 s is flagged
 *   memory/uncooperative (Action `flag`), cleared when it is on target again.
 * - One operation at a time (squeezed's big mutex): a reservation (goal = size + 72 MiB host
 *   free target, success when free >= that) or a balance (goal = 72 MiB, success when free is
 *   within 512 KiB of it); one iteration per 1 s. A balance check runs 10 s after the last one
 *   (or after the last balance) and balances if any target would change; a domain's
 *   destruction triggers a one-off balance (xenopsd calls balance_memory).
 *
 * dynamic-min/max from a scenario's memory=/maxmem=: XenServer's DMC documentation gives the
 * example range 512-1024 MB for a VM and supports dynamic-min >= static-max / 4. We map
 * static-max = dynamic-max = maxmem= and dynamic-min = max(memory=, maxmem= / 4): the size
 * the owner gave the guest is the least it is squeezed to. Override with `dynamicRange`.
 *
 * Launching: xenopsd reserves before building (reserve_memory_range(dynamic-min, dynamic-max));
 * the simulated host always builds a guest at memory= (= dynamic-min here), so we reserve
 * exactly that with reserve_memory. xenopsd does not retry (timeout 0): a failed reservation
 * (Cannot_free_this_much_memory / Domains_refused_to_cooperate) fails the launch.
 *
 * Simplifications: every running domU is treated as having control/feature-balloon and as
 * booted (no initial-reservation accounting, memory-offset 0); dom0 is not managed
 * (manage_domain_zero defaults to false); outstanding claims are subtracted from free like a
 * reservation.
 */
import type { Action, DomainObservation, Observation } from '../../core/types.js';
import type { Controller, LaunchRequest, LaunchStatus } from '../controller.js';
import { GuestBook, domainNames, mib, runningGuests, type GuestConfig } from './common.js';

export const SQUEEZED = {
  inaccuracyKib: 4,
  /** low_mem_emergency_pool (64 MiB) + extra_mem_to_keep (8 MiB). */
  targetHostFreeKib: mib(64) + mib(8),
  freeMemoryToleranceKib: 512,
  stuckAfterMs: 5_000,
  uncooperativeAfterMs: 20_000,
  balanceCheckIntervalMs: 10_000,
  iterationMs: 1_000,
  scrubWaitKib: 1024 * 4,
  hvmMaxmemOffsetKib: mib(1),
} as const;

export interface SqDomain {
  domid: number;
  canBalloon: boolean;
  dynamicMinKib: number;
  dynamicMaxKib: number;
  targetKib: number;
  actualKib: number;
  /** Hypervisor maxmem minus squeezed's offset. */
  maxmemKib: number;
  /** What squeezed adds to a target to get maxmem: 1 MiB for HVM, 0 for PV (xenopsd). */
  maxmemOffsetKib: number;
  inaccuracyKib: number;
}

export interface SqHost {
  domains: SqDomain[];
  freeKib: number;
}

type Need = 'grow' | 'shrink' | null;

function need(d: SqDomain, targetKib = d.targetKib): Need {
  if (Math.abs(d.actualKib - targetKib) <= d.inaccuracyKib) return null;
  return targetKib > d.actualKib ? 'grow' : 'shrink';
}

function hasHitTarget(d: SqDomain, targetKib = d.targetKib): boolean {
  return need(d, targetKib) === null;
}

function minFreeable(d: SqDomain): number {
  return Math.max(0, d.actualKib - d.dynamicMinKib - 2 * d.inaccuracyKib);
}

function range(d: SqDomain): number {
  return Math.max(0, d.dynamicMaxKib - d.dynamicMinKib);
}

/** Proportional.compute_target_adjustments: the same gamma for every domain given. */
export function proportionalTargets(domains: SqDomain[], freeKib: number, hostTargetKib: number): Map<number, number> {
  const maximumFree = freeKib + domains.reduce((s, d) => s + minFreeable(d), 0);
  const surplus = Math.max(0, maximumFree - hostTargetKib);
  const totalRange = domains.reduce((s, d) => s + range(d), 0);
  const raw = surplus / totalRange;
  // squeezed's constrain: NaN (0/0) -> 0, +inf -> 1.
  const gamma = Number.isNaN(raw) ? 0 : Math.min(1, Math.max(0, raw));
  const out = new Map<number, number>();
  for (const d of domains) out.set(d.domid, d.dynamicMinKib + Math.trunc(gamma * range(d)));
  return out;
}

interface DomainProgress {
  lastActualKib: number;
  lastProgressMs: number;
  stuck: boolean;
}

/** Stuckness_monitor: a domain asked to move that has not moved toward its target for 5 s. */
class StucknessMonitor {
  readonly perDomain = new Map<number, DomainProgress>();

  update(domains: SqDomain[], nowMs: number): void {
    for (const d of domains) {
      const direction = need(d);
      let st = this.perDomain.get(d.domid);
      if (st === undefined) {
        st = { lastActualKib: d.actualKib, lastProgressMs: nowMs, stuck: false };
        this.perDomain.set(d.domid, st);
      }
      const delta = d.actualKib - st.lastActualKib;
      st.lastActualKib = d.actualKib;
      if ((delta > 0 && direction === 'grow') || (delta < 0 && direction === 'shrink')) {
        st.lastProgressMs = nowMs;
        st.stuck = false;
      }
      if (direction !== null && nowMs - st.lastProgressMs > SQUEEZED.stuckAfterMs) st.stuck = true;
    }
    const live = new Set(domains.map((d) => d.domid));
    for (const domid of [...this.perDomain.keys()]) if (!live.has(domid)) this.perDomain.delete(domid);
  }

  isActive(domid: number): boolean {
    const st = this.perDomain.get(domid);
    return st !== undefined && !st.stuck;
  }
}

/** State one squeezing operation carries between its iterations. */
class Squeezer {
  readonly stuckness = new StucknessMonitor();
  nonActive: number[] = [];
}

export type IterationResult =
  | { kind: 'success' }
  | { kind: 'failed'; stuckDomids: number[] }
  | { kind: 'adjust'; targets: Array<{ domid: number; targetKib: number }> };

export interface Iteration {
  declaredInactive: number[];
  declaredActive: number[];
  result: IterationResult;
}

/** Squeezer.one_iteration. */
function oneIteration(
  sq: Squeezer,
  host: SqHost,
  hostTargetKib: number,
  success: (freeKib: number) => boolean,
  nowMs: number,
): Iteration {
  sq.stuckness.update(host.domains, nowMs);
  const active = host.domains.filter((d) => d.canBalloon && sq.stuckness.isActive(d.domid));
  const activeIds = new Set(active.map((d) => d.domid));
  const nonActive = host.domains.filter((d) => !activeIds.has(d.domid)).map((d) => d.domid);
  const wasNonActive = new Set(sq.nonActive);
  const isNonActive = new Set(nonActive);
  const declaredInactive = nonActive.filter((id) => !wasNonActive.has(id));
  const declaredActive = sq.nonActive.filter((id) => !isNonActive.has(id));
  sq.nonActive = nonActive;

  const targets = proportionalTargets(active, host.freeKib, hostTargetKib);
  const proposals = active.map((d) => ({ d, targetKib: targets.get(d.domid) ?? d.targetKib }));
  const freeing = proposals.filter((p) => !hasHitTarget(p.d, p.targetKib) && p.targetKib < p.d.actualKib);
  const freeingSet = new Set(freeing);
  const allocating = proposals.filter((p) => !freeingSet.has(p));
  const phase = freeing.length === 0 ? allocating : freeing;

  const allTargetsReached = active.every((d) => hasHitTarget(d));
  const noTargetChanges = phase.every((p) => p.targetKib === p.d.targetKib);
  let result: IterationResult;
  if (!allTargetsReached || !noTargetChanges) {
    result = { kind: 'adjust', targets: phase.map((p) => ({ domid: p.d.domid, targetKib: p.targetKib })) };
  } else if (success(host.freeKib)) {
    result = { kind: 'success' };
  } else {
    const stuck = host.domains.filter((d) => isNonActive.has(d.domid) && d.canBalloon).map((d) => d.domid);
    result = { kind: 'failed', stuckDomids: stuck };
  }
  return { declaredInactive, declaredActive, result };
}

export interface SqueezedOptions {
  /** dynamic-min/max for a guest from its memory=/maxmem=. */
  dynamicRange?: (cfg: GuestConfig) => { minKib: number; maxKib: number };
}

export function defaultDynamicRange(cfg: GuestConfig): { minKib: number; maxKib: number } {
  const maxKib = cfg.maxmemKib;
  const minKib = Math.min(maxKib, Math.max(cfg.memoryKib, Math.ceil(maxKib / 4)));
  return { minKib, maxKib };
}

interface Reservation {
  req: LaunchRequest;
  kib: number;
  state: 'queued' | 'reserving' | 'held' | 'failed';
  reason: string;
}

interface Operation {
  kind: 'reserve' | 'balance';
  reservationId: string | null;
  requiredKib: number;
  success: (freeKib: number) => boolean;
  squeezer: Squeezer;
  started: boolean;
}

/** What we last wrote or observed, so writes of unchanged values are skipped (write_noexn). */
interface Written {
  targetKib: number | null;
  maxmemKib: number;
}

export class SqueezedPeer implements Controller {
  readonly name = 'squeezed' as const;
  readonly intervalMs = SQUEEZED.iterationMs;
  private readonly dynamicRange: (cfg: GuestConfig) => { minKib: number; maxKib: number };
  private readonly book = new GuestBook();
  private readonly reservations = new Map<string, Reservation>();
  private readonly queue: string[] = [];
  private reservationSeq = 0;
  private op: Operation | null = null;
  private nextCheckMs: number | null = null;
  private balanceRequested = false;
  private knownDomids = new Set<number>();
  private readonly lastCooperativeMs = new Map<number, number>();
  private readonly uncooperative = new Map<number, boolean>();

  constructor(opts: SqueezedOptions = {}) {
    this.dynamicRange = opts.dynamicRange ?? defaultDynamicRange;
  }

  step(obs: Observation, nowMs: number): Action[] {
    const actions: Action[] = [];
    const live = runningGuests(obs);
    this.forgetGone(live);
    if (this.nextCheckMs === null) this.nextCheckMs = nowMs + SQUEEZED.balanceCheckIntervalMs;

    if (this.op === null) this.op = this.nextOperation();
    const checkDue = this.op === null && nowMs >= this.nextCheckMs;
    if (this.op === null && !checkDue) return actions;

    // make_host: squeezed will not look at the host while pages are still being scrubbed.
    if (obs.host.scrubKib >= SQUEEZED.scrubWaitKib) return actions;
    const written = new Map<number, Written>();
    for (const d of live) written.set(d.domid, { targetKib: d.targetKib, maxmemKib: d.maxmemKib });
    const host = this.makeHost(obs, live);
    this.updateCooperative(host, nowMs, actions);
    for (const d of host.domains) {
      // "It's always safe to decrease a domain's maxmem towards target."
      if (d.targetKib < d.maxmemKib) this.setMaxmem(d, d.targetKib, written, actions);
    }

    if (checkDue) {
      this.nextCheckMs = nowMs + SQUEEZED.balanceCheckIntervalMs;
      if (!this.isUnbalanced(host, nowMs)) return actions;
      this.op = this.balanceOperation();
    }
    const op = this.op;
    if (op !== null) this.iterate(op, host, nowMs, written, actions);
    return actions;
  }

  requestLaunch(req: LaunchRequest, _obs: Observation, _nowMs: number): string {
    this.reservationSeq += 1;
    const id = `squeezed-${this.reservationSeq}`;
    this.reservations.set(id, { req, kib: req.memoryKib, state: 'queued', reason: '' });
    this.queue.push(id);
    return id;
  }

  launchStatus(id: string, _obs: Observation, _nowMs: number): LaunchStatus {
    const r = this.reservations.get(id);
    if (r === undefined) return { state: 'fail', reason: `unknown reservation ${id}` };
    if (r.state === 'held') return { state: 'go' };
    if (r.state === 'failed') return { state: 'fail', reason: r.reason };
    return { state: 'wait' };
  }

  /** transfer_reservation_to_domain, then xenopsd deletes the reservation once the VM is built. */
  launched(id: string, domid: number | null, _nowMs: number): void {
    const r = this.reservations.get(id);
    if (r === undefined) return;
    if (domid !== null) this.book.record(domid, r.req);
    this.reservations.delete(id);
    const q = this.queue.indexOf(id);
    if (q >= 0) this.queue.splice(q, 1);
    if (this.op?.reservationId === id) this.op = null;
  }

  /** For tests and explanations: what squeezed believes right now. */
  inspect(): { operation: 'reserve' | 'balance' | null; stuck: number[]; uncooperative: number[]; heldKib: number } {
    const stuck: number[] = [];
    if (this.op !== null) for (const [domid, st] of this.op.squeezer.stuckness.perDomain) if (st.stuck) stuck.push(domid);
    const uncooperative = [...this.uncooperative].filter(([, on]) => on).map(([domid]) => domid);
    return { operation: this.op?.kind ?? null, stuck, uncooperative, heldKib: this.heldKib(null) };
  }

  private nextOperation(): Operation | null {
    const head = this.queue[0];
    if (head !== undefined) {
      const r = this.reservations.get(head);
      if (r !== undefined) {
        r.state = 'reserving';
        const requiredKib = r.kib + SQUEEZED.targetHostFreeKib;
        return {
          kind: 'reserve',
          reservationId: head,
          requiredKib,
          success: (free) => free >= requiredKib,
          squeezer: new Squeezer(),
          started: false,
        };
      }
      this.queue.shift();
    }
    if (this.balanceRequested) {
      this.balanceRequested = false;
      return this.balanceOperation();
    }
    return null;
  }

  private balanceOperation(): Operation {
    return {
      kind: 'balance',
      reservationId: null,
      requiredKib: SQUEEZED.targetHostFreeKib,
      success: isBalanced,
      squeezer: new Squeezer(),
      started: false,
    };
  }

  private iterate(op: Operation, host: SqHost, nowMs: number, written: Map<number, Written>, actions: Action[]): void {
    if (!op.started) {
      op.started = true;
      // change_host_free_memory's shortcut: enough free and every target already reached.
      const allReached = host.domains.filter((d) => d.canBalloon).every((d) => hasHitTarget(d));
      if (op.requiredKib !== SQUEEZED.targetHostFreeKib && op.requiredKib <= host.freeKib && allReached) {
        this.finish(op, { kind: 'success' }, host, nowMs);
        return;
      }
    }
    const it = oneIteration(op.squeezer, host, op.requiredKib, op.success, nowMs);
    const newTargets = new Map<number, number>();
    if (it.result.kind === 'adjust') for (const t of it.result.targets) newTargets.set(t.domid, t.targetKib);
    // squeezed sets every domain's maxmem (through execute_action, which also writes the target).
    const declaredInactive = new Set(it.declaredInactive);
    for (const d of host.domains) {
      let value: number;
      if (declaredInactive.has(d.domid)) {
        const ideal = Math.min(d.targetKib, d.actualKib);
        value = Math.min(d.dynamicMaxKib, Math.max(d.dynamicMinKib, ideal));
      } else {
        value = newTargets.get(d.domid) ?? d.targetKib;
      }
      this.execute(d, value, written, actions);
    }
    if (it.result.kind !== 'adjust') this.finish(op, it.result, host, nowMs);
  }

  private finish(op: Operation, result: IterationResult, host: SqHost, nowMs: number): void {
    this.op = null;
    if (op.kind === 'balance') {
      this.nextCheckMs = nowMs + SQUEEZED.balanceCheckIntervalMs;
      return;
    }
    if (op.reservationId !== null && this.queue[0] === op.reservationId) this.queue.shift();
    const r = op.reservationId === null ? undefined : this.reservations.get(op.reservationId);
    if (r === undefined) return;
    if (result.kind === 'success') {
      r.state = 'held';
    } else if (result.kind === 'failed') {
      r.state = 'failed';
      const usable = host.freeKib - SQUEEZED.targetHostFreeKib;
      r.reason =
        result.stuckDomids.length > 0
          ? `Domains_refused_to_cooperate [${result.stuckDomids.join(', ')}]`
          : `Cannot_free_this_much_memory (needed ${r.kib} KiB, free ${usable} KiB)`;
    }
  }

  /** Squeeze.is_host_memory_unbalanced: one iteration with a fresh squeezer. */
  private isUnbalanced(host: SqHost, nowMs: number): boolean {
    const it = oneIteration(new Squeezer(), host, SQUEEZED.targetHostFreeKib, isBalanced, nowMs);
    if (it.result.kind !== 'adjust') return false;
    const byId = new Map(host.domains.map((d) => [d.domid, d]));
    return it.result.targets.some((t) => t.targetKib !== byId.get(t.domid)?.targetKib);
  }

  private makeHost(obs: Observation, live: DomainObservation[]): SqHost {
    // A domain still being built for a reservation has not booted (no feature-balloon yet):
    // squeezed leaves it alone; its pages already count as used.
    const building = new Set<string>();
    for (const r of this.reservations.values()) if (r.state === 'held') building.add(r.req.name);
    const domains = live.filter((d) => !building.has(d.name)).map((d) => this.sqDomain(d));
    const freeKib = obs.host.freeKib + obs.host.scrubKib - obs.host.outstandingKib - this.heldKib(obs);
    return { domains, freeKib };
  }

  private sqDomain(d: DomainObservation): SqDomain {
    const { minKib, maxKib } = this.dynamicRange(this.book.configOf(d));
    return {
      domid: d.domid,
      canBalloon: true,
      dynamicMinKib: minKib,
      dynamicMaxKib: maxKib,
      targetKib: d.targetKib ?? d.currentKib,
      actualKib: d.currentKib,
      maxmemKib: Math.max(0, d.maxmemKib - maxmemOffset(d)),
      maxmemOffsetKib: maxmemOffset(d),
      inaccuracyKib: SQUEEZED.inaccuracyKib,
    };
  }

  /** update_cooperative_table + update_cooperative_flags. */
  private updateCooperative(host: SqHost, nowMs: number, actions: Action[]): void {
    for (const d of host.domains) {
      if (!this.lastCooperativeMs.has(d.domid)) this.lastCooperativeMs.set(d.domid, nowMs);
      if (!d.canBalloon || hasHitTarget(d)) this.lastCooperativeMs.set(d.domid, nowMs);
    }
    for (const d of host.domains) {
      const last = this.lastCooperativeMs.get(d.domid) ?? nowMs;
      const on = nowMs - last > SQUEEZED.uncooperativeAfterMs;
      if ((this.uncooperative.get(d.domid) ?? false) !== on) {
        this.uncooperative.set(d.domid, on);
        actions.push({ kind: 'flag', domid: d.domid, flag: 'uncooperative', on });
      }
    }
  }

  /** execute_action: maxmem before a raise, after a cut; no target without feature-balloon. */
  private execute(d: SqDomain, targetKib: number, written: Map<number, Written>, actions: Action[]): void {
    if (targetKib < 0) return;
    if (targetKib > d.maxmemKib) {
      this.setMaxmem(d, targetKib, written, actions);
      if (d.canBalloon) this.setTarget(d, targetKib, written, actions);
    } else {
      if (d.canBalloon) this.setTarget(d, targetKib, written, actions);
      this.setMaxmem(d, targetKib, written, actions);
    }
  }

  private setTarget(d: SqDomain, kib: number, written: Map<number, Written>, actions: Action[]): void {
    const w = written.get(d.domid);
    if (w === undefined || w.targetKib === kib) return;
    w.targetKib = kib;
    actions.push({ kind: 'setTarget', domid: d.domid, kib });
  }

  private setMaxmem(d: SqDomain, targetKib: number, written: Map<number, Written>, actions: Action[]): void {
    const w = written.get(d.domid);
    const kib = targetKib + d.maxmemOffsetKib;
    if (w === undefined || w.maxmemKib === kib) return;
    w.maxmemKib = kib;
    d.maxmemKib = targetKib;
    actions.push({ kind: 'setMaxmem', domid: d.domid, kib });
  }

  /**
   * Reservations not yet transferred. xenopsd hands a reservation to the domain as soon as it
   * exists; from then on squeezed counts only what the domain has not populated yet, which the
   * simulated host shows as the domain's outstanding claim.
   */
  private heldKib(obs: Observation | null): number {
    const existing = obs === null ? new Set<string>() : domainNames(obs);
    let sum = 0;
    for (const r of this.reservations.values()) if (r.state === 'held' && !existing.has(r.req.name)) sum += r.kib;
    return sum;
  }

  private forgetGone(live: DomainObservation[]): void {
    const ids = new Set(live.map((d) => d.domid));
    for (const domid of this.knownDomids) if (!ids.has(domid)) this.balanceRequested = true;
    this.knownDomids = ids;
    this.book.retain(ids);
    for (const m of [this.lastCooperativeMs, this.uncooperative]) {
      for (const domid of [...m.keys()]) if (!ids.has(domid)) m.delete(domid);
    }
  }
}

function maxmemOffset(d: DomainObservation): number {
  return d.hvm ? SQUEEZED.hvmMaxmemOffsetKib : 0;
}

function isBalanced(freeKib: number): boolean {
  return freeKib - SQUEEZED.targetHostFreeKib < SQUEEZED.freeMemoryToleranceKib;
}
