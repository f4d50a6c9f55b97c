/**
 * `sim-host`: the simulated host in real time (times a speed factor), wired to the outside
 * world the way a real Xen host is:
 *
 *   DIR/xenstored.sock   our xenstore server, dom0's (privileged) view
 *   DIR/dom<ID>.sock     the same store as guest <ID> sees it (permissions, quotas)
 *   DIR/hypervisor.sock  physinfo, the domain list, setmaxmem, create/destroy (protocol.ts)
 *
 * Domains are written into xenstore as libxl does (name, domid, vm, memory/target,
 * memory/static-max, guest-owned data/ ...), introduced when built (@introduceDomain) and
 * released when gone (@releaseDomain). Each guest follows its memory/target through a watch on
 * its own connection, obeys maxmem set through hypervisor.sock, and publishes v1 reports to its
 * data/xenballoon/report through its own connection, as xenballoon-report does.
 *
 * Time: the model advances in the scenario's ticks to keep up with wall time x speed; the clock
 * and timers are injected so the loop is testable.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { formatV1, type V1Record } from '../../report/v1.js';
import type { GuestReport } from '../../report/types.js';
import { balloonConfig, buildWorkload } from '../guest/factory.js';
import { type RunResult, RunMetrics, createFleet } from '../harness/run.js';
import type { LaunchRecord } from '../harness/launcher.js';
import { launchQueue, type LaunchItem } from '../harness/launcher.js';
import { formatTable, resultsCsv } from '../harness/output.js';
import { timelineSvg } from '../harness/svg.js';
import { Timeline } from '../harness/timeline.js';
import { type SimDomain, Simulation } from '../model.js';
import { streamFor } from '../prng.js';
import { balloonSchema, type GuestTemplate, guestTemplateSchema, type Scenario, workloadSchema } from '../scenario/schema.js';
import { XsRequestError } from '../xenstored/errors.js';
import { initDom0, provisionDomain } from '../xenstored/provision.js';
import { XenstoredServer } from '../xenstored/server.js';
import type { XenstoreSession } from '../xenstored/session.js';
import { type Fault, FaultPlan } from './faults.js';
import { HypervisorSocketServer } from './hypervisor-server.js';
import { type HvDomain, type HvGuest, SimHostError } from './protocol.js';

export { SimHostError };

export type LaunchMode = { kind: 'none' } | { kind: 'free' } | { kind: 'command'; command: string };

export interface SimHostOptions {
  scenario: Scenario;
  dir: string;
  seed: number;
  speed: number;
  launch: LaunchMode;
  /** Simulated time to run; null: until stopped. */
  durationMs: number | null;
  logger: Logger;
  /** Wall clock in ms (performance.now by default). */
  clock?: () => number;
  /** Injected faults (`--inject`, faults.ts). */
  faults?: readonly Fault[];
}

const REPORT_KEY = 'data/xenballoon/report';
/** Longest the loop sleeps between catching up with wall time. */
const MAX_WAKE_MS = 100;

export class SimHost {
  readonly sim: Simulation;
  readonly server: XenstoredServer;
  private readonly dom0: XenstoreSession;
  private readonly guests = new Map<number, XenstoreSession>();
  private readonly reportCount = new Map<number, number>();
  private readonly hv: HypervisorSocketServer;
  private readonly metrics = new RunMetrics();
  private readonly timeline = new Timeline();
  private readonly log: Logger;
  private readonly clock: () => number;
  private readonly waitingForBuild = new Map<number, { resolve: (domid: number) => void; reject: (e: Error) => void }>();
  private readonly launches: LaunchRecord[] = [];
  private readonly queue: LaunchItem[];
  private launchState: { kind: 'idle'; atMs: number } | { kind: 'busy' } | { kind: 'stopped'; reason: string } = { kind: 'idle', atMs: 0 };
  private child: ChildProcess | null = null;
  private timer: NodeJS.Timeout | null = null;
  private wallStart = 0;
  private nextSampleMs: number;
  private fleet = 0;
  private lagWarned = false;
  private readonly faults: FaultPlan;
  private stopping: Promise<RunResult> | null = null;
  private finishedResolve!: (r: RunResult) => void;
  /** Resolves with the run's summary once the host stopped (duration reached or stop()). */
  readonly finished: Promise<RunResult>;

  constructor(readonly opts: SimHostOptions) {
    this.log = opts.logger;
    this.clock = opts.clock ?? (() => performance.now());
    this.faults = new FaultPlan(opts.faults ?? []);
    this.server = new XenstoredServer({ logger: opts.logger.child({ part: 'xenstored' }) });
    this.dom0 = this.server.session(0);
    this.sim = new Simulation(opts.scenario, opts.seed, {
      domainCreated: (d) => this.onCreated(d),
      domainBuilt: (d) => this.onBuilt(d),
      domainGone: (domid) => this.onGone(domid),
      reportPublished: (d, r) => this.onReport(d, r),
    });
    this.hv = new HypervisorSocketServer(this, opts.logger.child({ part: 'hypervisor.sock' }));
    this.queue = opts.launch.kind === 'none' ? [] : launchQueue(opts.scenario);
    if (this.queue.length === 0) this.launchState = { kind: 'stopped', reason: 'nothing to launch' };
    this.nextSampleMs = opts.scenario.sample;
    this.finished = new Promise((resolve) => (this.finishedResolve = resolve));
  }

  get socketPaths(): { xenstored: string; hypervisor: string; domain: (domid: number) => string } {
    const dir = this.opts.dir;
    return { xenstored: join(dir, 'xenstored.sock'), hypervisor: join(dir, 'hypervisor.sock'), domain: (id) => join(dir, `dom${id}.sock`) };
  }

  async start(): Promise<void> {
    mkdirSync(this.opts.dir, { recursive: true });
    await this.server.listen(this.socketPaths.xenstored);
    initDom0(this.dom0);
    this.dom0.transaction((tx) => {
      this.dom0.write('/local/domain/0/memory/static-max', String(this.sim.dom0Kib), tx);
      this.dom0.write('/local/domain/0/memory/target', String(this.sim.dom0Kib), tx);
    });
    await this.hv.listen(this.socketPaths.hypervisor);
    this.fleet = createFleet(this.sim);
    await this.settleSockets();
    this.timeline.sample(this.sim);
    this.wallStart = this.clock();
    this.schedule(0);
  }

  // ---- xenstore, as libxl and the guests use it ------------------------------------------------

  private readonly pendingSockets = new Set<Promise<void>>();

  private async settleSockets(): Promise<void> {
    await Promise.all([...this.pendingSockets]);
  }

  private onCreated(d: SimDomain): void {
    const home = `/local/domain/${d.domid}`;
    const uuid = uuidFor(this.opts.seed, d.domid, d.name);
    provisionDomain(this.dom0, d.domid, { name: d.name, staticMaxKiB: d.staticMaxKib, targetKiB: d.targetKib });
    this.dom0.transaction((tx) => {
      this.dom0.write(`${home}/vm`, `/vm/${uuid}`, tx);
      this.dom0.write(`/vm/${uuid}/name`, d.name, tx);
      this.dom0.write(`/vm/${uuid}/uuid`, uuid, tx);
    });
    const p = this.server.addDomainSocket(d.domid, this.socketPaths.domain(d.domid)).catch((err: Error) => {
      this.log.error({ err, domid: d.domid }, 'cannot open the guest socket');
    });
    this.pendingSockets.add(p);
    void p.finally(() => this.pendingSockets.delete(p));
  }

  private onBuilt(d: SimDomain): void {
    this.server.introduceDomain(d.domid);
    const s = this.server.session(d.domid);
    this.guests.set(d.domid, s);
    const domid = d.domid;
    s.onWatchEvent(() => this.readTarget(domid));
    s.watch('memory/target', 'target');
    this.waitingForBuild.get(domid)?.resolve(domid);
    this.waitingForBuild.delete(domid);
  }

  /** The balloon driver's watch fired: read memory/target as the guest sees it. */
  private readTarget(domid: number): void {
    const s = this.guests.get(domid);
    if (!s) return;
    let text: string;
    try {
      text = s.readText('memory/target');
    } catch {
      return; // removed (domain being destroyed)
    }
    const kib = /^[0-9]{1,15}$/.test(text) ? Number(text) : NaN;
    if (!Number.isFinite(kib)) {
      this.log.warn({ domid, value: text.slice(0, 40) }, 'memory/target is not a number of KiB; the balloon driver ignores it');
      return;
    }
    const d = this.sim.domains.get(domid);
    if (d && d.balloon && kib !== d.balloon.target) this.metrics.targetWritten();
    this.sim.setTarget(domid, kib);
  }

  private onReport(d: SimDomain, r: GuestReport): void {
    const s = this.guests.get(d.domid);
    if (!s) return;
    try {
      // A Qubes-format report (the qubes-liar workload) is Qubes' one number in memory/meminfo.
      if (r.format === 'qubes') s.write('memory/meminfo', String(Math.max(0, Math.round(r.mem.usedKib ?? 0))));
      else s.write(REPORT_KEY, formatV1(v1Of(r)));
      this.reportCount.set(d.domid, (this.reportCount.get(d.domid) ?? 0) + 1);
    } catch (err) {
      if (err instanceof XsRequestError) this.log.warn({ domid: d.domid, code: err.code }, 'report write refused');
      else throw err;
    }
  }

  private onGone(domid: number): void {
    this.guests.get(domid)?.close();
    this.guests.delete(domid);
    this.server.releaseDomain(domid);
    this.waitingForBuild.get(domid)?.reject(new SimHostError('ENOMEM', `domain ${domid} failed to build`));
    this.waitingForBuild.delete(domid);
  }

  // ---- what hypervisor.sock offers -------------------------------------------------------------

  physinfo() {
    const p = this.sim.host.physinfo();
    return { total_kib: p.totalKib, free_kib: p.freeKib, scrub_kib: p.scrubKib, outstanding_kib: p.outstandingKib };
  }

  domains(): HvDomain[] {
    return this.sim.host.listDomains().map((d) => ({
      domid: d.domid,
      name: d.name,
      tot_kib: d.totKib,
      max_kib: d.maxKib,
      outstanding_kib: d.outstandingKib,
      dying: d.state === 'dying',
      shutdown: false,
      shutdown_reason: 0,
      hvm: false,
      paused: false,
      state: d.state,
    }));
  }

  setMaxmem(domid: number, kib: number): void {
    const d = this.sim.domains.get(domid);
    if (d && !d.dying && this.faults.deniesMaxmem(d.name)) {
      throw new SimHostError('EPERM', `setmaxmem on domain ${domid} (${d.name}): permission denied (injected fault)`);
    }
    if (!this.sim.setMaxmem(domid, kib)) throw new SimHostError('ENOENT', `no running domain ${domid}`);
  }

  /** xl create: resolves with the domid once the domain is built (holds its memory). */
  createDomain(req: { name: string; memoryKib: number; maxmemKib: number; template?: string }): Promise<number> {
    if (this.stopping) return Promise.reject(new SimHostError('ESHUTDOWN', 'the simulated host is stopping'));
    if (req.maxmemKib < req.memoryKib) return Promise.reject(new SimHostError('EINVAL', 'maxmem is smaller than memory'));
    for (const d of this.sim.domains.values()) {
      if (d.name === req.name && !d.dying) return Promise.reject(new SimHostError('EEXIST', `a domain named ${req.name} exists (domid ${d.domid})`));
    }
    let base: GuestTemplate | undefined;
    if (req.template !== undefined) {
      base = this.sim.template(req.template);
      if (!base) return Promise.reject(new SimHostError('EINVAL', `scenario ${this.opts.scenario.name} has no guest template '${req.template}'`));
    } else {
      base = this.opts.scenario.guests[0] ?? this.opts.scenario.fleet[0];
    }
    const template: GuestTemplate = base
      ? { ...base, memory: req.memoryKib, maxmem: req.maxmemKib }
      : guestTemplateSchema.parse({ name: 'guest', memory: req.memoryKib, maxmem: req.maxmemKib, workload: { kind: 'idle' } });
    const r = this.sim.createDomain(req.name, template);
    if (!r.ok) return Promise.reject(new SimHostError('ENOMEM', r.reason));
    return new Promise((resolve, reject) => this.waitingForBuild.set(r.domid, { resolve, reject }));
  }

  destroyDomain(domid: number): void {
    const d = this.sim.domains.get(domid);
    if (domid === 0 || !d || d.dying) throw new SimHostError('ENOENT', `no running guest ${domid}`);
    // libxl removes the domain's xenstore nodes and the toolstack's records, then Xen tears it down.
    const uuid = uuidFor(this.opts.seed, domid, d.name);
    this.dom0.transaction((tx) => {
      this.dom0.rm(`/local/domain/${domid}`, tx);
      this.dom0.rm(`/vm/${uuid}`, tx);
    });
    this.guests.get(domid)?.close();
    this.guests.delete(domid);
    void this.server.removeDomainSocket(domid);
    this.sim.destroyDomain(domid);
  }

  guest(domid: number): HvGuest {
    const d = this.sim.domains.get(domid);
    if (!d) throw new SimHostError('ENOENT', `no guest ${domid}`);
    const s = d.guest?.snapshot();
    const c = d.guest?.counters;
    return {
      domid,
      name: d.name,
      template: d.template.name,
      workload: d.workload?.kind ?? d.template.workload.kind,
      booted: d.guest?.isBooted ?? false,
      target_kib: d.targetKib,
      tot_kib: this.sim.host.domain(domid)?.totKib ?? 0,
      mem_total_kib: Math.round(s?.memTotalKib ?? 0),
      free_kib: Math.round(s?.freeKib ?? 0),
      available_kib: Math.round(s?.availableKib ?? 0),
      cached_kib: Math.round(s?.cachedKib ?? 0),
      anon_kib: Math.round(s?.anonKib ?? 0),
      swap_used_kib: Math.round(s?.swapUsedKib ?? 0),
      committed_kib: Math.round(s?.committedKib ?? 0),
      swap_in_kib: Math.round(c?.swapInKib ?? 0),
      swap_out_kib: Math.round(c?.swapOutKib ?? 0),
      oom_kills: c?.oomKills ?? 0,
      psi_some_avg10: Math.round((d.guest?.someAvg10 ?? 0) * 100) / 100,
      balloon_stuck: d.balloon?.isStuck() ?? false,
      reports: this.reportCount.get(domid) ?? 0,
    };
  }

  /** Changes a running guest's workload or balloon driver (tests: "now it needs 300 MiB", "now it is stuck"). */
  setGuest(domid: number, change: { workload?: unknown; balloon?: unknown }): void {
    const d = this.sim.domains.get(domid);
    if (!d || !d.guest || !d.balloon) throw new SimHostError('ENOENT', `no booted guest ${domid}`);
    if (change.workload !== undefined) {
      const w = workloadSchema.safeParse(change.workload);
      if (!w.success) throw new SimHostError('EINVAL', `workload: ${w.error.issues[0]?.path.join('.') ?? ''} ${w.error.issues[0]?.message ?? 'invalid'}`.trim());
      this.sim.setWorkload(domid, buildWorkload(w.data, streamFor(this.opts.seed, `set-guest:${d.name}:${this.sim.nowMs}`), this.opts.scenario.baseDir));
    }
    if (change.balloon !== undefined) {
      const b = balloonSchema.safeParse(change.balloon);
      if (!b.success) throw new SimHostError('EINVAL', `balloon: ${b.error.issues[0]?.path.join('.') ?? ''} ${b.error.issues[0]?.message ?? 'invalid'}`.trim());
      // Stuck windows count from the driver's age, so "stuck from now" means from its current age.
      const cfg = balloonConfig({ balloon: b.data }, streamFor(this.opts.seed, `set-balloon:${d.name}`));
      const age = d.balloon.ageMs;
      if (cfg.stuckFromMs !== null) cfg.stuckFromMs += age;
      d.balloon.config = cfg;
    }
  }

  hello() {
    return { version: 'sim' as const, protocol: 1, scenario: this.opts.scenario.name, seed: this.opts.seed, speed: this.opts.speed, now_ms: this.sim.nowMs };
  }

  time() {
    return { now_ms: this.sim.nowMs, speed: this.opts.speed };
  }

  // ---- time ------------------------------------------------------------------------------------

  private schedule(delayMs: number): void {
    if (this.stopping) return;
    this.timer = setTimeout(() => this.wake(), delayMs);
  }

  private wake(): void {
    this.timer = null;
    if (this.stopping) return;
    const tick = this.opts.scenario.tick;
    const due = (this.clock() - this.wallStart) * this.opts.speed;
    const end = this.opts.durationMs;
    let steps = 0;
    while (this.sim.nowMs + tick <= due && (end === null || this.sim.nowMs < end) && steps < 10_000) {
      this.stepOnce(end === null ? tick : Math.min(tick, end - this.sim.nowMs));
      steps++;
    }
    if (!this.lagWarned && due - this.sim.nowMs > 10 * tick + 2000 * this.opts.speed) {
      this.lagWarned = true;
      this.log.warn({ speed: this.opts.speed, behindMs: Math.round(due - this.sim.nowMs) }, 'the model cannot keep up with this speed; it runs slower than asked');
    }
    if (end !== null && this.sim.nowMs >= end) {
      void this.stop();
      return;
    }
    const nextDue = (this.sim.nowMs + tick) / this.opts.speed + this.wallStart - this.clock();
    this.schedule(Math.max(0, Math.min(MAX_WAKE_MS, nextDue)));
  }

  private stepOnce(dt: number): void {
    this.sim.step(dt);
    this.applyStall();
    this.metrics.tick(this.sim, dt);
    if (this.sim.nowMs >= this.nextSampleMs) {
      this.timeline.sample(this.sim);
      this.nextSampleMs += this.opts.scenario.sample;
    }
    this.pollLauncher();
  }

  /** xenstore-stall faults: xenstored stops answering its socket clients for the window. */
  private applyStall(): void {
    const on = this.faults.stalledAt(this.sim.nowMs);
    if (on === this.server.core.stalled) return;
    this.server.core.setStalled(on);
    this.log.warn({ atMs: this.sim.nowMs }, on ? 'injected fault: xenstored stops answering' : 'injected fault over: xenstored answers again');
  }

  // ---- launching the scenario's guests ---------------------------------------------------------

  private pollLauncher(): void {
    const st = this.launchState;
    if (st.kind !== 'idle' || this.sim.nowMs < st.atMs) return;
    const item = this.queue[0];
    if (!item) {
      this.launchState = { kind: 'stopped', reason: 'all guests launched' };
      return;
    }
    const mode = this.opts.launch;
    if (mode.kind === 'free') {
      // xl's own check, nothing more: is there free, unclaimed memory for it right now?
      const p = this.sim.host.physinfo();
      const need = item.template.memory + this.sim.host.config.perDomainOverheadKib;
      if (p.freeKib - p.outstandingKib < need) {
        this.launchState = { kind: 'idle', atMs: this.sim.nowMs + Math.max(1000, this.opts.scenario.launch.gap) };
        return;
      }
      this.queue.shift();
      this.launchFree(item);
    } else if (mode.kind === 'command') {
      this.queue.shift();
      this.launchCommand(item, mode.command);
    }
  }

  private launchFree(item: LaunchItem): void {
    const record: LaunchRecord = { name: item.name, requestedAtMs: this.sim.nowMs, answeredAtMs: this.sim.nowMs, outcome: 'pending', domid: null };
    this.launches.push(record);
    this.launchState = { kind: 'busy' };
    this.createDomain({ name: item.name, memoryKib: item.template.memory, maxmemKib: item.template.maxmem, template: item.template.name }).then(
      (domid) => {
        record.outcome = 'admitted';
        record.domid = domid;
        this.log.info({ name: item.name, domid }, 'launched');
        this.launchState = { kind: 'idle', atMs: this.sim.nowMs + this.opts.scenario.launch.gap };
      },
      (err: Error) => {
        record.outcome = 'create-failed';
        record.reason = err.message;
        this.launchState = { kind: 'stopped', reason: `creating ${item.name} failed: ${err.message}` };
      },
    );
  }

  private launchCommand(item: LaunchItem, command: string): void {
    const record: LaunchRecord = { name: item.name, requestedAtMs: this.sim.nowMs, answeredAtMs: null, outcome: 'pending', domid: null };
    this.launches.push(record);
    this.launchState = { kind: 'busy' };
    const vars: Record<string, string> = {
      XB_SIM_DIR: this.opts.dir,
      XB_NAME: item.name,
      XB_TEMPLATE: item.template.name,
      XB_MEMORY_KIB: String(item.template.memory),
      XB_MAXMEM_KIB: String(item.template.maxmem),
      XB_MEMORY: `${item.template.memory}K`,
      XB_MAXMEM: `${item.template.maxmem}K`,
    };
    this.log.info({ name: item.name }, 'launching through the launch command');
    const child = spawn('/bin/sh', ['-c', command], { env: { ...process.env, ...vars }, stdio: ['ignore', 'ignore', 'pipe'] });
    this.child = child;
    let stderr = '';
    child.stderr?.on('data', (b: Buffer) => {
      stderr = (stderr + b.toString('utf8')).slice(-2000);
    });
    child.on('close', (code, signal) => {
      this.child = null;
      record.answeredAtMs = this.sim.nowMs;
      const dom = [...this.sim.domains.values()].find((d) => d.name === item.name && !d.dying);
      if (code === 0 && dom) {
        record.outcome = 'admitted';
        record.domid = dom.domid;
        this.launchState = { kind: 'idle', atMs: this.sim.nowMs + this.opts.scenario.launch.gap };
        return;
      }
      const why = stderr.trim().split('\n').pop() || (signal ? `killed by ${signal}` : `exit status ${code}`);
      record.outcome = dom ? 'create-failed' : 'refused';
      record.reason = why;
      this.log.info({ name: item.name, code, reason: why }, 'launch command failed: launching stops');
      this.launchState = { kind: 'stopped', reason: `${item.name}: ${why}` };
    });
  }

  // ---- the end ---------------------------------------------------------------------------------

  /** Stops the host, writes results under DIR, and returns the run's summary. */
  stop(): Promise<RunResult> {
    if (this.stopping) return this.stopping;
    this.stopping = (async () => {
      if (this.timer) clearTimeout(this.timer);
      this.child?.kill('SIGTERM');
      for (const w of this.waitingForBuild.values()) w.reject(new SimHostError('ESHUTDOWN', 'the simulated host stopped'));
      this.waitingForBuild.clear();
      const st = this.launchState;
      const result = this.metrics.result(this.sim, {
        scenario: this.opts.scenario.name,
        seed: this.opts.seed,
        policy: 'external',
        fleet: this.fleet,
        launches: this.launches,
        launchStopped: st.kind === 'stopped' ? st.reason : null,
      });
      this.timeline.sample(this.sim);
      this.writeResults(result);
      await this.hv.close();
      for (const s of this.guests.values()) s.close();
      this.dom0.close();
      await this.settleSockets();
      await this.server.close();
      this.finishedResolve(result);
      return result;
    })();
    return this.stopping;
  }

  private writeResults(result: RunResult): void {
    const dir = this.opts.dir;
    const report = { scenario: this.opts.scenario.name, seed: this.opts.seed, results: [result] };
    try {
      writeFileSync(join(dir, 'results.json'), JSON.stringify(report, null, 2) + '\n');
      writeFileSync(join(dir, 'results.csv'), resultsCsv(report));
      writeFileSync(join(dir, 'domains.csv'), this.timeline.domainsCsv());
      writeFileSync(join(dir, 'host.csv'), this.timeline.hostCsv());
      writeFileSync(join(dir, 'chart.svg'), timelineSvg(this.timeline, `${this.opts.scenario.name} (sim-host, seed ${this.opts.seed})`));
    } catch (err) {
      this.log.error({ err }, 'cannot write results');
    }
  }

  summary(result: RunResult): string {
    return formatTable({ scenario: this.opts.scenario.name, seed: this.opts.seed, results: [result] });
  }
}

/** A stable UUID-looking name for a domain's /vm/ entry (no randomness: runs are reproducible). */
function uuidFor(seed: number, domid: number, name: string): string {
  const r = streamFor(seed, `uuid:${domid}:${name}`);
  const hex = (n: number) => Array.from({ length: n }, () => r.int(0, 15).toString(16)).join('');
  return `${hex(8)}-${hex(4)}-4${hex(3)}-a${hex(3)}-${hex(12)}`;
}

/** The record xenballoon-report would write for this report. */
export function v1Of(r: GuestReport): V1Record {
  const n = (x: number | null) => (x === null ? null : Math.max(0, Math.round(x)));
  const m = r.mem;
  return {
    seq: r.seq ?? 0,
    uptimeS: r.uptimeS ?? 0,
    memTotalKib: n(m.totalKib) ?? 0,
    memFreeKib: n(m.freeKib) ?? 0,
    memAvailableKib: n(m.availableKib),
    buffersKib: n(m.buffersKib) ?? 0,
    cachedKib: n(m.cachedKib) ?? 0,
    shmemKib: n(m.shmemKib),
    swapTotalKib: n(m.swapTotalKib) ?? 0,
    swapFreeKib: n(m.swapFreeKib) ?? 0,
    committedAsKib: n(m.committedAsKib) ?? 0,
    balloonCurrentKib: n(r.balloonCurrentKib),
    pswpin: n(r.counters.pswpin),
    pswpout: n(r.counters.pswpout),
    pgmajfault: n(r.counters.pgmajfault),
    workingsetRefault: n(r.counters.workingsetRefault),
    oomKill: n(r.counters.oomKill),
    psiSomeAvg10Bp: r.pressure ? Math.round(r.pressure.someAvg10 * 100) : null,
    psiFullAvg10Bp: r.pressure ? Math.round(r.pressure.fullAvg10 * 100) : null,
    psiSomeTotalUs: r.pressure ? Math.round(r.pressure.someTotalUs) : null,
    psiFullTotalUs: r.pressure ? Math.round(r.pressure.fullTotalUs) : null,
  };
}
