import { describe, expect, it } from 'vitest';
import { xenlinuxMinimumMib } from '../../../src/sim/peers/common.js';
import { SelfballoonPeer } from '../../../src/sim/peers/selfballoon.js';
import { GiB, MiB, ToyHost, dom, observation, report, targetsOf, type ToyGuest } from './fixtures.js';

/** A guest whose MemTotal is its tot_pages and whose Committed_AS is fixed. */
function guest(domid: number, currentKib: number, committedAsKib: number): ToyGuest {
  return {
    domid,
    currentKib,
    targetKib: currentKib,
    maxmemKib: 1 * GiB,
    staticMaxKib: 1 * GiB,
    report: (g) => report({ totalKib: g.currentKib, committedAsKib }),
  };
}

describe('xenlinux minimum_target curve', () => {
  it('gives the published floors', () => {
    expect(xenlinuxMinimumMib(1 * GiB)).toBe(232); // 104 + 262144/2048
    expect(xenlinuxMinimumMib(512 * MiB)).toBe(168); // 104 + 131072/2048
    expect(xenlinuxMinimumMib(256 * MiB)).toBe(104); // 40 + 65536/1024
    expect(xenlinuxMinimumMib(100 * MiB)).toBe(58); // 8 + 25600/512
    expect(xenlinuxMinimumMib(4 * GiB)).toBe(424); // 296 + 1048576/8192
    expect(xenlinuxMinimumMib(550 * MiB)).toBe(172); // 104 + 140800/2048
    expect(xenlinuxMinimumMib(499 * MiB)).toBe(164); // 40 + 127744/1024
    expect(xenlinuxMinimumMib(124 * MiB)).toBe(70); // 8 + 31744/512
    expect(xenlinuxMinimumMib(125 * MiB)).toBe(71); // 40 + 32000/1024
    expect(xenlinuxMinimumMib(1999 * MiB)).toBe(353); // 104 + 511744/2048
    expect(xenlinuxMinimumMib(2000 * MiB)).toBe(358); // 296 + 512000/8192
  });
});

describe('selfballoon peer', () => {
  it('shrinks by a tenth of the gap each interval and grows to the goal at once', () => {
    const p = new SelfballoonPeer();
    // cur 512 MiB, Committed_AS 300 MiB (above the 168 MiB floor): goal 300 MiB.
    expect(p.targetFor(512 * MiB, 300 * MiB, 512 * MiB)).toBe(512 * MiB - Math.floor((212 * MiB) / 10));
    expect(p.targetFor(200 * MiB, 300 * MiB, 512 * MiB)).toBe(300 * MiB);
  });

  it('converges geometrically to Committed_AS from above, never overshooting it', () => {
    const host = new ToyHost(4 * GiB, [guest(1, 900 * MiB, 300 * MiB)]);
    const log = host.run(new SelfballoonPeer(), 0, 120_000);
    const t = targetsOf(log, 1);
    for (let i = 1; i < t.length; i++) {
      const prev = t[i - 1] ?? 0;
      const cur = t[i] ?? 0;
      expect(cur).toBeLessThan(prev);
      expect(cur).toBeGreaterThanOrEqual(300 * MiB);
      // each step closes about a tenth of the remaining gap
      expect(prev - cur).toBeLessThanOrEqual(Math.ceil((prev - 300 * MiB) / 10));
    }
    expect(host.guest(1).currentKib).toBeLessThan(300 * MiB + 1 * MiB);
  });

  it('stops at the xenlinux floor when Committed_AS is below it', () => {
    // High-water MemTotal 512 MiB -> floor 168 MiB; Committed_AS only 50 MiB.
    const host = new ToyHost(4 * GiB, [guest(1, 512 * MiB, 50 * MiB)]);
    host.run(new SelfballoonPeer(), 0, 300_000);
    const cur = host.guest(1).currentKib;
    expect(cur).toBeGreaterThanOrEqual(168 * MiB);
    expect(cur).toBeLessThan(169 * MiB);
  });

  it('honours a configured minimum instead of the curve', () => {
    const host = new ToyHost(4 * GiB, [guest(1, 512 * MiB, 50 * MiB)]);
    host.run(new SelfballoonPeer({ minMemMib: 100 }), 0, 300_000);
    expect(host.guest(1).currentKib).toBeLessThan(101 * MiB);
    expect(host.guest(1).currentKib).toBeGreaterThanOrEqual(100 * MiB);
  });

  it('decides from the guest\'s own report only', () => {
    const a = dom({ domid: 1, currentKib: 512 * MiB, report: report({ totalKib: 512 * MiB, committedAsKib: 300 * MiB }) });
    const b1 = dom({ domid: 2, currentKib: 256 * MiB, report: report({ totalKib: 256 * MiB, committedAsKib: 10 * MiB }) });
    const b2 = dom({ domid: 2, currentKib: 900 * MiB, report: report({ totalKib: 900 * MiB, committedAsKib: 800 * MiB }) });
    const calm = new SelfballoonPeer().step(observation({ totalKib: 64 * GiB, freeKib: 60 * GiB }, [a, b1]), 0);
    const tight = new SelfballoonPeer().step(observation({ totalKib: 2 * GiB, freeKib: 1 * MiB }, [a, b2]), 0);
    const forA = (xs: typeof calm) => xs.filter((x) => x.domid === 1);
    expect(forA(calm)).toEqual(forA(tight));
    expect(forA(calm)).toHaveLength(1);
  });

  it('leaves a guest alone when its report lacks Committed_AS, and does not rewrite an unchanged target', () => {
    const p = new SelfballoonPeer();
    const noCommitted = dom({ domid: 1, currentKib: 512 * MiB, report: report({ totalKib: 512 * MiB }) });
    expect(p.step(observation({ totalKib: 2 * GiB, freeKib: 1 * GiB }, [noCommitted]), 0)).toEqual([]);
    const steady = dom({ domid: 1, currentKib: 512 * MiB, report: report({ totalKib: 512 * MiB, committedAsKib: 300 * MiB }) });
    const o = observation({ totalKib: 2 * GiB, freeKib: 1 * GiB }, [steady]);
    expect(p.step(o, 1000)).toHaveLength(1);
    expect(p.step(o, 2000)).toEqual([]);
  });
});
