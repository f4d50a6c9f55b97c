/**
 * Hostile guests on a simulated host (issue 11): runs a scenario with xenballoond's shipped core
 * (XenballoondController) in virtual time, once as written and once without its hostile guests
 * (templates whose workload is liar, flipper, silent-after-lie or qubes-liar), and reports per
 * honest guest the target it got each second in both runs, with its need and fair share as the
 * core saw them in the run with the hostile guest.
 */
import type { Action } from '../core/types.js';
import type { Policy } from '../policy/schema.js';
import { createFleet } from './harness/run.js';
import { Simulation } from './model.js';
import type { Scenario } from './scenario/schema.js';
import { XenballoondController } from './xenballoond-controller.js';

const HOSTILE = new Set(['liar', 'flipper', 'silent-after-lie', 'qubes-liar']);

export interface HonestSeries {
  name: string;
  /** Target (KiB) at each whole second, from 1 s on. */
  targetsKib: number[];
  /** The core's need and fair share for it at each second (null when not worked out). */
  needKib: (number | null)[];
  /** Its use level as the core saw it (what it demonstrably uses). */
  useKib: (number | null)[];
  fairKib: (number | null)[];
}

export interface HostileComparison {
  withHostile: HonestSeries[];
  withoutHostile: HonestSeries[];
}

export function isHostileKind(kind: string): boolean {
  return HOSTILE.has(kind);
}

function run(scenario: Scenario, policy: Policy, seed: number, durationMs: number): HonestSeries[] {
  const sim = new Simulation(scenario, seed);
  createFleet(sim);
  const controller = new XenballoondController({ policy });
  const honest = new Map<number, HonestSeries>();
  for (const d of sim.domains.values()) {
    if (d.domid !== 0 && !isHostileKind(d.template.workload.kind)) {
      honest.set(d.domid, { name: d.name, targetsKib: [], needKib: [], useKib: [], fairKib: [] });
    }
  }
  const apply = (actions: Action[]) => {
    for (const a of actions) {
      if (a.kind === 'setTarget') sim.setTarget(a.domid, a.kib);
      else if (a.kind === 'setMaxmem') sim.setMaxmem(a.domid, a.kib);
    }
  };
  let nextStepMs = 0;
  let nextSampleMs = 1000;
  while (sim.nowMs < durationMs) {
    sim.step(Math.min(scenario.tick, durationMs - sim.nowMs));
    const now = sim.nowMs;
    if (now >= nextStepMs) {
      apply(controller.step(sim.observation(), now));
      nextStepMs = Math.max(nextStepMs + controller.intervalMs, now);
    }
    if (now >= nextSampleMs) {
      nextSampleMs += 1000;
      const domains = controller.lastExplanation?.domains ?? [];
      for (const [domid, s] of honest) {
        s.targetsKib.push(sim.domains.get(domid)?.targetKib ?? 0);
        const e = domains.find((x) => x.domid === domid);
        s.needKib.push(e?.needKib ?? null);
        s.useKib.push(e?.useKib ?? null);
        s.fairKib.push(e?.fairShareKib ?? null);
      }
    }
  }
  return [...honest.values()];
}

/** The scenario as written, and without its hostile templates. */
export function compareHostile(scenario: Scenario, policy: Policy, seed = scenario.seed, durationMs = scenario.duration): HostileComparison {
  const without: Scenario = {
    ...scenario,
    fleet: scenario.fleet.filter((t) => !isHostileKind(t.workload.kind)),
    guests: scenario.guests.filter((t) => !isHostileKind(t.workload.kind)),
  };
  return { withHostile: run(scenario, policy, seed, durationMs), withoutHostile: run(without, policy, seed, durationMs) };
}
