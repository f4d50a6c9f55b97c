/**
 * The daemon's main loop: observe -> decide -> act, every interval and at once on urgent events,
 * forever. Nothing that goes wrong in a step stops the loop: every failure is caught, counted,
 * logged once per distinct cause, and the next step runs on time (qmemman silently stopped
 * balancing after one exception: QubesOS #4890). A watchdog notices when steps stop completing.
 */
import { performance } from 'node:perf_hooks';
import type { Action, Observation } from '../core/types.js';
import { formatKib } from '../policy/units.js';
import type { Hypervisor } from '../xen/hypervisor.js';
import { Actuator } from './actuator.js';
import {
  PROTOCOL_VERSION,
  type DomainStatus, type Explain, type Request, type Response, type Status,
} from './control-protocol.js';
import { errorResponse } from './control-server.js';
import { snapshotFromObservation } from './host-snapshot.js';
import { EventLog } from './log-events.js';
import { DEFAULT_MAX_BACKOFF_MS, describeFault, DomainFaults } from './domain-faults.js';
import { ConditionLog, type Logger } from './log.js';
import type { DaemonMetrics } from './metrics.js';
import { Observer, type DomainRecord } from './observer.js';
import { pinActions, PinBook, type Pin } from './pins.js';
import type { DaemonStore, Decision, Decider, DomainVerdict, ReportIntake, ReservationVerdict } from './ports.js';
import {
  DEFAULT_RELEASE_WAIT_MS, DEFAULT_RESERVATION_TTL_MS, DEFAULT_RESERVE_TIMEOUT_MS, ReservationBook, type ReservationEvent,
} from './reservations.js';
import { StepScheduler } from './scheduler.js';
import type { Notifier } from './sd-notify.js';
import type { DaemonState, StateFile } from './state-file.js';
import { XenstoreProbe } from './xenstore-probe.js';
import { statusLine } from './status-line.js';

/** Steps that have not completed for this many intervals raise the watchdog alarm. */
export const STALL_INTERVALS = 5;
/** A domain without a report yet this long after it appeared is still settling (a reservation waits for it). */
export const SETTLE_MS = 60_000;
/** A new domain's target writes before it first reports, within this long, are the toolstack's. */
export const BUILD_GRACE_MS = 30_000;

export interface PolicyReload {
  /** Loads and validates the policy files again; throws with `file:line:col: message` when invalid. */
  load(): Promise<{ files: string[]; apply: () => void; intervalMs: number }>;
}

export interface DaemonOptions {
  store: DaemonStore;
  hypervisor: Hypervisor;
  reports: ReportIntake;
  decider: Decider;
  policyFiles: string[];
  reload?: PolicyReload;
  provision?: (domid: number) => Promise<void>;
  log: Logger;
  metrics: DaemonMetrics | null;
  notifier: Notifier | null;
  dryRun: boolean;
  now?: () => number;
  /** A step running longer than this is abandoned (default: max(10 s, 5 intervals)). */
  stepTimeoutMs?: number;
  /** Where held reservations and pins are kept across restarts; null: in memory only (tests). */
  state?: StateFile | null;
  /** A xenstore call unanswered this long marks xenstore `unresponsive` (default: max(5 s, 2 intervals)). */
  xenstoreDeadlineMs?: number;
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

export class Daemon {
  readonly observer: Observer;
  readonly actuator: Actuator;
  readonly reservations = new ReservationBook();
  readonly faults: DomainFaults;
  readonly pins = new PinBook();
  private readonly probe: XenstoreProbe;
  /** Pins from the state file, applied at the first step (they need the domains' names). */
  private pinsToRestore: Pin[] | null = null;
  private savedChanges = -1;
  private savedPins = '';
  private budgetWarned = false;
  /** When the first refresh completed: the domains seen by then were there before us. */
  private firstRefreshAtMs: number | null = null;
  private readonly scheduler: StepScheduler;
  private readonly conditions: ConditionLog;
  private readonly events: EventLog;
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly startedAtMs: number;
  private policyFiles: string[];
  private policyLoadedAtMs: number;
  private gen = 0;
  private steps = 0;
  private stepFailures = 0;
  private lastStepAtMs: number | null = null;
  private lastStepDurationMs: number | null = null;
  private lastError: string | null = null;
  private stalled = false;
  /** The last STATUS= sent to systemd: resent only when it changes. */
  private sentStatus = '';
  private lastStepFailed = false;
  private lastObs: Observation | null = null;
  private lastDecision: Decision | null = null;
  private watchdogTimer: NodeJS.Timeout | null = null;
  private sdWatchdogTimer: NodeJS.Timeout | null = null;
  private stopping = false;
  private readonly firstStep: Promise<void>;
  private firstStepDone!: () => void;

  constructor(private readonly o: DaemonOptions) {
    this.log = o.log;
    this.now = o.now ?? Date.now;
    this.startedAtMs = this.now();
    this.policyFiles = o.policyFiles;
    this.policyLoadedAtMs = this.startedAtMs;
    this.conditions = new ConditionLog(o.log);
    this.events = new EventLog(o.log);
    this.firstStep = new Promise((resolve) => (this.firstStepDone = resolve));
    const intervalMs = o.decider.intervalMs;
    this.scheduler = new StepScheduler({
      intervalMs,
      step: (reasons) => this.step(reasons),
      onError: (err) => this.log.error({ err }, 'unexpected error around a step (the loop continues)'),
      now: this.now,
    });
    this.observer = new Observer({
      store: o.store, hypervisor: o.hypervisor, reports: o.reports, log: o.log, conditions: this.conditions,
      now: this.now, minGapMs: this.scheduler.minGapMs, provision: o.provision, metrics: o.metrics,
      onUrgent: (source, reason, trusted) => {
        if (this.scheduler.urgent(source, reason, trusted)) this.log.debug({ source, reason }, 'urgent step');
      },
      onGone: (domid) => {
        this.scheduler.forget(`dom:${domid}`);
        this.actuator.forget(domid);
        this.pins.forget(domid);
      },
    });
    this.faults = new DomainFaults({ baseMs: intervalMs, maxMs: DEFAULT_MAX_BACKOFF_MS });
    this.actuator = new Actuator({
      store: o.store, hypervisor: o.hypervisor, domains: this.observer.domains, log: o.log,
      conditions: this.conditions, metrics: o.metrics, dryRun: o.dryRun, faults: this.faults, now: this.now,
      onTargetWrite: (domid, delta) => this.observer.noteOwnTargetWrite(domid, delta),
      isOwnTarget: (domid, kib) => this.pins.isOwn(domid, kib),
      onOwnTarget: (domid, kib) => this.pins.noteOwn(domid, kib),
    });
    this.probe = new XenstoreProbe({
      read: () => o.store.read('/local/domain/0/name'),
      deadlineMs: () => o.xenstoreDeadlineMs ?? Math.max(5_000, 2 * this.scheduler.interval),
      now: this.now,
      onChange: (unresponsive, waitedMs) => {
        if (unresponsive) this.conditions.raise('xenstore-unresponsive', 'error', `xenstored has not answered a read for ${Math.round(waitedMs / 1000)} s: it is hung or overloaded; guests' reports and targets are not moving`);
        else this.conditions.clear('xenstore-unresponsive', 'xenstored answers again');
      },
    });
    o.store.subscribe((ev) => {
      if (ev.kind === 'disconnected') {
        this.conditions.raise('xenstore', 'error', `lost the connection to xenstored: ${ev.error}; reconnecting`);
      } else if (ev.kind === 'reconnected') {
        o.metrics?.reconnects.inc();
        this.conditions.clear('xenstore', 'xenstore connection re-established; watches registered again');
      }
    });
  }

  /**
   * Starts watching and stepping; resolves after the first step has been attempted (so the
   * caller can report readiness with the host already observed and current targets adopted).
   */
  async start(): Promise<void> {
    this.restoreState();
    await this.observer.start();
    this.scheduler.start();
    this.watchdogTimer = setInterval(() => this.checkWatchdog(), this.scheduler.interval);
    this.watchdogTimer.unref();
    const sd = this.o.notifier?.watchdogIntervalMs;
    if (sd) {
      this.sdWatchdogTimer = setInterval(() => {
        if (!this.stalled) this.o.notifier?.watchdog();
      }, sd);
      this.sdWatchdogTimer.unref();
    }
    await this.firstStep;
  }

  get intervalMs(): number {
    return this.scheduler.interval;
  }

  private stepTimeoutMs(): number {
    return this.o.stepTimeoutMs ?? Math.max(10_000, this.scheduler.interval * STALL_INTERVALS);
  }

  /** Held reservations now (they need no domain); pins at the first step, once names are read. */
  private restoreState(): void {
    const saved = this.o.state?.load((why) => this.log.warn(why));
    if (!saved) return;
    this.reservations.noteSeq(saved.seq);
    const kept = this.reservations.restore(saved.reservations, this.now());
    if (kept.length) this.log.info({ reservations: kept }, `restored ${kept.length} reservation(s) from ${this.o.state?.file}: ${kept.join(', ')}`);
    this.pinsToRestore = saved.pins;
    this.savedChanges = this.reservations.changes;
  }

  /** Saves reservations and pins when they changed (coalesced; a failure is logged, not fatal). */
  private saveState(): void {
    const st = this.o.state;
    if (!st || this.pinsToRestore !== null) return;
    const pins = this.pins.list();
    const pinsKey = JSON.stringify(pins);
    if (this.reservations.changes === this.savedChanges && pinsKey === this.savedPins) return;
    this.savedChanges = this.reservations.changes;
    this.savedPins = pinsKey;
    const state: DaemonState = { seq: this.reservations.lastSeq, reservations: this.reservations.persisted(), pins };
    st.save(state).then(
      () => this.conditions.clear('state', `state saved again to ${st.file}`),
      (err: unknown) => {
        // Saved again at the next change; until then a restart would lose what changed.
        this.savedChanges = -1;
        this.conditions.raise('state', 'error', `cannot save reservations and pins to ${st.file}: ${(err as Error).message}`);
      },
    );
  }

  private async step(reasons: readonly string[]): Promise<void> {
    const gen = ++this.gen;
    const t0 = performance.now();
    this.logReservationEvents(this.reservations.expire(this.now()));
    this.probe.check();
    try {
      await withTimeout(this.runStep(gen, reasons), this.stepTimeoutMs(), 'the control step');
      this.steps++;
      this.lastStepAtMs = this.now();
      this.lastStepDurationMs = performance.now() - t0;
      this.o.metrics?.steps.inc();
      this.o.metrics?.stepDuration.observe(this.lastStepDurationMs / 1000);
      this.o.metrics?.lastStep.set(this.lastStepAtMs / 1000);
      this.conditions.clear('step', 'control steps succeed again');
      this.lastStepFailed = false;
    } catch (err) {
      // Abandon whatever the failed step was still doing: it may not write any more.
      if (this.gen === gen) this.gen++;
      this.stepFailures++;
      this.lastError = (err as Error).message ?? String(err);
      this.o.metrics?.stepFailures.inc();
      this.conditions.raise('step', 'error', `control step failed (the loop continues): ${this.lastError}`, { err });
      this.lastStepFailed = true;
    } finally {
      this.saveState();
      this.firstStepDone();
      this.notifyStatus();
    }
  }

  /** Operators' targets: restored pins, and any target written by someone else since the last step. */
  private takePins(now: number): void {
    if (this.pinsToRestore !== null) {
      const kept = this.pins.restore(this.pinsToRestore, (domid) => {
        const rec = this.observer.domains.get(domid);
        return rec ? rec.name : undefined;
      });
      this.pinsToRestore = null;
      if (kept.length) this.log.info({ pins: kept.map((p) => p.domid) }, `restored ${kept.length} pin(s): ${kept.map((p) => `${p.name ?? p.domid} at ${formatKib(p.targetKib)}`).join(', ')}`);
    }
    for (const rec of this.observer.domains.values()) {
      const before = this.pins.get(rec.domid)?.targetKib;
      const pin = this.pins.observe(rec.domid, rec.name, rec.targetKib, now, this.isBuilding(rec, now));
      if (!pin || pin.targetKib === before) continue;
      this.log.warn({ domid: rec.domid, name: rec.name, targetKib: pin.targetKib },
        `domain ${rec.domid}${rec.name ? ` (${rec.name})` : ''}: its target was set to ${formatKib(pin.targetKib)} by someone else (xl mem-set?); ` +
        `pinned there until \`xenballoonctl unpin ${rec.name ?? rec.domid}\``);
    }
  }

  /** New since we started, and not reporting yet: the toolstack may still be writing its target. */
  private isBuilding(rec: DomainRecord, now: number): boolean {
    return rec.firstSeenMs > (this.firstRefreshAtMs ?? Infinity) && now - rec.firstSeenMs < BUILD_GRACE_MS &&
      this.o.reports.latest(rec.domid, now) === null;
  }

  /** Pinned domains: the core leaves them alone; we hold their target and let maxmem allow it. */
  private withPins(obs: Observation, actions: readonly Action[]): { obs: Observation; actions: Action[] } {
    if (this.pins.size === 0) return { obs, actions: [...actions] };
    const pinned: Action[] = [];
    const domains = obs.domains.map((d) => {
      const pin = this.pins.get(d.domid);
      if (!pin) return d;
      pinned.push(...pinActions(pin, d));
      return { ...d, pinned: true };
    });
    return { obs: { ...obs, domains }, actions: [...pinned, ...actions.filter((a) => !this.pins.get(a.domid))] };
  }

  /**
   * An `impossible` verdict is final only when every domain has settled: a domain that has not
   * reported yet is counted at its whole target, and a bound reservation is still being taken
   * up. Until then the request waits (within its timeout) and says why.
   */
  private unlessSettling(verdicts: ReadonlyMap<string, ReservationVerdict>, now: number): ReadonlyMap<string, ReservationVerdict> {
    // Only domains created while we run: one found at start without a report may never report.
    const unsettled = [...this.observer.domains.values()].find((r) =>
      r.domid !== 0 && !r.info.dying && r.firstSeenMs > (this.firstRefreshAtMs ?? Infinity) && now - r.firstSeenMs < SETTLE_MS &&
      this.o.reports.latest(r.domid, now) === null);
    if (!unsettled) return verdicts;
    const out = new Map(verdicts);
    for (const [id, v] of verdicts) {
      if (v.state !== 'impossible') continue;
      out.set(id, { state: 'pending', reason: `${v.reason ?? 'not enough memory'} (waiting: domain ${unsettled.domid} has not reported yet)` });
    }
    return out;
  }

  /** A host reserve that leaves managed domains nothing: said once, with what to change. */
  private checkBudget(d: Decision): void {
    const h = d.host;
    if (!h) return;
    if (h.budgetKib < 0 && !this.budgetWarned) {
      this.budgetWarned = true;
      this.log.error({ budgetKib: h.budgetKib, reserveKib: h.reserveKib },
        `the policy's host.reserve (${formatKib(h.reserveKib)}) leaves managed domains nothing (budget ${formatKib(h.budgetKib)}; free ${formatKib(h.freeKib)}, ` +
        `managed domains hold ${formatKib(h.managedKib)}): every guest is held at its minimum; lower host.reserve in the policy and reload`);
    } else if (h.budgetKib >= 0 && this.budgetWarned) {
      this.budgetWarned = false;
      this.log.info('the host budget for managed domains is positive again');
    }
  }

  /** Tells systemd what the daemon is doing (STATUS=), only when that changed. */
  private notifyStatus(): void {
    if (!this.o.notifier?.active) return;
    let managed = 0;
    for (const v of this.lastDecision?.domains.values() ?? []) if (v.managed) managed++;
    const line = statusLine({
      domains: this.observer.domains.size, managed, dryRun: this.o.dryRun === true,
      failing: this.lastStepFailed ? (this.lastError ?? 'unknown error') : null, stalled: this.stalled,
    });
    if (line === this.sentStatus) return;
    this.sentStatus = line;
    this.o.notifier.status(line);
  }

  private async runStep(gen: number, reasons: readonly string[]): Promise<void> {
    await this.observer.refresh();
    if (gen !== this.gen) return;
    const now = this.now();
    this.firstRefreshAtMs ??= now;
    const events: ReservationEvent[] = [];
    if (!this.reservations.isEmpty) {
      const currents = new Map<number, { currentKib: number; name: string | null }>();
      for (const [domid, rec] of this.observer.domains) currents.set(domid, { currentKib: rec.info.totKib, name: rec.name });
      events.push(...this.reservations.bind(currents));
    }
    this.takePins(now);
    const raw = this.observer.observation(this.reservations.observations());
    const pinnedObs = this.withPins(raw, []).obs;
    const decision = this.o.decider.decide(pinnedObs, now);
    const { obs, actions } = this.withPins(raw, decision.actions);
    this.checkBudget(decision);
    if (!this.reservations.isEmpty) {
      events.push(...this.reservations.afterDecision(this.unlessSettling(decision.reservations, now), this.observer.domains.keys(), now));
    }
    this.lastObs = obs;
    this.lastDecision = decision;
    if (decision.explanation) this.events.step(decision.explanation, now, reasons.some((r) => r !== 'interval'));
    this.logUntrusted(decision);
    this.logReservationEvents(events);
    if (actions.length) this.log.debug({ reasons, actions: actions.length }, 'applying actions');
    // A failing action fails its domain (error flag, backoff), not the step: the loop is deciding.
    await this.actuator.apply(actions, () => gen === this.gen);
  }

  /** A rejected report is logged once when its episode begins, once when it ends. */
  private untrustedNow = new Set<number>();
  private logUntrusted(decision: Decision): void {
    const now = new Set<number>();
    for (const u of decision.untrusted ?? []) {
      now.add(u.domid);
      // One message per episode (the reason's figures change with every report: fields only).
      this.conditions.raise(`report-untrusted:${u.domid}`, 'warn',
        `domain ${u.domid} (${u.name}): its report contradicts what the hypervisor knows; treated as no report`,
        { domid: u.domid, reason: u.reason, rejections: u.count });
    }
    for (const domid of this.untrustedNow) {
      if (!now.has(domid)) this.conditions.clear(`report-untrusted:${domid}`, `domain ${domid}: its reports pass the checks again`, { domid });
    }
    this.untrustedNow = now;
  }

  private logReservationEvents(events: readonly ReservationEvent[]): void {
    for (const e of events) {
      const level = e.kind === 'failed' || e.kind === 'expired' ? 'warn' : 'info';
      this.log[level]({ reservation: e.id, kib: e.kib, event: e.kind }, e.detail);
    }
  }

  private checkWatchdog(): void {
    const last = this.lastStepAtMs ?? this.startedAtMs;
    const late = this.now() - last > STALL_INTERVALS * this.scheduler.interval;
    if (late && !this.stalled) {
      this.stalled = true;
      this.o.metrics?.stalled.set(1);
      this.conditions.raise('stalled', 'error', `no control step has completed for ${STALL_INTERVALS} intervals; last error: ${this.lastError ?? 'none'}`);
      this.notifyStatus();
    } else if (!late && this.stalled) {
      this.stalled = false;
      this.o.metrics?.stalled.set(0);
      this.conditions.clear('stalled', 'control steps are completing again');
      this.notifyStatus();
    }
  }

  /** Sets the gauges from the current status; called when metrics are scraped, not every step. */
  updateMetrics(): void {
    const m = this.o.metrics;
    if (!m || !this.lastObs) return;
    const st = this.status();
    m.setHost({
      totalKib: st.host.total_kib, freeKib: st.host.free_kib, scrubKib: st.host.scrub_kib,
      outstandingKib: st.host.outstanding_kib, reservedKib: st.host.reserved_kib,
    });
    m.hostShort.set((this.lastDecision?.explanation?.host.shortKib ?? 0) * 1024);
    m.setDomains(st.domains.map((d) => ({
      domid: d.domid, name: d.name, currentKib: d.current_kib, targetKib: d.target_kib, needKib: d.need_kib,
      minKib: d.min_kib, maxKib: d.max_kib, maxmemKib: d.maxmem_kib, stuck: d.flags.includes('stuck'),
      uncooperative: d.flags.includes('uncooperative'), reportAgeS: d.report_age_ms === null ? null : d.report_age_ms / 1000,
      swapInKibS: d.swap_in_kib_s, pressureSomeAvg10: d.pressure_some_avg10,
    })));
    m.reservations.set({ state: 'pending' }, st.reservations.filter((r) => r.state === 'pending').length);
    m.reservations.set({ state: 'held' }, st.reservations.filter((r) => r.state === 'held').length);
  }

  private domainStatus(rec: DomainRecord, v: DomainVerdict | undefined, now: number): DomainStatus {
    const latest = this.o.reports.latest(rec.domid, now);
    // An unmanaged domain (dom0 by default) needs no report: report flags would only alarm.
    const managed = v?.managed ?? false;
    const flags = new Set<string>(managed ? [...(this.actuator.flags.get(rec.domid) ?? []), ...(v?.flags ?? [])] : []);
    if (managed) for (const f of this.o.reports.flags(rec.domid, now)) flags.add(f);
    for (const f of this.observer.flags(rec.domid)) flags.add(f);
    if (rec.info.dying) flags.add('dying');
    else if (rec.info.shutdown) flags.add('shutdown');
    const fault = this.faults.get(rec.domid);
    const pin = this.pins.get(rec.domid);
    if (fault) flags.add('error');
    if (pin) flags.add('pinned');
    const swapIn = v?.swapInKibS ?? rec.swapInKibS;
    return {
      domid: rec.domid,
      name: rec.name ?? `domain-${rec.domid}`,
      current_kib: rec.info.totKib,
      target_kib: rec.targetKib,
      need_kib: v?.needKib ?? null,
      min_kib: v?.minKib ?? null,
      max_kib: v?.maxKib ?? null,
      maxmem_kib: rec.info.maxKib,
      static_max_kib: rec.staticMaxKib,
      weight: v?.weight ?? null,
      swap_in_kib_s: swapIn === null ? null : Math.round(swapIn * 10) / 10,
      pressure_some_avg10: latest?.report.pressure?.someAvg10 ?? null,
      report_format: latest?.report.format ?? null,
      report_age_ms: latest ? Math.max(0, now - latest.atMs) : null,
      managed: v?.managed ?? false,
      flags: [...flags],
      error: fault ? {
        action: fault.action, kib: fault.kib, code: fault.code, message: fault.message, failures: fault.failures,
        since_ms: fault.sinceMs, retry_at_ms: fault.retryAtMs,
      } : null,
      pin: pin ? { target_kib: pin.targetKib, since_ms: pin.sinceMs, source: pin.source } : null,
      report_rejected: v?.reportRejected ?? null,
      report_rejections: v?.reportRejections ?? 0,
      fair_share_kib: v?.fairShareKib ?? null,
    };
  }

  status(): Status {
    const now = this.now();
    const h = this.observer.host;
    const verdicts = this.lastDecision?.domains;
    return {
      version: PROTOCOL_VERSION,
      time_ms: now,
      daemon: {
        pid: process.pid,
        started_at_ms: this.startedAtMs,
        dry_run: this.o.dryRun,
        interval_ms: this.scheduler.interval,
        hypervisor: this.o.hypervisor.version,
        xenstore_connected: this.o.store.connected,
        xenstore: !this.o.store.connected ? 'disconnected' : this.probe.unresponsive ? 'unresponsive' : 'connected',
        policy_files: this.policyFiles,
        policy_loaded_at_ms: this.policyLoadedAtMs,
        steps: this.steps,
        step_failures: this.stepFailures,
        last_step_at_ms: this.lastStepAtMs,
        last_step_duration_ms: this.lastStepDurationMs === null ? null : Math.round(this.lastStepDurationMs * 100) / 100,
        last_error: this.lastError,
        stalled: this.stalled,
        rss_kib: Math.round(process.memoryUsage.rss() / 1024),
        heap_used_kib: Math.round(process.memoryUsage().heapUsed / 1024),
      },
      host: {
        total_kib: h?.totalKib ?? 0,
        free_kib: h?.freeKib ?? 0,
        scrub_kib: h?.scrubKib ?? 0,
        outstanding_kib: h?.outstandingKib ?? 0,
        reserved_kib: this.reservations.reservedKib,
      },
      domains: [...this.observer.domains.values()]
        .sort((a, b) => a.domid - b.domid)
        .map((rec) => this.domainStatus(rec, verdicts?.get(rec.domid), now)),
      reservations: this.reservations.status(),
    };
  }

  explain(domain: string): Explain | null {
    const rec = this.findDomain(domain);
    if (!rec) return null;
    const v = this.lastDecision?.domains.get(rec.domid);
    const now = this.now();
    const ds = this.domainStatus(rec, v, now);
    const lines = [...this.observer.explainLines(rec.domid), ...(v ? v.lines() : ['no decision has been made for this domain yet'])];
    const fault = this.faults.get(rec.domid);
    const pin = this.pins.get(rec.domid);
    if (pin) lines.unshift(`pinned at ${formatKib(pin.targetKib)} (${pin.source === 'foreign-write' ? 'its target was written by someone else' : 'xenballoonctl pin'}); \`xenballoonctl unpin ${rec.name ?? rec.domid}\` hands it back`);
    if (fault) lines.unshift(`error: ${describeFault(fault, now)}`);
    return { domain: ds, lines, detail: v?.detail ?? null };
  }

  /** Re-reads the policy; an invalid one keeps the old and returns the error (file:line:col). */
  async reload(): Promise<{ ok: true; files: string[] } | { ok: false; error: string }> {
    if (!this.o.reload) return { ok: false, error: 'this daemon was started without policy files to reload' };
    this.o.notifier?.reloading();
    try {
      const next = await this.o.reload.load();
      next.apply();
      this.policyFiles = next.files;
      this.policyLoadedAtMs = this.now();
      if (next.intervalMs !== this.scheduler.interval) this.scheduler.setInterval(next.intervalMs);
      this.faults.setBaseMs(next.intervalMs);
      this.conditions.clear('policy', 'policy is valid again');
      this.log.info({ files: next.files }, 'policy reloaded');
      this.scheduler.urgent('reload', 'policy reloaded', true);
      return { ok: true, files: next.files };
    } catch (err) {
      const msg = (err as Error).message;
      this.log.error({ files: this.policyFiles }, `policy reload failed, keeping the previous policy: ${msg}`);
      return { ok: false, error: msg };
    } finally {
      this.o.notifier?.ready();
    }
  }

  async handleControl(req: Request, signal: AbortSignal): Promise<Response> {
    if (this.stopping) return errorResponse('shutting-down', 'xenballoond is shutting down');
    switch (req.op) {
      case 'ping':
        return { ok: true, version: PROTOCOL_VERSION, pid: process.pid };
      case 'status':
        return { ok: true, status: this.status() };
      case 'explain': {
        const e = this.explain(req.domain);
        return e ? { ok: true, explain: e } : errorResponse('not-found', `no domain named or numbered '${req.domain}'`);
      }
      case 'reserve': {
        const { id, outcome } = this.reservations.request(req.kib, {
          timeoutMs: req.timeout_ms ?? DEFAULT_RESERVE_TIMEOUT_MS,
          ttlMs: req.ttl_ms ?? DEFAULT_RESERVATION_TTL_MS,
          label: req.label ?? null,
          domain: req.domain ?? null,
          nowMs: this.now(),
          signal,
        });
        this.log.info({ reservation: id, kib: req.kib, label: req.label }, `reservation ${id} of ${formatKib(req.kib)} requested${req.label ? ` (${req.label})` : ''}`);
        this.scheduler.urgent(`reservation:${id}`, `reservation ${id}`, true);
        const o = await outcome;
        if (!o.ok) return errorResponse(o.code, o.error);
        // The ID is handed out only once the reservation is on disk: a crash right after keeps it.
        this.saveState();
        await this.o.state?.flush().catch(() => undefined);
        return { ok: true, reservation: { id: o.id, kib: o.kib, expires_at_ms: o.expiresAtMs } };
      }
      case 'release': {
        const o = await this.reservations.release(req.id, {
          afterDomain: req.after_domain ?? false,
          waitMs: req.timeout_ms ?? DEFAULT_RELEASE_WAIT_MS,
          nowMs: this.now(),
        });
        if (!o.ok) return errorResponse(o.code, o.error);
        this.log.info({ reservation: o.id, domid: o.domid }, `reservation ${o.id} released`);
        this.saveState();
        this.scheduler.urgent(`release:${o.id}`, `reservation ${o.id} released`, true);
        return { ok: true, id: o.id, domid: o.domid };
      }
      case 'reload': {
        const r = await this.reload();
        return r.ok ? { ok: true, policy_files: r.files } : errorResponse('invalid-policy', r.error);
      }
      case 'snapshot': {
        if (!this.lastObs) return errorResponse('not-found', 'no control step has completed yet; try again in a second');
        const snapshot = snapshotFromObservation(this.lastObs, this.now(), (domid) => this.observer.domains.get(domid)?.raw ?? null);
        return { ok: true, snapshot, policy: this.o.decider.policyYaml?.() ?? null, policy_files: this.policyFiles };
      }
      case 'pin':
      case 'unpin':
        return this.pinControl(req.op, req.domain, req.op === 'pin' ? req.kib : undefined);
    }
  }

  private findDomain(domain: string): DomainRecord | undefined {
    if (/^\d+$/.test(domain)) return this.observer.domains.get(Number(domain));
    return [...this.observer.domains.values()].find((r) => r.name === domain);
  }

  private pinControl(op: 'pin' | 'unpin', domain: string, kib: number | undefined): Response {
    const rec = this.findDomain(domain);
    if (!rec) return errorResponse('not-found', `no domain named or numbered '${domain}'`);
    const name = rec.name ?? `domain-${rec.domid}`;
    if (op === 'unpin') {
      const p = this.pins.unpin(rec.domid);
      if (!p) return errorResponse('not-found', `domain ${name} is not pinned`);
      this.log.info({ domid: rec.domid, name }, `domain ${rec.domid} (${name}) unpinned: xenballoond manages its target again`);
      this.afterPinChange(rec.domid);
      return { ok: true, domid: rec.domid, name, target_kib: p.targetKib };
    }
    const target = kib ?? rec.targetKib;
    if (target === null) return errorResponse('bad-request', `domain ${name} has no target yet (still being built); give a SIZE`);
    if (rec.staticMaxKib !== null && target > rec.staticMaxKib) {
      return errorResponse('bad-request', `${formatKib(target)} is above domain ${name}'s static-max ${formatKib(rec.staticMaxKib)}`);
    }
    this.pins.pin(rec.domid, rec.name, target, this.now(), 'xenballoonctl');
    this.log.info({ domid: rec.domid, name, targetKib: target }, `domain ${rec.domid} (${name}) pinned at ${formatKib(target)}`);
    this.afterPinChange(rec.domid);
    return { ok: true, domid: rec.domid, name, target_kib: target };
  }

  private afterPinChange(domid: number): void {
    this.saveState();
    this.scheduler.urgent(`pin:${domid}`, `pin of domain ${domid} changed`, true);
  }

  /** SIGTERM: no new step starts; the step in flight finishes its writes; waiting clients are told. */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    this.o.notifier?.stopping();
    if (this.watchdogTimer) clearInterval(this.watchdogTimer);
    if (this.sdWatchdogTimer) clearInterval(this.sdWatchdogTimer);
    await this.scheduler.stop();
    this.saveState();
    await this.o.state?.flush().catch(() => undefined);
    this.reservations.shutdown();
    await this.observer.stop();
  }
}
