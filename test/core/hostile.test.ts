/**
 * Hostile guests against the core: whatever one or more guests report, every honest guest keeps
 * at least min(what it uses, its weighted fair share), no target goes above max, and floors that
 * come from reports stay within what the hypervisor confirms and the fair share.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { initialState, step, xenlinuxMinimumKib } from '../../src/core/index.js';
import type { DomainObservation, Observation } from '../../src/core/types.js';
import type { GuestReport } from '../../src/report/types.js';
import { parsePolicy } from '../../src/policy/index.js';
import { domain, GiB, MiB, observation, policy, report } from './fixtures.js';

const KIB_MAX = 2 ** 40;

/** Weighted max-min fair shares of `amount` over caps, by bisection (a reference, not the core's). */
function referenceShares(caps: number[], weights: number[], amount: number): number[] {
  const total = caps.reduce((s, c) => s + c, 0);
  if (amount >= total) return caps.slice();
  let lo = 0;
  let hi = Math.max(...caps.map((c, i) => c / (weights[i] ?? 1))) + 1;
  for (let k = 0; k < 100; k++) {
    const mid = (lo + hi) / 2;
    const got = caps.reduce((s, c, i) => s + Math.min(c, (weights[i] ?? 1) * mid), 0);
    if (got > amount) hi = mid;
    else lo = mid;
  }
  return caps.map((c, i) => Math.min(c, (weights[i] ?? 1) * lo));
}

const kibArb = fc.oneof(
  fc.constant(0),
  fc.integer({ min: 0, max: 4 * GiB }),
  fc.constant(KIB_MAX),
  fc.integer({ min: 0, max: KIB_MAX }),
);
const nullableKib = fc.oneof(fc.constant(null), kibArb);
const counterArb = fc.oneof(fc.constant(null), fc.integer({ min: 0, max: 2 ** 40 }));

/** Any report the parsers could let through: each field anywhere in its range. */
const forgedReport: fc.Arbitrary<GuestReport> = fc
  .record({
    format: fc.constantFrom('v1' as const, 'paper' as const, 'qubes' as const),
    uptimeS: counterArb,
    total: nullableKib,
    free: nullableKib,
    available: nullableKib,
    buffers: nullableKib,
    cached: nullableKib,
    shmem: nullableKib,
    swapTotal: nullableKib,
    swapFree: nullableKib,
    committed: nullableKib,
    used: nullableKib,
    balloon: nullableKib,
    pswpin: counterArb,
    majflt: counterArb,
    psi: fc.option(fc.integer({ min: 0, max: 100 }), { nil: null }),
  })
  .map((r) => ({
    format: r.format,
    seq: r.format === 'v1' ? 1 : null,
    uptimeS: r.uptimeS,
    mem: {
      totalKib: r.total,
      freeKib: r.free,
      availableKib: r.available,
      buffersKib: r.buffers,
      cachedKib: r.cached,
      shmemKib: r.shmem,
      swapTotalKib: r.swapTotal,
      swapFreeKib: r.swapFree,
      committedAsKib: r.committed,
      usedKib: r.used,
    },
    counters: { pswpin: r.pswpin, pswpout: 0, pgmajfault: r.majflt, workingsetRefault: 0, oomKill: 0 },
    pressure: r.psi === null ? null : { someAvg10: r.psi, fullAvg10: r.psi, someTotalUs: 10 ** 9, fullTotalUs: 10 ** 9 },
    balloonCurrentKib: r.balloon,
  }));

/** The issue's worst forged report, consistent with what the guest holds (so no check rejects it). */
function consistentLie(heldMiB: number): GuestReport {
  return report({ total: heldMiB - 40, free: 1, available: 1, cached: 2, buffers: 1, swapTotal: 1024, swapFree: 0, committedAs: 4000, balloonCurrent: heldMiB, psiAvg10: 100, psiSomeUs: 10 ** 9 });
}

const honestArb = fc.record({
  staticMax: fc.integer({ min: 256, max: 4096 }),
  frac: fc.double({ min: 0.2, max: 1, noNaN: true }),
  committed: fc.integer({ min: 0, max: 3000 }),
  usesFrac: fc.double({ min: 0, max: 0.9, noNaN: true }),
  weight: fc.integer({ min: 1, max: 1000 }),
  min: fc.oneof(fc.constant('auto' as const), fc.integer({ min: 0, max: 512 })),
});
const hostileArb = fc.record({
  staticMax: fc.integer({ min: 256, max: 8192 }),
  frac: fc.double({ min: 0.05, max: 1, noNaN: true }),
  weight: fc.integer({ min: 1, max: 1000 }),
  report: fc.oneof(forgedReport, fc.constant(null).map(() => 'consistent' as const)),
});

interface Dom {
  staticMax: number;
  current: number;
  weight: number;
  min: 'auto' | number;
  report: GuestReport;
  honest: boolean;
}

type Honest = typeof honestArb extends fc.Arbitrary<infer T> ? T : never;
type Hostile = typeof hostileArb extends fc.Arbitrary<infer T> ? T : never;

function build(honest: Honest[], hostile: Hostile[], extraFree: number) {
  const doms: Dom[] = [];
  for (const h of honest) {
    const current = Math.max(128, Math.round(h.staticMax * h.frac));
    const total = current - 40;
    const uses = Math.round(total * h.usesFrac);
    const r = report({ total, free: Math.max(0, total - uses - 111), cached: 100, buffers: 10, committedAs: h.committed, balloonCurrent: current, psiSomeUs: null, swapFree: 1024 });
    doms.push({ staticMax: h.staticMax, current, weight: h.weight, min: h.min, report: r, honest: true });
  }
  for (const h of hostile) {
    const current = Math.max(64, Math.round(h.staticMax * h.frac));
    doms.push({ staticMax: h.staticMax, current, weight: h.weight, min: 'auto', report: h.report === 'consistent' ? consistentLie(current) : h.report, honest: false });
  }
  const rules = doms
    .map((d, i) => `  - match: { name: "vm${i + 1}" }\n    weight: ${d.weight}\n    min: ${d.min === 'auto' ? 'auto' : `${d.min}M`}`)
    .join('\n');
  const p = parsePolicy(`host: { reserve: 64M }\ndomains:\n${rules}\n`, 'hostile.yaml');
  const domains: DomainObservation[] = [domain({ domid: 0, name: 'Domain-0', current: 512, staticMax: null })];
  let used = 512;
  doms.forEach((d, i) => {
    used += d.current;
    domains.push(domain({ domid: i + 1, current: d.current, staticMax: d.staticMax, report: d.report, reportAtMs: 0 }));
  });
  const obs: Observation = observation({ total: used + extraFree, free: extraFree }, domains);
  return { doms, policy: p, obs };
}

function adminMinKib(d: Dom): number {
  const max = d.staticMax * MiB;
  return Math.min(max, d.min === 'auto' ? xenlinuxMinimumKib(max) : d.min * MiB);
}

describe('hostile reports cannot take an honest guest\'s fair share', () => {
  it('every honest guest keeps min(what it uses, its weighted fair share); no target above max; report floors bounded', () => {
    fc.assert(
      fc.property(
        fc.array(honestArb, { minLength: 1, maxLength: 5 }),
        fc.array(hostileArb, { minLength: 1, maxLength: 3 }),
        fc.integer({ min: 0, max: 4096 }),
        (honest, hostile, extraFree) => {
          const { doms, policy: p, obs } = build(honest, hostile, extraFree);
          const r = step(initialState(), obs, p, 1000);
          const budget = r.explanation.host.allocatableKib;
          const mins = doms.map(adminMinKib);
          const sumMins = mins.reduce((s, m) => s + m, 0);
          fc.pre(sumMins <= budget);
          const caps = doms.map((d, i) => d.staticMax * MiB - (mins[i] ?? 0));
          const shares = referenceShares(caps, doms.map((d) => d.weight), budget - sumMins);
          doms.forEach((d, i) => {
            const e = r.explanation.domains.find((x) => x.domid === i + 1);
            expect(e?.managed).toBe(true);
            if (!e || e.desiredKib === null || e.maxKib === null || e.minKib === null) return;
            const fair = (mins[i] ?? 0) + (shares[i] ?? 0);
            // Never above max, whatever it claims.
            expect(e.desiredKib).toBeLessThanOrEqual(d.staticMax * MiB);
            expect(e.newTargetKib ?? 0).toBeLessThanOrEqual(d.staticMax * MiB);
            // A floor from a report: no higher than what it holds (and lowered to its fair share
            // when it would take from the others' guarantees, which the next check covers).
            expect(e.minKib).toBeLessThanOrEqual(Math.max(mins[i] ?? 0, d.current * MiB) + 4);
            if (d.honest) {
              const uses = e.useKib ?? e.needKib ?? 0;
              // Pages: whole 4 KiB pages per round of the allocation.
              expect(e.desiredKib).toBeGreaterThanOrEqual(Math.min(uses, fair) - 8);
            }
          });
        },
      ),
      { numRuns: 300, seed: 11 },
    );
  });

  it('a report describing more memory than the domain holds is rejected, with a reason, and counts as no report', () => {
    const lie = report({ total: 1_000_000 / 1024, free: 1, committedAs: 4_000, swapTotal: 1024, swapFree: 0, psiAvg10: 100 });
    const obs = observation({ total: 2048, free: 100 }, [domain({ domid: 1, current: 256, staticMax: 1024, report: lie })]);
    const r = step(initialState(), obs, policy(), 1000);
    const d = r.explanation.domains.find((x) => x.domid === 1);
    expect(d?.reportRejected).toMatch(/^MemTotal \d+ kB is more than the domain holds/);
    expect(d?.reportRejections).toBe(1);
    expect(d?.flags).toContain('report-rejected');
    expect(d?.needKib).toBeNull();
    expect(d?.bound).toBe('hold');
  });

  it('a Qubes value of 2^40 KiB is rejected; counters going back while uptime goes on are rejected', () => {
    const q: GuestReport = { ...report(), format: 'qubes', seq: null, uptimeS: null, mem: { ...report().mem, totalKib: null, freeKib: null, usedKib: KIB_MAX } };
    const obs = observation({ total: 4096, free: 100 }, [domain({ domid: 1, current: 512, staticMax: 1024, report: q })]);
    const r = step(initialState(), obs, policy(), 1000);
    expect(r.explanation.domains.find((x) => x.domid === 1)?.reportRejected).toMatch(/^used memory/);

    const ok = report({ total: 472, balloonCurrent: 512, uptimeS: 100, pswpin: 5000, psiSomeUs: null });
    const backwards = report({ total: 472, balloonCurrent: 512, uptimeS: 102, pswpin: 10, psiSomeUs: null });
    const a = step(initialState(), observation({ total: 4096, free: 100 }, [domain({ domid: 1, current: 512, staticMax: 1024, report: ok, reportAtMs: 1 })]), policy(), 1000);
    const b = step(a.state, observation({ total: 4096, free: 100 }, [domain({ domid: 1, current: 512, staticMax: 1024, report: backwards, reportAtMs: 2000 })]), policy(), 2000);
    expect(b.explanation.domains.find((x) => x.domid === 1)?.reportRejected).toMatch(/^pswpin went back/);
    // A reboot (uptime back too) is not a lie.
    const reboot = report({ total: 472, balloonCurrent: 512, uptimeS: 5, pswpin: 10, psiSomeUs: null });
    const c = step(a.state, observation({ total: 4096, free: 100 }, [domain({ domid: 1, current: 512, staticMax: 1024, report: reboot, reportAtMs: 2000 })]), policy(), 2000);
    expect(c.explanation.domains.find((x) => x.domid === 1)?.reportRejected).toBeNull();
  });
});

describe('a guest whose claims flip is damped', () => {
  it('holds its own levels at the larger of its recent claims, so its target stops swinging', () => {
    const p = policy();
    let state = initialState();
    const desired: number[] = [];
    const flags: string[][] = [];
    for (let t = 1; t <= 40; t++) {
      const big = Math.floor(t / 3) % 2 === 0;
      const r = report({ total: 984, balloonCurrent: 1024, committedAs: big ? 900 : 100, uptimeS: 100 + t, psiSomeUs: null });
      const obs = observation({ total: 8192, free: 4096 }, [domain({ domid: 1, current: 1024, staticMax: 2048, report: r, reportAtMs: t * 1000 })]);
      const out = step(state, obs, p, t * 1000);
      state = out.state;
      const d = out.explanation.domains.find((x) => x.domid === 1);
      desired.push(d?.desiredKib ?? 0);
      flags.push(d?.flags ?? []);
    }
    // Damped after three reversals; from then on its allocation holds the big claim.
    expect(flags.at(-1)).toContain('damped');
    const tail = desired.slice(20);
    expect(new Set(tail).size).toBe(1);
    expect(Math.max(...desired.slice(0, 12))).toBe(tail[0]);
  });
});
