import { describe, expect, it } from 'vitest';
import type { Action } from '../../../src/core/types.js';
import { SQUEEZED, SqueezedPeer, proportionalTargets, type SqDomain } from '../../../src/sim/peers/squeezed.js';
import { GiB, MiB, ToyHost, observation, dom, type LoggedAction, type ToyGuest } from './fixtures.js';

const range = { dynamicRange: () => ({ minKib: 256 * MiB, maxKib: 1024 * MiB }) };

function sq(domid: number, minKib: number, maxKib: number, actualKib: number): SqDomain {
  return {
    domid,
    canBalloon: true,
    dynamicMinKib: minKib,
    dynamicMaxKib: maxKib,
    targetKib: actualKib,
    actualKib,
    maxmemKib: actualKib,
    maxmemOffsetKib: 0,
    inaccuracyKib: 4,
  };
}

function guest(domid: number, kib: number, extra: Partial<ToyGuest> = {}): ToyGuest {
  return { domid, currentKib: kib, targetKib: kib, maxmemKib: 1024 * MiB, staticMaxKib: 1024 * MiB, ...extra };
}

function stepLog(host: ToyHost, peer: SqueezedPeer, fromMs: number, toMs: number, each?: (t: number, a: Action[]) => void) {
  const log: LoggedAction[] = [];
  for (let t = fromMs; t < toMs; t += peer.intervalMs) {
    const actions = peer.step(host.observe(t), t);
    each?.(t, actions);
    for (const action of actions) log.push({ atMs: t, action });
    host.apply(actions);
    host.advance(peer.intervalMs);
  }
  return log;
}

describe('squeezed proportional policy', () => {
  it('gives every domain the same fraction gamma of its dynamic range', () => {
    const a = sq(1, 256 * MiB, 1024 * MiB, 256 * MiB);
    const b = sq(2, 512 * MiB, 1024 * MiB, 512 * MiB);
    // surplus 320 MiB over a total range of 1280 MiB: gamma = 0.25
    const t = proportionalTargets([a, b], SQUEEZED.targetHostFreeKib + 320 * MiB, SQUEEZED.targetHostFreeKib);
    expect(t.get(1)).toBe(256 * MiB + 192 * MiB);
    expect(t.get(2)).toBe(512 * MiB + 128 * MiB);
  });

  it('clamps gamma to [0, 1]', () => {
    const a = sq(1, 256 * MiB, 1024 * MiB, 256 * MiB);
    expect(proportionalTargets([a], 64 * GiB, SQUEEZED.targetHostFreeKib).get(1)).toBe(1024 * MiB);
    expect(proportionalTargets([a], 0, SQUEEZED.targetHostFreeKib).get(1)).toBe(256 * MiB);
  });

  it('counts memory a domain could free above its dynamic-min as surplus', () => {
    const a = sq(1, 256 * MiB, 1024 * MiB, 1024 * MiB);
    // free exactly the host target: the surplus is what a could free (768 MiB - 8 KiB), gamma ~ 1
    const t = proportionalTargets([a], SQUEEZED.targetHostFreeKib, SQUEEZED.targetHostFreeKib).get(1) ?? 0;
    expect(t).toBe(1024 * MiB - 8);
  });
});

describe('squeezed peer', () => {
  it('shrinks first and grows only once nothing must shrink; maxmem is raised before and lowered after', () => {
    // a holds its maximum, b its minimum; gamma 0.5 puts both at 640 MiB.
    const host = new ToyHost(1280 * MiB + SQUEEZED.targetHostFreeKib + 8, [
      guest(1, 1024 * MiB, { rateKibPerS: 64 * MiB }),
      guest(2, 256 * MiB, { rateKibPerS: 64 * MiB }),
    ]);
    const peer = new SqueezedPeer(range);
    let growBeforeShrinkDone = false;
    const log = stepLog(host, peer, 0, 40_000, (_t, actions) => {
      const a = host.guest(1);
      const growsB = actions.some((x) => x.kind === 'setTarget' && x.domid === 2 && x.kib > 256 * MiB);
      if (growsB && Math.abs(a.currentKib - a.targetKib) > SQUEEZED.inaccuracyKib) growBeforeShrinkDone = true;
    });
    expect(growBeforeShrinkDone).toBe(false);
    // gamma 0.5, give or take squeezed's 2 x 4 KiB inaccuracy allowance
    const near640 = (kib: number) => Math.abs(kib - 640 * MiB) <= 2 * SQUEEZED.inaccuracyKib;
    expect(near640(host.guest(1).targetKib)).toBe(true);
    expect(near640(host.guest(2).targetKib)).toBe(true);
    expect(near640(host.guest(2).currentKib)).toBe(true);

    const order = (domid: number) =>
      log.filter((l) => l.action.kind !== 'flag' && l.action.domid === domid).map((l) => `${l.atMs}:${l.action.kind}`);
    const bGrowAt = log.find((l) => l.action.kind === 'setTarget' && l.action.domid === 2)?.atMs;
    const aShrinkAt = log.find((l) => l.action.kind === 'setTarget' && l.action.domid === 1)?.atMs;
    expect(bGrowAt).toBeDefined();
    expect(aShrinkAt).toBeDefined();
    expect(order(2)).toContain(`${bGrowAt}:setMaxmem`);
    expect(order(2).indexOf(`${bGrowAt}:setMaxmem`)).toBeLessThan(order(2).indexOf(`${bGrowAt}:setTarget`));
    expect(order(1).indexOf(`${aShrinkAt}:setTarget`)).toBeLessThan(order(1).indexOf(`${aShrinkAt}:setMaxmem`));
    // maxmem is the cap: it ends equal to the target for both.
    expect(host.guest(1).maxmemKib).toBe(host.guest(1).targetKib);
    expect(host.guest(2).maxmemKib).toBe(host.guest(2).targetKib);
  });

  it('lowers a maxmem left above the target (as libxl creates domains) when it first looks', () => {
    const host = new ToyHost(4 * GiB, [guest(1, 512 * MiB, { maxmemKib: 1025 * MiB }), guest(2, 512 * MiB, { hvm: true, maxmemKib: 1025 * MiB })]);
    const peer = new SqueezedPeer();
    const log = stepLog(host, peer, 0, 10_001);
    const maxmems = log.filter((l) => l.action.kind === 'setMaxmem').map((l) => l.action);
    expect(maxmems).toContainEqual({ kind: 'setMaxmem', domid: 1, kib: 512 * MiB });
    expect(maxmems).toContainEqual({ kind: 'setMaxmem', domid: 2, kib: 513 * MiB });
  });

  it('leaves a stuck domain out after 5 s and squeezes the others harder to cover its share', () => {
    const host = new ToyHost(2048 * MiB + SQUEEZED.targetHostFreeKib, [
      guest(1, 1024 * MiB, { stuck: true }),
      guest(2, 1024 * MiB),
    ]);
    const peer = new SqueezedPeer(range);
    const id = peer.requestLaunch({ name: 'new', memoryKib: 600 * MiB, maxmemKib: 600 * MiB }, host.observe(0), 0);
    let stuckSeenAt: number | null = null;
    let goAt: number | null = null;
    const log = stepLog(host, peer, 0, 30_000, (t) => {
      if (stuckSeenAt === null && peer.inspect().stuck.includes(1)) stuckSeenAt = t;
      if (goAt === null && peer.launchStatus(id, host.observe(t), t).state === 'go') goAt = t;
    });
    const bTargets = log.flatMap((l) => (l.action.kind === 'setTarget' && l.action.domid === 2 ? [l.action.kib] : []));
    expect(stuckSeenAt).toBe(6_000);
    expect(bTargets.length).toBeGreaterThanOrEqual(2);
    expect(bTargets[bTargets.length - 1]).toBeLessThan(bTargets[0] ?? 0);
    expect(goAt).not.toBeNull();
    expect(host.freeKib() - peer.inspect().heldKib).toBeGreaterThanOrEqual(SQUEEZED.targetHostFreeKib);
    // Once given up, the stuck domain is asked for nothing more: one target, never lowered again.
    const aTargets = log.flatMap((l) => (l.action.kind === 'setTarget' && l.action.domid === 1 ? [l.action.kib] : []));
    expect(aTargets).toEqual([bTargets[0]]);
    expect(host.guest(1).maxmemKib).toBe(host.guest(1).targetKib);
  });

  it('flags a domain that stays off its target for over 20 s as uncooperative, and clears it', () => {
    const host = new ToyHost(1280 * MiB + SQUEEZED.targetHostFreeKib + 8, [
      guest(1, 1024 * MiB, { stuck: true }),
      guest(2, 256 * MiB),
    ]);
    const peer = new SqueezedPeer(range);
    const log = stepLog(host, peer, 0, 60_000);
    const flags = log.filter((l) => l.action.kind === 'flag');
    expect(flags[0]?.action).toEqual({ kind: 'flag', domid: 1, flag: 'uncooperative', on: true });
    // a was last on its target when squeezed first looked, at 10 s; flagged at the first look
    // more than 20 s later (squeezed looks each second while it balances).
    expect(flags[0]?.atMs).toBe(31_000);
    expect(peer.inspect().uncooperative).toEqual([1]);
    host.guest(1).stuck = false;
    const later = stepLog(host, peer, 60_000, 120_000);
    expect(later.filter((l) => l.action.kind === 'flag').map((l) => l.action)).toContainEqual({
      kind: 'flag',
      domid: 1,
      flag: 'uncooperative',
      on: false,
    });
    expect(peer.inspect().uncooperative).toEqual([]);
  });

  it('fails a reservation it cannot satisfy even with everyone at dynamic-min', () => {
    const host = new ToyHost(512 * MiB + SQUEEZED.targetHostFreeKib + 100 * MiB, [guest(1, 256 * MiB), guest(2, 256 * MiB)]);
    const peer = new SqueezedPeer(range);
    const id = peer.requestLaunch({ name: 'big', memoryKib: 200 * MiB, maxmemKib: 200 * MiB }, host.observe(0), 0);
    stepLog(host, peer, 0, 5_000);
    const s = peer.launchStatus(id, host.observe(5_000), 5_000);
    expect(s.state).toBe('fail');
    expect(s.state === 'fail' ? s.reason : '').toMatch(/Cannot_free_this_much_memory/);
  });

  it('fails a reservation with Domains_refused_to_cooperate when only a stuck domain could have covered it', () => {
    const host = new ToyHost(256 * MiB + 1024 * MiB + SQUEEZED.targetHostFreeKib, [
      guest(1, 1024 * MiB, { stuck: true }),
      guest(2, 256 * MiB),
    ]);
    const peer = new SqueezedPeer(range);
    const id = peer.requestLaunch({ name: 'n', memoryKib: 400 * MiB, maxmemKib: 400 * MiB }, host.observe(0), 0);
    stepLog(host, peer, 0, 20_000);
    const s = peer.launchStatus(id, host.observe(20_000), 20_000);
    expect(s.state === 'fail' ? s.reason : s.state).toBe('Domains_refused_to_cooperate [1]');
  });

  it('rebalances at once when a domain goes away, without waiting for the 10 s check', () => {
    const host = new ToyHost(2048 * MiB, [guest(1, 512 * MiB), guest(2, 512 * MiB)]);
    const peer = new SqueezedPeer(range);
    stepLog(host, peer, 0, 25_000); // balanced by 11 s; checked again at 21 s, next check at 31 s
    host.guests = host.guests.filter((g) => g.domid !== 2);
    host.guest(1).currentKib = 300 * MiB; // pretend guest 1 was squeezed meanwhile
    host.guest(1).targetKib = 300 * MiB;
    host.guest(1).maxmemKib = 300 * MiB;
    const log = stepLog(host, peer, 25_000, 26_000);
    expect(log.some((l) => l.action.kind === 'setTarget' && l.action.domid === 1)).toBe(true);
  });

  it('holds a granted reservation out of the next balance until the domain exists', () => {
    const host = new ToyHost(1024 * MiB + SQUEEZED.targetHostFreeKib + 600 * MiB, [guest(1, 1024 * MiB)]);
    const peer = new SqueezedPeer(range);
    const id = peer.requestLaunch({ name: 'n', memoryKib: 500 * MiB, maxmemKib: 500 * MiB }, host.observe(0), 0);
    stepLog(host, peer, 0, 1_000);
    expect(peer.launchStatus(id, host.observe(1_000), 1_000).state).toBe('go');
    // The balance check at 10 s must not hand the reserved 500 MiB to guest 1.
    stepLog(host, peer, 1_000, 30_000);
    expect(host.freeKib()).toBeGreaterThanOrEqual(500 * MiB + SQUEEZED.targetHostFreeKib);
    peer.launched(id, 2, 30_000);
    host.guests.push(guest(2, 500 * MiB, { maxmemKib: 500 * MiB, staticMaxKib: 500 * MiB }));
    expect(peer.inspect().heldKib).toBe(0);
  });

  it('counts a granted reservation once: no longer after its domain exists and is being built', () => {
    const peer = new SqueezedPeer(range);
    const g1 = dom({ domid: 1, currentKib: 1024 * MiB, maxmemKib: 1024 * MiB, staticMaxKib: 1024 * MiB });
    const before = observation({ totalKib: 4 * GiB, freeKib: 672 * MiB }, [g1]);
    const id = peer.requestLaunch({ name: 'n', memoryKib: 500 * MiB, maxmemKib: 500 * MiB }, before, 0);
    peer.step(before, 0);
    expect(peer.launchStatus(id, before, 0).state).toBe('go');
    // 'n' exists: 100 MiB populated, a 400 MiB claim for the rest; 172 MiB really free.
    const n = dom({ domid: 2, name: 'n', currentKib: 100 * MiB, targetKib: 500 * MiB, maxmemKib: 500 * MiB });
    const building = observation({ totalKib: 4 * GiB, freeKib: 572 * MiB, outstandingKib: 400 * MiB }, [g1, n]);
    const actions = [10_000, 11_000, 12_000].flatMap((t) => peer.step(building, t));
    // Nothing to squeeze: guest 1 keeps its memory, and the domain being built is left alone.
    expect(actions.filter((a) => a.kind === 'setTarget')).toEqual([]);
    expect(actions.some((a) => a.domid === 2)).toBe(false);
  });

  it('waits while 4 MiB or more is being scrubbed', () => {
    const peer = new SqueezedPeer(range);
    const doms = [dom({ domid: 1, currentKib: 1024 * MiB, maxmemKib: 2048 * MiB })];
    const scrubbing = observation({ totalKib: 4 * GiB, freeKib: 1 * GiB, scrubKib: 4 * MiB }, doms);
    peer.step(scrubbing, 0);
    expect(peer.step(scrubbing, 10_000)).toEqual([]);
    const clean = observation({ totalKib: 4 * GiB, freeKib: 1 * GiB, scrubKib: 4 * MiB - 4 }, doms);
    expect(peer.step(clean, 11_000)).not.toEqual([]);
  });
});
