import { describe, expect, it } from 'vitest';
import { estimate, estimateWithFallback, initialState, step, xenlinuxMinimumKib, resolveLimits } from '../../src/core/index.js';
import { readPressure, unswappableKib } from '../../src/core/need.js';
import type { Rates } from '../../src/core/state.js';
import { ingest, sampleOf } from '../../src/core/signals.js';
import { BUILTIN_SETTINGS } from '../../src/policy/index.js';
import { domain, MiB, observation, policy, report } from './fixtures.js';

describe('estimators', () => {
  const r = report({ committedAs: 300, total: 1000, free: 200, available: 600, buffers: 50, cached: 300, shmem: 100, swapTotal: 1024, swapFree: 1000 });

  it('committed_as is Committed_AS', () => {
    expect(estimate('committed_as', r.mem)).toBe(300 * MiB);
  });

  it('used counts tmpfs (Shmem) as used, and swap in use', () => {
    // 1000 - 200 free - 50 buffers - (300 cached - 100 shmem) + 24 swap used
    expect(estimate('used', r.mem)).toBe((1000 - 200 - 50 - 200 + 24) * MiB);
  });

  it('used falls back to the one number Qubes guests publish', () => {
    const q = report({ total: null, free: null, used: 420 });
    expect(estimate('used', q.mem)).toBe(420 * MiB);
  });

  it('available is MemTotal - MemAvailable', () => {
    expect(estimate('available', r.mem)).toBe(400 * MiB);
  });

  it('falls back to another estimator when the report lacks the preferred one', () => {
    const q = report({ committedAs: null, total: null, free: null, available: null, used: 420 });
    expect(estimateWithFallback('committed_as', q.mem)).toEqual({ estimator: 'used', kib: 420 * MiB });
    const none = report({ committedAs: null, total: null, free: null, available: null });
    expect(estimateWithFallback('committed_as', none.mem)).toBeNull();
  });

  it('tries the preferred estimator first, then the others in order (committed_as, used, available)', () => {
    const all = report({ committedAs: 300, total: 1000, free: 200, available: 600, buffers: 0, cached: 0, swapTotal: 0, swapFree: 0 });
    expect(estimateWithFallback('used', all.mem)).toEqual({ estimator: 'used', kib: 800 * MiB });
    expect(estimateWithFallback('available', all.mem)).toEqual({ estimator: 'available', kib: 400 * MiB });
    const noUsed = report({ committedAs: 300, total: null, free: null, available: null, used: null });
    expect(estimateWithFallback('used', noUsed.mem)).toEqual({ estimator: 'committed_as', kib: 300 * MiB });
    const noCommitted = report({ committedAs: null, total: 1000, free: 200, available: 600, buffers: 0, cached: 0, swapTotal: 0, swapFree: 0 });
    expect(estimateWithFallback('committed_as', noCommitted.mem)).toEqual({ estimator: 'used', kib: 800 * MiB });
    const onlyAvailable = report({ committedAs: null, total: 1000, free: null, available: 600, used: null });
    expect(estimateWithFallback('committed_as', onlyAvailable.mem)).toEqual({ estimator: 'available', kib: 400 * MiB });
  });
});

describe('pressure readings', () => {
  const thresholds = BUILTIN_SETTINGS.pressure;
  const rates = (r: Partial<Rates>): Rates => ({ swapInKibps: 0, majorFaultsPs: 0, refaultKibps: 0, psiSome: 0, spanMs: 1000, ...r });

  it('names every signal over its threshold, and none when calm', () => {
    expect(readPressure(null, thresholds)).toEqual({ pressured: false, signals: [] });
    expect(readPressure(rates({}), thresholds)).toEqual({ pressured: false, signals: [] });
    expect(readPressure(rates({ swapInKibps: 4096, psiSome: 0.5 }), thresholds)).toEqual({ pressured: true, signals: ['swap-in', 'psi'] });
    expect(readPressure(rates({ refaultKibps: 64 * 1024 }), thresholds)).toEqual({ pressured: true, signals: ['refaults'] });
  });

  it('a pressured reading after calm ones is not affected by them (calm readings are shared)', () => {
    const calm = readPressure(rates({}), thresholds);
    const hot = readPressure(rates({ swapInKibps: 4096 }), thresholds);
    expect(calm.signals).toEqual([]);
    expect(hot.signals).toEqual(['swap-in']);
    expect(readPressure(rates({}), thresholds).signals).toEqual([]);
  });
});

describe('floors', () => {
  it('follows the xenlinux minimum_target curve', () => {
    expect(xenlinuxMinimumKib(1024 * MiB)).toBe(232 * MiB);
    expect(xenlinuxMinimumKib(512 * MiB)).toBe(168 * MiB);
    expect(xenlinuxMinimumKib(256 * MiB)).toBe(104 * MiB);
    expect(xenlinuxMinimumKib(64 * MiB)).toBe(40 * MiB);
    expect(xenlinuxMinimumKib(8192 * MiB)).toBe(552 * MiB);
  });

  it('keeps min_usable above the measured kernel footprint, never above max', () => {
    const s = { ...BUILTIN_SETTINGS };
    expect(resolveLimits(s, 1024 * MiB, null).minKib).toBe(64 * MiB);
    expect(resolveLimits(s, 1024 * MiB, 120 * MiB)).toMatchObject({ minKib: 152 * MiB, floor: 'kernel' });
    expect(resolveLimits({ ...s, max: { kind: 'kib', kib: 150 * MiB } }, 1024 * MiB, 120 * MiB).minKib).toBe(150 * MiB);
    expect(resolveLimits({ ...s, min: { kind: 'auto' } }, 1024 * MiB, null).minKib).toBe(232 * MiB);
    expect(resolveLimits({ ...s, min: { kind: 'fraction', fraction: 0.5 }, max: { kind: 'fraction', fraction: 0.75 } }, 1024 * MiB, null))
      .toMatchObject({ minKib: 512 * MiB, maxKib: 768 * MiB });
  });

  it('never goes below what the guest uses and cannot swap (the OOM guard)', () => {
    // 50 MiB kernel footprint; 900 MiB in use with 400 MiB of swap free: 500 MiB must stay in RAM.
    const r = report({ total: 974, free: 24, buffers: 10, cached: 40, shmem: 0, swapTotal: 1024, swapFree: 400, balloonCurrent: 1024 });
    expect(unswappableKib(r.mem)).toBe(500 * MiB);
    expect(resolveLimits(BUILTIN_SETTINGS, 2048 * MiB, 50 * MiB, 500 * MiB)).toMatchObject({ minKib: (50 + 500 + 32) * MiB, floor: 'oom' });
    // Through the step: a policy min of 64M does not let the target go below that.
    const obs = observation({ total: 8192, free: 4096 }, [domain({ domid: 1, current: 1024, staticMax: 2048, report: r, reportAtMs: 0 })]);
    const d = step(initialState(), obs, policy('defaults: { need: { estimator: available } }'), 0).explanation.domains[0];
    expect(d?.minKib).toBe(582 * MiB);
  });
});

describe('rates from consecutive reports', () => {
  const at = (ms: number, pswpin: number, uptimeS: number) => sampleOf(report({ pswpin, uptimeS }), ms);

  it('derives swap-in per second from counters (pages of 4 KiB)', () => {
    const first = ingest([], at(0, 1000, 100));
    const second = ingest(first.samples, at(2000, 1000 + 512, 102));
    expect(second.rates?.swapInKibps).toBe(1024);
    expect(second.reset).toBe(false);
  });

  it('treats a counter going backwards or uptime decreasing as a reboot: no negative, no huge rate', () => {
    const a = ingest([], at(0, 50_000, 5000));
    const rebootCounter = ingest(a.samples, at(1000, 10, 5001));
    expect(rebootCounter.reset).toBe(true);
    expect(rebootCounter.rates).toBeNull();
    const rebootUptime = ingest(a.samples, at(1000, 60_000, 3));
    expect(rebootUptime.reset).toBe(true);
    const next = ingest(rebootUptime.samples, at(2000, 60_256, 4));
    expect(next.rates?.swapInKibps).toBe(1024);
  });

  it('keeps only the last few samples, oldest first, and never changes the history it was given', () => {
    let samples = ingest([], at(0, 0, 1)).samples;
    for (let i = 1; i <= 10; i++) {
      const before = [...samples];
      const got = ingest(samples, at(i * 1000, i * 256, 1 + i));
      expect(samples).toEqual(before);
      expect(got.samples.length).toBe(Math.min(i + 1, 4));
      expect(got.samples[got.samples.length - 1]?.atMs).toBe(i * 1000);
      expect(got.samples.map((s) => s.atMs)).toEqual([...got.samples.map((s) => s.atMs)].sort((a, b) => a - b));
      samples = got.samples;
    }
  });

  it('caps absurd rates', () => {
    const a = ingest([], at(0, 0, 1));
    const b = ingest(a.samples, at(1000, 2 ** 50, 2));
    expect(b.rates?.swapInKibps).toBeLessThanOrEqual(64 * 1024 * 1024);
  });
});

describe('need in the step', () => {
  const obsWith = (r: ReturnType<typeof report>, atMs: number, current = 1024, extra: Partial<Parameters<typeof domain>[0]> = {}) =>
    observation({ total: 8192, free: 4096 }, [domain({ domid: 1, current, staticMax: 4096, report: r, reportAtMs: atMs, ...extra })]);

  it('is kernel footprint + estimate x factor + headroom', () => {
    const p = policy('defaults: { need: { factor: 1.5, headroom: 20%, min_headroom: 8M } }');
    const r = step(initialState(), obsWith(report({ committedAs: 400, total: 974, balloonCurrent: 1024, psiSomeUs: null }), 0), p, 0);
    const d = r.explanation.domains[0];
    expect(d?.overheadKib).toBe(50 * MiB);
    expect(d?.coreNeedKib).toBe((50 + 600) * MiB);
    expect(d?.needKib).toBe((50 + 600 + 120) * MiB);
  });

  it('puts the use level at footprint + what it holds in RAM and swap + cache_in_use of its cache + min_headroom', () => {
    // 974 MiB MemTotal, 50 MiB kernel: 200 free, 10 buffers, 300 cached (100 of it tmpfs), 64 in swap.
    // used = 974 - 200 - 10 - 200 + 64 = 628; cache = 10 + 200 = 210.
    const r = report({ committedAs: 900, total: 974, free: 200, buffers: 10, cached: 300, shmem: 100, swapTotal: 1024, swapFree: 960, balloonCurrent: 1024, psiSomeUs: null });
    const useOf = (yaml: string) => step(initialState(), obsWith(r, 0), policy(yaml), 0).explanation.domains[0]?.useKib;
    expect(useOf('')).toBe((50 + 628 + 105 + 32) * MiB);
    expect(useOf('defaults: { need: { cache_in_use: 0% } }')).toBe((50 + 628 + 32) * MiB);
    expect(useOf('defaults: { need: { cache_in_use: 100%, min_headroom: 8M } }')).toBe((50 + 628 + 210 + 8) * MiB);
    // Never above the need: a guest using more than Committed_AS says is met at its need.
    expect(useOf('defaults: { need: { factor: 0.5 } }')).toBe(step(initialState(), obsWith(r, 0), policy('defaults: { need: { factor: 0.5 } }'), 0).explanation.domains[0]?.needKib);
  });

  it('holds the target when the report is stale or missing, and says so', () => {
    const p = policy('defaults: { need: { stale_after: 10s } }');
    const stale = step(initialState(), obsWith(report({ committedAs: 100 }), 0, 2000, { target: 2000 }), p, 60_000);
    const d = stale.explanation.domains[0];
    expect(d?.bound).toBe('hold');
    expect(d?.flags).toEqual(expect.arrayContaining(['hold', 'stale']));
    expect(stale.actions.filter((a) => a.kind === 'setTarget')).toEqual([]);
    const none = step(initialState(), observation({ total: 8192, free: 4096 }, [domain({ domid: 1, current: 2000, staticMax: 4096 })]), p, 0);
    expect(none.explanation.domains[0]?.flags).toContain('no-report');
    expect(none.actions.filter((a) => a.kind === 'setTarget')).toEqual([]);
  });

  it('raises the need fast under pressure and lets it decay slowly after a quiet period', () => {
    const p = policy('defaults: { pressure: { swap_in: 1M/s, step: 64M, quiet: 10s, decay: 4M/s } }');
    let state = initialState();
    const base = { committedAs: 200, total: 974, balloonCurrent: 1024, psiSomeUs: null, uptimeS: 100 };
    // Quiet first, then 100 MiB/s of swap-in while it already holds more than its estimate.
    state = step(state, obsWith(report({ ...base, pswpin: 0 }), 0), p, 0).state;
    const hit = step(state, obsWith(report({ ...base, pswpin: 25_600, uptimeS: 101 }), 1000), p, 1000);
    const raised = hit.explanation.domains[0];
    expect(raised?.flags).toEqual(expect.arrayContaining(['pressure', 'pressure:swap-in', 'active']));
    // The boost is the larger of the step (64M) and a second's worth of swap-in (100M).
    expect(raised?.pressureBoostKib).toBe(100 * MiB);
    expect(raised?.coreNeedKib).toBe((50 + 200 + 100) * MiB);
    // No more pressure: the boost holds for the quiet period, then decays at 4 MiB/s.
    state = hit.state;
    const boost = raised?.pressureBoostKib ?? 0;
    for (let t = 2000; t <= 10_000; t += 1000) {
      const r = step(state, obsWith(report({ ...base, pswpin: 25_600, uptimeS: 100 + t / 1000 }), t), p, t);
      state = r.state;
      expect(r.explanation.domains[0]?.pressureBoostKib).toBe(boost);
    }
    const r = step(state, obsWith(report({ ...base, pswpin: 25_600, uptimeS: 112 }), 12_000), p, 12_000);
    const after = r.explanation.domains[0]?.pressureBoostKib ?? 0;
    expect(after).toBeLessThan(boost);
    expect(boost - after).toBeLessThanOrEqual(2 * 4 * MiB + 1);
  });

  it('ignores pressure that a shortfall explains (it holds less than its estimate)', () => {
    const p = policy();
    const base = { committedAs: 900, total: 462, balloonCurrent: 512, psiSomeUs: null, uptimeS: 100 };
    let state = step(initialState(), obsWith(report({ ...base, pswpin: 0 }), 0, 512), p, 0).state;
    const r = step(state, obsWith(report({ ...base, pswpin: 25_600, uptimeS: 101 }), 1000, 512), p, 1000);
    state = r.state;
    const d = r.explanation.domains[0];
    expect(d?.flags).toContain('pressure');
    expect(d?.pressureBoostKib).toBeNull();
  });

  it('counts a domain whose memory in use climbs as active, though its Committed_AS stays put', () => {
    const p = policy();
    const warming = (free: number, at: number) =>
      obsWith(report({ committedAs: 1800, total: 1974, free, cached: 20, buffers: 4, shmem: 0, balloonCurrent: 2024, psiSomeUs: null, uptimeS: 100 + at / 1000 }), at, 2024);
    let state = step(initialState(), warming(1500, 0), p, 0).state;
    const quiet = step(state, warming(1500, 1000), p, 1000);
    expect(quiet.explanation.domains[0]?.flags).not.toContain('active');
    state = quiet.state;
    const r = step(state, warming(1400, 2000), p, 2000);
    expect(r.explanation.domains[0]?.flags).toContain('active');
  });

  it('never lets a guest claiming pressure and a huge need past its max', () => {
    const p = policy('defaults: { max: 2G }');
    let state = initialState();
    state = step(state, obsWith(report({ committedAs: 10 ** 7, pswpin: 0, psiSomeUs: null }), 0), p, 0).state;
    const r = step(state, obsWith(report({ committedAs: 10 ** 7, pswpin: 10 ** 12, psiSomeUs: null, uptimeS: 101 }), 1000), p, 1000);
    const d = r.explanation.domains[0];
    expect(d?.needKib).toBe(2 * 1024 * MiB);
    for (const a of r.actions) if (a.kind === 'setTarget') expect(a.kib).toBeLessThanOrEqual(2 * 1024 * MiB);
  });
});
