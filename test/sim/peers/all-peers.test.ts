import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Action, Observation } from '../../../src/core/types.js';
import { PEER_NAMES, createPeer, type PeerName } from '../../../src/sim/peers/index.js';
import { GiB, MiB, ToyHost, dom, observation, report, type LoggedAction, type ToyGuest } from './fixtures.js';

/** Guests whose use follows a fixed pattern in time, and a launch every 20 s. */
function scripted(name: PeerName): LoggedAction[] {
  const phase = { t: 0 };
  const mk = (domid: number): ToyGuest => ({
    domid,
    currentKib: 512 * MiB,
    targetKib: 512 * MiB,
    maxmemKib: 1025 * MiB,
    staticMaxKib: 1024 * MiB,
    rateKibPerS: 128 * MiB,
    report: (g) => {
      const anon = ((domid * 97 + Math.floor(phase.t / 7_000) * 131) % 400) * MiB;
      const free = Math.max(0, g.currentKib - anon - 60 * MiB);
      return report({
        totalKib: g.currentKib,
        freeKib: free,
        availableKib: free,
        buffersKib: 0,
        cachedKib: 10 * MiB,
        swapTotalKib: 1 * GiB,
        swapFreeKib: 1 * GiB,
        committedAsKib: anon + 80 * MiB,
      });
    },
  });
  const host = new ToyHost(4 * GiB, [mk(1), mk(2)]);
  const peer = createPeer(name);
  const log: LoggedAction[] = [];
  let nextDomid = 3;
  let pending: string | null = null;
  for (let t = 0; t < 120_000; t += peer.intervalMs) {
    phase.t = t;
    if (pending === null && t % 20_000 === 0) {
      pending = peer.requestLaunch({ name: `g${nextDomid}`, memoryKib: 512 * MiB, maxmemKib: 1024 * MiB }, host.observe(t), t);
    }
    if (pending !== null) {
      const s = peer.launchStatus(pending, host.observe(t), t);
      if (s.state === 'go') {
        host.guests.push({ ...mk(nextDomid), domid: nextDomid });
        peer.launched(pending, nextDomid, t);
        log.push({ atMs: t, action: { kind: 'flag', domid: nextDomid, flag: 'stuck', on: false } });
        nextDomid += 1;
        pending = null;
      } else if (s.state === 'fail') {
        pending = null;
      }
    }
    const actions = peer.step(host.observe(t), t);
    for (const action of actions) log.push({ atMs: t, action });
    host.apply(actions);
    host.advance(peer.intervalMs);
  }
  return log;
}

describe('every peer', () => {
  it.each(PEER_NAMES)('%s is deterministic: the same inputs give the same actions', (name) => {
    const a = scripted(name);
    const b = scripted(name);
    expect(a).toEqual(b);
  });

  it.each(PEER_NAMES.filter((n) => n !== 'static'))('%s balloons somebody in the scripted run', (name) => {
    expect(scripted(name).some((l) => l.action.kind === 'setTarget')).toBe(true);
  });

  const arbMem = fc.option(fc.integer({ min: 0, max: 64 * GiB }), { nil: null });
  const arbDomain = fc.record({
    domid: fc.integer({ min: 0, max: 40 }),
    currentKib: fc.integer({ min: 0, max: 8 * GiB }),
    maxmemKib: fc.integer({ min: 0, max: 8 * GiB }),
    staticMaxKib: fc.option(fc.integer({ min: 0, max: 8 * GiB }), { nil: null }),
    targetKib: fc.option(fc.integer({ min: 0, max: 8 * GiB }), { nil: null }),
    hvm: fc.boolean(),
    dying: fc.boolean(),
    mem: fc.record({
      totalKib: arbMem,
      freeKib: arbMem,
      buffersKib: arbMem,
      cachedKib: arbMem,
      swapTotalKib: arbMem,
      swapFreeKib: arbMem,
      committedAsKib: arbMem,
      usedKib: arbMem,
    }),
    hasReport: fc.boolean(),
  });
  const arbObservation = fc
    .record({
      totalKib: fc.integer({ min: 1, max: 1024 * GiB }),
      freeKib: fc.integer({ min: 0, max: 1024 * GiB }),
      scrubKib: fc.integer({ min: 0, max: 64 * MiB }),
      outstandingKib: fc.integer({ min: 0, max: 1 * GiB }),
      domains: fc.uniqueArray(arbDomain, { selector: (d) => d.domid, maxLength: 8 }),
    })
    .map(
      (h): Observation =>
        observation(
          { totalKib: h.totalKib, freeKib: h.freeKib, scrubKib: h.scrubKib, outstandingKib: h.outstandingKib },
          h.domains.map((d) =>
            dom({
              domid: d.domid,
              currentKib: d.currentKib,
              maxmemKib: d.maxmemKib,
              staticMaxKib: d.staticMaxKib,
              targetKib: d.targetKib,
              hvm: d.hvm,
              dying: d.dying,
              report: d.hasReport ? report(d.mem) : null,
            }),
          ),
        ),
    );

  it.each(PEER_NAMES)('%s only ever writes finite, non-negative whole KiB to domains that exist', (name) => {
    fc.assert(
      fc.property(fc.array(arbObservation, { minLength: 1, maxLength: 6 }), (observations) => {
        const peer = createPeer(name);
        observations.forEach((o, i) => {
          const t = i * 10_000;
          const id = peer.requestLaunch({ name: 'x', memoryKib: 256 * MiB, maxmemKib: 512 * MiB }, o, t);
          peer.launchStatus(id, o, t);
          const actions: Action[] = peer.step(o, t);
          const ids = new Set(o.domains.map((d) => d.domid));
          for (const a of actions) {
            expect(ids.has(a.domid)).toBe(true);
            if (a.kind !== 'flag') {
              expect(Number.isSafeInteger(a.kib)).toBe(true);
              expect(a.kib).toBeGreaterThanOrEqual(0);
            }
          }
        });
      }),
      { numRuns: 150, seed: 42 },
    );
  });
});
