import { describe, expect, it } from 'vitest';
import { pinActions, PinBook } from '../../src/daemon/pins.js';

describe('PinBook (operators\' targets)', () => {
  it('adopts the first target, ignores its own writes (even a read that raced one), pins anyone else\'s', () => {
    const b = new PinBook();
    expect(b.observe(3, 'web', 512_000, 0)).toBeNull(); // found at start: ours
    b.noteOwn(3, 400_000);
    expect(b.observe(3, 'web', 400_000, 1)).toBeNull();
    expect(b.observe(3, 'web', 512_000, 2)).toBeNull(); // a stale read of the value before our write
    const pin = b.observe(3, 'web', 700_000, 3);
    expect(pin).toMatchObject({ domid: 3, name: 'web', targetKib: 700_000, source: 'foreign-write', sinceMs: 3 });
    expect(b.observe(3, 'web', 700_000, 4)).toBeNull(); // no news: still pinned at the same value
    expect(b.get(3)?.targetKib).toBe(700_000);
    expect(b.observe(3, 'web', 650_000, 5)?.targetKib).toBe(650_000); // the operator changed it again
    expect(b.unpin(3)?.targetKib).toBe(650_000);
    expect(b.observe(3, 'web', 650_000, 6)).toBeNull(); // handed back: the value is ours now
  });

  it('adopts every target of a domain still being built (the toolstack writes them)', () => {
    const b = new PinBook();
    expect(b.observe(9, 'new', 262_144, 0, true)).toBeNull();
    expect(b.observe(9, 'new', 258_048, 1, true)).toBeNull();
    expect(b.observe(9, 'new', 258_048, 2)).toBeNull();
    expect(b.observe(9, 'new', 300_000, 3)?.source).toBe('foreign-write');
  });

  it('restores pins only for a domain that still exists under the same name', () => {
    const b = new PinBook();
    const names = new Map<number, string>([[3, 'web'], [4, 'db']]);
    const kept = b.restore([
      { domid: 3, name: 'web', targetKib: 1, sinceMs: 0, source: 'xenballoonctl' },
      { domid: 4, name: 'old', targetKib: 1, sinceMs: 0, source: 'foreign-write' },
      { domid: 5, name: 'gone', targetKib: 1, sinceMs: 0, source: 'foreign-write' },
    ], (d) => names.get(d));
    expect(kept.map((p) => p.domid)).toEqual([3]);
    expect(b.get(4)).toBeUndefined();
  });

  it('holding a pin raises maxmem to reach it (within static-max, never lowers it), then sets the target', () => {
    const pin = { domid: 3, name: 'web', targetKib: 800 * 1024, sinceMs: 0, source: 'xenballoonctl' as const };
    expect(pinActions(pin, { domid: 3, targetKib: 512 * 1024, maxmemKib: 513 * 1024, staticMaxKib: 1024 * 1024, videoramKib: 0 })).toEqual([
      { kind: 'setMaxmem', domid: 3, kib: 801 * 1024 },
      { kind: 'setTarget', domid: 3, kib: 800 * 1024 },
    ]);
    expect(pinActions(pin, { domid: 3, targetKib: 800 * 1024, maxmemKib: 600 * 1024, staticMaxKib: 700 * 1024, videoramKib: 0 })).toEqual([
      { kind: 'setMaxmem', domid: 3, kib: 701 * 1024 },
    ]);
    expect(pinActions(pin, { domid: 3, targetKib: 800 * 1024, maxmemKib: 2048 * 1024, staticMaxKib: 4096 * 1024, videoramKib: 0 })).toEqual([]);
  });
});
