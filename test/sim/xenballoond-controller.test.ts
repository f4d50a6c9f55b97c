import { describe, expect, it } from 'vitest';
import type { Observation } from '../../src/core/types.js';
import { XenballoondController, LAUNCH_SLACK_KIB } from '../../src/sim/xenballoond-controller.js';
import { domain, MiB, observation, policy, report } from '../core/fixtures.js';

const idle = (current: number) => report({ committedAs: 100, total: current - 49, balloonCurrent: current, psiSomeUs: null });

/** dom0 256M and two idle guests holding 700M each on a 2 GiB host: 392 MiB free. */
function host(g1 = 700, g2 = 700, extra: Observation['domains'] = []): Observation {
  const used = 256 + g1 + g2 + extra.reduce((s, d) => s + d.currentKib / MiB, 0);
  return observation({ total: 2048, free: 2048 - used }, [
    domain({ domid: 0, name: 'Domain-0', current: 256, staticMax: null }),
    domain({ domid: 1, current: g1, staticMax: 1024, report: idle(g1), reportAtMs: 0 }),
    domain({ domid: 2, current: g2, staticMax: 1024, report: idle(g2), reportAtMs: 0 }),
    ...extra,
  ]);
}

describe('XenballoondController', () => {
  it('runs the core at the policy interval', () => {
    const c = new XenballoondController({ policy: policy('interval: 2s') });
    expect(c.name).toBe('xenballoond');
    expect(c.intervalMs).toBe(2000);
    const actions = c.step(host(), 0);
    expect(actions.filter((a) => a.kind === 'setTarget').map((a) => a.domid)).toEqual([1, 2]);
  });

  it('says go when free memory already covers memory= plus the build overhead', () => {
    const c = new XenballoondController({ policy: policy() });
    const obs = host();
    const id = c.requestLaunch({ memoryKib: 256 * MiB, maxmemKib: 512 * MiB, name: 'new' }, obs, 0);
    expect(c.reservations()[0]?.kib).toBe(256 * MiB + LAUNCH_SLACK_KIB);
    expect(c.launchStatus(id, obs, 0)).toEqual({ state: 'go' });
  });

  it('waits while others shrink for it, then says go; the memory is not given to others meanwhile', () => {
    const c = new XenballoondController({ policy: policy() });
    let g = 700;
    let obs = host(g, g);
    const id = c.requestLaunch({ memoryKib: 512 * MiB, maxmemKib: 1024 * MiB, name: 'new' }, obs, 0);
    expect(c.launchStatus(id, obs, 0)).toEqual({ state: 'wait' });
    let t = 0;
    let status = c.launchStatus(id, obs, t);
    while (status.state === 'wait' && t < 60_000) {
      const actions = c.step(obs, t);
      for (const a of actions) if (a.kind === 'setTarget') expect(a.kib).toBeLessThan(g * MiB + 1);
      const targets = actions.filter((a) => a.kind === 'setTarget').map((a) => (a.kind === 'setTarget' ? a.kib : 0));
      if (targets.length > 0) g = Math.min(...targets) / MiB;
      t += 1000;
      obs = host(g, g);
      status = c.launchStatus(id, obs, t);
    }
    expect(status).toEqual({ state: 'go' });
    expect(obs.host.freeKib - 64 * MiB).toBeGreaterThanOrEqual(512 * MiB + LAUNCH_SLACK_KIB);
  });

  it('fails at once with the core\'s reason when the floors leave no room', () => {
    const c = new XenballoondController({ policy: policy() });
    const obs = host();
    const id = c.requestLaunch({ memoryKib: 1800 * MiB, maxmemKib: 2048 * MiB, name: 'huge' }, obs, 0);
    const status = c.launchStatus(id, obs, 0);
    expect(status.state).toBe('fail');
    expect(status.state === 'fail' && status.reason).toMatch(/^minimums of running domains leave only .*; 1\.76G requested$/);
    expect(c.reservations()).toEqual([]);
  });

  it('fails a launch that waited past the timeout, with the last reason', () => {
    const c = new XenballoondController({ policy: policy(), launchTimeoutMs: 5000 });
    // Guests that cannot shrink (stuck) keep the host full; the floors alone would allow it.
    const obs = host();
    const id = c.requestLaunch({ memoryKib: 600 * MiB, maxmemKib: 1024 * MiB, name: 'new' }, obs, 0);
    expect(c.launchStatus(id, obs, 1000).state).toBe('wait');
    const status = c.launchStatus(id, obs, 6000);
    expect(status.state).toBe('fail');
    expect(status.state === 'fail' && status.reason).toMatch(/^no room after waiting 6 s: freeing memory/);
  });

  it('drops the reservation when launched, or as soon as the domain exists', () => {
    const c = new XenballoondController({ policy: policy() });
    const a = c.requestLaunch({ memoryKib: 128 * MiB, maxmemKib: 512 * MiB, name: 'a' }, host(), 0);
    c.requestLaunch({ memoryKib: 128 * MiB, maxmemKib: 512 * MiB, name: 'b' }, host(), 0);
    expect(c.reservations()).toHaveLength(2);
    c.launched(a, 3, 0);
    expect(c.reservations().map((r) => r.id)).toEqual(['launch-2']);
    // 'b' is being built: Xen has claimed its memory; the reservation must not count it again.
    const building = domain({ domid: 4, name: 'b', current: 16, target: 128, staticMax: 512 });
    building.outstandingKib = 112 * MiB;
    c.step(host(700, 700, [building]), 1000);
    expect(c.reservations()).toEqual([]);
  });

  it('counts a domain being built once: its claim, not its claim again as growth', () => {
    const c = new XenballoondController({ policy: policy() });
    const building = domain({ domid: 4, name: 'b', current: 16, target: 128, staticMax: 512 });
    building.outstandingKib = 112 * MiB;
    const obs = host(700, 700, [building]);
    obs.host.outstandingKib = 112 * MiB;
    c.step(obs, 0);
    const e = c.lastExplanation;
    // free 376 (less the 112 claimed) + held 1400 + 16 + 112 claimed - 64 reserve
    expect(e?.host.budgetKib).toBe((376 - 112 + 1400 + 16 + 112 - 64) * MiB);
    expect(e?.host.promisedKib).toBe(0);
    const b = e?.domains.find((d) => d.domid === 4);
    expect(b?.bound).toBe('hold');
    expect(b?.newTargetKib).toBe(128 * MiB);
  });
});
