import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AccountingError, XenHost, type XenHostConfig } from '../../src/sim/host/xen-host.js';

const MiB = 1024;
const config = (over: Partial<XenHostConfig> = {}): XenHostConfig => ({
  totalKib: 2048 * MiB,
  xenOverheadKib: 24 * MiB,
  perDomainOverheadKib: 1 * MiB,
  scrubRateKibPerMs: 100 * MiB / 1000,
  teardownRateKibPerMs: 200 * MiB / 1000,
  buildRateKibPerMs: 1024 * MiB / 1000,
  claims: true,
  ...over,
});

function totalOf(h: XenHost): number {
  const p = h.physinfo();
  const doms = h.listDomains().reduce((s, d) => s + d.totKib, 0);
  return p.freeKib + p.scrubKib + doms + h.overheadKib();
}

function runUntilBuilt(h: XenHost, domid: number): void {
  for (let i = 0; i < 1000 && h.domain(domid)?.state === 'building'; i++) h.tick(100);
}

describe('Xen host accounting', () => {
  it('free + scrub + domain pages + overhead = total, through any sequence of operations', () => {
    const op = fc.oneof(
      fc.record({ k: fc.constant('create' as const), mem: fc.integer({ min: 0, max: 900 * MiB }) }),
      fc.record({ k: fc.constant('destroy' as const), i: fc.nat(8) }),
      fc.record({ k: fc.constant('populate' as const), i: fc.nat(8), kib: fc.integer({ min: 0, max: 600 * MiB }) }),
      fc.record({ k: fc.constant('release' as const), i: fc.nat(8), kib: fc.integer({ min: 0, max: 600 * MiB }) }),
      fc.record({ k: fc.constant('maxmem' as const), i: fc.nat(8), kib: fc.integer({ min: 0, max: 2048 * MiB }) }),
      fc.record({ k: fc.constant('tick' as const), ms: fc.integer({ min: 1, max: 5000 }) }),
    );
    fc.assert(
      fc.property(fc.boolean(), fc.array(op, { maxLength: 80 }), (claims, ops) => {
        const h = new XenHost(config({ claims }));
        const total = h.physinfo().totalKib;
        for (const o of ops) {
          const ids = h.listDomains().map((d) => d.domid);
          const pick = (i: number) => ids[i % Math.max(1, ids.length)] ?? 1;
          const before = o.k === 'populate' ? h.domain(pick(o.i)) : undefined;
          if (o.k === 'create') h.createDomain({ name: 'g', memoryKib: o.mem, initialMaxKib: o.mem + MiB });
          else if (o.k === 'destroy') h.destroyDomain(pick(o.i));
          else if (o.k === 'populate') {
            const got = h.populate(pick(o.i), o.kib);
            const after = h.domain(pick(o.i));
            // Populate never takes a domain past its cap.
            if (before && after && got > 0) expect(after.totKib).toBeLessThanOrEqual(after.maxKib);
          } else if (o.k === 'release') h.release(pick(o.i), o.kib);
          else if (o.k === 'maxmem') h.setMaxmem(pick(o.i), o.kib);
          else h.tick(o.ms);
          h.checkInvariants();
          expect(totalOf(h)).toBe(total);
        }
      }),
      { numRuns: 200 },
    );
  });

  it('detects a page created out of nothing', () => {
    const h = new XenHost(config());
    (h as unknown as { freePages: number }).freePages += 1;
    expect(() => h.checkInvariants()).toThrow(AccountingError);
  });

  it('charges Xen overhead: its own and 1 MiB per domain, returned when the domain is gone', () => {
    const h = new XenHost(config());
    expect(h.physinfo().freeKib).toBe(2024 * MiB);
    const r = h.createDomain({ name: 'a', memoryKib: 512 * MiB, initialMaxKib: 513 * MiB });
    expect(r.ok).toBe(true);
    expect(h.overheadKib()).toBe(25 * MiB);
    if (!r.ok) return;
    runUntilBuilt(h, r.domid);
    h.destroyDomain(r.domid);
    for (let i = 0; i < 200 && h.domainCount() > 0; i++) h.tick(100);
    expect(h.overheadKib()).toBe(24 * MiB);
  });

  it('claims the whole allocation at creation: it counts as free but nobody else can take it', () => {
    const h = new XenHost(config());
    const a = h.createDomain({ name: 'a', memoryKib: 1000 * MiB, initialMaxKib: 1001 * MiB });
    expect(a.ok).toBe(true);
    const p = h.physinfo();
    expect(p.outstandingKib).toBe(1000 * MiB);
    expect(p.freeKib).toBe(2024 * MiB - MiB);
    // Another domain cannot be created into the claimed memory...
    const b = h.createDomain({ name: 'b', memoryKib: 1100 * MiB, initialMaxKib: 1101 * MiB });
    expect(b.ok).toBe(false);
    if (b.ok) return;
    expect(b.reason).toMatch(/not enough memory/);
    // ...and a running domain cannot populate it either.
    const c = h.createDomain({ name: 'c', memoryKib: 100 * MiB, initialMaxKib: 2000 * MiB });
    if (!c.ok) throw new Error(c.reason);
    runUntilBuilt(h, c.domid);
    const before = h.physinfo();
    const got = h.populate(c.domid, 2000 * MiB);
    expect(got).toBe(before.freeKib - before.outstandingKib);
    expect(h.physinfo().freeKib).toBe(h.physinfo().outstandingKib);
    if (!a.ok) return;
    runUntilBuilt(h, a.domid);
    expect(h.domain(a.domid)?.totKib).toBe(1000 * MiB);
  });

  it('builds a domain over time at the build rate, then reports it built once', () => {
    const h = new XenHost(config({ buildRateKibPerMs: 100 * MiB / 1000 }));
    const r = h.createDomain({ name: 'a', memoryKib: 512 * MiB, initialMaxKib: 513 * MiB });
    if (!r.ok) throw new Error(r.reason);
    const events = h.tick(1000);
    expect(h.domain(r.domid)).toMatchObject({ state: 'building', totKib: 100 * MiB, outstandingKib: 412 * MiB });
    expect(events).toEqual([]);
    const all = [];
    for (let i = 0; i < 10; i++) all.push(...h.tick(1000));
    expect(all).toEqual([{ kind: 'built', domid: r.domid }]);
    expect(h.domain(r.domid)).toMatchObject({ state: 'running', totKib: 512 * MiB, outstandingKib: 0 });
  });

  it('without claims, a build that runs out of memory fails and the domain is torn down', () => {
    const h = new XenHost(config({ claims: false, buildRateKibPerMs: 100 * MiB / 1000 }));
    const a = h.createDomain({ name: 'a', memoryKib: 1200 * MiB, initialMaxKib: 1201 * MiB });
    const b = h.createDomain({ name: 'b', memoryKib: 1200 * MiB, initialMaxKib: 1201 * MiB });
    expect(a.ok && b.ok).toBe(true);
    const events = [];
    for (let i = 0; i < 30; i++) events.push(...h.tick(1000));
    expect(events.some((e) => e.kind === 'build-failed')).toBe(true);
    h.checkInvariants();
  });

  it('never lets a domain populate past max_pages; a lowered cap blocks growth until it is back under', () => {
    const h = new XenHost(config());
    const r = h.createDomain({ name: 'a', memoryKib: 512 * MiB, initialMaxKib: 513 * MiB });
    if (!r.ok) throw new Error(r.reason);
    runUntilBuilt(h, r.domid);
    expect(h.populate(r.domid, 100 * MiB)).toBe(1 * MiB);
    h.setMaxmem(r.domid, 400 * MiB);
    expect(h.populate(r.domid, 4)).toBe(0);
    expect(h.domain(r.domid)?.totKib).toBe(513 * MiB);
    h.release(r.domid, 200 * MiB);
    expect(h.populate(r.domid, 100 * MiB)).toBe(87 * MiB);
    expect(h.domain(r.domid)?.totKib).toBe(400 * MiB);
  });

  it('rounds maxmem down to whole pages, as Xen shifts KiB to pages', () => {
    const h = new XenHost(config());
    const r = h.createDomain({ name: 'a', memoryKib: 64 * MiB, initialMaxKib: 64 * MiB, prebuilt: true });
    if (!r.ok) throw new Error(r.reason);
    h.setMaxmem(r.domid, 70 * MiB + 3);
    expect(h.domain(r.domid)?.maxKib).toBe(70 * MiB);
  });

  it("frees a destroyed domain's pages only after teardown and scrubbing", () => {
    const h = new XenHost(config());
    const r = h.createDomain({ name: 'a', memoryKib: 1000 * MiB, initialMaxKib: 1001 * MiB, prebuilt: true });
    if (!r.ok) throw new Error(r.reason);
    const free0 = h.physinfo().freeKib;
    h.destroyDomain(r.domid);
    h.tick(1000);
    const p = h.physinfo();
    expect(h.domain(r.domid)?.state).toBe('dying');
    expect(p.scrubKib).toBeGreaterThan(0);
    expect(p.freeKib - free0).toBeLessThan(200 * MiB);
    const gone = [];
    for (let i = 0; i < 40; i++) gone.push(...h.tick(1000));
    expect(gone).toContainEqual({ kind: 'gone', domid: r.domid });
    expect(h.physinfo().scrubKib).toBe(0);
    expect(h.physinfo().freeKib).toBe(free0 + 1001 * MiB);
  });

  it('balloon releases by a live domain are free at once (no scrub)', () => {
    const h = new XenHost(config());
    const r = h.createDomain({ name: 'a', memoryKib: 512 * MiB, initialMaxKib: 513 * MiB, prebuilt: true });
    if (!r.ok) throw new Error(r.reason);
    const free0 = h.physinfo().freeKib;
    expect(h.release(r.domid, 100 * MiB)).toBe(100 * MiB);
    expect(h.physinfo()).toMatchObject({ freeKib: free0 + 100 * MiB, scrubKib: 0 });
  });

  it('allocates domids from a rover, never reusing a live one', () => {
    const h = new XenHost(config());
    const ids = [1, 2, 3].map(() => {
      const r = h.createDomain({ name: 'x', memoryKib: 8 * MiB, initialMaxKib: 9 * MiB, prebuilt: true });
      return r.ok ? r.domid : -1;
    });
    expect(ids).toEqual([1, 2, 3]);
    h.destroyDomain(2);
    for (let i = 0; i < 10; i++) h.tick(1000);
    const r = h.createDomain({ name: 'y', memoryKib: 8 * MiB, initialMaxKib: 9 * MiB, prebuilt: true });
    expect(r.ok && r.domid).toBe(4);
  });
});
