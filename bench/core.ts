/**
 * `make bench-core`: time per core step for 10, 100, 1,000 and 10,000 domains (a benchmark, not
 * a test: it prints numbers). Each step sees fresh reports from every guest (needs drifting, a
 * few guests spiking), a pending reservation, and the host as it would be after the previous
 * step's actions, so every part of the core does its work. Goals: 1,000 domains < 5 ms/step,
 * 10,000 < 50 ms/step.
 *
 *   node build/bench/bench/core.js [--sizes 10,100,1000,10000] [--json]
 */
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { initialState, step, type CoreState } from '../src/core/index.js';
import type { DomainObservation, Observation } from '../src/core/types.js';
import { defaultPolicy } from '../src/policy/index.js';
import type { GuestReport } from '../src/report/types.js';

const MiB = 1024;

/** A small deterministic PRNG (mulberry32), so runs are comparable. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function report(totalKib: number, committedKib: number, uptimeS: number, pswpin: number): GuestReport {
  return {
    format: 'v1',
    seq: uptimeS,
    uptimeS,
    mem: {
      totalKib,
      freeKib: Math.max(0, Math.round(totalKib * 0.2)),
      availableKib: Math.round(totalKib * 0.5),
      buffersKib: 8 * MiB,
      cachedKib: Math.round(totalKib * 0.2),
      shmemKib: MiB,
      swapTotalKib: 1024 * MiB,
      swapFreeKib: 1000 * MiB,
      committedAsKib: committedKib,
      usedKib: null,
    },
    counters: { pswpin, pswpout: pswpin * 2, pgmajfault: pswpin, workingsetRefault: 0, oomKill: 0 },
    pressure: { someAvg10: 0, fullAvg10: 0, someTotalUs: pswpin * 10, fullTotalUs: 0 },
    balloonCurrentKib: totalKib + 50 * MiB,
  };
}

function makeHost(n: number, rnd: () => number): { obs: Observation; committed: number[] } {
  const domains: DomainObservation[] = [];
  const committed: number[] = [];
  let used = 4096 * MiB;
  domains.push({
    domid: 0, name: 'Domain-0', currentKib: 4096 * MiB, maxmemKib: 4096 * MiB + 1024, staticMaxKib: null,
    targetKib: 4096 * MiB, videoramKib: 0, dying: false, shutdown: false, hvm: false, report: null, reportAtMs: null,
  });
  for (let i = 1; i <= n; i++) {
    const staticMax = (512 + Math.floor(rnd() * 8) * 512) * MiB;
    const current = Math.round(staticMax * (0.3 + 0.5 * rnd()) / 4) * 4;
    const c = Math.round(current * (0.2 + 0.6 * rnd()));
    committed.push(c);
    used += current;
    domains.push({
      domid: i, name: `vm-${i}`, currentKib: current, maxmemKib: current + 1024, staticMaxKib: staticMax,
      targetKib: current, videoramKib: 0, dying: false, shutdown: false, hvm: false,
      report: report(current - 50 * MiB, c, 1000, 0), reportAtMs: 0,
    });
  }
  const free = Math.round(used * 0.05);
  return {
    obs: { host: { totalKib: used + free, freeKib: free, scrubKib: 0, outstandingKib: 0 }, domains, reservations: [] },
    committed,
  };
}

interface Result {
  domains: number;
  steps: number;
  medianMs: number;
  p95Ms: number;
  maxMs: number;
  actionsPerStep: number;
}

function bench(n: number): Result {
  const rnd = prng(n);
  const policy = defaultPolicy();
  const { obs: start, committed } = makeHost(n, rnd);
  let obs = start;
  let state: CoreState = initialState();
  const steps = Math.max(30, Math.min(2000, Math.round(100_000 / n)));
  // The daemon runs for months: measure the optimised code, not V8's warm-up.
  const warmup = 20;
  const times: number[] = [];
  let actions = 0;
  for (let s = 0; s < warmup + steps; s++) {
    const now = s * policy.intervalMs;
    // Fresh reports: needs drift; about 1% of guests spike (and swap a little).
    const domains = obs.domains.map((d, i) => {
      if (d.domid === 0 || !d.report) return d;
      const base = committed[i - 1] ?? 0;
      const spike = rnd() < 0.01 ? 256 * MiB : 0;
      const c = Math.max(0, Math.round(base * (0.9 + 0.2 * rnd())) + spike);
      const swapped = (d.report.counters.pswpin ?? 0) + (spike > 0 ? 2048 : 0);
      return { ...d, report: report(Math.max(0, d.currentKib - 50 * MiB), c, 1000 + s, swapped), reportAtMs: now - 10 };
    });
    const reservations = s % 10 < 5 ? [{ id: 'r', kib: 512 * MiB, createdAtMs: 0, expiresAtMs: 1e12 }] : [];
    const input: Observation = { ...obs, domains, reservations };
    const t0 = performance.now();
    const r = step(state, input, policy, now);
    const t1 = performance.now();
    if (s >= warmup) {
      times.push(t1 - t0);
      actions += r.actions.length;
    }
    state = r.state;
    obs = obey(input, r.actions);
  }
  times.sort((a, b) => a - b);
  const at = (q: number) => times[Math.min(times.length - 1, Math.floor(q * times.length))] ?? NaN;
  return { domains: n, steps, medianMs: at(0.5), p95Ms: at(0.95), maxMs: times[times.length - 1] ?? NaN, actionsPerStep: actions / steps };
}

/** The host after the actions, every guest at its target (as if balloon drivers were instant). */
function obey(obs: Observation, actions: ReturnType<typeof step>['actions']): Observation {
  const byId = new Map(obs.domains.map((d) => [d.domid, { ...d }]));
  for (const a of actions) {
    const d = byId.get(a.domid);
    if (!d || a.kind === 'flag') continue;
    if (a.kind === 'setTarget') d.targetKib = a.kib;
    else d.maxmemKib = a.kib;
  }
  let delta = 0;
  for (const d of byId.values()) {
    if (d.domid === 0 || d.targetKib === null) continue;
    const goal = Math.min(d.targetKib, d.maxmemKib);
    delta += goal - d.currentKib;
    d.currentKib = goal;
  }
  return { ...obs, domains: [...byId.values()], host: { ...obs.host, freeKib: Math.max(0, obs.host.freeKib - delta) } };
}

const { values } = parseArgs({ options: { sizes: { type: 'string', default: '10,100,1000,10000' }, json: { type: 'boolean' } } });
const sizes = (values.sizes ?? '').split(',').map((x) => Number(x.trim())).filter((x) => Number.isInteger(x) && x > 0);
const results = sizes.map(bench);
if (values.json) {
  process.stdout.write(JSON.stringify({ node: process.version, results }) + '\n');
} else {
  process.stdout.write(`xenballoond core: time per step (node ${process.version}; indicative, the machine is shared)\n`);
  process.stdout.write('domains   steps   median ms   p95 ms   max ms   actions/step\n');
  for (const r of results) {
    process.stdout.write(
      `${String(r.domains).padStart(7)}  ${String(r.steps).padStart(6)}  ${r.medianMs.toFixed(3).padStart(10)}  ${r.p95Ms.toFixed(3).padStart(7)}  ${r.maxMs.toFixed(3).padStart(7)}  ${r.actionsPerStep.toFixed(1).padStart(13)}\n`,
    );
  }
  const goal = (n: number, ms: number) => {
    const r = results.find((x) => x.domains === n);
    return r ? `${n} domains: median ${r.medianMs.toFixed(2)} ms (goal < ${ms} ms) ${r.medianMs < ms ? 'ok' : 'MISSED'}` : null;
  };
  for (const line of [goal(1000, 5), goal(10_000, 50)]) if (line) process.stdout.write(line + '\n');
}
