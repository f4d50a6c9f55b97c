/**
 * squeezed-style discrete-time scenarios against our core (test/core/harness.ts checks the
 * invariants at every action and every guest move). Each scenario that claims the core handles
 * a misbehaving guest also runs a negative control (the same host with the handling disabled,
 * or a deliberately broken core) and asserts that the control fails, so the scenario is shown
 * able to fail.
 */
import { describe, expect, it } from 'vitest';
import { step, type StepResult } from '../../src/core/index.js';
import type { Action } from '../../src/core/types.js';
import { Harness } from './harness.js';
import { GiB, MiB, policy, reservation } from './fixtures.js';

function untilReady(h: Harness, id: string, maxMs: number): number | null {
  const end = h.tMs + maxMs;
  while (h.tMs < end) {
    h.tick();
    if (h.reservationState(id) === 'ready') return h.tMs;
  }
  return null;
}

describe('a stuck guest is given up and a healthy guest shrinks instead (squeezed a)', () => {
  // 2 GiB host, dom0 128M; dom1 holds 768M and cannot move; dom2 holds 768M and needs 381M
  // (49M kernel + 300M committed + 32M headroom). 725M fits only if dom2 gives up part of its
  // headroom, which the core asks only once it knows dom1 will not give anything back.
  const setup = (yaml = '') => {
    const h = new Harness({ totalMiB: 2048, dom0MiB: 128, policy: policy(yaml) });
    h.add({ domid: 1, staticMax: 1024, start: 768, committedAs: 100, stuck: () => true });
    h.add({ domid: 2, staticMax: 1024, start: 768, committedAs: 300 });
    h.reservations = [reservation('new-vm', 725, 0)];
    return h;
  };

  it('frees the reservation from the healthy guest and flags the stuck one', () => {
    const h = setup();
    const readyAt = untilReady(h, 'new-vm', 30_000);
    expect(h.violations).toEqual([]);
    expect(readyAt).not.toBeNull();
    expect(h.guest(1).currentKib).toBe(768 * MiB); // never moved
    expect(h.guest(2).currentKib).toBeLessThan(381 * MiB);
    const dom1 = h.last?.explanation.domains.find((d) => d.domid === 1);
    expect(dom1?.flags).toContain('stuck');
    expect(dom1?.bound).toBe('stuck');
  });

  it('emits the stuck flag once, and uncooperative after 20 s', () => {
    const h = setup();
    const flags: Action[] = [];
    for (let i = 0; i < 30; i++) flags.push(...h.tick().actions.filter((a) => a.kind === 'flag' && a.domid === 1));
    expect(flags).toEqual([
      { kind: 'flag', domid: 1, flag: 'stuck', on: true },
      { kind: 'flag', domid: 1, flag: 'uncooperative', on: true },
    ]);
  });

  it('negative control: without stuck detection the reservation is never ready', () => {
    const h = setup('defaults: { stuck: { after: 1h, uncooperative_after: 2h } }');
    expect(untilReady(h, 'new-vm', 30_000)).toBeNull();
  });
});

describe('a guest with a hidden floor (squeezed b)', () => {
  // dom1 cannot go below 700M. 2600M fits only if dom2 and dom3 go below their needs.
  const setup = (yaml = '') => {
    const h = new Harness({ totalMiB: 4096, dom0MiB: 512, policy: policy(yaml) });
    h.add({ domid: 1, staticMax: 2048, start: 1024, committedAs: 100, floor: 700 });
    h.add({ domid: 2, staticMax: 2048, start: 1024, committedAs: 100 });
    h.add({ domid: 3, staticMax: 2048, start: 1024, committedAs: 100 });
    h.reservations = [reservation('r', 2600, 0)];
    return h;
  };

  it('stops counting on memory it cannot give and takes it from others', () => {
    const h = setup();
    const readyAt = untilReady(h, 'r', 60_000);
    expect(h.violations).toEqual([]);
    expect(readyAt).not.toBeNull();
    expect(h.guest(1).currentKib).toBe(700 * MiB);
    expect(h.last?.explanation.domains.find((d) => d.domid === 1)?.bound).toBe('stuck');
  });

  it('negative control: without stuck detection it is never ready', () => {
    const h = setup('defaults: { stuck: { after: 1h, uncooperative_after: 2h } }');
    expect(untilReady(h, 'r', 60_000)).toBeNull();
  });
});

describe('intermittently stuck guests (squeezed c)', () => {
  it('reach their targets in the end, flags coming and going, with no over-allocation', () => {
    const h = new Harness({ totalMiB: 4096, dom0MiB: 512, policy: policy() });
    const flaky = (period: number) => (t: number) => Math.floor(t / period) % 2 === 1;
    h.add({ domid: 1, staticMax: 2048, start: 1024, committedAs: 100, stuck: flaky(7000), rate: 32 });
    h.add({ domid: 2, staticMax: 2048, start: 1024, committedAs: 100, stuck: flaky(11_000), rate: 32 });
    h.add({ domid: 3, staticMax: 2048, start: 1024, committedAs: 300, rate: 32 });
    const flagChanges: Action[] = [];
    for (let i = 0; i < 180; i++) flagChanges.push(...h.tick().actions.filter((a) => a.kind === 'flag'));
    expect(h.violations).toEqual([]);
    expect(flagChanges.some((a) => a.kind === 'flag' && a.on)).toBe(true);
    expect(flagChanges.some((a) => a.kind === 'flag' && !a.on)).toBe(true);
    for (const id of [1, 2, 3]) {
      const g = h.guest(id);
      expect(Math.abs(g.currentKib - g.targetKib)).toBeLessThanOrEqual(4 * MiB);
    }
    // They ended near their need (100 + 49 kernel + 32 headroom), not stuck where they were.
    expect(h.guest(1).currentKib).toBeLessThan(250 * MiB);
  });
});

describe('impossible requests (squeezed d)', () => {
  it('fail at once with the reason, without squeezing anyone', () => {
    const h = new Harness({ totalMiB: 2048, dom0MiB: 512, policy: policy() });
    h.add({ domid: 1, staticMax: 1024, start: 512, committedAs: 100 });
    h.add({ domid: 2, staticMax: 1024, start: 512, committedAs: 100 });
    h.reservations = [reservation('huge', 1400, 0)];
    h.tick();
    const r = h.last?.explanation.reservations[0];
    expect(r?.state).toBe('impossible');
    expect(r?.reason).toMatch(/^minimums of running domains leave only [\d.]+[MG]; 1\.37G requested$/);
  });

  it('a reservation that fits only at the floors is pending, not impossible', () => {
    const h = new Harness({ totalMiB: 2048, dom0MiB: 512, policy: policy() });
    h.add({ domid: 1, staticMax: 1024, start: 512, committedAs: 100 });
    h.add({ domid: 2, staticMax: 1024, start: 512, committedAs: 100 });
    h.reservations = [reservation('fits', 1100, 0)];
    h.tick();
    expect(h.reservationState('fits')).toBe('pending');
    expect(untilReady(h, 'fits', 30_000)).not.toBeNull();
    expect(h.violations).toEqual([]);
  });
});

describe('a guest with a hidden ceiling', () => {
  it('is not left holding a promise it cannot take, and does not make targets swing', () => {
    const h = new Harness({ totalMiB: 4096, dom0MiB: 512, policy: policy() });
    h.add({ domid: 1, staticMax: 2048, start: 300, committedAs: 900, ceiling: 400 });
    h.add({ domid: 2, staticMax: 2048, start: 300, committedAs: 100 });
    h.run(20_000);
    const writesBefore = h.targetWrites;
    h.tick();
    const promised = h.last?.explanation.host.promisedKib ?? -1;
    expect(promised).toBeLessThanOrEqual(8 * MiB);
    expect(h.last?.explanation.domains.find((d) => d.domid === 1)?.bound).toBe('ceiling');
    h.run(40_000);
    expect(h.violations).toEqual([]);
    // Within the retry period (60 s) the stuck grower is not offered more again and again.
    expect(h.targetWrites - writesBefore).toBeLessThanOrEqual(2);
  });
});

describe('two-phase: grow only into memory already free (squeezed: disabling it over-allocates)', () => {
  const scenario = (stepFn?: Harness['opts' & never]) => {
    const h = new Harness({ totalMiB: 2048, dom0MiB: 256, policy: policy(), ...(stepFn ? { stepFn } : {}) });
    h.add({ domid: 1, staticMax: 1024, start: 800, committedAs: 100, rate: 16 });
    h.add({ domid: 2, staticMax: 1024, start: 800, committedAs: 900, rate: 512 });
    h.run(30_000);
    return h;
  };

  it('never lets a growing guest find the host out of memory', () => {
    expect(scenario().violations).toEqual([]);
  });

  it('negative control: a core that writes the allocation at once is caught', () => {
    const eager = (...args: Parameters<typeof step>): StepResult => {
      const r = step(...args);
      const actions: Action[] = [];
      for (const d of r.explanation.domains) {
        if (!d.managed || d.desiredKib === null) continue;
        actions.push({ kind: 'setMaxmem', domid: d.domid, kib: Math.max(d.desiredKib, d.targetKib ?? 0) + 1024 });
        actions.push({ kind: 'setTarget', domid: d.domid, kib: d.desiredKib });
      }
      return { ...r, actions };
    };
    const h = scenario(eager as never);
    expect(h.violations.some((v) => /only \d+ is free/.test(v))).toBe(true);
  });

  it('negative control: growing before raising maxmem is caught', () => {
    const wrongOrder = (...args: Parameters<typeof step>): StepResult => {
      const r = step(...args);
      return { ...r, actions: [...r.actions.filter((a) => a.kind === 'setTarget'), ...r.actions.filter((a) => a.kind !== 'setTarget')] };
    };
    const h = scenario(wrongOrder as never);
    expect(h.violations.some((v) => /before maxmem/.test(v))).toBe(true);
  });
});

describe('fast up, slow down', () => {
  it('gives a guest whose need jumps its memory in the next interval when it is free', () => {
    const h = new Harness({ totalMiB: 4096, dom0MiB: 512, policy: policy() });
    h.add({ domid: 1, staticMax: 2048, start: 256, committedAs: (t) => (t >= 10_000 ? 1000 : 150) });
    h.run(10_000);
    h.tick(); // the report showing the jump is read here
    const d = h.last?.explanation.domains.find((x) => x.domid === 1);
    expect(h.guest(1).targetKib).toBe(d?.needKib);
    expect(h.guest(1).targetKib).toBeGreaterThanOrEqual((1000 + 49) * MiB);
    expect(h.violations).toEqual([]);
  });

  it('takes memory back no faster than rate.down', () => {
    const h = new Harness({ totalMiB: 4096, dom0MiB: 512, policy: policy('defaults: { rate: { down: 32M/s } }') });
    h.add({ domid: 1, staticMax: 2048, start: 1200, committedAs: 100 });
    let prev = h.guest(1).targetKib;
    let drops = 0;
    for (let i = 0; i < 40; i++) {
      h.tick();
      const t = h.guest(1).targetKib;
      expect(prev - t).toBeLessThanOrEqual(32 * MiB);
      if (t < prev) drops++;
      prev = t;
    }
    expect(drops).toBeGreaterThan(20);
    expect(h.guest(1).targetKib).toBeLessThan(250 * MiB);
  });

  it('covers a jump from others shrinking when the host is full, within the rate limits', () => {
    const h = new Harness({ totalMiB: 2048, dom0MiB: 256, policy: policy() });
    h.add({ domid: 1, staticMax: 1024, start: 560, committedAs: 100 });
    h.add({ domid: 2, staticMax: 1024, start: 560, committedAs: 100 });
    h.add({ domid: 3, staticMax: 1024, start: 560, committedAs: (t) => (t >= 2000 ? 700 : 100) });
    h.run(20_000);
    expect(h.violations).toEqual([]);
    expect(h.guest(3).currentKib).toBeGreaterThanOrEqual((700 + 49) * MiB);
  });
});

describe('guests that stop reporting, or lie', () => {
  it('lets the target of a guest whose reports went stale decay to what it last used (never to min)', () => {
    const h = new Harness({ totalMiB: 4096, dom0MiB: 512, policy: policy('defaults: { need: { stale_after: 10s } }') });
    h.add({ domid: 1, staticMax: 2048, start: 900, committedAs: 800, uses: 300, reports: (t) => t < 5000 });
    h.run(5000);
    const before = h.guest(1).targetKib;
    const d0 = h.last?.explanation.domains.find((d) => d.domid === 1);
    const use = d0?.useKib ?? 0;
    h.run(8_000);
    // Within stale_after: held.
    expect(h.guest(1).targetKib).toBe(before);
    h.run(60_000);
    const d = h.last?.explanation.domains.find((x) => x.domid === 1);
    expect(d?.bound).toBe('decay');
    expect(d?.flags).toContain('decay');
    expect(use).toBeGreaterThan(0);
    expect(h.guest(1).targetKib).toBeLessThan(before);
    expect(h.guest(1).targetKib).toBeGreaterThanOrEqual(Math.min(use, before) - 4);
    expect(h.guest(1).targetKib).toBeGreaterThan(d?.minKib ?? 0);
  });

  it('never gives a guest claiming a huge need more than its policy max', () => {
    const h = new Harness({
      totalMiB: 8192,
      dom0MiB: 512,
      policy: policy('domains: [ { match: { name: "liar" }, max: 1G } ]'),
    });
    h.add({ domid: 1, name: 'liar', staticMax: 4096, start: 512, committedAs: 1_000_000 });
    h.run(10_000);
    expect(h.guest(1).targetKib).toBe(1 * GiB);
    expect(h.violations).toEqual([]);
  });
});

describe('a stuck guest does not make the others swing', () => {
  it('keeps the healthy guests steady while one is stuck', () => {
    const h = new Harness({ totalMiB: 2048, dom0MiB: 256, policy: policy() });
    h.add({ domid: 1, staticMax: 1024, start: 700, committedAs: 100, stuck: (t) => t > 3000 });
    h.add({ domid: 2, staticMax: 1024, start: 400, committedAs: 300 });
    h.add({ domid: 3, staticMax: 1024, start: 400, committedAs: 300 });
    h.run(15_000);
    let reversals = 0;
    for (const id of [2, 3]) {
      let lastDir = 0;
      for (let i = 1; i < h.history.length; i++) {
        const d = Math.sign((h.history[i]?.targets.get(id) ?? 0) - (h.history[i - 1]?.targets.get(id) ?? 0));
        if (d !== 0 && lastDir !== 0 && d !== lastDir) reversals++;
        if (d !== 0) lastDir = d;
      }
    }
    h.run(60_000);
    expect(reversals).toBe(0);
    expect(h.violations).toEqual([]);
  });
});

describe('working sets before untouched promises (scale-1000: idle guests with a large Committed_AS)', () => {
  // 4 GiB host, dom0 512M, reserve 64M: 3520M for the guests. Four idle guests were promised
  // 500M (Committed_AS) and use 100M; a database was promised 1500M and uses 1450M. Needs add up
  // to 4095M, 575M more than the host has. The database's working set must stay in RAM; the idle
  // guests give up memory they never touched.
  const setup = (yaml = '') => {
    const h = new Harness({ totalMiB: 4096, dom0MiB: 512, policy: policy(yaml) });
    for (let id = 1; id <= 4; id++) h.add({ domid: id, staticMax: 1024, start: 512, committedAs: 500, uses: 100 });
    h.add({ domid: 5, name: 'db', staticMax: 2048, start: 1024, committedAs: 1500, uses: 1450 });
    return h;
  };
  const swapInOver = (h: Harness, domid: number, ms: number) => {
    const before = h.guest(domid).pswpin;
    h.run(ms);
    return h.guest(domid).pswpin - before;
  };

  it('keeps the database in RAM and takes the shortage from memory the idle guests never touched', () => {
    const h = setup();
    h.run(30_000);
    expect(swapInOver(h, 5, 30_000)).toBe(0);
    expect(h.violations).toEqual([]);
    const db = h.last?.explanation.domains.find((d) => d.domid === 5);
    expect(h.guest(5).currentKib).toBeGreaterThanOrEqual((49 + 1450) * MiB);
    expect(db?.useKib).not.toBeNull();
    for (let id = 1; id <= 4; id++) {
      const d = h.last?.explanation.domains.find((x) => x.domid === id);
      // Below what Committed_AS promised, never below what it uses.
      expect(h.guest(id).currentKib).toBeLessThan(d?.needKib ?? 0);
      expect(h.guest(id).currentKib).toBeGreaterThanOrEqual(d?.useKib ?? Infinity);
      expect(d?.bound).toBe('share');
    }
    expect(h.last?.explanation.host.usesKib).toBeLessThan(h.last?.explanation.host.allocatableKib ?? 0);
  });

  it('negative control: with no idle tax (need and use alike) the database swaps', () => {
    const h = setup('host: { idle_tax: 0% }');
    h.run(30_000);
    expect(h.guest(5).currentKib).toBeLessThan((49 + 1450) * MiB);
    expect(swapInOver(h, 5, 30_000)).toBeGreaterThan(0);
    expect(h.violations).toEqual([]);
  });
});
