import { describe, expect, it } from 'vitest';
import { PROXMOX, ProxmoxPeer, computeAlg1, type ProxmoxVm } from '../../../src/sim/peers/proxmox.js';
import { GiB, MiB, dom, observation, report } from './fixtures.js';

function vm(domid: number, over: Partial<ProxmoxVm> = {}): ProxmoxVm {
  return {
    domid,
    balloonKib: 1 * GiB,
    balloonMinKib: 512 * MiB,
    maxmemKib: 4 * GiB,
    freememKib: 50 * MiB,
    shares: 1000,
    ...over,
  };
}

describe('Proxmox AutoBalloon compute_alg1', () => {
  it('moves a VM by at most 100 MiB per round', () => {
    const res = computeAlg1([vm(1)], 2 * GiB, PROXMOX.maxChangeKib);
    expect(res.get(1)).toBe(1 * GiB + 100 * MiB);
    const down = computeAlg1([vm(1, { freememKib: 900 * MiB })], -2 * GiB, PROXMOX.maxChangeKib);
    expect(down.get(1)).toBe(1 * GiB - 100 * MiB);
  });

  it('does nothing within the +-10 MiB deadband', () => {
    expect(computeAlg1([vm(1)], 10 * MiB, PROXMOX.maxChangeKib).size).toBe(0);
    expect(computeAlg1([vm(1)], -10 * MiB, PROXMOX.maxChangeKib).size).toBe(0);
    expect(computeAlg1([vm(1)], 11 * MiB, PROXMOX.maxChangeKib).get(1)).toBe(1 * GiB + 11 * MiB);
  });

  it('splits by shares (default 1000) and never goes below balloon_min', () => {
    const even = computeAlg1([vm(1), vm(2)], 80 * MiB, PROXMOX.maxChangeKib);
    expect(even.get(1)).toBe(1 * GiB + 40 * MiB);
    expect(even.get(2)).toBe(1 * GiB + 40 * MiB);
    // Shares redistribute what is already allocated too: the 1000-share VM gives 100 MiB
    // while the 3000-share one takes 100 MiB, even though the host asked for growth.
    const res = computeAlg1([vm(1), vm(2, { shares: 3000 })], 80 * MiB, PROXMOX.maxChangeKib);
    expect(res.get(1)).toBe(1 * GiB - 100 * MiB);
    expect(res.get(2)).toBe(1 * GiB + 100 * MiB);
    const floor = computeAlg1([vm(1, { balloonKib: 550 * MiB, freememKib: 400 * MiB })], -1 * GiB, PROXMOX.maxChangeKib);
    expect(floor.get(1)).toBe(512 * MiB);
  });

  it('grows VMs under pressure first and shrinks VMs with free memory first', () => {
    const pressured = vm(1, { freememKib: 10 * MiB }); // < 25 % of balloon_min
    const relaxed = vm(2, { freememKib: 400 * MiB });
    const grow = computeAlg1([pressured, relaxed], 50 * MiB, PROXMOX.maxChangeKib);
    expect(grow.get(1)).toBe(1 * GiB + 50 * MiB);
    expect(grow.has(2)).toBe(false);
    const shrink = computeAlg1([pressured, relaxed], -50 * MiB, PROXMOX.maxChangeKib);
    expect(shrink.get(2)).toBe(1 * GiB - 50 * MiB);
    expect(shrink.has(1)).toBe(false);
  });

  it('falls back to every VM when the preferred group cannot move', () => {
    const pressuredAtMax = vm(1, { freememKib: 10 * MiB, balloonKib: 4 * GiB }); // cannot grow
    const relaxed = vm(2, { freememKib: 400 * MiB });
    const grow = computeAlg1([pressuredAtMax, relaxed], 50 * MiB, PROXMOX.maxChangeKib);
    expect(grow.get(2)).toBeGreaterThan(1 * GiB);
    const relaxedAtMin = vm(3, { freememKib: 400 * MiB, balloonKib: 512 * MiB }); // cannot shrink
    const pressured = vm(4, { freememKib: 10 * MiB });
    const shrink = computeAlg1([relaxedAtMin, pressured], -50 * MiB, PROXMOX.maxChangeKib);
    expect(shrink.get(4)).toBeLessThan(1 * GiB);
  });

  it('skips VMs without a balloon minimum or with zero shares', () => {
    const res = computeAlg1([vm(1, { balloonMinKib: 0 }), vm(2, { shares: 0 })], 1 * GiB, PROXMOX.maxChangeKib);
    expect(res.size).toBe(0);
  });
});

describe('Proxmox peer', () => {
  const guest = (domid: number, currentKib: number, freeKib: number) =>
    dom({ domid, currentKib, targetKib: 512 * MiB, maxmemKib: 2 * GiB, staticMaxKib: 2 * GiB, report: report({ freeKib }) });

  it('aims host usage at 80 %: shrinks when usage is above it, each VM by at most 100 MiB', () => {
    // 10 GiB host, 1 GiB free: 90 % used, goal -1 GiB
    const o = observation({ totalKib: 10 * GiB, freeKib: 1 * GiB }, [guest(1, 2 * GiB, 1 * GiB), guest(2, 2 * GiB, 1 * GiB)]);
    const actions = new ProxmoxPeer().step(o, 0);
    expect(actions).toEqual([
      { kind: 'setTarget', domid: 1, kib: 2 * GiB - 100 * MiB },
      { kind: 'setTarget', domid: 2, kib: 2 * GiB - 100 * MiB },
    ]);
  });

  it('takes 80 % as the line: 82 % used shrinks, 78 % used grows', () => {
    const g = [guest(1, 1 * GiB, 10 * MiB)];
    const at = (usedPct: number) =>
      new ProxmoxPeer().step(observation({ totalKib: 10 * GiB, freeKib: ((100 - usedPct) / 100) * 10 * GiB }, g), 0);
    expect(at(82)).toEqual([{ kind: 'setTarget', domid: 1, kib: 1 * GiB - 100 * MiB }]);
    expect(at(78)).toEqual([{ kind: 'setTarget', domid: 1, kib: 1 * GiB + 100 * MiB }]);
  });

  it('takes balloon_min from memory= of a guest it launched, not from the target it is first seen with', () => {
    const launchedAt = (launch: boolean) => {
      const peer = new ProxmoxPeer();
      const empty = observation({ totalKib: 10 * GiB, freeKib: 10 * GiB }, []);
      const id = peer.requestLaunch({ name: 'guest1', memoryKib: 1 * GiB, maxmemKib: 2 * GiB }, empty, 0);
      expect(peer.launchStatus(id, empty, 0)).toEqual({ state: 'go' });
      if (launch) peer.launched(id, 1, 0);
      // 82 % used: shrink, but the guest already has only its memory= of 1 GiB.
      return peer.step(observation({ totalKib: 10 * GiB, freeKib: 1.8 * GiB }, [guest(1, 1 * GiB, 10 * MiB)]), 1);
    };
    expect(launchedAt(true)).toEqual([]);
    // Unknown to the peer, the guest's config is read at first sight: target 512 MiB = memory=.
    expect(launchedAt(false)).toEqual([{ kind: 'setTarget', domid: 1, kib: 1 * GiB - 100 * MiB }]);
  });

  it('grows when usage is under 80 %, and writes nothing for a VM that cannot move', () => {
    const o = observation({ totalKib: 10 * GiB, freeKib: 5 * GiB }, [guest(1, 1 * GiB, 10 * MiB), guest(2, 2 * GiB, 10 * MiB)]);
    const actions = new ProxmoxPeer().step(o, 0);
    expect(actions).toEqual([{ kind: 'setTarget', domid: 1, kib: 1 * GiB + 100 * MiB }]);
  });
});
