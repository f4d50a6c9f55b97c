/**
 * Flood fairness in the observer (issue 11 item 6), with in-memory fakes and an injected clock:
 * a guest flooding xenstore with writes is flagged, throttled (its watches off, its keys read
 * once per step), logged and counted once per episode, and let go after a quiet probation; an
 * honest neighbour's reports are still taken at once; writes the daemon does not need never
 * reach it.
 */
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { FLOOD_COOLDOWN_MS, FLOOD_EVENTS_PER_WINDOW, FLOOD_PROBATION_MS } from '../../src/daemon/flood.js';
import { ConditionLog, createLogger } from '../../src/daemon/log.js';
import { DaemonMetrics } from '../../src/daemon/metrics.js';
import { Observer } from '../../src/daemon/observer.js';
import { FakeHypervisor, FakeReports, FakeStore } from './fakes.js';

interface LogLine { level: number; msg: string; [k: string]: unknown }

const report = (domid: number) => `/local/domain/${domid}/data/xenballoon/report`;
const turn = () => new Promise((r) => setImmediate(r));

async function setup() {
  const lines: LogLine[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n')) if (l) lines.push(JSON.parse(l) as LogLine);
      cb();
    },
  });
  const log = createLogger({ level: 'debug', destination: sink, format: 'json' });
  const store = new FakeStore();
  store.valueEvents = true;
  const hv = new FakeHypervisor();
  const reports = new FakeReports();
  const metrics = new DaemonMetrics();
  const clock = { now: 1_000_000 };
  for (const [domid, name] of [[1, 'flooder'], [2, 'honest']] as const) {
    hv.add(domid, 512 * 1024, 1024 * 1024);
    store.addDomain(domid, name, 512 * 1024, 1024 * 1024);
    store.set(report(domid), 'need=300000', false);
  }
  const obs = new Observer({
    store, hypervisor: hv, reports, log, conditions: new ConditionLog(log), now: () => clock.now,
    minGapMs: 1000, onUrgent: () => undefined, metrics,
  });
  await obs.start();
  await obs.refresh();
  await turn();
  clock.now += 5000;
  return { obs, store, reports, metrics, clock, lines };
}

/** `n` writes of distinct nodes below domain 1's report key (they fire its watch), all in one burst. */
function flood(store: FakeStore, n: number, base = report(1)): void {
  for (let i = 0; i < n; i++) store.set(`${base}/d${i % 10}/k${i}`, `x${i}`);
}

const watchesOf = (store: FakeStore, domid: number) => [...store.watches].filter((w) => w.startsWith(`/local/domain/${domid}/`));

describe('observer under a flood of watch events', () => {
  it('flags and throttles a guest writing 1,000 distinct keys; its keys are read once per step; a neighbour is unaffected', async () => {
    const t = await setup();
    expect(watchesOf(t.store, 1)).toHaveLength(2);
    flood(t.store, 1000);
    expect(t.obs.flags(1)).toEqual(['flooding']);
    expect(t.obs.flags(2)).toEqual([]);
    // Its watches are off: xenstored stops sending its events.
    expect(watchesOf(t.store, 1)).toEqual([]);
    // What it costs the daemon is bounded: a few dirty keys, no queue of paths or values.
    const rec = t.obs.domains.get(1)!;
    expect(rec.dirty.size).toBeLessThanOrEqual(8);
    expect(rec.given?.size ?? 0).toBeLessThanOrEqual(8);
    // The honest guest's report is still taken at once (same turn), while the flooder's are polled.
    const before = t.reports.updates.length;
    t.store.set(report(2), 'need=310000');
    await turn();
    expect(t.reports.updates.slice(before).filter((u) => u.domid === 2).map((u) => u.raw.v1)).toEqual(['need=310000']);
    await turn();
    const reads = t.store.reads.length;
    for (let step = 0; step < 3; step++) {
      t.clock.now += 500;
      t.store.set(report(1), `need=${320000 + step}`); // nobody is told: its watch is off
      await t.obs.refresh();
    }
    expect(t.store.reads.slice(reads).filter((p) => p === report(1))).toHaveLength(3);
    expect(t.reports.latest(1)?.report.mem.committedAsKib).toBe(320002);
    expect(t.obs.explainLines(1).join('\n')).toMatch(/^flooding: over 100 xenstore watch events in 1 s .*read once per step/);
    expect(t.obs.explainLines(2)).toEqual([]);
    const warned = t.lines.filter((l) => /floods xenstore/.test(l.msg));
    expect(warned).toHaveLength(1);
    expect(warned[0]).toMatchObject({ level: 40, domid: 1 });
    expect((await t.metrics.registry.getSingleMetric('xenballoond_flood_episodes_total')?.get())?.values[0]?.value).toBe(1);
  });

  it('lets a guest go after a cool-down and a quiet probation; a repeat within the episode doubles the cool-down and is not logged again', async () => {
    const t = await setup();
    flood(t.store, FLOOD_EVENTS_PER_WINDOW + 1);
    expect(t.obs.flags(1)).toEqual(['flooding']);
    t.clock.now += FLOOD_COOLDOWN_MS;
    await t.obs.refresh();
    expect(watchesOf(t.store, 1)).toHaveLength(2); // watched again, on probation
    expect(t.obs.flags(1)).toEqual(['flooding']);
    await turn();
    t.clock.now += 1000;
    flood(t.store, FLOOD_EVENTS_PER_WINDOW + 1);
    expect(watchesOf(t.store, 1)).toEqual([]);
    t.clock.now += FLOOD_COOLDOWN_MS;
    await t.obs.refresh();
    expect(watchesOf(t.store, 1)).toEqual([]); // the second cool-down is twice as long
    t.clock.now += FLOOD_COOLDOWN_MS;
    await t.obs.refresh();
    expect(watchesOf(t.store, 1)).toHaveLength(2);
    t.clock.now += FLOOD_PROBATION_MS;
    await t.obs.refresh();
    expect(t.obs.flags(1)).toEqual([]);
    expect(t.obs.explainLines(1)).toEqual([]);
    expect(t.lines.filter((l) => /floods xenstore/.test(l.msg))).toHaveLength(1);
    expect(t.lines.filter((l) => /stopped flooding/.test(l.msg))).toHaveLength(1);
    expect((await t.metrics.registry.getSingleMetric('xenballoond_flood_episodes_total')?.get())?.values[0]?.value).toBe(1);
  });

  it('does not hear a guest rewriting other nodes of its data/xenballoon: only the report key is watched', async () => {
    const t = await setup();
    const events = t.store.reads.length;
    flood(t.store, 1000, '/local/domain/1/data/xenballoon');
    await turn();
    expect(t.obs.flags(1)).toEqual([]);
    expect(t.store.reads.length).toBe(events);
    expect(watchesOf(t.store, 1)).toHaveLength(2);
  });

  it('a guest publishing often but below the limit keeps its watches and its latest report is taken', async () => {
    const t = await setup();
    for (let s = 0; s < 5; s++) {
      for (let i = 0; i < 10; i++) t.store.set(report(1), `need=${300000 + s * 10 + i}`);
      await turn();
      t.clock.now += 1000;
    }
    expect(t.obs.flags(1)).toEqual([]);
    expect(watchesOf(t.store, 1)).toHaveLength(2);
    expect(t.reports.latest(1)?.report.mem.committedAsKib).toBe(300049);
  });
});
