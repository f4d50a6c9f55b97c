/** Random hosts for property tests (fast-check arbitraries) and a host that obeys at once. */
import fc from 'fast-check';
import type { Action, DomainObservation, Observation } from '../../src/core/types.js';
import { parsePolicy, type Policy } from '../../src/policy/index.js';
import { MiB, report } from './fixtures.js';

export interface DomSpec {
  staticMax: number; // MiB
  current: number; // MiB
  targetDelta: number; // MiB, target = current + delta (clamped)
  committed: number; // MiB
  weight: number;
  min: number | 'auto' | null; // MiB
  surplus: 'keep-free' | 'share';
  reports: boolean;
}

export const domSpec = fc
  .record({
    staticMax: fc.integer({ min: 128, max: 8192 }),
    currentFrac: fc.double({ min: 0.05, max: 1, noNaN: true }),
    targetDelta: fc.integer({ min: -64, max: 64 }),
    committed: fc.integer({ min: 0, max: 12_000 }),
    weight: fc.integer({ min: 1, max: 1000 }),
    min: fc.oneof(fc.constant(null), fc.constant('auto' as const), fc.integer({ min: 0, max: 2048 })),
    surplus: fc.constantFrom('keep-free' as const, 'share' as const),
    reports: fc.boolean(),
  })
  .map(
    (r): DomSpec => ({
      staticMax: r.staticMax,
      current: Math.max(64, Math.round(r.staticMax * r.currentFrac)),
      targetDelta: r.targetDelta,
      committed: r.committed,
      weight: r.weight,
      min: r.min,
      surplus: r.surplus,
      reports: r.reports,
    }),
  );

export const hostSpec = fc.record({
  doms: fc.array(domSpec, { minLength: 1, maxLength: 10 }),
  extraFree: fc.integer({ min: 0, max: 16_384 }),
  dom0: fc.integer({ min: 256, max: 2048 }),
  reserve: fc.integer({ min: 0, max: 512 }),
});

export type HostSpec = typeof hostSpec extends fc.Arbitrary<infer T> ? T : never;

export function policyFor(h: HostSpec): Policy {
  const rules = h.doms
    .map((d, i) => {
      const parts = [`weight: ${d.weight}`, `surplus: ${d.surplus}`];
      if (d.min === 'auto') parts.push('min: auto');
      else if (d.min !== null) parts.push(`min: ${d.min}M`);
      return `  - match: { name: "vm${i + 1}" }\n    ${parts.join('\n    ')}`;
    })
    .join('\n');
  return parsePolicy(`host: { reserve: ${h.reserve}M }\ndomains:\n${rules}\n`, 'prop.yaml');
}

export function observationFor(h: HostSpec, nowMs = 0, freeBonus = 0): Observation {
  const domains: DomainObservation[] = [
    {
      domid: 0, name: 'Domain-0', currentKib: h.dom0 * MiB, maxmemKib: h.dom0 * MiB + 1024, staticMaxKib: null,
      targetKib: h.dom0 * MiB, videoramKib: 0, dying: false, shutdown: false, hvm: false, report: null, reportAtMs: null,
    },
  ];
  let used = h.dom0;
  h.doms.forEach((d, i) => {
    used += d.current;
    const target = Math.min(d.staticMax, Math.max(1, d.current + d.targetDelta));
    domains.push({
      domid: i + 1,
      name: `vm${i + 1}`,
      currentKib: d.current * MiB,
      maxmemKib: (target + 1) * MiB,
      staticMaxKib: d.staticMax * MiB,
      targetKib: target * MiB,
      videoramKib: 0,
      dying: false,
      shutdown: false,
      hvm: false,
      report: d.reports ? report({ committedAs: d.committed, total: d.current - 40, balloonCurrent: d.current, psiSomeUs: null }) : null,
      reportAtMs: d.reports ? nowMs : null,
    });
  });
  const free = h.extraFree + freeBonus;
  return {
    host: { totalKib: (used + free) * MiB, freeKib: free * MiB, scrubKib: 0, outstandingKib: 0 },
    domains,
    reservations: [],
  };
}

/** The host after the actions, with every guest at its target at once and fresh reports. */
export function applyInstantly(obs: Observation, actions: Action[], now: number): Observation {
  const domains = obs.domains.map((d) => ({ ...d }));
  const byId = new Map(domains.map((d) => [d.domid, d]));
  for (const a of actions) {
    const d = byId.get(a.domid);
    if (!d) continue;
    if (a.kind === 'setTarget') d.targetKib = a.kib;
    if (a.kind === 'setMaxmem') d.maxmemKib = a.kib;
  }
  let delta = 0;
  for (const d of domains) {
    if (d.domid === 0 || d.targetKib === null) continue;
    const goal = Math.min(d.targetKib, d.maxmemKib);
    delta += goal - d.currentKib;
    d.currentKib = goal;
    if (d.report) {
      d.report = { ...d.report, mem: { ...d.report.mem, totalKib: goal - 40 * MiB }, balloonCurrentKib: goal };
      d.reportAtMs = now + 1; // published after the step that set the target
    }
  }
  return { ...obs, domains, host: { ...obs.host, freeKib: obs.host.freeKib - delta } };
}
