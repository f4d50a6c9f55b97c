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

describe('explain for hostile reports', () => {
  const report = (totalKib: number, heldKib: number) => ({
    format: 'v1' as const, seq: 1, uptimeS: 100,
    mem: { totalKib, freeKib: 1000, availableKib: 1000, buffersKib: 0, cachedKib: 0, shmemKib: 0, swapTotalKib: 1024 * MiB, swapFreeKib: 0, committedAsKib: 4_000_000, usedKib: null },
    counters: { pswpin: 0, pswpout: 0, pgmajfault: 0, workingsetRefault: 0, oomKill: 0 },
    pressure: null, balloonCurrentKib: heldKib,
  });

  it('says why a report was rejected, and that the domain counts as having none', () => {
    const d = { ...dom(1, 256 * MiB), report: report(1_000_000, 256 * MiB), reportAtMs: 999_000 };
    const decision = new CoreDecider(defaultPolicy()).decide(obs([d]), 1_000_000);
    expect(decision.untrusted?.[0]).toMatchObject({ domid: 1, count: 1 });
    const lines = decision.domains.get(1)?.lines().join('\n') ?? '';
    expect(lines).toMatch(/^report rejected \(1 in all\), treated as no report: MemTotal 1000000 kB is more than the domain holds/m);
    expect(decision.domains.get(1)?.reportRejected).toMatch(/^MemTotal/);
  });

  it('says when a claim above the fair share was capped', () => {
    // 1 GiB for two guests: a consistent liar (its report fits what it holds) claims 4 GB.
    const liar = { ...dom(1, 512 * MiB), report: report(470 * MiB, 512 * MiB), reportAtMs: 999_000 };
    const honest = { ...dom(2, 512 * MiB), report: { ...report(470 * MiB, 512 * MiB), mem: { ...report(470 * MiB, 512 * MiB).mem, freeKib: 200 * MiB, availableKib: 300 * MiB, swapFreeKib: 1024 * MiB, committedAsKib: 200 * MiB } }, reportAtMs: 999_000 };
    const o: Observation = { host: { totalKib: 1280 * MiB, freeKib: 0, scrubKib: 0, outstandingKib: 0 }, domains: [liar, honest], reservations: [] };
    const decision = new CoreDecider(defaultPolicy()).decide(o, 1_000_000);
    const lines = decision.domains.get(1)?.lines().join('\n') ?? '';
    expect(lines).toMatch(/^claim capped: its need .* is above its fair share/m);
    expect(decision.domains.get(2)?.flags).not.toContain('claim-capped');
  });
});
