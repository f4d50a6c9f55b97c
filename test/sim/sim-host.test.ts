/**
 * sim-host end to end: the built CLI as a child process, reached the way the real daemon and
 * tools reach a Xen host — the real libxenstore tools on DIR/xenstored.sock and a guest's
 * DIR/dom<ID>.sock, and hypervisor.sock through the sim: backend.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseV1 } from '../../src/report/v1.js';
import { SimHypervisor, SimHypervisorError } from '../../src/xen/sim-hypervisor.js';
import { waitFor } from '../helpers/wait.js';
import { ctlPath, runXenstoreTool } from '../helpers/xenstored.js';

const MiB = 1024;
interface Host {
  dir: string;
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  exited: Promise<number | string>;
  stop(): Promise<number | string>;
}

async function startSimHost(args: string[]): Promise<Host> {
  const dir = await mkdtemp(join(tmpdir(), 'simhost-'));
  const child = spawn(process.execPath, [ctlPath, 'sim-host', '--dir', dir, '--log-level', 'warn', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (s: string) => (out += s));
  child.stderr!.setEncoding('utf8').on('data', (s: string) => (err += s));
  const exited = new Promise<number | string>((resolve) => child.once('exit', (code, sig) => resolve(code ?? sig ?? -1)));
  let running = true;
  void exited.then(() => (running = false));
  await waitFor('sim-host ready', () => {
    if (!running) throw new Error(`sim-host exited: ${err}`);
    return out.includes('sim-host: ready') ? true : undefined;
  });
  return {
    dir,
    child,
    stdout: () => out,
    stderr: () => err,
    exited,
    stop: async () => {
      if (running) child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), 20_000);
      const code = await exited;
      clearTimeout(killer);
      return code;
    },
  };
}

function ctl(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [ctlPath, ...args], { encoding: 'utf8', timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr });
    });
  });
}

describe('sim-host', () => {
  let host: Host;
  let hv: SimHypervisor;
  let xs: string;
  let domid: number;

  beforeAll(async () => {
    host = await startSimHost(['--scenario', 'paper-eatmem-2g', '--launch', 'none', '--speed', '5', '--forever']);
    xs = join(host.dir, 'xenstored.sock');
    hv = await SimHypervisor.connect(join(host.dir, 'hypervisor.sock'));
  });

  afterAll(async () => {
    await hv?.close();
    await host?.stop();
    if (host) await rm(host.dir, { recursive: true, force: true });
  });

  it('serves xenstore to the real libxenstore tools on xenstored.sock', async () => {
    const name = await runXenstoreTool(xs, 'xenstore-read', ['/local/domain/0/name']);
    expect(name).toMatchObject({ code: 0, stdout: 'Domain-0\n' });
    const target = await runXenstoreTool(xs, 'xenstore-read', ['/local/domain/0/memory/target']);
    expect(target.stdout).toBe(`${256 * MiB}\n`);
  });

  it('answers hypervisor.sock as the Hypervisor backend: physinfo, the domain list', async () => {
    expect(hv.version).toBe('sim');
    const hello = await hv.hello();
    expect(hello).toMatchObject({ version: 'sim', protocol: 1, scenario: 'paper-eatmem-2g', speed: 5 });
    const p = await hv.physinfo();
    expect(p.totalKib).toBe(2048 * MiB);
    // Xen's overhead (8 MiB + 1/128) and dom0 (256 MiB + 1 MiB of Xen structures) are not free.
    expect(p.freeKib).toBe(2048 * MiB - 24 * MiB - 257 * MiB);
    const doms = await hv.domains();
    expect(doms).toEqual([{ domid: 0, totKib: 256 * MiB, maxKib: 256 * MiB, outstandingKib: 0, dying: false, shutdown: false, shutdownReason: 0, hvm: false, paused: false }]);
  });

  it('creates a domain through sim-create and writes its xenstore home as libxl does', async () => {
    const r = await ctl(['sim-create', '--dir', host.dir, '--name', 'web-a', '--memory', '512M', '--maxmem', '1G']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    domid = Number(r.stdout.trim());
    expect(domid).toBe(1);
    const ls = await runXenstoreTool(xs, 'xenstore-ls', ['-f', `/local/domain/${domid}`]);
    expect(ls.stdout).toContain(`/local/domain/${domid}/name = "web-a"`);
    expect(ls.stdout).toContain(`/local/domain/${domid}/domid = "${domid}"`);
    expect(ls.stdout).toContain(`/local/domain/${domid}/memory/target = "${512 * MiB}"`);
    expect(ls.stdout).toContain(`/local/domain/${domid}/memory/static-max = "${1024 * MiB}"`);
    expect(ls.stdout).toMatch(new RegExp(`/local/domain/${domid}/vm = "/vm/[0-9a-f-]{36}"`));
    const perms = await runXenstoreTool(xs, 'xenstore-ls', ['-p', `/local/domain/${domid}`]);
    expect(perms.stdout).toMatch(new RegExp(`^data = "" [ .]*\\(n${domid}\\)$`, 'm'));
    expect(perms.stdout).toMatch(new RegExp(`^memory = "" [ .]*\\(n0,r${domid}\\)$`, 'm'));
    const info = (await hv.domains()).find((d) => d.domid === domid);
    // Built with memory=512M; libxl 4.17 sets max_pages to memory + 1 MiB.
    expect(info).toMatchObject({ totKib: 512 * MiB, maxKib: 513 * MiB, outstandingKib: 0 });
    expect(existsSync(join(host.dir, `dom${domid}.sock`))).toBe(true);
  });

  it('refuses a domain that does not fit, with the reason', async () => {
    const r = await ctl(['sim-create', '--dir', host.dir, '--name', 'huge', '--memory', '4G']);
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/cannot create huge: not enough memory/);
    await expect(hv.createDomain({ name: 'web-a', memoryKib: 64 * MiB, maxmemKib: 64 * MiB })).rejects.toMatchObject({ code: 'EEXIST' });
  });

  it("publishes the guest's reports as v1 records the daemon's parser accepts", async () => {
    const report = await waitFor('a report', async () => {
      const r = await runXenstoreTool(xs, 'xenstore-read', ['-R', `/local/domain/${domid}/data/xenballoon/report`]);
      return r.code === 0 ? r.stdout.replace(/\n$/, '') + '\n' : undefined;
    });
    const parsed = parseV1(report.endsWith('\n\n') ? report.slice(0, -1) : report);
    if (!parsed.ok) throw new Error(`rejected: ${JSON.stringify(parsed)}`);
    expect(parsed.report.format).toBe('v1');
    expect(parsed.report.mem.swapTotalKib).toBe(1024 * MiB);
    expect(parsed.report.mem.committedAsKib).toBeGreaterThanOrEqual(72 * MiB);
    expect(parsed.report.mem.totalKib).toBeLessThan(512 * MiB - 49 * MiB);
  });

  it('a guest follows a memory/target written by dom0', async () => {
    const w = await runXenstoreTool(xs, 'xenstore-write', [`/local/domain/${domid}/memory/target`, String(300 * MiB)]);
    expect(w.code).toBe(0);
    await waitFor('the guest at 300 MiB', async () => ((await hv.domains()).find((d) => d.domid === domid)?.totKib === 300 * MiB ? true : undefined));
    const g = await hv.guest(domid);
    expect(g).toMatchObject({ target_kib: 300 * MiB, tot_kib: 300 * MiB, booted: true, oom_kills: 0 });
  });

  it('obeys maxmem set through hypervisor.sock: the guest cannot grow past it', async () => {
    await hv.setMaxmem(domid, 350 * MiB);
    await runXenstoreTool(xs, 'xenstore-write', [`/local/domain/${domid}/memory/target`, String(700 * MiB)]);
    await waitFor('the guest at its cap', async () => ((await hv.domains()).find((d) => d.domid === domid)?.totKib === 350 * MiB ? true : undefined));
    await hv.setMaxmem(domid, 701 * MiB);
    await waitFor('the guest at 700 MiB', async () => ((await hv.domains()).find((d) => d.domid === domid)?.totKib === 700 * MiB ? true : undefined));
    await expect(hv.setMaxmem(42, 1)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it("a guest's own socket has a guest's rights: it writes data/, not memory/target", async () => {
    const sock = join(host.dir, `dom${domid}.sock`);
    const denied = await runXenstoreTool(sock, 'xenstore-write', ['memory/target', '1']);
    expect(denied.code).not.toBe(0);
    expect(denied.stderr).toMatch(/could not write path memory\/target/);
    const ok = await runXenstoreTool(sock, 'xenstore-write', ['data/note', 'hi']);
    expect(ok.code).toBe(0);
    const other = await runXenstoreTool(sock, 'xenstore-read', ['/local/domain/0/name']);
    expect(other.code).not.toBe(0);
  });

  it('changes a guest through set-guest: a steady need, a stuck balloon', async () => {
    await hv.setGuest(domid, { workload: { kind: 'steady', anon: '200M', committed: '400M' } });
    await waitFor('the new need in the report', async () => {
      const r = await runXenstoreTool(xs, 'xenstore-read', ['-R', `/local/domain/${domid}/data/xenballoon/report`]);
      const p = parseV1(r.stdout.replace(/\n$/, '') + '\n');
      return p.ok && (p.report.mem.committedAsKib ?? 0) >= 472 * MiB ? true : undefined;
    });
    await hv.setGuest(domid, { balloon: { stuck_for: '1h' } });
    expect((await hv.guest(domid)).balloon_stuck).toBe(true);
    await expect(hv.setGuest(domid, { workload: { kind: 'nonsense' } })).rejects.toMatchObject({ code: 'EINVAL' });
  });

  it('destroys a domain: its nodes go, @releaseDomain fires, its memory comes back', async () => {
    const free = (await hv.physinfo()).freeKib;
    const r = await ctl(['sim-destroy', '--dir', host.dir, 'web-a']);
    expect(r).toMatchObject({ code: 0, stderr: '' });
    const gone = await runXenstoreTool(xs, 'xenstore-read', [`/local/domain/${domid}/name`]);
    expect(gone.code).not.toBe(0);
    await waitFor('the domain gone', async () => ((await hv.domains()).some((d) => d.domid === domid) ? undefined : true));
    await waitFor('its memory free', async () => ((await hv.physinfo()).freeKib >= free + 700 * MiB ? true : undefined));
  });

  it('tells a client what is wrong with a bad request and keeps serving it', async () => {
    const err = await hv.setGuest(999, {}).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SimHypervisorError);
    expect((await hv.physinfo()).totalKib).toBe(2048 * MiB);
  });

  it('stops on SIGTERM with a summary and its results and chart in DIR', async () => {
    const code = await host.stop();
    expect(code).toBe(0);
    expect(host.stdout()).toMatch(/policy\s+admitted/);
    expect(existsSync(join(host.dir, 'chart.svg'))).toBe(true);
    const results = JSON.parse(readFileSync(join(host.dir, 'results.json'), 'utf8'));
    expect(results).toMatchObject({ scenario: 'paper-eatmem-2g', results: [{ policy: 'external' }] });
    expect(existsSync(join(host.dir, 'hypervisor.sock'))).toBe(false);
  });
});

describe('sim-host with a launch command', () => {
  it('launches guests through the command until it fails, as the paper launcher did', async () => {
    const cmd = `"${process.execPath}" "${ctlPath}" sim-create --dir "$XB_SIM_DIR" --name "$XB_NAME" --memory "$XB_MEMORY" --maxmem "$XB_MAXMEM" --template "$XB_TEMPLATE"`;
    const host = await startSimHost(['--scenario', 'paper-eatmem-2g', '--speed', '20', '--duration', '3m', '--launch-command', cmd]);
    try {
      const code = await host.exited;
      expect(code).toBe(0);
      const results = JSON.parse(readFileSync(join(host.dir, 'results.json'), 'utf8'));
      const r = results.results[0];
      // Nothing balloons the guests, so three 512 MiB guests fit and the fourth creation fails.
      expect(r.admitted).toBe(3);
      expect(r.launch_stopped).toMatch(/eatmem-4: .*not enough memory/);
    } finally {
      await host.stop();
      await rm(host.dir, { recursive: true, force: true });
    }
  });

  it("by default launches while free memory allows (xl's own check)", async () => {
    const host = await startSimHost(['--scenario', 'paper-idle-2g', '--speed', '30', '--duration', '2m']);
    try {
      expect(await host.exited).toBe(0);
      const r = JSON.parse(readFileSync(join(host.dir, 'results.json'), 'utf8')).results[0];
      expect(r.admitted).toBe(3);
      expect(r.oom_kills).toBe(0);
    } finally {
      await host.stop();
      await rm(host.dir, { recursive: true, force: true });
    }
  });

  it('refuses bad options with one line', async () => {
    const r = await ctl(['sim-host', '--scenario', 'paper-eatmem-2g', '--dir', '/tmp/x', '--speed', 'fast']);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/--speed must be a number/);
    const s = await ctl(['sim-host', '--scenario', 'nope', '--dir', '/tmp/x']);
    expect(s.code).toBe(1);
    expect(s.stderr).toMatch(/unknown scenario 'nope'/);
  });
});
