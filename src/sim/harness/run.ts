/**
 * Runs one scenario with one controller in virtual time: the host and guests advance tick by
 * tick, the controller steps at its own interval on a fresh Observation and its Actions are
 * applied in order, the launcher asks it whether the next guest fits. Deterministic for a seed:
 * nothing here reads a clock or Math.random.
 */
import type { Action, Observation } from '../../core/types.js';
import type { Controller } from '../controller.js';
import { Simulation } from '../model.js';
import type { Scenario } from '../scenario/schema.js';
import { launchQueue, Launcher, type LaunchRecord } from './launcher.js';
import { Timeline } from './timeline.js';

/** Guest time with PSI some avg10 at or above this counts as "under pressure". */
export const PRESSURE_AVG10_THRESHOLD = 10;

export interface RunOptions {
  seed: number;
  /** Check the host's and guests' books after every tick (tests; costs time). */
  checkInvariants?: boolean;
  /** Override the scenario's duration (tests). */
  durationMs?: number;
  /** Keep a timeline (CSV/SVG output); off for benchmarks of speed. */
  timeline?: boolean;
  /** Called after each control step with the simulated time reached (for a progress line). */
  onProgress?: (simulatedMs: number, durationMs: number) => void;
}

export interface RunResult {
  scenario: string;
  seed: number;
  /** A PolicyName in `simulate`; `external` for a sim-host run driven by a real daemon. */
  policy: string;
  admitted: number;
  oom_kills: number;
  swap_in_mib: number;
  pressure_guest_minutes: number;
  idle_mib: number;
  targets_per_min: number;
  reservation_wait_p50_s: number | null;
  reservation_wait_p99_s: number | null;
  /** Guests already running at the start (not counted in admitted). */
  fleet: number;
  refused: number;
  create_failures: number;
  oom_guests: number;
  swap_out_mib: number;
  stall_guest_minutes: number;
  host_free_mib: number;
  peak_guests: number;
  invalid_actions: number;
  launch_stopped: string | null;
  simulated_s: number;
  /** Guest-minutes with all of a guest's tasks stalled on memory (PSI full total). */
  stall_full_guest_minutes: number;
  /** Work the workloads completed (eatmem: page writes), summed over guests. */
  work_done: number;
  /** Per admitted guest, in launch order: seconds from its first launch request to the 'go'. */
  admit_s: number[];
}

export interface RunOutput {
  result: RunResult;
  timeline: Timeline | null;
  launches: LaunchRecord[];
}

export function runScenario(scenario: Scenario, controller: Controller, opts: RunOptions): RunOutput {
  const sim = new Simulation(scenario, opts.seed);
  const durationMs = opts.durationMs ?? scenario.duration;
  const tick = scenario.tick;
  const timeline = opts.timeline === false ? null : new Timeline();
  const fleet = createFleet(sim);
  const launcher = new Launcher(launchQueue(scenario), controller, sim, scenario.launch.gap);
  const metrics = new RunMetrics();
  let nextStepMs = 0;

  const apply = (actions: Action[]) => {
    for (const a of actions) {
      if (a.kind === 'setTarget') {
        metrics.targetWritten();
        if (!sim.setTarget(a.domid, a.kib)) metrics.invalidAction();
      } else if (a.kind === 'setMaxmem') {
        if (!sim.setMaxmem(a.domid, a.kib)) metrics.invalidAction();
      } else {
        const d = sim.domains.get(a.domid);
        if (!d) metrics.invalidAction();
        else if (a.on) d.flags.add(a.flag);
        else d.flags.delete(a.flag);
      }
    }
  };

  if (timeline) timeline.sample(sim);
  let nextSampleMs = scenario.sample;

  while (sim.nowMs < durationMs) {
    const dt = Math.min(tick, durationMs - sim.nowMs);
    const events = sim.step(dt);
    const now = sim.nowMs;
    for (const e of events) {
      if (e.kind === 'built') launcher.built(e.domid, now);
      else if (e.kind === 'build-failed') launcher.buildFailed(e.domid, now, e.reason);
    }
    if (opts.checkInvariants) sim.checkInvariants();

    let obs: Observation | null = null;
    const observe = () => (obs ??= sim.observation());
    if (now >= nextStepMs) {
      apply(controller.step(observe(), now));
      obs = null; // actions changed targets and caps
      nextStepMs = Math.max(nextStepMs + controller.intervalMs, now);
      opts.onProgress?.(now, durationMs);
    }
    launcher.poll(now, observe);
    metrics.tick(sim, dt);
    if (timeline && now >= nextSampleMs) {
      timeline.sample(sim);
      nextSampleMs += scenario.sample;
    }
  }

  const result = metrics.result(sim, {
    scenario: scenario.name,
    seed: opts.seed,
    policy: controller.name,
    fleet,
    launches: launcher.records,
    launchStopped: launcher.stopReason,
  });
  return { result, timeline, launches: launcher.records };
}

/** The scenario's fleet: guests already running at the start, created without asking anyone. */
export function createFleet(sim: Simulation): number {
  let fleet = 0;
  for (const t of sim.scenario.fleet) {
    for (let i = 1; i <= t.count; i++) {
      const r = sim.createDomain(`${t.name}-${i}`, t, { prebuilt: true });
      if (!r.ok) throw new Error(`scenario ${sim.scenario.name}: fleet guest ${t.name}-${i} does not fit: ${r.reason}`);
      fleet++;
    }
  }
  return fleet;
}

/** What a run measures, tick by tick; shared by `simulate` and `sim-host`. */
export class RunMetrics {
  private targets = 0;
  private invalid = 0;
  private pressureMs = 0;
  private idleKibMs = 0;
  private hostFreeKibMs = 0;
  private peak = 0;

  targetWritten(): void {
    this.targets++;
  }

  invalidAction(): void {
    this.invalid++;
  }

  tick(sim: Simulation, dt: number): void {
    let running = 0;
    let idle = 0;
    for (const d of sim.domains.values()) {
      const g = d.guest;
      if (!g || !g.isBooted) continue;
      running++;
      idle += g.snapshot().idleKib;
      if (g.someAvg10 >= PRESSURE_AVG10_THRESHOLD) this.pressureMs += dt;
    }
    this.peak = Math.max(this.peak, running);
    this.idleKibMs += idle * dt;
    this.hostFreeKibMs += sim.host.physinfo().freeKib * dt;
  }

  result(sim: Simulation, run: { scenario: string; seed: number; policy: string; fleet: number; launches: LaunchRecord[]; launchStopped: string | null }): RunResult {
    let swapIn = sim.departed.swapInKib;
    let swapOut = sim.departed.swapOutKib;
    let ooms = sim.departed.oomKills;
    let stall = sim.departed.someMs;
    let full = sim.departed.fullMs;
    let work = sim.departed.workDone;
    let oomGuests = 0;
    for (const d of sim.domains.values()) {
      if (!d.guest) continue;
      const c = d.guest.counters;
      swapIn += c.swapInKib;
      swapOut += c.swapOutKib;
      ooms += c.oomKills;
      stall += c.someMs;
      full += c.fullMs;
      work += d.workload?.workDone?.() ?? 0;
      if (c.oomKills > 0) oomGuests++;
    }
    const waits = run.launches
      .map((r) => ((r.answeredAtMs ?? sim.nowMs) - r.requestedAtMs) / 1000)
      .sort((a, b) => a - b);
    const elapsed = Math.max(1, sim.nowMs);
    return {
      scenario: run.scenario,
      seed: run.seed,
      policy: run.policy,
      admitted: run.launches.filter((r) => r.outcome === 'admitted').length,
      oom_kills: ooms,
      swap_in_mib: round(swapIn / 1024, 1),
      pressure_guest_minutes: round(this.pressureMs / 60_000, 2),
      idle_mib: round(this.idleKibMs / elapsed / 1024, 1),
      targets_per_min: round(this.targets / (elapsed / 60_000), 2),
      reservation_wait_p50_s: percentile(waits, 0.5),
      reservation_wait_p99_s: percentile(waits, 0.99),
      fleet: run.fleet,
      refused: run.launches.filter((r) => r.outcome === 'refused').length,
      create_failures: run.launches.filter((r) => r.outcome === 'create-failed').length,
      oom_guests: oomGuests,
      swap_out_mib: round(swapOut / 1024, 1),
      stall_guest_minutes: round(stall / 60_000, 2),
      host_free_mib: round(this.hostFreeKibMs / elapsed / 1024, 1),
      peak_guests: this.peak,
      invalid_actions: this.invalid,
      launch_stopped: run.launchStopped,
      simulated_s: sim.nowMs / 1000,
      stall_full_guest_minutes: round(full / 60_000, 2),
      work_done: Math.round(work),
      admit_s: run.launches
        .filter((r) => r.outcome === 'admitted' && r.answeredAtMs !== null)
        .map((r) => round(((r.answeredAtMs as number) - r.requestedAtMs) / 1000, 1)),
    };
  }
}

/** Nearest-rank percentile of sorted values; null when there are none. */
export function percentile(sorted: number[], p: number): number | null {
  if (sorted.length === 0) return null;
  const rank = Math.max(1, Math.ceil(p * sorted.length));
  return round(sorted[rank - 1] as number, 2);
}

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}
