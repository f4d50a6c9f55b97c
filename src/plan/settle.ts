/**
 * Running the decision core forward on a host written down as an Observation, with guests that
 * obey their targets at once: where the host settles (`plan --settle`) and how long a
 * reservation takes to become ready (`capacity`). Pure: the core, the policy and numbers.
 */
import { initialState, step, type StepResult } from '../core/index.js';
import type { Action, Observation } from '../core/types.js';
import type { Policy } from '../policy/index.js';

export interface Run {
  result: StepResult;
  steps: number;
  /** Simulated time from the first step to the last. */
  elapsedMs: number;
  observation: Observation;
}

/** The longest a run goes on: an hour of steps. */
export const MAX_RUN_MS = 3_600_000;

export function once(observation: Observation, policy: Policy, nowMs: number): Run {
  return { result: step(initialState(), observation, policy, nowMs), steps: 1, elapsedMs: 0, observation };
}

/**
 * Steps until `done(result)` holds (default: a step that changes nothing), guests obeying at once,
 * for at most MAX_RUN_MS; the last step's result and how long it took.
 */
export function runUntil(start: Observation, policy: Policy, nowMs: number, done?: (r: StepResult) => boolean): Run & { reached: boolean } {
  let obs = start;
  let now = nowMs;
  let result = step(initialState(), obs, policy, now);
  let steps = 1;
  const limit = Math.max(1, Math.ceil(MAX_RUN_MS / policy.intervalMs));
  while (steps < limit) {
    if (done?.(result)) return { result, steps, elapsedMs: now - nowMs, observation: obs, reached: true };
    const next = obey(obs, result.actions, now);
    if (!done && result.actions.length === 0 && next.host.freeKib === obs.host.freeKib) {
      return { result, steps, elapsedMs: now - nowMs, observation: obs, reached: true };
    }
    const state = result.state;
    obs = next;
    now += policy.intervalMs;
    result = step(state, obs, policy, now);
    steps++;
  }
  return { result, steps, elapsedMs: now - nowMs, observation: obs, reached: done ? done(result) : false };
}

/** The host after the actions: every guest at its new target (within maxmem), free memory adjusted. */
export function obey(obs: Observation, actions: Action[], now: number): Observation {
  const domains = obs.domains.map((d) => ({ ...d }));
  const byId = new Map(domains.map((d) => [d.domid, d]));
  for (const a of actions) {
    const d = byId.get(a.domid);
    if (!d || a.kind === 'flag') continue;
    if (a.kind === 'setTarget') d.targetKib = a.kib;
    else d.maxmemKib = a.kib;
  }
  let moved = 0;
  for (const d of domains) {
    if (d.targetKib === null || d.dying || d.shutdown) continue;
    const goal = Math.min(d.targetKib + d.videoramKib, d.maxmemKib);
    const grew = goal - d.currentKib;
    moved += grew;
    d.currentKib = goal;
    // Its report is as fresh as it was; its kernel now sees the new size.
    if (d.report && d.reportAtMs !== null) {
      const total = d.report.mem.totalKib;
      d.report = {
        ...d.report,
        mem: { ...d.report.mem, totalKib: total === null ? null : Math.max(0, total + grew) },
        balloonCurrentKib: d.report.balloonCurrentKib === null ? null : goal - d.videoramKib,
      };
      d.reportAtMs = now + 1;
    }
  }
  return { ...obs, domains, host: { ...obs.host, freeKib: Math.max(0, obs.host.freeKib - moved) } };
}
