/**
 * The daemon's main loop: observe -> decide -> act, every interval and at once on urgent events,
 * forever. Nothing that goes wrong in a step stops the loop: every failure is caught, counted,
 * logged once per distinct cause, and the next step runs on time (qmemman silently stopped
 * balancing after one exception: QubesOS #4890). A watchdog notices when steps stop completing.
 */
import { performance } from 'node:perf_hooks';
import type { Observation } from '../core/types.js';
import type { Hypervisor } from '../xen/hypervisor.js';
import { Actuator } from './actuator.js';
import {
  PROTOCOL_VERSION,
  type DomainStatus, type Explain, type Request, type Response, type Status,
} from './control-protocol.js';
import { errorResponse } from './control-server.js';
import { ConditionLog, type Logger } from './log.js';
import type { DaemonMetrics } from './metrics.js';
import { Observer, type DomainRecord } from './observer.js';
import type { DaemonStore, Decision, Decider, DomainVerdict, ReportIntake } from './ports.js';
import {
  DEFAULT_RELEASE_WAIT_MS, DEFAULT_RESERVATION_TTL_MS, DEFAULT_RESERVE_TIMEOUT_MS, ReservationBook, type ReservationEvent,
} from './reservations.js';
import { StepScheduler } from './scheduler.js';
import type { Notifier } from './sd-notify.js';

/** Steps that have not completed for this many intervals raise the watchdog alarm. */
export const STALL_INTERVALS = 5;

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
  private readonly scheduler: StepScheduler;
  private readonly conditions: ConditionLog;
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
      now: this.now, minGapMs: this.scheduler.minGapMs, provision: o.provision,
      onUrgent: (source, reason, trusted) => {
        if (this.scheduler.urgent(source, reason, trusted)) this.log.debug({ source, reason }, 'urgent step');
      },
      onGone: (domid) => {
        this.scheduler.forget(`dom:${domid}`);
        this.actuator.forget(domid);
      },
    });
    this.actuator = new Actuator({
      store: o.store, hypervisor: o.hypervisor, domains: this.observer.domains, log: o.log,
      conditions: this.conditions, metrics: o.metrics, dryRun: o.dryRun,
      onTargetWrite: (domid, delta) => this.observer.noteOwnTargetWrite(domid, delta),
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

  private async step(reasons: readonly string[]): Promise<void> {
    const gen = ++this.gen;
    const t0 = performance.now();
    this.logReservationEvents(this.reservations.expire(this.now()));
    try {
      await withTimeout(this.runStep(gen, reasons), this.stepTimeoutMs(), 'the control step');
      this.steps++;
      this.lastStepAtMs = this.now();
      this.lastStepDurationMs = performance.now() - t0;
      this.o.metrics?.steps.inc();
      this.o.metrics?.stepDuration.observe(this.lastStepDurationMs / 1000);
      this.o.metrics?.lastStep.set(this.lastStepAtMs / 1000);
      this.conditions.clear('step', 'control steps succeed again');
    } catch (err) {
      // Abandon whatever the failed step was still doing: it may not write any more.
      if (this.gen === gen) this.gen++;
      this.stepFailures++;
      this.lastError = (err as Error).message ?? String(err);
      this.o.metrics?.stepFailures.inc();
      this.conditions.raise('step', 'error', `control step failed (the loop continues): ${this.lastError}`, { err });
    } finally {
      this.firstStepDone();
    }
  }

  private async runStep(gen: number, reasons: readonly string[]): Promise<void> {
    await this.observer.refresh();
    if (gen !== this.gen) return;
    const now = this.now();
    const events: ReservationEvent[] = [];
    if (!this.reservations.isEmpty) {
      const currents = new Map<number, { currentKib: number }>();
      for (const [domid, rec] of this.observer.domains) currents.set(domid, { currentKib: rec.info.totKib });
      events.push(...this.reservations.bind(currents));
    }
    const obs = this.observer.observation(this.reservations.observations());
    const decision = this.o.decider.decide(obs, now);
    if (!this.reservations.isEmpty) events.push(...this.reservations.afterDecision(decision.reservations, this.observer.domains.keys(), now));
    this.lastObs = obs;
    this.lastDecision = decision;
    this.logUntrusted(decision);
    this.logReservationEvents(events);
    if (decision.actions.length) this.log.debug({ reasons, actions: decision.actions.length }, 'applying actions');
    const res = await this.actuator.apply(decision.actions, () => gen === this.gen);
    if (res.failed) throw new Error(`${res.failed} of ${decision.actions.length} actions failed (see the errors above)`);
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
    } else if (!late && this.stalled) {
      this.stalled = false;
      this.o.metrics?.stalled.set(0);
      this.conditions.clear('stalled', 'control steps are completing again');
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
    m.setDomains(st.domains.map((d) => ({
      domid: d.domid, name: d.name, currentKib: d.current_kib, targetKib: d.target_kib, needKib: d.need_kib,
      minKib: d.min_kib, maxKib: d.max_kib, maxmemKib: d.maxmem_kib, stuck: d.flags.includes('stuck'),
      uncooperative: d.flags.includes('uncooperative'), reportAgeS: d.report_age_ms === null ? null : d.report_age_ms / 1000,
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
    if (rec.info.dying) flags.add('dying');
    else if (rec.info.shutdown) flags.add('shutdown');
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
    const recs = [...this.observer.domains.values()];
    const rec = /^\d+$/.test(domain) ? this.observer.domains.get(Number(domain)) : recs.find((r) => r.name === domain);
    if (!rec) return null;
    const v = this.lastDecision?.domains.get(rec.domid);
    const ds = this.domainStatus(rec, v, this.now());
    const lines = v ? v.lines() : ['no decision has been made for this domain yet'];
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
          nowMs: this.now(),
          signal,
        });
        this.log.info({ reservation: id, kib: req.kib, label: req.label }, `reservation ${id} of ${req.kib} KiB requested`);
        this.scheduler.urgent(`reservation:${id}`, `reservation ${id}`, true);
        const o = await outcome;
        if (!o.ok) return errorResponse(o.code, o.error);
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
        this.scheduler.urgent(`release:${o.id}`, `reservation ${o.id} released`, true);
        return { ok: true, id: o.id, domid: o.domid };
      }
      case 'reload': {
        const r = await this.reload();
        return r.ok ? { ok: true, policy_files: r.files } : errorResponse('invalid-policy', r.error);
      }
    }
  }

  /** SIGTERM: no new step starts; the step in flight finishes its writes; waiting clients are told. */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    this.o.notifier?.stopping();
    if (this.watchdogTimer) clearInterval(this.watchdogTimer);
    if (this.sdWatchdogTimer) clearInterval(this.sdWatchdogTimer);
    await this.scheduler.stop();
    this.reservations.shutdown();
    await this.observer.stop();
  }
}
