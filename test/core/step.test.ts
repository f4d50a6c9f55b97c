import { describe, expect, it } from 'vitest';
import { initialState, step } from '../../src/core/index.js';
import { domain, MiB, observation, policy, report, reservation } from './fixtures.js';

const idle = (committedAs = 100) => report({ committedAs, total: 463, balloonCurrent: 512, psiSomeUs: null });

describe('which domains are managed', () => {
  it('leaves dom0, dying, shutdown and policy-excluded domains alone; their memory is fixed', () => {
    const obs = observation({ total: 4096, free: 1024 }, [
      domain({ domid: 0, name: 'Domain-0', current: 1024, staticMax: null, report: idle() }),
      domain({ domid: 1, current: 512, dying: true, report: idle() }),
      domain({ domid: 2, current: 512, shutdown: true, report: idle() }),
      domain({ domid: 3, name: 'win-1', current: 512, report: idle() }),
      domain({ domid: 4, current: 512, report: idle() }),
    ]);
    const r = step(initialState(), obs, policy('domains: [ { match: { name: "win-*" }, manage: false } ]'), 0);
    expect(r.actions.every((a) => a.domid === 4)).toBe(true);
    expect(r.actions.length).toBeGreaterThan(0);
    expect(r.explanation.domains.map((d) => d.unmanagedReason)).toEqual(['dom0', 'dying', 'shutdown', 'policy', null]);
    expect(r.explanation.host.budgetKib).toBe((1024 + 512 - 64) * MiB);
  });

  it('leaves a domain the toolstack is still building (no memory/target yet) alone', () => {
    // As seen on real Xen during `xl create`: the domain is in the hypervisor's list with no
    // memory and maxmem 0, and its xenstore home has no memory/target or static-max yet.
    const obs = observation({ total: 2048, free: 1000 }, [
      domain({ domid: 0, name: 'Domain-0', current: 512, staticMax: null }),
      domain({ domid: 1, name: '', current: 0, target: null, maxmem: 0, staticMax: null }),
      domain({ domid: 2, current: 40, target: null, maxmem: 129, staticMax: null }),
    ]);
    const r = step(initialState(), obs, policy(), 0);
    expect(r.actions).toEqual([]);
    expect(r.explanation.domains.map((d) => d.unmanagedReason)).toEqual(['dom0', 'building', 'building']);
  });

  it('manages dom0 when the policy says so', () => {
    const obs = observation({ total: 4096, free: 1024 }, [domain({ domid: 0, name: 'Domain-0', current: 3072, staticMax: 4096, report: idle() })]);
    const r = step(initialState(), obs, policy('host: { manage_dom0: true }'), 0);
    expect(r.explanation.domains[0]?.managed).toBe(true);
    // dom0's maxmem is left alone (it is usually unlimited); only its target moves.
    expect(r.actions).toEqual([{ kind: 'setTarget', domid: 0, kib: 3008 * MiB }]);
  });

  it('counts growth an unmanaged domain was promised as taken', () => {
    const obs = observation({ total: 4096, free: 1024 }, [
      domain({ domid: 0, name: 'Domain-0', current: 1024, target: 1536, maxmem: 2048, staticMax: null }),
    ]);
    const r = step(initialState(), obs, policy(), 0);
    expect(r.explanation.host.fixedKib).toBe((1024 + 512) * MiB);
    expect(r.explanation.host.budgetKib).toBe((1024 - 64 - 512) * MiB);
  });
});

describe('actions', () => {
  it('sets maxmem to target + videoram + 1 MiB: raised before growing, lowered after shrinking', () => {
    const obs = observation({ total: 8192, free: 4096 }, [
      domain({ domid: 1, current: 1024, staticMax: 2048, report: idle(100) }),
      domain({ domid: 2, current: 256, staticMax: 2048, videoram: 8, report: report({ committedAs: 800, total: 207, balloonCurrent: 256, psiSomeUs: null }) }),
    ]);
    const r = step(initialState(), obs, policy(), 0);
    expect(r.actions).toEqual([
      { kind: 'setTarget', domid: 1, kib: 960 * MiB },
      { kind: 'setMaxmem', domid: 1, kib: 961 * MiB },
      { kind: 'setMaxmem', domid: 2, kib: expect.any(Number) },
      { kind: 'setTarget', domid: 2, kib: expect.any(Number) },
    ]);
    const [, , max2, target2] = r.actions as [unknown, unknown, { kib: number }, { kib: number }];
    expect(max2.kib).toBe(target2.kib + 8 * MiB + 1024);
  });

  it('does not write a change smaller than the hysteresis', () => {
    // Need is 49 + 100 + 32 = 181 MiB; the target is 190 MiB: within 16M.
    const obs = observation({ total: 4096, free: 2048 }, [domain({ domid: 1, current: 190, report: report({ committedAs: 100, total: 141, balloonCurrent: 190, psiSomeUs: null }) })]);
    const r = step(initialState(), obs, policy(), 0);
    expect(r.explanation.domains[0]?.desiredKib).toBe(181 * MiB);
    expect(r.explanation.domains[0]?.limiter).toBe('deadband');
    expect(r.actions).toEqual([]);
  });

  it('never rewrites an unchanged value (maxmem compared in pages)', () => {
    const obs = observation({ total: 4096, free: 2048 }, [domain({ domid: 1, current: 190, report: report({ committedAs: 100, total: 141, balloonCurrent: 190, psiSomeUs: null }) })]);
    const d = obs.domains[0];
    if (d) d.maxmemKib = 190 * MiB + 1024 + 3; // Xen keeps pages; 3 KiB of noise is the same page count
    expect(step(initialState(), obs, policy(), 0).actions).toEqual([]);
  });

  it('clamps a target above a lowered policy max at once', () => {
    const obs = observation({ total: 8192, free: 2048 }, [domain({ domid: 1, current: 2048, staticMax: 4096, report: report({ committedAs: 1800, total: 1999, balloonCurrent: 2048, psiSomeUs: null }) })]);
    const r = step(initialState(), obs, policy('defaults: { max: 1G }'), 0);
    expect(r.actions[0]).toEqual({ kind: 'setTarget', domid: 1, kib: 1024 * MiB });
  });
});

describe('reservations', () => {
  const host = () => [
    domain({ domid: 0, name: 'Domain-0', current: 512, staticMax: null }),
    domain({ domid: 1, current: 700, staticMax: 1024, report: idle(100) }),
    domain({ domid: 2, current: 700, staticMax: 1024, report: idle(100) }),
  ];

  it('are ready when free memory covers them, first come first served', () => {
    const obs = observation({ total: 2048, free: 136 + 300 }, host(), [reservation('b', 200, 5), reservation('a', 300, 1)]);
    obs.host.totalKib = (512 + 1400 + 436) * MiB;
    const r = step(initialState(), obs, policy(), 0);
    const states = Object.fromEntries(r.explanation.reservations.map((x) => [x.id, x.state]));
    expect(states).toEqual({ a: 'ready', b: 'pending' });
  });

  it('are never handed to growing guests while held', () => {
    // The guest's need jumps (it becomes active, so the allocation keeps its need ahead of the
    // reservation), but the memory the ready reservation holds stays free.
    const p = policy();
    const guest = (committedAs: number) =>
      domain({ domid: 1, current: 256, staticMax: 1024, report: report({ committedAs, total: 207, balloonCurrent: 256, psiSomeUs: null }), reportAtMs: committedAs });
    const first = step(initialState(), observation({ total: 2048, free: 400 }, [guest(100)], [reservation('r', 300, 0)]), p, 0);
    const r = step(first.state, observation({ total: 2048, free: 400 }, [guest(900)], [reservation('r', 300, 0)]), p, 1000);
    expect(r.explanation.reservations[0]?.state).toBe('ready');
    expect(r.explanation.domains[0]?.flags).toContain('active');
    expect(r.explanation.domains[0]?.desiredKib).toBeGreaterThan((256 + 36) * MiB);
    // 400 free - 64 reserve - 300 reserved leaves 36 MiB to grow into.
    expect(r.actions.find((a) => a.kind === 'setTarget')).toEqual({ kind: 'setTarget', domid: 1, kib: (256 + 36) * MiB });
    expect(r.explanation.domains[0]?.limiter).toBe('free-memory');
  });

  it('shrink others to make room (pending), and say why an impossible one fails', () => {
    const obs = observation({ total: 2048, free: 136 }, host(), [reservation('fits', 600, 0), reservation('huge', 900, 1)]);
    const r = step(initialState(), obs, policy(), 0);
    const [fits, huge] = r.explanation.reservations;
    expect(fits?.state).toBe('pending');
    expect(fits?.reason).toMatch(/^freeing memory: shrinking 2 domain\(s\)/);
    expect(huge?.state).toBe('impossible');
    expect(huge?.reason).toMatch(/leave only .* after 600M reserved earlier; 900M requested$/);
    expect(r.actions.filter((a) => a.kind === 'setTarget').length).toBe(2);
  });

  it('wait, whole, without squeezing anyone, while busy domains need the memory', () => {
    const p = policy();
    // dom1's need jumps (it is active); 600 MiB would only fit by taking what it needs.
    const busy = (committedAs: number) =>
      domain({ domid: 1, current: 900, staticMax: 2048, report: report({ committedAs, total: 851, balloonCurrent: 900, psiSomeUs: null }), reportAtMs: committedAs });
    // (Its report must fit what it holds, or the trust checks reject it.)
    const idleGuest = domain({ domid: 2, current: 300, staticMax: 1024, report: report({ committedAs: 100, total: 251, balloonCurrent: 300, psiSomeUs: null }) });
    const first = step(initialState(), observation({ total: 2048, free: 336 }, [busy(100), idleGuest]), p, 0);
    const r = step(first.state, observation({ total: 2048, free: 336 }, [busy(820), idleGuest], [reservation('r', 600, 0)]), p, 1000);
    const res = r.explanation.reservations[0];
    expect(res?.state).toBe('pending');
    expect(res?.reason).toMatch(/^waiting: running domains need the memory \(busy ones their need, idle ones what they use\); .* short until they need less$/);
    expect(r.explanation.host.honouredKib).toBe(0);
    // Nobody is pushed below its need for it: the busy guest keeps its headroom too.
    for (const d of r.explanation.domains) expect(d.desiredKib).toBe(d.needKib);
  });

  it('push an idle guest no more than `squeeze` below what it uses in RAM and swap together', () => {
    // An idle guest using 500 MiB (49 MiB kernel): 500 MiB fits only by pushing it to
    // 49 + 500 - 32 MiB. Once 300 MiB of it is already in swap, it gives nothing more.
    const guest = (swapped: number) =>
      domain({
        domid: 1, current: 900, staticMax: 2048,
        report: report({ committedAs: 600, total: 851, free: 242, balloonCurrent: 900, swapFree: 1024 - swapped, psiSomeUs: null }),
      });
    const run = (swapped: number) =>
      step(initialState(), observation({ total: 2048, free: 300 }, [guest(swapped)], [reservation('r', 500, 0)]), policy(), 0).explanation;
    const fresh = run(0);
    expect(fresh.host.honouredKib).toBe(500 * MiB);
    // 300 free + 900 held - 64 reserve - 500 reserved: above its squeeze floor (517 MiB).
    expect(fresh.domains[0]?.desiredKib).toBe(636 * MiB);
    const swappedOut = run(300);
    expect(swappedOut.host.honouredKib).toBe(0);
    expect(swappedOut.reservations[0]?.reason).toMatch(/^waiting: /);
    expect(swappedOut.domains[0]?.desiredKib).toBe(swappedOut.domains[0]?.needKib);
  });

  it('ignore expired reservations and report them as expired', () => {
    const obs = observation({ total: 2048, free: 136 }, host(), [reservation('old', 600, 0, 1000)]);
    const r = step(initialState(), obs, policy(), 5000);
    expect(r.explanation.reservations).toEqual([{ id: 'old', kib: 600 * MiB, state: 'expired', reason: 'expired before it was used', ageMs: 5000 }]);
    expect(r.explanation.host.reservedKib).toBe(0);
  });
});

describe('restarts and reboots', () => {
  it('adopts the targets it finds: a fresh state never jolts a guest beyond the rate limit', () => {
    const obs = observation({ total: 8192, free: 4096 }, [domain({ domid: 1, current: 3000, staticMax: 4096, report: idle(100), reportAtMs: 123_000 })]);
    const r = step(initialState(), obs, policy(), 123_456);
    const t = r.actions.find((a) => a.kind === 'setTarget');
    expect(t).toEqual({ kind: 'setTarget', domid: 1, kib: (3000 - 64) * MiB });
  });

  it('forgets a domain whose domid now names another domain', () => {
    const p = policy();
    const first = step(initialState(), observation({ total: 4096, free: 2048 }, [domain({ domid: 7, name: 'old', current: 512, report: idle() })]), p, 0);
    expect(first.state.domains.get(7)?.name).toBe('old');
    const second = step(first.state, observation({ total: 4096, free: 2048 }, [domain({ domid: 7, name: 'new', current: 512, report: idle() })]), p, 1000);
    expect(second.state.domains.get(7)?.name).toBe('new');
    expect(second.state.domains.get(7)?.samples).toHaveLength(1);
  });

  it('does not mutate the state or the observation it is given', () => {
    const obs = observation({ total: 4096, free: 2048 }, [domain({ domid: 1, current: 512, report: idle() })]);
    const s0 = initialState();
    const frozen = JSON.stringify(obs);
    const r1 = step(s0, obs, policy(), 0);
    expect(JSON.stringify(obs)).toBe(frozen);
    expect(s0.domains.size).toBe(0);
    step(r1.state, obs, policy(), 1000);
    expect(r1.state.domains.get(1)?.lastDownMs).toBe(0);
  });
});
