import { describe, expect, it } from 'vitest';
import { CoreDecider } from '../../src/daemon/adapters/core.js';
import type { DomainObservation, Observation } from '../../src/core/types.js';
import { defaultPolicy } from '../../src/policy/index.js';

const MiB = 1024;

function dom(domid: number, targetKib: number): DomainObservation {
  return {
    domid, name: `guest-${domid}`, currentKib: targetKib, maxmemKib: 1024 * MiB, staticMaxKib: 1024 * MiB, targetKib,
    videoramKib: 0, dying: false, shutdown: false, hvm: false, report: null, reportAtMs: null,
  };
}

function obs(domains: DomainObservation[]): Observation {
  return { host: { totalKib: 8192 * MiB, freeKib: 4096 * MiB, scrubKib: 0, outstandingKib: 0 }, domains, reservations: [] };
}

describe('CoreDecider (the core as the daemon sees it)', () => {
  it('builds per-domain verdicts on first use, each from its own step', () => {
    const decider = new CoreDecider(defaultPolicy());
    const first = decider.decide(obs([dom(1, 512 * MiB), dom(2, 256 * MiB)]), 1_000_000);
    const second = decider.decide(obs([dom(1, 512 * MiB), dom(3, 128 * MiB)]), 1_001_000);
    // Read after a later step: still the verdicts of the step that made them.
    expect([...first.domains.keys()]).toEqual([1, 2]);
    expect([...second.domains.keys()]).toEqual([1, 3]);
    expect(first.domains).toBe(first.domains);
    const v = second.domains.get(3);
    expect(v?.managed).toBe(true);
    expect(v?.lines().join('\n')).toMatch(/need: unknown/);
  });
});
