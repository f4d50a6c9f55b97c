import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { Daemon } from '../../src/daemon/daemon.js';
import { createLogger } from '../../src/daemon/log.js';
import { DaemonMetrics } from '../../src/daemon/metrics.js';
import { duplicateKeys } from '../helpers/json.js';
import { FakeDecider, FakeHypervisor, FakeReports, FakeStore, waitFor } from './fakes.js';

interface LogLine { level: number; msg: string; [k: string]: unknown }

function setup(opts: { dryRun?: boolean; stepTimeoutMs?: number; intervalMs?: number; valueEvents?: boolean; xenstoreDeadlineMs?: number } = {}) {
  const lines: LogLine[] = [];
  const raw: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n')) {
        if (!l) continue;
        raw.push(l);
        lines.push(JSON.parse(l) as LogLine);
      }
      cb();
    },
  });
  const log = createLogger({ level: 'debug', destination: sink, format: 'json' });
  const store = new FakeStore();
  store.valueEvents = opts.valueEvents ?? false;
  const hv = new FakeHypervisor();
  const reports = new FakeReports();
  const decider = new FakeDecider();
  // The scheduler takes its interval when the daemon is built.
  if (opts.intervalMs !== undefined) decider.intervalMs = opts.intervalMs;
  const metrics = new DaemonMetrics();
  hv.add(0, 1024 * 1024, 1024 * 1024);
  store.addDomain(0, 'Domain-0', 1024 * 1024, 1024 * 1024);
  hv.add(1, 512 * 1024, 1025 * 1024);
  store.addDomain(1, 'web', 512 * 1024, 1024 * 1024);
  const daemon = new Daemon({
    store, hypervisor: hv, reports, decider, policyFiles: ['test.yaml'], log, metrics, notifier: null,
    dryRun: opts.dryRun ?? false, stepTimeoutMs: opts.stepTimeoutMs, xenstoreDeadlineMs: opts.xenstoreDeadlineMs,
  });
  return { daemon, store, hv, reports, decider, metrics, lines, raw };
}

let running: Daemon | null = null;
afterEach(async () => {
  await running?.stop();
  running = null;
});

describe('Daemon (with fake ports)', () => {
  it('adopts existing targets on start: no write until a guest reports a different need', async () => {
    const t = setup();
    running = t.daemon;
    await t.daemon.start();
    await waitFor(() => t.daemon.status().daemon.steps >= 3, 'three steps');
    expect(t.store.writes).toEqual([]);
    expect(t.daemon.status().domains.map((d) => [d.domid, d.name, d.target_kib])).toEqual([[0, 'Domain-0', 1048576], [1, 'web', 524288]]);
  });

  it('manages a new domain: watches it, reads its report, writes its target once', async () => {
    const t = setup();
    running = t.daemon;
    await t.daemon.start();
    t.hv.add(5, 256 * 1024, 1025 * 1024);
    t.store.addDomain(5, 'db', 256 * 1024, 1024 * 1024);
    t.store.fire('@introduceDomain');
    await waitFor(() => t.store.watches.has('/local/domain/5/data/xenballoon/report\0xbd:5:data/xenballoon/report'), 'watch on domain 5');
    t.store.set('/local/domain/5/data/xenballoon/report', 'need=300000');
    await waitFor(() => t.store.nodes.get('/local/domain/5/memory/target') === '300000', 'target written');
    const steps = t.daemon.status().daemon.steps;
    await waitFor(() => t.daemon.status().daemon.steps >= steps + 3, 'more steps');
    expect(t.store.writes.filter((w) => w.path === '/local/domain/5/memory/target')).toHaveLength(1);
  });

  it('reads the name of a domain found while the toolstack was still building it', async () => {
    const t = setup();
    running = t.daemon;
    await t.daemon.start();
    // xl create: the domain is in the hypervisor's list before libxl wrote its xenstore home.
    t.hv.add(6, 0, 0);
    await waitFor(() => t.daemon.status().domains.some((d) => d.domid === 6), 'domain 6 seen');
    const steps = t.daemon.status().daemon.steps;
    await waitFor(() => t.daemon.status().daemon.steps >= steps + 2, 'two more steps');
    expect(t.daemon.status().domains.find((d) => d.domid === 6)?.name).toBe('domain-6');
    t.store.addDomain(6, 'built', 128 * 1024, 256 * 1024);
    t.store.fire('@introduceDomain');
    await waitFor(() => t.daemon.status().domains.find((d) => d.domid === 6)?.name === 'built', 'name read after the introduction');
  });

  it('coalesces a burst of report writes: reads stay bounded, the last value wins', async () => {
    const t = setup();
    running = t.daemon;
    await t.daemon.start();
    const before = t.store.reads.filter((p) => p.endsWith('/report')).length;
    // 90: below the flood limit (flood.ts; a flood is tested in observer-flood.test.ts).
    for (let i = 1; i <= 90; i++) t.store.set('/local/domain/1/data/xenballoon/report', `need=${400_000 + i}`);
    await waitFor(() => t.store.nodes.get('/local/domain/1/memory/target') === '400090', 'last need applied');
    const reads = t.store.reads.filter((p) => p.endsWith('/report')).length - before;
    expect(reads).toBeLessThan(10);
    expect(t.store.writes.filter((w) => w.path.endsWith('/memory/target')).length).toBeLessThan(5);
  });

  it('keeps stepping after a failing step, counts it and logs it once', async () => {
    const t = setup();
    running = t.daemon;
    await t.daemon.start();
    t.decider.throwNext = new Error('core exploded');
    await waitFor(() => t.daemon.status().daemon.step_failures === 1, 'a failure');
    const steps = t.daemon.status().daemon.steps;
    await waitFor(() => t.daemon.status().daemon.steps >= steps + 2, 'steps after the failure');
    t.decider.throwNext = new Error('core exploded');
    await waitFor(() => t.daemon.status().daemon.step_failures === 2, 'a second failure');
    expect(t.lines.filter((l) => l.level >= 50 && /core exploded/.test(l.msg))).toHaveLength(2);
    // The same hypervisor error on every step is logged once, not once per step.
    t.hv.failAlways = new Error('hypercall failed');
    await waitFor(() => t.daemon.status().daemon.step_failures >= 7, 'hypervisor failures');
    t.hv.failAlways = null;
    await waitFor(() => t.lines.some((l) => l.msg === 'control steps succeed again'), 'recovery logged');
    expect(t.lines.filter((l) => /control step failed.*hypercall failed/.test(l.msg))).toHaveLength(1);
    const failures = t.daemon.status().daemon.step_failures;
    expect(await t.metrics.registry.getSingleMetricAsString('xenballoond_step_failures_total')).toContain(` ${failures}`);
  });

  it('abandons a hung step, keeps going, and raises the watchdog alarm once', async () => {
    const t = setup({ stepTimeoutMs: 200 });
    running = t.daemon;
    await t.daemon.start();
    t.hv.hang = true;
    await waitFor(() => t.daemon.status().daemon.stalled, 'stalled');
    await waitFor(() => t.daemon.status().daemon.step_failures >= 3, 'steps keep being attempted');
    expect(t.lines.filter((l) => /no control step has completed/.test(l.msg))).toHaveLength(1);
    t.hv.hang = false;
    await waitFor(() => !t.daemon.status().daemon.stalled, 'recovered');
  });

  it('tolerates a domain vanishing between decision and action', async () => {
    const t = setup();
    running = t.daemon;
    await t.daemon.start();
    t.decider.extra = [{ kind: 'setMaxmem', domid: 9, kib: 1000 }, { kind: 'setTarget', domid: 1, kib: 600_000 }];
    await waitFor(() => t.store.nodes.get('/local/domain/1/memory/target') === '600000', 'the later action applied');
    // domain 1 disappears from xenstore and the hypervisor while a target for it is pending
    t.store.rm('/local/domain/1');
    t.hv.doms.delete(1);
    t.decider.extra = [{ kind: 'setTarget', domid: 1, kib: 700_000 }];
    await waitFor(() => !t.daemon.status().domains.some((d) => d.domid === 1), 'domain 1 forgotten');
    expect(t.store.nodes.has('/local/domain/1/memory/target')).toBe(false);
    expect(t.daemon.status().daemon.step_failures).toBe(0);
  });

  it('retries a target write whose transaction hits EAGAIN', async () => {
    const t = setup();
    running = t.daemon;
    await t.daemon.start();
    t.store.eagainBudget = 2;
    t.store.set('/local/domain/1/data/xenballoon/report', 'need=450000');
    await waitFor(() => t.store.nodes.get('/local/domain/1/memory/target') === '450000', 'target written');
    expect(t.store.transactions).toBeGreaterThanOrEqual(3);
  });

  it('dry run decides and logs once but writes nothing', async () => {
    const t = setup({ dryRun: true });
    running = t.daemon;
    await t.daemon.start();
    t.store.set('/local/domain/1/data/xenballoon/report', 'need=450000');
    const wouldSet = (l: LogLine) => /^would set web 512M → 439M$/.test(l.msg);
    await waitFor(() => t.lines.some(wouldSet), 'dry-run log');
    const steps = t.daemon.status().daemon.steps;
    await waitFor(() => t.daemon.status().daemon.steps >= steps + 3, 'more steps');
    expect(t.store.writes).toEqual([]);
    expect(t.hv.maxmemCalls).toEqual([]);
    expect(t.lines.filter(wouldSet)).toHaveLength(1);
    expect(t.lines.find(wouldSet)).toMatchObject({ domid: 1, domain: 'web', from_kib: 524288, to_kib: 450000, dry_run: true });
    for (const line of t.raw) expect(duplicateKeys(line), line).toEqual([]);
  });

  it('logs once when memory runs short and a guest comes under pressure, from the core\'s explanation', async () => {
    const t = setup();
    running = t.daemon;
    const host = { totalKib: 2 << 20, reserveKib: 65536, reservedKib: 0, needsKib: 3 << 20, allocatableKib: (3 << 20) - 741376, shortKib: 741376, overcommitted: false };
    const web = {
      domid: 1, name: 'web', managed: true, flags: ['pressure', 'pressure:psi'], newTargetKib: 145408, targetKib: 145408, needKib: 409600,
      rates: { swapInKibps: 91136, majorFaultsPs: 0, refaultKibps: 0, psiSome: 1, spanMs: 1000 },
    };
    t.decider.explanation = { atMs: 0, intervalMs: 50, host, domains: [web], reservations: [] } as unknown as NonNullable<typeof t.decider.explanation>;
    await t.daemon.start();
    await waitFor(() => t.daemon.status().daemon.steps >= 5, 'five steps');
    const events = t.lines.filter((l) => typeof l.event === 'string');
    expect(events.map((l) => [l.level, l.event])).toEqual([[40, 'shortage-start'], [40, 'pressure-start']]);
    expect(events[1]?.msg).toBe('web (domain 1) is under memory pressure: PSI some 100%, swap-in 89M/s; target 142M, need 400M; memory is short by 724M');
    t.daemon.updateMetrics();
    expect(await t.metrics.registry.getSingleMetricAsString('xenballoond_host_short_bytes')).toMatch(/^xenballoond_host_short_bytes 759169024$/m);
  });

  it('a guest under pressure triggers a step before the next interval', async () => {
    const t = setup({ intervalMs: 60_000 }); // regular steps would take a minute
    running = t.daemon;
    await t.daemon.start();
    await waitFor(() => t.daemon.status().daemon.steps >= 1, 'first step');
    const steps = t.daemon.status().daemon.steps;
    t.store.set('/local/domain/1/data/xenballoon/report', 'need=500000 psi=40');
    await waitFor(() => t.daemon.status().daemon.steps > steps, 'urgent step');
    expect(t.store.nodes.get('/local/domain/1/memory/target')).toBe('500000');
  });

  it('a guest whose committed memory jumps triggers a step before the next interval', async () => {
    const t = setup({ intervalMs: 60_000 });
    t.store.set('/local/domain/1/data/xenballoon/report', 'need=300000');
    running = t.daemon;
    await t.daemon.start();
    // The first step, at start, acts on the report found there.
    await waitFor(() => t.store.nodes.get('/local/domain/1/memory/target') === '300000', 'first target');
    const steps = t.daemon.status().daemon.steps;
    t.store.set('/local/domain/1/data/xenballoon/report', 'need=400000');
    await waitFor(() => t.daemon.status().daemon.steps > steps, 'urgent step');
    expect(t.store.nodes.get('/local/domain/1/memory/target')).toBe('400000');
  });

  it('answers a reservation when the core says ready, and fails an impossible one with its reason', async () => {
    const t = setup();
    running = t.daemon;
    await t.daemon.start();
    const ac = new AbortController();
    const ok = await t.daemon.handleControl({ op: 'reserve', kib: 100_000 }, ac.signal);
    expect(ok).toMatchObject({ ok: true, reservation: { kib: 100_000 } });
    expect(t.daemon.status().host.reserved_kib).toBe(100_000);
    t.decider.impossibleAboveKib = 500_000;
    const bad = await t.daemon.handleControl({ op: 'reserve', kib: 600_000 }, ac.signal);
    expect(bad).toEqual({ ok: false, code: 'impossible', error: 'minimums leave too little' });
    const id = ok.ok && 'reservation' in ok ? ok.reservation.id : '';
    expect(await t.daemon.handleControl({ op: 'release', id }, ac.signal)).toEqual({ ok: true, id, domid: null });
    expect(t.daemon.status().host.reserved_kib).toBe(0);
  });

  it('re-reads everything after a xenstore reconnect', async () => {
    const t = setup();
    running = t.daemon;
    await t.daemon.start();
    t.store.emit({ kind: 'disconnected', error: 'gone' });
    // While disconnected, someone changes a target; the watch event is lost.
    t.store.set('/local/domain/1/memory/target', '333333', false);
    t.store.emit({ kind: 'reconnected' });
    await waitFor(() => t.daemon.status().domains.find((d) => d.domid === 1)?.target_kib === 333333, 'target re-read');
    expect(t.lines.some((l) => /lost the connection to xenstored/.test(l.msg))).toBe(true);
    expect(t.lines.some((l) => /re-established/.test(l.msg))).toBe(true);
  });

  it('a waiting reservation times out on time even while every step fails', async () => {
    const t = setup();
    running = t.daemon;
    await t.daemon.start();
    t.hv.phys.freeKib = 0; // nothing free: the request waits
    t.hv.failAlways = new Error('hypervisor gone');
    const r = await t.daemon.handleControl({ op: 'reserve', kib: 100_000, timeout_ms: 300 }, new AbortController().signal);
    expect(r).toMatchObject({ ok: false, code: 'timeout' });
    expect(t.daemon.status().reservations).toEqual([]);
  });

  it('reads an isolated report in the same turn of the event loop, not after a timer', async () => {
    const t = setup();
    running = t.daemon;
    await t.daemon.start();
    // Past the minimum gap after the reads that followed registering the watches.
    await waitFor(() => t.daemon.status().daemon.steps >= 3, 'three steps');
    const before = t.reports.updates.length;
    t.store.set('/local/domain/1/data/xenballoon/report', 'need=400000');
    await new Promise((r) => setImmediate(r));
    expect(t.reports.updates.slice(before).map((u) => [u.domid, u.raw.v1])).toEqual([[1, 'need=400000']]);
  });

  it('takes a report whose value came with its watch event without reading the key', async () => {
    const t = setup({ valueEvents: true });
    running = t.daemon;
    await t.daemon.start();
    await waitFor(() => t.daemon.status().daemon.steps >= 3, 'three steps');
    const reads = t.store.reads.length;
    const before = t.reports.updates.length;
    t.store.set('/local/domain/1/data/xenballoon/report', 'need=400000');
    await new Promise((r) => setImmediate(r));
    expect(t.reports.updates.slice(before).map((u) => [u.domid, u.raw.v1])).toEqual([[1, 'need=400000']]);
    expect(t.store.reads.length).toBe(reads);
  });

  it('with values in events, a burst still costs a bounded number of report updates and the last value wins', async () => {
    const t = setup({ valueEvents: true });
    running = t.daemon;
    await t.daemon.start();
    await waitFor(() => t.daemon.status().daemon.steps >= 3, 'three steps');
    const before = t.reports.updates.length;
    const reads = t.store.reads.filter((p) => p.endsWith('/report')).length;
    // 90: below the flood limit (flood.ts; a flood is tested in observer-flood.test.ts).
    for (let i = 1; i <= 90; i++) t.store.set('/local/domain/1/data/xenballoon/report', `need=${400_000 + i}`);
    await waitFor(() => t.store.nodes.get('/local/domain/1/memory/target') === '400090', 'last need applied');
    expect(t.reports.updates.length - before).toBeLessThan(10);
    expect(t.store.reads.filter((p) => p.endsWith('/report')).length).toBe(reads);
  });

  it('an event without a value voids an earlier value of the same key: the key is read', async () => {
    const t = setup({ valueEvents: true });
    running = t.daemon;
    await t.daemon.start();
    await waitFor(() => t.daemon.status().daemon.steps >= 3, 'three steps');
    const before = t.reports.updates.length;
    const key = '/local/domain/1/data/xenballoon/report';
    t.store.set(key, 'need=410000'); // comes with its value…
    t.store.nodes.set(key, 'need=420000');
    t.store.emit({ kind: 'watch', path: key, token: 'xbd:1:data/xenballoon/report' }); // …this one without (e.g. its read failed)
    await waitFor(() => t.reports.updates.length > before, 'a report taken');
    expect(t.reports.updates.slice(before).map((u) => u.raw.v1)).toEqual(['need=420000']);
    expect(t.store.reads.filter((p) => p === key).length).toBeGreaterThanOrEqual(1);
  });

  it('gives the core its domains in domid order, also when a lower domid appears later', async () => {
    const t = setup();
    running = t.daemon;
    await t.daemon.start();
    for (const domid of [7, 4]) {
      t.hv.add(domid, 128 * 1024, 256 * 1024);
      t.store.addDomain(domid, `guest-${domid}`, 128 * 1024, 256 * 1024);
      await waitFor(() => t.daemon.status().domains.some((d) => d.domid === domid), `domain ${domid} seen`);
    }
    const seen = t.decider.observations.length;
    await waitFor(() => t.decider.observations.length > seen, 'one more step');
    expect(t.decider.observations.at(-1)?.domains.map((d) => d.domid)).toEqual([0, 1, 4, 7]);
  });

  it('does not read back its own target writes, but sees a target someone else writes', async () => {
    const t = setup();
    running = t.daemon;
    await t.daemon.start();
    t.store.set('/local/domain/1/data/xenballoon/report', 'need=450000');
    await waitFor(() => t.store.nodes.get('/local/domain/1/memory/target') === '450000', 'target written');
    const steps = t.daemon.status().daemon.steps;
    await waitFor(() => t.daemon.status().daemon.steps >= steps + 2, 'two more steps');
    expect(t.store.reads.filter((p) => p === '/local/domain/1/memory/target')).toHaveLength(1); // the initial read only
    // xl mem-set (or anything else) changes it: the daemon reads it and the core sees it.
    t.store.set('/local/domain/1/memory/target', '470000');
    await waitFor(() => t.daemon.status().domains.find((d) => d.domid === 1)?.target_kib === 470000 ||
      t.store.reads.filter((p) => p === '/local/domain/1/memory/target').length === 2, 'external write read');
    expect(t.store.reads.filter((p) => p === '/local/domain/1/memory/target').length).toBeGreaterThanOrEqual(2);
  });
});

describe('Daemon: one failing domain does not stop the host', () => {
  it('flags the domain error (errno, what was tried), keeps stepping and manages the others', async () => {
    const t = setup();
    running = t.daemon;
    t.hv.add(2, 256 * 1024, 1025 * 1024);
    t.store.addDomain(2, 'idle-3', 256 * 1024, 1024 * 1024);
    t.hv.maxmemDenied.set(2, 'EPERM');
    await t.daemon.start();
    const steps0 = t.daemon.status().daemon.steps;
    // Every step asks for maxmem on domain 2; a report asks for a new target on domain 1.
    const ask = () => [{ kind: 'setMaxmem' as const, domid: 2, kib: 300 * 1024 }];
    t.decider.extra = ask();
    const keepAsking = setInterval(() => (t.decider.extra = ask()), 20);
    try {
      await waitFor(() => t.daemon.status().domains.find((d) => d.domid === 2)?.flags.includes('error') ?? false, 'error flag');
      t.store.set('/local/domain/1/data/xenballoon/report', 'need=450000');
      await waitFor(() => t.store.nodes.get('/local/domain/1/memory/target') === '450000', 'the other domain managed');
      await waitFor(() => t.daemon.status().daemon.steps >= steps0 + 10, 'ten more steps');
      const st = t.daemon.status();
      expect(st.daemon.step_failures).toBe(0);
      expect(st.daemon.stalled).toBe(false);
      const d2 = st.domains.find((d) => d.domid === 2);
      expect(d2?.error).toMatchObject({ action: 'setMaxmem', kib: 300 * 1024, code: 'EPERM' });
      expect(t.daemon.explain('idle-3')?.lines[0]).toMatch(/^error: setMaxmem to 307200 KiB failed with EPERM/);
      // Backoff: far fewer attempts than steps.
      const attempts = t.hv.maxmemCalls.filter((c) => c.domid === 2).length;
      expect(attempts).toBeLessThan(st.daemon.steps - steps0);
      expect(t.lines.filter((l) => /on domain 2 \(idle-3\) failed with EPERM/.test(l.msg))).toHaveLength(1);
      // Permission comes back: the error clears at the next retry.
      t.hv.maxmemDenied.delete(2);
      await waitFor(() => !t.daemon.status().domains.find((d) => d.domid === 2)?.flags.includes('error'), 'error cleared', 120_000);
    } finally {
      clearInterval(keepAsking);
    }
  });
});

describe('Daemon: policy footguns', () => {
  it('logs once, with what to change, when host.reserve leaves managed domains a negative budget', async () => {
    const t = setup();
    running = t.daemon;
    t.decider.hostBooks = { budgetKib: -512 * 1024, reserveKib: 4 * 1024 * 1024, freeKib: 1024 * 1024, managedKib: 512 * 1024, fixedKib: 1024 * 1024 };
    await t.daemon.start();
    const steps = t.daemon.status().daemon.steps;
    await waitFor(() => t.daemon.status().daemon.steps >= steps + 5, 'five steps');
    const lines = t.lines.filter((l) => /host\.reserve/.test(l.msg));
    expect(lines).toHaveLength(1);
    expect(lines[0]?.level).toBe(50);
    expect(lines[0]?.msg).toMatch(/leaves managed domains nothing .*lower host\.reserve in the policy and reload$/);
  });
});

describe('Daemon: a hung xenstored', () => {
  it('is marked unresponsive in status and logged once, and cleared when it answers again', async () => {
    const t = setup({ xenstoreDeadlineMs: 200 });
    running = t.daemon;
    await t.daemon.start();
    expect(t.daemon.status().daemon.xenstore).toBe('connected');
    t.store.setStalled(true);
    await waitFor(() => t.daemon.status().daemon.xenstore === 'unresponsive', 'unresponsive');
    expect(t.daemon.status().daemon.xenstore_connected).toBe(true);
    const steps = t.daemon.status().daemon.steps;
    await waitFor(() => t.daemon.status().daemon.steps >= steps + 5, 'the loop goes on');
    expect(t.lines.filter((l) => /xenstored has not answered a read/.test(l.msg))).toHaveLength(1);
    t.store.setStalled(false);
    await waitFor(() => t.daemon.status().daemon.xenstore === 'connected', 'answers again');
    expect(t.lines.some((l) => l.msg === 'xenstored answers again')).toBe(true);
  });
});

describe('Daemon: reservations wait for domains that are still settling', () => {
  it('an impossible verdict waits while a domain created since start has not reported, then fails with the reason', async () => {
    const t = setup();
    running = t.daemon;
    await t.daemon.start();
    t.hv.add(7, 256 * 1024, 513 * 1024);
    t.store.addDomain(7, 'new', 256 * 1024, 512 * 1024);
    t.store.fire('@introduceDomain');
    await waitFor(() => t.daemon.status().domains.some((d) => d.domid === 7), 'domain 7 seen');
    t.decider.impossibleAboveKib = 100;
    const pending = t.daemon.handleControl({ op: 'reserve', kib: 200, timeout_ms: 60_000 }, new AbortController().signal);
    const steps = t.daemon.status().daemon.steps;
    await waitFor(() => t.daemon.status().daemon.steps >= steps + 4, 'steps while waiting');
    const r = t.daemon.status().reservations[0];
    expect(r?.state).toBe('pending');
    expect(r?.reason).toMatch(/waiting: domain 7 has not reported yet/);
    // It reports: the verdict stands, and the client hears the core's reason.
    t.store.set('/local/domain/7/data/xenballoon/report', 'need=200000');
    expect(await pending).toEqual({ ok: false, code: 'impossible', error: 'minimums leave too little' });
  });
});
