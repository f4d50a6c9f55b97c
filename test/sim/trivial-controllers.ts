/**
 * Minimal controllers for testing the harness without the real peers or core: they follow the
 * Controller contract (src/sim/controller.ts) and nothing else.
 */
import type { Action, Observation } from '../../src/core/types.js';
import type { Controller, LaunchRequest, LaunchStatus } from '../../src/sim/controller.js';

/** Never balloons; admits a guest when free unclaimed memory covers it (xl's own check). */
export class FreeMemoryController implements Controller {
  readonly name = 'static' as const;
  readonly intervalMs = 1000;
  private requests = new Map<string, LaunchRequest>();
  private n = 0;
  steps = 0;

  step(): Action[] {
    this.steps++;
    return [];
  }

  requestLaunch(req: LaunchRequest): string {
    const id = `r${++this.n}`;
    this.requests.set(id, req);
    return id;
  }

  launchStatus(id: string, obs: Observation): LaunchStatus {
    const req = this.requests.get(id);
    if (!req) return { state: 'fail', reason: 'unknown request' };
    const avail = obs.host.freeKib - obs.host.outstandingKib;
    return avail >= req.memoryKib + 2048 ? { state: 'go' } : { state: 'fail', reason: 'not enough free memory' };
  }

  launched(id: string): void {
    this.requests.delete(id);
  }
}

/**
 * Sets every guest's target to what it has committed plus a margin (capped by static-max),
 * raising maxmem first: enough of a balancer to exercise targets, maxmem and launching.
 */
export class CommittedController implements Controller {
  readonly name = 'xenballoond' as const;
  readonly intervalMs = 1000;
  private n = 0;

  constructor(private readonly marginKib = 64 * 1024, private readonly overheadKib = 64 * 1024) {}

  step(obs: Observation): Action[] {
    const actions: Action[] = [];
    for (const d of obs.domains) {
      if (d.domid === 0 || !d.report || d.report.mem.committedAsKib === null) continue;
      const want = Math.min(d.staticMaxKib ?? d.maxmemKib, d.report.mem.committedAsKib + this.marginKib + this.overheadKib);
      if (d.targetKib !== null && Math.abs(want - d.targetKib) < 4096) continue;
      actions.push({ kind: 'setMaxmem', domid: d.domid, kib: Math.max(want, d.currentKib) + 1024 });
      actions.push({ kind: 'setTarget', domid: d.domid, kib: want });
    }
    return actions;
  }

  requestLaunch(): string {
    return `r${++this.n}`;
  }

  launchStatus(_id: string, obs: Observation): LaunchStatus {
    return obs.host.freeKib - obs.host.outstandingKib >= 600 * 1024 ? { state: 'go' } : { state: 'fail', reason: 'full' };
  }

  launched(): void {}
}
