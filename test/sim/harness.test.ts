import { describe, expect, it } from 'vitest';
import type { Action, Observation } from '../../src/core/types.js';
import type { Controller, LaunchStatus } from '../../src/sim/controller.js';
import { percentile, runScenario } from '../../src/sim/harness/run.js';
import { timelineSvg } from '../../src/sim/harness/svg.js';
import { launchQueue } from '../../src/sim/harness/launcher.js';
import { Simulation } from '../../src/sim/model.js';
import { loadScenario, parseScenario } from '../../src/sim/scenario/load.js';
import { CommittedController, FreeMemoryController } from './trivial-controllers.js';

const MiB = 1024;

/** Says "wait" for `waitMs` after each request, then "go" whatever memory there is. */
class PatientLiar implements Controller {
  readonly name = 'qmemman' as const;
  readonly intervalMs = 1000;
  private asked = new Map<string, number>();
  private n = 0;
  launchedCalls: (number | null)[] = [];
  constructor(private readonly waitMs: number) {}
  step(): Action[] {
    return [];
  }
  requestLaunch(_req: unknown, _obs: Observation, now: number): string {
    const id = `r${++this.n}`;
    this.asked.set(id, now);
    return id;
  }
  launchStatus(id: string, _obs: Observation, now: number): LaunchStatus {
    return now - (this.asked.get(id) ?? now) >= this.waitMs ? { state: 'go' } : { state: 'wait' };
  }
  launched(_id: string, domid: number | null): void {
    this.launchedCalls.push(domid);
  }
}

describe('simulation harness', () => {
  it('keeps the books balanced at every tick of the paper scenario', () => {
    const s = loadScenario('paper-eatmem-2g');
    for (const c of [new FreeMemoryController(), new CommittedController()]) {
      expect(() => runScenario(s, c, { seed: 3, checkInvariants: true, durationMs: 10 * 60_000 })).not.toThrow();
    }
  });

  it('keeps the books balanced with many guests of every kind (mixed-64g)', () => {
    const s = loadScenario('mixed-64g');
    expect(() => runScenario(s, new CommittedController(), { seed: 1, checkInvariants: true, durationMs: 15 * 60_000 })).not.toThrow();
  });

  it('keeps the books balanced while a domain is destroyed, and keeps its counters', () => {
    const s = loadScenario('paper-eatmem-2g');
    const sim = new Simulation(s, 1);
    const r = sim.createDomain('x', s.guests[0]!, { prebuilt: true });
    if (!r.ok) throw new Error(r.reason);
    for (let t = 0; t < 120_000; t += 100) {
      sim.step(100);
      sim.checkInvariants();
    }
    const swapped = sim.domains.get(r.domid)?.guest?.counters.swapOutKib ?? -1;
    const free = sim.host.physinfo().freeKib;
    expect(sim.destroyDomain(r.domid)).toBe(true);
    const gone: number[] = [];
    for (let t = 0; t < 10_000; t += 100) {
      for (const e of sim.step(100)) if (e.kind === 'gone') gone.push(e.domid);
      sim.checkInvariants();
    }
    expect(gone).toEqual([r.domid]);
    expect(sim.domains.has(r.domid)).toBe(false);
    expect(sim.departed.swapOutKib).toBe(swapped);
    expect(sim.host.physinfo().freeKib).toBeGreaterThan(free + 500 * MiB);
  });

  it('reproduces a run exactly for a seed, and differs for another seed', () => {
    const s = loadScenario('paper-eatmem-2g');
    const run = (seed: number) => {
      const out = runScenario(s, new CommittedController(), { seed, durationMs: 10 * 60_000 });
      return JSON.stringify({ result: out.result, csv: out.timeline?.domainsCsv(), launches: out.launches });
    };
    const a = run(42);
    expect(run(42)).toBe(a);
    expect(run(43)).not.toBe(a);
  });

  it('launches while the controller says another fits: a free-memory check admits 3 paper guests', () => {
    const s = loadScenario('paper-eatmem-2g');
    const out = runScenario(s, new FreeMemoryController(), { seed: 1, durationMs: 5 * 60_000 });
    expect(out.result.admitted).toBe(3);
    expect(out.result.refused).toBe(1);
    expect(out.result.launch_stopped).toMatch(/eatmem-4 refused/);
    expect(out.launches.map((l) => l.outcome)).toEqual(['admitted', 'admitted', 'admitted', 'refused']);
  });

  it('counts a creation that fails after the controller said go, and stops launching', () => {
    const s = loadScenario('paper-eatmem-2g');
    const c = new PatientLiar(0);
    const out = runScenario(s, c, { seed: 1, durationMs: 5 * 60_000 });
    expect(out.result.admitted).toBe(3);
    expect(out.result.create_failures).toBe(1);
    expect(out.result.launch_stopped).toMatch(/creating eatmem-4 failed: not enough memory/);
    expect(c.launchedCalls).toEqual([1, 2, 3, null]);
  });

  it('measures the reservation wait from request to answer (p50, p99)', () => {
    const s = loadScenario('paper-eatmem-2g');
    const out = runScenario(s, new PatientLiar(5000), { seed: 1, durationMs: 5 * 60_000 });
    expect(out.result.reservation_wait_p50_s).toBe(5);
    expect(out.result.reservation_wait_p99_s).toBe(5);
    expect(percentile([1, 2, 3, 4, 100], 0.5)).toBe(3);
    expect(percentile([1, 2, 3, 4, 100], 0.99)).toBe(100);
    expect(percentile([], 0.5)).toBeNull();
  });

  it('applies actions in order and counts targets written and invalid actions', () => {
    const s = loadScenario('paper-idle-2g');
    const c: Controller = {
      name: 'mom',
      intervalMs: 10_000,
      step: (obs) => obs.domains.filter((d) => d.domid > 0).flatMap((d): Action[] => [
        { kind: 'setTarget', domid: d.domid, kib: 300 * MiB },
        { kind: 'setTarget', domid: 999, kib: 1 },
      ]),
      requestLaunch: () => 'x',
      launchStatus: (_id, obs) => (obs.domains.length < 3 ? { state: 'go' } : { state: 'fail', reason: 'enough' }),
      launched: () => undefined,
    };
    const out = runScenario(s, c, { seed: 1, durationMs: 2 * 60_000 });
    expect(out.result.admitted).toBe(2);
    // Steps at 0, 10, ..., 120 s: two guests from about 10 s and 25 s on.
    expect(out.result.invalid_actions).toBeGreaterThan(5);
    expect(out.result.targets_per_min).toBe((out.result.invalid_actions * 2) / 2);
    const last = out.timeline?.domains.filter((r) => r.tS === 120) ?? [];
    expect(last.map((r) => r.currentMib)).toEqual([300, 300]);
  });

  it('creates a scenario fleet up front and launches the rest round-robin when asked', () => {
    const s = parseScenario(`name: t
duration: 30s
tick: 1s
host: { memory: 8G }
dom0: { memory: 512M }
launch: { order: interleave, gap: 0s }
fleet:
  - { name: f, count: 3, memory: 512M, maxmem: 1G, workload: { kind: idle } }
guests:
  - { name: a, count: 2, memory: 256M, maxmem: 256M, workload: { kind: idle } }
  - { name: b, count: 3, memory: 256M, maxmem: 256M, workload: { kind: idle } }
`, 't.yaml');
    expect(launchQueue(s).map((i) => i.name)).toEqual(['a-1', 'b-1', 'a-2', 'b-2', 'b-3']);
    const out = runScenario(s, new FreeMemoryController(), { seed: 1 });
    expect(out.result.fleet).toBe(3);
    expect(out.result.admitted).toBe(5);
    expect(out.result.peak_guests).toBe(8);
  });

  it('draws the timeline as an SVG with a line per domain and the host free memory', () => {
    const s = loadScenario('paper-eatmem-2g');
    const out = runScenario(s, new FreeMemoryController(), { seed: 1, durationMs: 3 * 60_000 });
    const svg = timelineSvg(out.timeline!, 'paper-eatmem-2g: static');
    expect(svg).toMatch(/^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/);
    expect(svg.match(/<path /g)?.length).toBe(4);
    expect(svg).toContain('eatmem-3 (3)');
    expect(svg).toContain('host free');
    expect(svg.trim().endsWith('</svg>')).toBe(true);
  });
});
