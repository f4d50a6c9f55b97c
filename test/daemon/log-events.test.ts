import { describe, expect, it } from 'vitest';
import type { DomainExplanation, Explanation } from '../../src/core/index.js';
import { initialEventState, shouldScanDomains, stepEvents, type EventState } from '../../src/daemon/log-events.js';

const MiB = 1024;

function host(shortKib: number): Explanation['host'] {
  return {
    totalKib: 2048 * MiB, freeKib: 0, scrubKib: 0, outstandingKib: 0, reserveKib: 64 * MiB, reservedKib: 0, honouredKib: 0,
    fixedKib: 512 * MiB, managedKib: 1400 * MiB, budgetKib: 1400 * MiB, allocatableKib: 1400 * MiB, allocatedKib: 1400 * MiB,
    minsKib: 300 * MiB, usesKib: 1000 * MiB, needsKib: 1400 * MiB + shortKib, shortKib, surplusKib: 0, promisedKib: 0,
    growthRoomKib: 0, overcommitted: false,
  };
}

function web(pressured: boolean): DomainExplanation {
  return {
    domid: 3, name: 'web-1', managed: true, unmanagedReason: null, currentKib: 142 * MiB, targetKib: 142 * MiB, newTargetKib: 142 * MiB,
    desiredKib: 142 * MiB, needKib: 400 * MiB, coreNeedKib: null, useKib: null, estimator: null, estimateKib: null, overheadKib: null,
    headroomKib: null, pressureBoostKib: null, minKib: 64 * MiB, maxKib: 1024 * MiB, weight: 100, shareKib: null, bound: 'share',
    limiter: 'none', flags: pressured ? ['pressure', 'pressure:psi', 'pressure:swap-in'] : [],
    report: { state: 'fresh', ageMs: 0, format: 'v1' },
    rates: pressured ? { swapInKibps: 89 * MiB, majorFaultsPs: 0, refaultKibps: 0, psiSome: 1, spanMs: 1000 } : null,
    fairShareKib: null, reportRejected: null, reportRejections: 0,
  };
}

function exp(shortKib: number, pressured: boolean): Explanation {
  return { atMs: 0, intervalMs: 1000, host: host(shortKib), domains: [web(pressured)], reservations: [], untrusted: [] };
}

/** Runs steps one second apart; returns every message logged. */
function run(steps: Explanation[], quietMs = 30_000): { msgs: string[]; state: EventState } {
  let state = initialEventState;
  const msgs: string[] = [];
  steps.forEach((e, i) => {
    const r = stepEvents(state, e, i * 1000, true, quietMs);
    state = r.state;
    msgs.push(...r.events.map((ev) => `${ev.level}: ${ev.msg}`));
  });
  return { msgs, state };
}

describe('shortage and pressure log lines', () => {
  it('logs a guest at PSI 100% swapping at 89M/s with the host short by 724M, once', () => {
    const { msgs } = run([exp(0, false), exp(724 * MiB, true), exp(724 * MiB, true), exp(700 * MiB, true)]);
    expect(msgs).toEqual([
      'warn: memory is short by 724M: guests need 2.07G, 1.37G can be shared (reserve 64M, reservations 0)',
      'warn: web-1 (domain 3) is under memory pressure: PSI some 100%, swap-in 89M/s; target 142M, need 400M; memory is short by 724M',
    ]);
  });

  it('logs the end once the condition has been gone for the quiet time, not at the first calm step', () => {
    const busy = Array.from({ length: 5 }, () => exp(724 * MiB, true));
    const calm = Array.from({ length: 12 }, () => exp(0, false));
    const { msgs } = run([...busy, exp(0, false), exp(724 * MiB, true), ...calm], 10_000);
    expect(msgs.filter((m) => m.startsWith('warn'))).toHaveLength(2);
    expect(msgs.filter((m) => m.startsWith('info'))).toEqual([
      'info: memory is no longer short (it was for 6s, by up to 724M)',
      'info: web-1 (domain 3) is no longer under memory pressure (it was for 6s)',
    ]);
  });

  it('reads the per-domain explanations only when they can matter', () => {
    expect(shouldScanDomains(initialEventState, exp(0, false), false, 3)).toBe(false);
    expect(shouldScanDomains(initialEventState, exp(0, false), true, 3)).toBe(true);
    expect(shouldScanDomains(initialEventState, exp(1, false), false, 3)).toBe(true);
    expect(shouldScanDomains(initialEventState, exp(0, false), false, 10)).toBe(true);
  });
});
