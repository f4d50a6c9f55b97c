/**
 * In-process probe of the daemon's per-step and per-report costs (not a benchmark of record):
 * the real Daemon (observer, core, report intake, actuator) over in-memory fakes of xenstore
 * and the hypervisor, stepped by hand with an injected clock. Prints CPU µs per step and per
 * report, and (--alloc) the top allocation sites from V8's sampling heap profiler.
 *
 *   node build/bench/bench/daemon-probe.js [--domains 100] [--steps 300] [--beats 10] [--alloc]
 */
import { Session } from 'node:inspector/promises';
import { parseArgs } from 'node:util';
import { CoreDecider } from '../src/daemon/adapters/core.js';
import { ReportTrackerIntake } from '../src/daemon/adapters/reports.js';
import { Daemon } from '../src/daemon/daemon.js';
import { createLogger } from '../src/daemon/log.js';
import { DaemonMetrics } from '../src/daemon/metrics.js';
import { defaultPolicy } from '../src/policy/index.js';
import { formatV1 } from '../src/report/v1.js';
import { FakeHypervisor, FakeStore } from '../test/daemon/fakes.js';

const MiB = 1024;
const { values } = parseArgs({ options: {
  domains: { type: 'string', default: '100' }, steps: { type: 'string', default: '300' },
  beats: { type: 'string', default: '10' }, alloc: { type: 'boolean', default: false }, cpu: { type: 'string' },
} });
const n = Number(values.domains);
const steps = Number(values.steps);
const beatsPerStep = Number(values.beats);

const store = new FakeStore();
const hv = new FakeHypervisor();
hv.phys = { totalKib: (n + 2) * 1024 * MiB, freeKib: n * 256 * MiB, scrubKib: 0, outstandingKib: 0 };
hv.add(0, 1024 * MiB, 1024 * MiB);
const seq = new Map<number, number>();
const report = (domid: number, totKib: number) => {
  const s = (seq.get(domid) ?? 0) + 1;
  seq.set(domid, s);
  return formatV1({
    seq: s, uptimeS: 1000 + s, memTotalKib: totKib - 40 * MiB, memFreeKib: 64 * MiB, memAvailableKib: 128 * MiB,
    buffersKib: 4 * MiB, cachedKib: 64 * MiB, shmemKib: MiB, swapTotalKib: 1024 * MiB, swapFreeKib: 1024 * MiB,
    committedAsKib: 300 * MiB + domid * 100, balloonCurrentKib: totKib, pswpin: 0, pswpout: 0, pgmajfault: 100, workingsetRefault: 0,
    oomKill: 0, psiSomeAvg10Bp: 0, psiFullAvg10Bp: 0, psiSomeTotalUs: s * 1000, psiFullTotalUs: 0,
  });
};
for (let d = 1; d <= n; d++) {
  hv.add(d, 512 * MiB, 1024 * MiB);
  store.addDomain(d, `guest-${d}`, 512 * MiB, 1024 * MiB);
  store.set(`/local/domain/${d}/data/xenballoon/report`, report(d, 512 * MiB), false);
}
let now = 1_000_000;
const log = createLogger({ level: 'warn' });
const daemon = new Daemon({
  store, hypervisor: hv, reports: new ReportTrackerIntake({ log, metrics: null }), decider: new CoreDecider(defaultPolicy()),
  policyFiles: [], log, metrics: new DaemonMetrics(), notifier: null, dryRun: false, now: () => now,
});
// Guests follow their targets at once (ideal balloons).
const follow = () => {
  for (const [domid, info] of hv.doms) {
    if (domid === 0) continue;
    const t = Number(store.nodes.get(`/local/domain/${domid}/memory/target`));
    if (t) info.totKib = t;
  }
};
const stepOnce = (d: Daemon) => (d as unknown as { step(r: string[]): Promise<void> }).step(['interval']);
const tick = () => new Promise((r) => setImmediate(r));
await daemon.observer.start();
let next = 1;
const run = async (count: number, beats: number) => {
  for (let i = 0; i < count; i++) {
    now += 1000;
    for (let b = 0; b < beats; b++) {
      store.set(`/local/domain/${next}/data/xenballoon/report`, report(next, hv.doms.get(next)!.totKib));
      next = next >= n ? 1 : next + 1;
      await tick();
    }
    await stepOnce(daemon);
    follow();
  }
};
await run(200, beatsPerStep); // warm-up: adoption, shrinking, JIT
const measure = async (beats: number) => {
  const c0 = process.cpuUsage();
  await run(steps, beats);
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / steps;
};
const idle = await measure(0);
const beating = await measure(beatsPerStep);
console.log(`${n} domains: ${idle.toFixed(0)} µs CPU per step with no reports; ${beating.toFixed(0)} µs per step with ${beatsPerStep} reports ` +
  `(~${((beating - idle) / Math.max(1, beatsPerStep)).toFixed(0)} µs per report, fakes included)`);
if (values.alloc) {
  const session = new Session();
  session.connect();
  await session.post('HeapProfiler.enable');
  await session.post('HeapProfiler.startSampling', { samplingInterval: 512, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true } as never);
  await run(steps, beatsPerStep);
  const { profile } = (await session.post('HeapProfiler.stopSampling')) as unknown as { profile: { head: Node } };
  interface Node { callFrame: { functionName: string; url: string; lineNumber: number }; selfSize: number; children: Node[] }
  const self = new Map<string, number>();
  const incl = new Map<string, number>();
  let total = 0;
  const walk = (node: Node, stack: string[]): number => {
    const k = `${node.callFrame.functionName || '(anon)'} ${node.callFrame.url.replace(/.*\/(src|dist|node_modules|bench)\//, '$1/')}:${node.callFrame.lineNumber + 1}`;
    self.set(k, (self.get(k) ?? 0) + node.selfSize);
    total += node.selfSize;
    let sum = node.selfSize;
    for (const c of node.children) sum += walk(c, [...stack, k]);
    if (!stack.includes(k)) incl.set(k, (incl.get(k) ?? 0) + sum);
    return sum;
  };
  walk(profile.head, []);
  const top = (m: Map<string, number>, k: number) => [...m].sort((a, b) => b[1] - a[1]).slice(0, k)
    .map(([name, b]) => `${(b / steps / 1024).toFixed(1).padStart(8)} KiB/step  ${name}`).join('\n');
  console.log(`allocated ~${(total / steps / 1024).toFixed(0)} KiB per step\n--- self\n${top(self, 30)}\n--- inclusive\n${top(incl, 45)}`);
}
if (values.cpu !== undefined) {
  // --cpu FILE: a .cpuprofile of `steps` more steps (beats as given).
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: 50 });
  await session.post('Profiler.start');
  await run(steps, beatsPerStep);
  const { profile } = await session.post('Profiler.stop');
  const { writeFileSync } = await import('node:fs');
  writeFileSync(values.cpu, JSON.stringify(profile));
}
await daemon.stop();
