/**
 * The real processes for the daemon's integration tests: `xenballoonctl sim-host` (a simulated
 * Xen host: xenstored.sock, dom<ID>.sock, hypervisor.sock) and the real `xenballoond` against
 * it, plus the clients a test needs (hypervisor.sock for creating domains and changing guests,
 * libxenstore for watching what the daemon writes, the control socket for status).
 * Everything started here is stopped and removed by `cleanup()`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { controlRequest } from '../../src/daemon/control-client.js';
import type { DomainStatus, Status } from '../../src/daemon/control-protocol.js';
import { SimHypervisor } from '../../src/xen/sim-hypervisor.js';
import { XenStore } from '../../src/xen/xenstore.js';
import { waitFor } from '../helpers/wait.js';

export { waitFor };

export const ctlPath = fileURLToPath(new URL('../../dist/cli/xenballoonctl.js', import.meta.url));
export const daemonPath = fileURLToPath(new URL('../../dist/cli/xenballoond.js', import.meta.url));
export const SCENARIO = fileURLToPath(new URL('../fixtures/scenarios/daemon-it.yaml', import.meta.url));
export const POLICY = fileURLToPath(new URL('../fixtures/policies/daemon-it.yaml', import.meta.url));
export const MiB = 1024;
/** The test policy: rate.down 16M/s over windows of at most max(500ms, 8M / 16M/s): 8 MiB a step. */
export const MAX_SHRINK_PER_STEP_KIB = 8 * MiB;
interface Proc {
  child: ChildProcess;
  out(): string;
  err(): string;
  exited: Promise<number | string>;
  running(): boolean;
}

function startProc(args: string[], env: NodeJS.ProcessEnv = process.env): Proc {
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (s: string) => (out += s));
  child.stderr!.setEncoding('utf8').on('data', (s: string) => (err += s));
  let alive = true;
  const exited = new Promise<number | string>((resolve) => child.once('exit', (code, sig) => {
    alive = false;
    resolve(code ?? sig ?? -1);
  }));
  return { child, out: () => out, err: () => err, exited, running: () => alive };
}

async function stopProc(p: Proc): Promise<void> {
  if (!p.running()) return;
  p.child.kill('SIGTERM');
  const killer = setTimeout(() => p.child.kill('SIGKILL'), 20_000);
  await p.exited;
  clearTimeout(killer);
}

export interface LogLine {
  level: number;
  msg: string;
  [k: string]: unknown;
}

export class Daemon {
  constructor(
    readonly proc: Proc,
    readonly control: string,
  ) {}

  get pid(): number {
    return this.proc.child.pid as number;
  }

  logs(): LogLine[] {
    return this.proc.out().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as LogLine);
  }

  /**
   * Every target this daemon wrote for a domain, in order, from its own debug log (written right
   * after each write): exact, where sampling xenstore could miss a value on a loaded machine.
   */
  targetWrites(domid: number): { from: number | null; to: number }[] {
    return this.logs().filter((l) => l.action === 'setTarget' && l.dry_run === undefined && l.domid === domid)
      .map((l) => ({ from: l.from_kib as number | null, to: l.to_kib as number }));
  }

  async status(): Promise<Status> {
    return (await controlRequest(this.control, { op: 'status' })).status;
  }

  async domain(name: string): Promise<DomainStatus | undefined> {
    return (await this.status()).domains.find((d) => d.name === name);
  }

  async stop(): Promise<void> {
    await stopProc(this.proc);
  }

  async kill9(): Promise<void> {
    this.proc.child.kill('SIGKILL');
    await this.proc.exited;
  }
}

export class Rig {
  readonly cleanups: (() => Promise<unknown>)[] = [];
  dir = '';
  host: Proc | null = null;
  hv: SimHypervisor | null = null;
  xs: XenStore | null = null;
  policy = '';

  get control(): string {
    return join(this.dir, 'control.sock');
  }

  get stateDir(): string {
    return join(this.dir, 'state');
  }

  /** A sim-host with nothing launched, at real speed, and a copy of the test policy. */
  async start(hostArgs: string[] = [], scenario = SCENARIO, policy = POLICY): Promise<void> {
    this.dir = await mkdtemp(join(tmpdir(), 'xbd-it-'));
    this.cleanups.push(() => rm(this.dir, { recursive: true, force: true }));
    this.policy = join(this.dir, 'policy.yaml');
    await copyFile(policy, this.policy);
    const host = startProc([ctlPath, 'sim-host', '--scenario', scenario, '--dir', this.dir, '--launch', 'none', '--forever', '--log-level', 'warn', ...hostArgs]);
    this.host = host;
    this.cleanups.push(() => stopProc(host));
    await waitFor('sim-host ready', () => {
      if (!host.running()) throw new Error(`sim-host exited: ${host.err()}`);
      return host.out().includes('sim-host: ready');
    });
    const hv = await SimHypervisor.connect(join(this.dir, 'hypervisor.sock'));
    this.hv = hv;
    this.cleanups.push(() => hv.close());
    const xs = await XenStore.open({ path: join(this.dir, 'xenstored.sock'), timeoutMs: 10_000 });
    this.xs = xs;
    this.cleanups.push(() => xs.close());
  }

  /** The real xenballoond against the host; resolves once its control socket answers. */
  async startDaemon(extra: string[] = [], env: NodeJS.ProcessEnv = process.env): Promise<Daemon> {
    const proc = startProc([
      daemonPath, '--xenstore', join(this.dir, 'xenstored.sock'), '--hypervisor', `sim:${join(this.dir, 'hypervisor.sock')}`,
      '--control', this.control, '--state', this.stateDir, '--policy', this.policy, '--log-level', 'debug', '--log-format', 'json', ...extra,
    ], env);
    const d = new Daemon(proc, this.control);
    this.cleanups.push(() => stopProc(proc));
    await waitFor('xenballoond ready', async () => {
      if (!proc.running()) throw new Error(`xenballoond exited: ${proc.err()}`);
      return d.logs().some((l) => /xenballoond started/.test(l.msg)) && (await d.status()).daemon.steps > 0;
    });
    return d;
  }

  /** Starts a daemon with its own control socket and state against `host`'s xenstore; resolves when it exits. */
  startSecond(host: Rig): Promise<{ code: number; stderr: string }> {
    const p = startProc([
      daemonPath, '--xenstore', join(host.dir, 'xenstored.sock'), '--hypervisor', `sim:${join(host.dir, 'hypervisor.sock')}`,
      '--control', join(host.dir, 'second.sock'), '--state', join(host.dir, 'second-state'), '--policy', host.policy,
    ]);
    return p.exited.then((code) => ({ code: typeof code === 'number' ? code : -1, stderr: p.err() }));
  }

  async create(name: string, template: 'steady' | 'stuck', memory = 512 * MiB, maxmem = 1024 * MiB): Promise<number> {
    return (this.hv as SimHypervisor).createDomain({ name, memoryKib: memory, maxmemKib: maxmem, template });
  }

  async setNeed(domid: number, anonKib: number): Promise<void> {
    await (this.hv as SimHypervisor).setGuest(domid, { workload: { kind: 'steady', anon: `${anonKib}K`, committed: `${anonKib}K` } });
  }

  async target(domid: number): Promise<number> {
    return Number(await (this.xs as XenStore).readString(`/local/domain/${domid}/memory/target`));
  }

  /** Every value written to a domain's memory/target from now on, in order. */
  async recordTargets(domid: number): Promise<{ values: number[]; stop(): Promise<void> }> {
    const w = await (this.xs as XenStore).watch(`/local/domain/${domid}/memory/target`, `it-target-${domid}-${Date.now()}`);
    const values: number[] = [];
    let last: number | null = null;
    w.on('event', () => {
      void (this.xs as XenStore).readString(`/local/domain/${domid}/memory/target`).then((v) => {
        const n = Number(v);
        if (n !== last) values.push(n);
        last = n;
      }, () => undefined);
    });
    return { values, stop: () => w.unwatch() };
  }

  async cleanup(): Promise<void> {
    while (this.cleanups.length) await this.cleanups.pop()?.().catch(() => undefined);
  }
}

export function runCtl(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [ctlPath, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('exit', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

/** Waits until `name`'s target has not changed for `steps` daemon steps. */
export async function settled(d: Daemon, name: string, steps = 4): Promise<DomainStatus> {
  let since = -1;
  let target: number | null = null;
  return waitFor(`${name} settled`, async () => {
    const st = await d.status();
    const dom = st.domains.find((x) => x.name === name);
    if (!dom || dom.need_kib === null) return undefined;
    if (dom.target_kib !== target) {
      target = dom.target_kib;
      since = st.daemon.steps;
      return undefined;
    }
    return st.daemon.steps - since >= steps ? dom : undefined;
  });
}
