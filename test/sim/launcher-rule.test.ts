/**
 * One launcher rule for every controller (docs/peers.md, "The protocol"): a refused request is
 * asked again every 10 s, and a guest not admitted within 60 s of its first request is given up,
 * its request withdrawn, and launching stops.
 */
import { describe, expect, it } from 'vitest';
import type { Action, Observation } from '../../src/core/types.js';
import type { Controller, LaunchStatus } from '../../src/sim/controller.js';
import { LAUNCH_GIVE_UP_MS, LAUNCH_RETRY_MS } from '../../src/sim/harness/launcher.js';
import { runScenario } from '../../src/sim/harness/run.js';
import { loadScenario } from '../../src/sim/scenario/load.js';

/** Answers `fail` to its first `refusals` requests (or `wait` forever), then `go`. */
class Scripted implements Controller {
  readonly name = 'static' as const;
  readonly intervalMs = 1000;
  requests: number[] = [];
  withdrawn: string[] = [];
  private n = 0;
  constructor(private readonly refusals: number, private readonly mode: 'fail' | 'wait' = 'fail') {}
  step(): Action[] {
    return [];
  }
  requestLaunch(_req: unknown, _obs: Observation, now: number): string {
    this.requests.push(now);
    return `r${++this.n}`;
  }
  launchStatus(id: string): LaunchStatus {
    const k = Number(id.slice(1));
    if (k > this.refusals) return { state: 'go' };
    return this.mode === 'wait' ? { state: 'wait' } : { state: 'fail', reason: 'no room' };
  }
  launched(id: string, domid: number | null): void {
    if (domid === null) this.withdrawn.push(id);
  }
}

describe('the launcher rule', () => {
  const s = loadScenario('paper-eatmem-2g');

  it('asks again every 10 s after a refusal and admits when the controller says go', () => {
    const c = new Scripted(3);
    const out = runScenario(s, c, { seed: 1, durationMs: 90_000, timeline: false });
    const first = out.launches[0];
    expect(first?.outcome).toBe('admitted');
    expect(first?.attempts).toBe(4);
    expect(c.requests.slice(0, 4).map((t) => t - (c.requests[0] ?? 0))).toEqual([0, 1, 2, 3].map((i) => i * LAUNCH_RETRY_MS));
    expect(c.withdrawn.slice(0, 3)).toEqual(['r1', 'r2', 'r3']);
    expect(c.withdrawn).not.toContain('r4');
    expect(out.result.admit_s[0]).toBe(30);
  });

  it('gives up on a guest refused for 60 s and stops launching', () => {
    const c = new Scripted(Infinity);
    const out = runScenario(s, c, { seed: 1, durationMs: 180_000, timeline: false });
    expect(out.result.admitted).toBe(0);
    expect(out.result.refused).toBe(1);
    expect(c.requests).toHaveLength(LAUNCH_GIVE_UP_MS / LAUNCH_RETRY_MS + 1);
    expect(out.result.launch_stopped).toMatch(/eatmem-1 refused: no room \(7 requests over 60 s\)/);
  });

  it('withdraws a request still waiting after 60 s', () => {
    const c = new Scripted(Infinity, 'wait');
    const out = runScenario(s, c, { seed: 1, durationMs: 180_000, timeline: false });
    expect(out.result.admitted).toBe(0);
    expect(c.requests).toHaveLength(1);
    expect(c.withdrawn).toEqual(['r1']);
    expect(out.result.launch_stopped).toMatch(/not admitted within 60 s/);
    expect(out.result.reservation_wait_p99_s).toBe(60);
  });
});
