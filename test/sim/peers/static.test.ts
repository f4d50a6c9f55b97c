import { describe, expect, it } from 'vitest';
import { StaticPeer } from '../../../src/sim/peers/static.js';
import { GiB, MiB, ToyHost, dom, observation, report } from './fixtures.js';

describe('static peer', () => {
  it('never writes a target or a maxmem, whatever the guests report', () => {
    const host = new ToyHost(4 * GiB, [
      {
        domid: 1,
        currentKib: 512 * MiB,
        targetKib: 512 * MiB,
        maxmemKib: 1024 * MiB,
        staticMaxKib: 1024 * MiB,
        report: () => report({ totalKib: 500 * MiB, freeKib: 1 * MiB, committedAsKib: 2 * GiB }),
      },
      { domid: 2, currentKib: 2 * GiB, targetKib: 2 * GiB, maxmemKib: 2 * GiB, staticMaxKib: 2 * GiB },
    ]);
    const log = host.run(new StaticPeer(), 0, 10 * 60_000);
    expect(log).toEqual([]);
  });

  it('launches only when free memory covers memory= plus the build overhead', () => {
    const req = { name: 'g', memoryKib: 512 * MiB, maxmemKib: 1024 * MiB };
    const fits = observation({ totalKib: 2 * GiB, freeKib: 512 * MiB + 1024 }, []);
    const short = observation({ totalKib: 2 * GiB, freeKib: 512 * MiB + 1023 }, []);
    const a = new StaticPeer();
    expect(a.launchStatus(a.requestLaunch(req, fits, 0), fits, 0)).toEqual({ state: 'go' });
    const b = new StaticPeer();
    expect(b.launchStatus(b.requestLaunch(req, short, 0), short, 0).state).toBe('fail');
  });

  it('holds memory promised to a launch until it is created, then lets the next one count the domain', () => {
    const peer = new StaticPeer();
    let n = 0;
    const req = () => ({ name: `g${++n}`, memoryKib: 512 * MiB, maxmemKib: 512 * MiB });
    const before = observation({ totalKib: 2 * GiB, freeKib: 1000 * MiB }, []);
    const first = peer.requestLaunch(req(), before, 0);
    expect(peer.launchStatus(first, before, 0).state).toBe('go');
    // Not created yet: the host still shows 1000 MiB free, but 513 MiB of it is promised.
    const second = peer.requestLaunch(req(), before, 1);
    expect(peer.launchStatus(second, before, 1).state).toBe('fail');
    peer.launched(first, 1, 2);
    const after = observation({ totalKib: 2 * GiB, freeKib: 1000 * MiB - 512 * MiB }, [
      dom({ domid: 1, currentKib: 512 * MiB }),
    ]);
    const third = peer.requestLaunch(req(), after, 3);
    expect(peer.launchStatus(third, after, 3).state).toBe('fail');
    const roomy = observation({ totalKib: 2 * GiB, freeKib: 600 * MiB }, [dom({ domid: 1, currentKib: 512 * MiB })]);
    const fourth = peer.requestLaunch(req(), roomy, 4);
    expect(peer.launchStatus(fourth, roomy, 4).state).toBe('go');
  });

  it('stops holding a launch\'s memory once its domain exists, even before it is reported built', () => {
    const peer = new StaticPeer({ launch: { patienceMs: Infinity } });
    const a = { name: 'a', memoryKib: 512 * MiB, maxmemKib: 512 * MiB };
    const b = { name: 'b', memoryKib: 512 * MiB, maxmemKib: 512 * MiB };
    const empty = observation({ totalKib: 2 * GiB, freeKib: 1100 * MiB }, []);
    expect(peer.launchStatus(peer.requestLaunch(a, empty, 0), empty, 0).state).toBe('go');
    // a is being built: 100 MiB populated, Xen holds a claim for the other 412 MiB; 588 MiB
    // are really free, enough for b unless a's promise were counted again.
    const building = observation({ totalKib: 2 * GiB, freeKib: 1000 * MiB, outstandingKib: 412 * MiB }, [
      dom({ domid: 1, name: 'a', currentKib: 100 * MiB }),
    ]);
    const idB = peer.requestLaunch(b, building, 1);
    expect(peer.launchStatus(idB, building, 1).state).toBe('go');
  });
});
