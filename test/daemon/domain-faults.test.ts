import { describe, expect, it } from 'vitest';
import { backoffMs, describeFault, DomainFaults, errorCode } from '../../src/daemon/domain-faults.js';

describe('DomainFaults (per-domain error state and backoff)', () => {
  it('backs off exponentially from the base up to the cap', () => {
    const o = { baseMs: 1000, maxMs: 60_000 };
    expect([1, 2, 3, 4, 7, 8, 50].map((n) => backoffMs(n, o))).toEqual([1000, 2000, 4000, 8000, 60_000, 60_000, 60_000]);
  });

  it('keeps a failing domain out until its retry is due; other domains are never held', () => {
    const f = new DomainFaults({ baseMs: 1000, maxMs: 60_000 });
    f.failed(3, { action: 'setMaxmem', kib: 1024 }, 'EPERM', 'denied', 10_000);
    expect(f.due(3, 10_500)).toBe(false);
    expect(f.due(4, 10_500)).toBe(true);
    expect(f.due(3, 11_000)).toBe(true);
    f.failed(3, { action: 'setMaxmem', kib: 1024 }, 'EPERM', 'denied', 11_000);
    expect(f.get(3)).toMatchObject({ failures: 2, sinceMs: 10_000, retryAtMs: 13_000, code: 'EPERM' });
    expect(describeFault(f.get(3)!, 11_000)).toMatch(/^setMaxmem to 1024 KiB failed with EPERM \(2× .*next try in 2 s\): denied$/);
  });

  it('clears a domain that was due and did not fail again, not one still waiting or failing now', () => {
    const f = new DomainFaults({ baseMs: 1000, maxMs: 60_000 });
    f.failed(1, { action: 'setTarget', kib: 5 }, 'EACCES', 'x', 0);
    f.failed(2, { action: 'setTarget', kib: 5 }, 'EACCES', 'x', 0);
    f.failed(3, { action: 'setTarget', kib: 5 }, 'EACCES', 'x', 900);
    const changes = f.settle(new Set([2]), 1000);
    expect(changes.map((c) => [c.kind, c.domid])).toEqual([['recovered', 1]]);
    expect(f.get(2)).toBeDefined();
    expect(f.get(3)).toBeDefined();
  });

  it('takes the errno name from the error, never arbitrary text', () => {
    expect(errorCode(Object.assign(new Error('x'), { code: 'EPERM' }))).toBe('EPERM');
    expect(errorCode(Object.assign(new Error('x'), { code: 'rm -rf /' }))).toBe('error');
    expect(errorCode(null)).toBe('error');
  });
});
