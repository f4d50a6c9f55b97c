import { describe, expect, it } from 'vitest';
import { MOM, MomPeer, momBalloonTarget, type MomGuestView } from '../../../src/sim/peers/mom.js';
import { GiB, MiB, dom, observation, report } from './fixtures.js';

/** A guest at 1000 MiB using 300 MiB (700 MiB unused), max 2000 MiB, no guarantee. */
function view(over: Partial<MomGuestView> = {}): MomGuestView {
  return {
    balloonCurKib: 1000 * MiB,
    balloonMaxKib: 2000 * MiB,
    balloonMinKib: 0,
    meanBalloonCurKib: 1000 * MiB,
    meanMemUnusedKib: 700 * MiB,
    ...over,
  };
}

describe('MOM default balloon policy', () => {
  it('shrinks by 5 % of the current balloon when host free is under 20 %', () => {
    expect(momBalloonTarget(0.1, view())).toBe(Math.trunc(950 * MiB));
  });

  it('grows by 5 % when host free is at or above 20 %, up to the maximum', () => {
    expect(momBalloonTarget(0.2, view())).toBe(Math.trunc(1050 * MiB));
    expect(momBalloonTarget(0.5, view({ balloonCurKib: 1990 * MiB, meanBalloonCurKib: 1990 * MiB }))).toBe(2000 * MiB);
  });

  it('does not shrink below used + guest free share (guest free % follows host free %)', () => {
    // host free 10 % -> the guest keeps 10 % of its balloon free on top of 900 MiB used
    const busy = view({ meanMemUnusedKib: 100 * MiB });
    expect(momBalloonTarget(0.1, busy)).toBeNull(); // floor 1000 MiB = current: no change
    const t = momBalloonTarget(0.1, view({ meanMemUnusedKib: 130 * MiB }));
    expect(t).toBe(Math.trunc(870 * MiB + 0.1 * 1000 * MiB));
  });

  it('under critical pressure (<= 5 %) pushes the guest below its used memory', () => {
    // host free 3 %: guest free share -2 %: floor = 990 MiB used - 20 MiB, above the 5 % step
    const t = momBalloonTarget(0.03, view({ meanMemUnusedKib: 10 * MiB }));
    expect(t).toBe(Math.trunc(990 * MiB - 0.02 * 1000 * MiB));
    expect(t).toBeLessThan(990 * MiB);
    // at 10 % the same guest would keep 10 % free above its use: no shrink at all
    expect(momBalloonTarget(0.1, view({ meanMemUnusedKib: 10 * MiB }))).toBeNull();
  });

  it('ignores changes of 0.25 % of the balloon or less', () => {
    const nearMax = view({ balloonCurKib: 1996 * MiB, meanBalloonCurKib: 1996 * MiB, balloonMaxKib: 2000 * MiB });
    expect(momBalloonTarget(0.5, nearMax)).toBeNull(); // +4 MiB < 0.25 % of 1996 MiB
    const further = view({ balloonCurKib: 1990 * MiB, meanBalloonCurKib: 1990 * MiB, balloonMaxKib: 2000 * MiB });
    expect(momBalloonTarget(0.5, further)).toBe(2000 * MiB); // +10 MiB > 4.975 MiB
  });

  it('brings a guest below its guaranteed memory back to it', () => {
    expect(momBalloonTarget(0.1, view({ balloonMinKib: 1200 * MiB }))).toBe(1200 * MiB);
  });
});

describe('MOM peer', () => {
  const guest = (currentKib: number, unusedKib: number) =>
    dom({
      domid: 1,
      currentKib,
      maxmemKib: 2000 * MiB,
      staticMaxKib: 2000 * MiB,
      targetKib: 500 * MiB, // memory= 500 MiB: the default guaranteed memory
      report: report({ freeKib: unusedKib }),
    });

  it('samples every 5 s and runs the policy every 10 s on 10-sample averages', () => {
    const peer = new MomPeer();
    expect(peer.intervalMs).toBe(MOM.monitorIntervalMs);
    const pressured = observation({ totalKib: 10 * GiB, freeKib: 1 * GiB }, [guest(1000 * MiB, 700 * MiB)]);
    const acted = [0, 5_000, 10_000, 15_000, 20_000].map((t) => peer.step(pressured, t).length > 0);
    expect(acted).toEqual([true, false, true, false, true]);
  });

  it('averages host free over the sample history', () => {
    const peer = new MomPeer();
    const g = guest(1000 * MiB, 700 * MiB);
    // 9 samples at 30 % free then one at 5 %: the mean (27.5 %) is not under pressure -> grow
    for (let i = 0; i < 9; i++) peer.step(observation({ totalKib: 10 * GiB, freeKib: 3 * GiB }, [g]), i === 0 ? 0 : 1 + i);
    const actions = peer.step(observation({ totalKib: 10 * GiB, freeKib: 0.5 * GiB }, [g]), 10_000);
    expect(actions).toEqual([{ kind: 'setTarget', domid: 1, kib: Math.trunc(1050 * MiB) }]);
  });

  it('takes memory= as the guaranteed floor and skips guests without statistics', () => {
    const peer = new MomPeer();
    const silent = dom({ domid: 2, currentKib: 1000 * MiB, report: null });
    const o = observation({ totalKib: 10 * GiB, freeKib: 0.1 * GiB }, [guest(510 * MiB, 500 * MiB), silent]);
    expect(peer.step(o, 0)).toEqual([{ kind: 'setTarget', domid: 1, kib: 500 * MiB }]);
  });
});
