import { describe, expect, it } from 'vitest';
import { ReservationBook } from '../../src/daemon/reservations.js';
import type { ReservationVerdict } from '../../src/daemon/ports.js';

const v = (entries: [string, ReservationVerdict][]) => new Map(entries);
const doms = (entries: [number, number][]) => new Map(entries.map(([d, kib]) => [d, { currentKib: kib }]));

describe('ReservationBook', () => {
  it('is pending until the core says ready, then held and shown to the core until released', async () => {
    const b = new ReservationBook();
    const { id, outcome } = b.request(1000, { timeoutMs: 5000, ttlMs: 60_000, label: 'vm', nowMs: 0 });
    expect(b.observations()).toEqual([{ id, kib: 1000, createdAtMs: 0, expiresAtMs: 5000 }]);
    b.afterDecision(v([[id, { state: 'pending', reason: '200 KiB free' }]]), [0, 1], 10);
    expect(b.status()[0]?.reason).toBe('200 KiB free');
    b.afterDecision(v([[id, { state: 'ready', reason: null }]]), [0, 1], 20);
    expect(await outcome).toEqual({ ok: true, id, kib: 1000, expiresAtMs: 60_020 });
    expect(b.observations()[0]?.kib).toBe(1000);
    expect(await b.release(id, { afterDomain: false, waitMs: 0, nowMs: 30 })).toEqual({ ok: true, id, domid: null });
    expect(b.observations()).toEqual([]);
  });

  it('fails at once with the core\'s reason when impossible', async () => {
    const b = new ReservationBook();
    const { id, outcome } = b.request(1000, { timeoutMs: 5000, ttlMs: 60_000, label: null, nowMs: 0 });
    b.afterDecision(v([[id, { state: 'impossible', reason: 'domain minimums leave 300 MiB' }]]), [], 10);
    expect(await outcome).toEqual({ ok: false, code: 'impossible', error: 'domain minimums leave 300 MiB' });
    expect(b.size).toBe(0);
  });

  it('times out with the last reason, and a cancelled client drops its request', async () => {
    const b = new ReservationBook();
    const r1 = b.request(1000, { timeoutMs: 100, ttlMs: 60_000, label: null, nowMs: 0 });
    b.afterDecision(v([[r1.id, { state: 'pending', reason: 'waiting for guests to balloon down' }]]), [], 50);
    b.expire(100);
    const o = await r1.outcome;
    expect(o.ok).toBe(false);
    expect(!o.ok && o.code).toBe('timeout');
    expect(!o.ok && o.error).toMatch(/waiting for guests to balloon down/);

    const ac = new AbortController();
    const r2 = b.request(1000, { timeoutMs: 100, ttlMs: 60_000, label: null, nowMs: 0, signal: ac.signal });
    ac.abort();
    expect((await r2.outcome).ok).toBe(false);
    expect(b.size).toBe(0);
  });

  it('binds to the next new domain, which consumes it as it populates; after_domain releases once bound', async () => {
    const b = new ReservationBook();
    const { id, outcome } = b.request(1000, { timeoutMs: 5000, ttlMs: 60_000, label: null, nowMs: 0 });
    b.afterDecision(v([[id, { state: 'ready', reason: null }]]), [0, 1], 0);
    await outcome;
    const released = b.release(id, { afterDomain: true, waitMs: 10_000, nowMs: 1 });
    b.bind(doms([[0, 5000], [1, 500]]));
    expect(b.observations()[0]?.kib).toBe(1000);
    // Domain 7 appears mid-build holding 400 KiB: it binds, and the release completes.
    const ev = b.bind(doms([[0, 5000], [1, 500], [7, 400]]));
    expect(ev.map((e) => e.kind)).toContain('bound');
    expect(await released).toEqual({ ok: true, id, domid: 7 });
  });

  it('a bound reservation shrinks by what its domain holds and never grows back', () => {
    const b = new ReservationBook();
    const { id } = b.request(1000, { timeoutMs: 5000, ttlMs: 60_000, label: null, nowMs: 0 });
    b.afterDecision(v([[id, { state: 'ready', reason: null }]]), [0], 0);
    b.bind(doms([[0, 1], [3, 400]]));
    expect(b.observations()[0]?.kib).toBe(600);
    b.bind(doms([[0, 1], [3, 900]]));
    expect(b.observations()[0]?.kib).toBe(100);
    b.bind(doms([[0, 1], [3, 200]])); // ballooned down later: that memory is its own now
    expect(b.observations()[0]?.kib).toBe(100);
  });

  it('held reservations expire after their ttl', async () => {
    const b = new ReservationBook();
    const { id, outcome } = b.request(1000, { timeoutMs: 5000, ttlMs: 100, label: null, nowMs: 0 });
    b.afterDecision(v([[id, { state: 'ready', reason: null }]]), [], 0);
    await outcome;
    expect(b.expire(99)).toEqual([]);
    expect(b.expire(100).map((e) => e.kind)).toEqual(['expired']);
    expect(b.size).toBe(0);
    expect((await b.release(id, { afterDomain: false, waitMs: 0, nowMs: 101 })).ok).toBe(false);
  });
});
