/**
 * `make bench-daemon`: the real xenballoond process managing 100 and 1,000 domains.
 * A benchmark, not a test: it prints numbers and asserts nothing. On a shared machine the
 * numbers are indicative only.
 *
 *   make bench-daemon, or: node build/bench/bench/daemon.js [--domains 100,1000] [--samples 100] [--warmup 60s] [--rest 60s]
 *                                                         [--heartbeat 10s|off] [--json]
 *
 * The host is built in this process: our xenstore server (src/sim/xenstored) holding N domains
 * as libxl creates them, and a minimal hypervisor.sock (the sim: protocol) whose domains follow
 * their targets at once (ideal balloons), with memory to spare so growth is never held back. The
 * daemon runs as its own process with the shipped default policy (1 s interval).
 *
 * Measured, per N:
 * - urgent latency: a guest's report showing memory pressure and more need, written through its
 *   own xenstore connection -> the daemon's write of its memory/target (the daemon acts at once
 *   on pressure, so this is the pipeline's own latency: watch, read, parse, step, write);
 * - regular latency: the same with a report without pressure, which waits for the next regular
 *   step (so it includes up to one interval of waiting);
 * - CPU at rest: after --warmup with heartbeats (the JIT settles), the daemon's user+system time
 *   (all its threads, from /proc) over --rest with no guest writing ("idle": steps and timers),
 *   then over --rest while every guest re-publishes its report every 10 s (xenballoon-report's
 *   heartbeat; the "at rest"), as % of one core, with the main thread's share;
 * - RSS at the end and its peak (VmHWM).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { controlRequest } from '../src/daemon/control-client.js';
import { parseDurationMs } from '../src/policy/units.js';
import { formatV1, type V1Record } from '../src/report/v1.js';
import { requestSchema } from '../src/sim/sim-host/protocol.js';
import { initDom0, provisionDomain } from '../src/sim/xenstored/provision.js';
import { XenstoredServer } from '../src/sim/xenstored/server.js';
import type { XenstoreSession } from '../src/sim/xenstored/session.js';

const daemonJs = fileURLToPath(new URL('../../../dist/cli/xenballoond.js', import.meta.url));
const MiB = 1024;
const GUEST_STATIC_MAX = 1024 * MiB;
const GUEST_START = 512 * MiB;
const DOM0 = 1024 * MiB;
/** Linux's USER_HZ: /proc/<pid>/stat counts CPU time in these. */
const CLK_TCK = 100;

interface Dom {
  domid: number;
  totKib: number;
  maxKib: number;
  committedKib: number;
  seq: number;
}

function record(d: Dom, psiPct: number): string {
  const r: V1Record = {
    seq: d.seq++, uptimeS: 1000 + d.seq, memTotalKib: d.totKib - 40 * MiB, memFreeKib: 64 * MiB, memAvailableKib: 128 * MiB,
    buffersKib: 4 * MiB, cachedKib: 64 * MiB, shmemKib: MiB, swapTotalKib: 1024 * MiB, swapFreeKib: 1024 * MiB,
    committedAsKib: d.committedKib, balloonCurrentKib: d.totKib, pswpin: 0, pswpout: 0, pgmajfault: 100, workingsetRefault: 0,
    oomKill: 0, psiSomeAvg10Bp: Math.round(psiPct * 100), psiFullAvg10Bp: 0, psiSomeTotalUs: d.seq * 1000, psiFullTotalUs: 0,
  };
  return formatV1(r);
}

/** hypervisor.sock as sim-host serves it: hello, physinfo, domains, setmaxmem. */
function hypervisorServer(path: string, totalKib: number, doms: Map<number, Dom>): Promise<Server> {
  const serve = (sock: Socket) => {
    let buf = '';
    sock.setEncoding('utf8');
    sock.on('error', () => sock.destroy());
    sock.on('data', (chunk: string) => {
      buf += chunk;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        const parsed = requestSchema.safeParse(JSON.parse(line));
        if (!parsed.success) continue;
        const req = parsed.data;
        let result: unknown;
        const used = [...doms.values()].reduce((s, d) => s + d.totKib, 0);
        switch (req.op) {
          case 'hello': result = { version: 'sim', protocol: 1, scenario: 'bench', seed: 0, speed: 1, now_ms: Date.now() }; break;
          case 'physinfo': result = { total_kib: totalKib, free_kib: totalKib - used, scrub_kib: 0, outstanding_kib: 0 }; break;
          case 'domains':
            result = {
              domains: [...doms.values()].map((d) => ({
                domid: d.domid, name: `bench-${d.domid}`, tot_kib: d.totKib, max_kib: d.maxKib, outstanding_kib: 0, dying: false,
                shutdown: false, shutdown_reason: 0, hvm: false, paused: false, state: 'running',
              })),
            };
            break;
          case 'setmaxmem': {
            const d = doms.get(req.domid);
            if (d) d.maxKib = req.kib;
            result = {};
            break;
          }
          default:
            sock.write(JSON.stringify({ id: req.id, ok: false, error: { code: 'EINVAL', message: 'not in the bench host' } }) + '\n');
            continue;
        }
        sock.write(JSON.stringify({ id: req.id, ok: true, result }) + '\n');
      }
    });
  };
  const server = createServer(serve);
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => resolve(server));
  });
}

/** utime + stime of a process, or of one of its threads. */
function cpuTicks(pid: number, tid?: number): number {
  const stat = readFileSync(tid === undefined ? `/proc/${pid}/stat` : `/proc/${pid}/task/${tid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]); // utime, stime
}

/** utime + stime per thread (name:tid; libuv workers, V8 helpers, libxenstore's reader…) of a process. */
function threadTicks(pid: number): Map<string, number> {
  const out = new Map<string, number>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const name = Number(tid) === pid ? 'main' : `${stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'))}:${tid}`;
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.set(name, (out.get(name) ?? 0) + Number(fields[11]) + Number(fields[12]));
    } catch {
      // the thread exited
    }
  }
  return out;
}

function statusKib(pid: number, key: string): number {
  const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : NaN;
}

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? (s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] as number) : NaN;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Result {
  domains: number;
  urgentP50Ms: number;
  urgentP99Ms: number;
  regularP50Ms: number;
  regularP99Ms: number;
  startupS: number;
  /** CPU during the warm-up (heartbeats on, JIT still compiling). */
  warmupCpuPct: number;
  /** CPU with no guest writing anything: the steps and timers alone. */
  idleCpuPct: number;
  idleStepsPerS: number;
  /** CPU with every guest heartbeating: the "at rest". */
  restCpuPct: number;
  /** Of restCpuPct, the main (JavaScript) thread; the rest is V8's helpers (GC, JIT) and libuv/libxenstore threads. */
  restMainPct: number;
  restStepsPerS: number;
  /** The daemon's step duration at rest (sampled). */
  stepP50Ms: number;
  rssMiB: number;
  heapMiB: number;
  peakRssMiB: number;
}

async function runOne(n: number, samples: number, warmupMs: number, restMs: number, heartbeatMs: number | null, log: (s: string) => void): Promise<Result> {
  const dir = mkdtempSync(join(tmpdir(), 'xbd-bench-'));
  const server = new XenstoredServer({ limits: {} });
  const doms = new Map<number, Dom>();
  let daemon: ChildProcess | null = null;
  let hv: Server | null = null;
  const sessions: XenstoreSession[] = [];
  try {
    await server.listen(join(dir, 'xenstored.sock'));
    const dom0 = server.session(0);
    sessions.push(dom0);
    initDom0(dom0);
    dom0.write('/local/domain/0/memory/target', String(DOM0));
    doms.set(0, { domid: 0, totKib: DOM0, maxKib: DOM0, committedKib: 0, seq: 0 });
    for (let i = 1; i <= n; i++) {
      provisionDomain(dom0, i, { name: `bench-${i}`, staticMaxKiB: GUEST_STATIC_MAX, targetKiB: GUEST_START });
      const d: Dom = { domid: i, totKib: GUEST_START, maxKib: GUEST_START + 1024, committedKib: 300 * MiB, seq: 1 };
      doms.set(i, d);
      dom0.write(`/local/domain/${i}/data/xenballoon/report`, record(d, 0));
      dom0.introduceDomain(i);
    }
    const totalKib = DOM0 + n * GUEST_STATIC_MAX + 4096 * MiB;
    hv = await hypervisorServer(join(dir, 'hypervisor.sock'), totalKib, doms);

    // Ideal balloons: a domain holds its target as soon as it is written; note when.
    const targetAt = new Map<number, { kib: number; atMs: number }>();
    const watcher = server.session(0);
    sessions.push(watcher);
    watcher.onWatchEvent((ev) => {
      const m = /^\/local\/domain\/(\d+)\/memory\/target$/.exec(ev.path);
      if (!m) return;
      const domid = Number(m[1]);
      const d = doms.get(domid);
      if (!d) return;
      const kib = Number(watcher.readText(ev.path));
      d.totKib = kib;
      targetAt.set(domid, { kib, atMs: performance.now() });
    });
    for (let i = 1; i <= n; i++) watcher.watch(`/local/domain/${i}/memory/target`, `t${i}`);

    const policy = join(dir, 'policy.yaml');
    writeFileSync(policy, 'host:\n  reserve: 64M\n');
    const t0 = performance.now();
    // XBD_BENCH_NODE_ARGS: extra node flags for the daemon (e.g. --cpu-prof) when looking into a number.
    // --max-semi-space-size=4: what xenballoond's own shebang runs it with.
    const nodeArgs = ['--max-semi-space-size=4', ...(process.env.XBD_BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean)];
    daemon = spawn(process.execPath, [...nodeArgs, daemonJs, '--xenstore', join(dir, 'xenstored.sock'), '--hypervisor', `sim:${join(dir, 'hypervisor.sock')}`,
      '--control', join(dir, 'control.sock'), '--state', join(dir, 'state'), '--policy', policy, '--log-level', 'warn', '--log-format', 'json'], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    // XBD_BENCH_DAEMON_OUT=FILE: also keep the daemon's stdout (its log, --trace-gc…) in FILE.
    const outFile = process.env.XBD_BENCH_DAEMON_OUT;
    daemon.stdout!.setEncoding('utf8').on('data', (s: string) => {
      out += s;
      if (outFile) appendFileSync(outFile, s);
    });
    const pid = daemon.pid as number;
    // Started: every domain has been adopted and has settled (no target write for 3 s).
    const settle = async (what: string) => {
      for (;;) {
        await sleep(500);
        if (daemon!.exitCode !== null) throw new Error(`xenballoond exited: ${out}`);
        const last = Math.max(0, ...[...targetAt.values()].map((t) => t.atMs));
        if (performance.now() - Math.max(last, t0) > 3000) break;
      }
      log(`  ${what}`);
    };
    await settle(`N=${n}: started and settled`);
    const startupS = (performance.now() - t0) / 1000;

    // Latency: one guest at a time, each writing through its own (unprivileged) connection.
    const measure = async (psi: number): Promise<number[]> => {
      const lat: number[] = [];
      for (let k = 0; k < samples; k++) {
        const domid = 1 + (k % n);
        const d = doms.get(domid) as Dom;
        d.committedKib = Math.min(d.committedKib + 96 * MiB, 900 * MiB);
        const before = targetAt.get(domid)?.atMs ?? 0;
        const guest = server.session(domid);
        const start = performance.now();
        guest.write(`/local/domain/${domid}/data/xenballoon/report`, record(d, psi));
        guest.close();
        const deadline = start + 10_000;
        while ((targetAt.get(domid)?.atMs ?? 0) <= before && performance.now() < deadline) await sleep(1);
        const at = targetAt.get(domid)?.atMs ?? 0;
        if (at > before) lat.push(at - start);
        // Urgent steps are spaced by at least interval/10 (100 ms): wait that out, so each sample
        // measures the pipeline, not the spacing of the previous sample's step.
        await sleep(150);
      }
      return lat;
    };
    const urgent = await measure(50);
    log(`  N=${n}: ${urgent.length}/${samples} urgent samples`);
    const regular = await measure(0);
    log(`  N=${n}: ${regular.length}/${samples} regular samples`);

    // At rest. The daemon's JIT is still compiling in its first minute (TurboFan on V8's helper
    // threads was most of the CPU in a 30 s window right after start-up), so a warm-up period
    // with heartbeats comes first; the daemon runs for months, and what matters is its steady state.
    await settle(`N=${n}: settled again; warming up ${warmupMs / 1000} s, then ${restMs / 1000} s idle and ${restMs / 1000} s with heartbeats`);
    // Heartbeats (xenballoon-report: every 10 s): batches of guests every 20 ms (or less often),
    // so the whole fleet beats once per period.
    let next = 1;
    const heartbeats = (): NodeJS.Timeout | null => {
      if (heartbeatMs === null) return null;
      const tickMs = Math.max(20, heartbeatMs / n);
      const perTick = Math.max(1, Math.round((n * tickMs) / heartbeatMs));
      return setInterval(() => {
        for (let j = 0; j < perTick; j++) {
          const d = doms.get(next) as Dom;
          const g = server.session(next);
          g.write(`/local/domain/${next}/data/xenballoon/report`, record(d, 0));
          g.close();
          next = next >= n ? 1 : next + 1;
        }
      }, tickMs);
    };
    // The daemon's own step time (observe + decide + act) and step count, through its control socket.
    const stepMs: number[] = [];
    let heapKib = NaN;
    const status = () => controlRequest(join(dir, 'control.sock'), { op: 'status' }).then((r) => r.status.daemon);
    /** CPU over `ms`: the whole process and its main (JavaScript) thread, in % of one core. */
    const phase = async (ms: number, beat: boolean) => {
      const hb = beat ? heartbeats() : null;
      const s0 = await status();
      const c0 = cpuTicks(pid);
      const m0 = cpuTicks(pid, pid);
      const t0 = threadTicks(pid);
      const w0 = performance.now();
      const sampler = setInterval(() => {
        status().then((d) => {
          if (d.last_step_duration_ms !== null) stepMs.push(d.last_step_duration_ms);
          heapKib = d.heap_used_kib;
        }, () => undefined);
      }, Math.max(5000, ms / 4));
      await sleep(ms);
      clearInterval(sampler);
      const c1 = cpuTicks(pid);
      const m1 = cpuTicks(pid, pid);
      const t1 = threadTicks(pid);
      const w1 = performance.now();
      const s1 = await status();
      if (hb) clearInterval(hb);
      const pctOf = (ticks: number) => ((ticks / CLK_TCK) * 1000 / (w1 - w0)) * 100;
      const byThread = [...t1].map(([name, t]) => [name, pctOf(t - (t0.get(name) ?? 0))] as const).filter(([, p]) => p > 0)
        .sort((a, b) => b[1] - a[1]).map(([name, p]) => `${name} ${p.toFixed(2)}`).join(', ');
      log(`  N=${n}: ${beat ? 'heartbeats' : 'idle'} ${((w1 - w0) / 1000).toFixed(0)} s: CPU % by thread: ${byThread}`);
      return { cpuPct: pctOf(c1 - c0), mainPct: pctOf(m1 - m0), steps: s1.steps - s0.steps, seconds: (w1 - w0) / 1000 };
    };
    const warm = await phase(warmupMs, true);
    const idle = await phase(restMs, false);
    const rest = heartbeatMs === null ? idle : await phase(restMs, true);
    return {
      domains: n,
      urgentP50Ms: pct(urgent, 50), urgentP99Ms: pct(urgent, 99),
      regularP50Ms: pct(regular, 50), regularP99Ms: pct(regular, 99),
      startupS,
      warmupCpuPct: warm.cpuPct,
      idleCpuPct: idle.cpuPct,
      idleStepsPerS: idle.steps / idle.seconds,
      restCpuPct: rest.cpuPct,
      restMainPct: rest.mainPct,
      restStepsPerS: rest.steps / rest.seconds,
      stepP50Ms: pct(stepMs, 50),
      rssMiB: statusKib(pid, 'VmRSS') / 1024,
      heapMiB: heapKib / 1024,
      peakRssMiB: statusKib(pid, 'VmHWM') / 1024,
    };
  } finally {
    if (daemon && daemon.exitCode === null) {
      daemon.kill('SIGTERM');
      await new Promise((r) => daemon!.once('exit', r));
    }
    for (const s of sessions) s.close();
    await new Promise((r) => (hv ? hv.close(r) : r(undefined)));
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: {
      domains: { type: 'string', default: '100,1000' },
      samples: { type: 'string', default: '100' },
      warmup: { type: 'string', default: '60s' },
      rest: { type: 'string', default: '60s' },
      heartbeat: { type: 'string', default: '10s' },
      json: { type: 'boolean', default: false },
    },
  });
  const ns = values.domains.split(',').map(Number);
  const samples = Number(values.samples);
  const warmupMs = parseDurationMs(values.warmup);
  const restMs = parseDurationMs(values.rest);
  const heartbeatMs = values.heartbeat === 'off' ? null : parseDurationMs(values.heartbeat);
  const log = (s: string) => process.stderr.write(s + '\n');
  const results: Result[] = [];
  for (const n of ns) results.push(await runOne(n, samples, warmupMs, restMs, heartbeatMs, log));
  if (values.json) {
    process.stdout.write(JSON.stringify({ results }, null, 2) + '\n');
    return;
  }
  const f = (x: number, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : '-');
  const rows = [
    ['domains', 'urgent p50 ms', 'urgent p99 ms', 'regular p50 ms', 'regular p99 ms', 'startup s', 'step ms', 'CPU warm-up %',
      'CPU idle %', 'steps/s idle', 'CPU at rest %', 'main thread %', 'RSS MiB', 'heap MiB', 'peak RSS MiB'],
    ...results.map((r) => [String(r.domains), f(r.urgentP50Ms), f(r.urgentP99Ms), f(r.regularP50Ms), f(r.regularP99Ms), f(r.startupS),
      f(r.stepP50Ms), f(r.warmupCpuPct, 2), f(r.idleCpuPct, 2), f(r.idleStepsPerS, 2), f(r.restCpuPct, 2), f(r.restMainPct, 2),
      f(r.rssMiB, 0), f(r.heapMiB, 0), f(r.peakRssMiB, 0)]),
  ];
  const w = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  for (const r of rows) process.stdout.write(r.map((c, i) => c.padStart(w[i] ?? 0)).join('  ') + '\n');
}

main().catch((err: unknown) => {
  process.stderr.write(`bench-daemon: ${(err as Error).stack ?? String(err)}\n`);
  process.exitCode = 1;
});
