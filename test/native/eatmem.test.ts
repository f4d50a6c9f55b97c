/**
 * eatmem, the paper's workload: a seeded run is repeatable, and it really allocates, touches
 * and frees the chunk it reports (checked in its own /proc/<pid>/status while it sleeps).
 */
import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { Child, eatmemBin, noXenstoreEnv, runOnce, tempDir } from '../helpers/native.js';

const ROUND = /^round=(\d+) chunk_kib=(\d+) pages=(\d+) writes=(\d+) sleep_s=(\d+)$/;

function statusKib(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no ${field} in /proc/${pid}/status`);
  return Number(m[1]);
}

let cleanups: (() => void | Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c();
  cleanups = [];
});

describe('eatmem', () => {
  it('prints the package version with --version', () => {
    const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
    const r = runOnce(eatmemBin, ['--version']);
    expect(r.status).toBe(0);
    expect(r.stdout).toBe(`eatmem ${version}\n`);
  });

  it('repeats exactly the same rounds for the same seed, within its bounds', () => {
    const args = ['--max', '16M', '--sleep-max', '0', '--rounds', '5', '--seed', '42', '--writes-max', '4'];
    const a = runOnce(eatmemBin, args);
    const b = runOnce(eatmemBin, args);
    expect(a.status).toBe(0);
    expect(a.stdout).toBe(b.stdout);
    const lines = a.stdout.trim().split('\n');
    expect(lines[0]).toBe('eatmem: seed=42 max_kib=16384 sleep_min_s=0 sleep_max_s=0 writes_max=4 rounds=5');
    expect(lines.at(-1)).toBe('eatmem: done rounds=5');
    const rounds = lines.slice(1, -1).map((l) => ROUND.exec(l));
    expect(rounds).toHaveLength(5);
    for (const [i, m] of rounds.entries()) {
      if (!m) throw new Error(`unexpected line ${lines[i + 1]}`);
      const [chunk, pages, writes] = [Number(m[2]), Number(m[3]), Number(m[4])];
      expect(Number(m[1])).toBe(i + 1);
      expect(chunk).toBeGreaterThan(0);
      expect(chunk).toBeLessThanOrEqual(16384);
      expect(pages).toBe(Math.ceil((chunk * 1024) / 4096));
      expect(writes).toBeGreaterThanOrEqual(pages);
      expect(writes).toBeLessThanOrEqual(pages * 4);
    }
    expect(runOnce(eatmemBin, [...args.slice(0, -4), '--seed', '43', '--writes-max', '4']).stdout).not.toBe(a.stdout);
  });

  it('touches every page of the chunk it reports, then gives it back before sleeping', async () => {
    const p = new Child(eatmemBin, ['--max', '96M', '--sleep-min', '600', '--sleep-max', '600', '--rounds', '2', '--seed', '4']);
    cleanups.push(() => p.stop());
    const m = await p.waitFor('the first round', () => p.out.map((l) => ROUND.exec(l)).find((x) => x !== null));
    const chunk = Number(m[2]);
    expect(chunk).toBeGreaterThan(16 * 1024); // seed 4 picks a 43 MiB chunk: big enough to see
    // It is asleep now (600 s): the peak shows the chunk was resident, the current size that it was freed.
    const hwm = statusKib(p.pid, 'VmHWM');
    const rss = statusKib(p.pid, 'VmRSS');
    expect(hwm).toBeGreaterThanOrEqual(chunk);
    expect(rss).toBeLessThan(chunk / 2);
    expect(hwm - rss).toBeGreaterThanOrEqual(chunk * 0.95);
    p.proc.kill('SIGTERM');
    expect(await p.waitExit()).toEqual({ code: 0, signal: null });
    expect(p.out.at(-1)).toBe('eatmem: stopped rounds=1');
  });

  it('holds a fixed chunk (--min = --max) for --hold seconds after writing it, then frees it', async () => {
    const p = new Child(eatmemBin, ['--min', '24M', '--max', '24M', '--hold', '600', '--rounds', '1', '--sleep-max', '0', '--seed', '9']);
    cleanups.push(() => p.stop());
    expect(await p.waitFor('the header', () => p.out[0])).toBe(
      'eatmem: seed=9 max_kib=24576 sleep_min_s=0 sleep_max_s=0 writes_max=16 rounds=1 min_kib=24576 hold_s=600 rate_kib_s=0',
    );
    // Held: the whole chunk is resident, and no round line yet (it is printed after the free).
    await p.waitFor('the chunk to be resident', () => statusKib(p.pid, 'VmRSS') >= 24 * 1024 || undefined);
    expect(p.out.some((l) => ROUND.test(l))).toBe(false);
    p.proc.kill('SIGTERM');
    expect(await p.waitExit()).toEqual({ code: 0, signal: null });
    expect(p.out.at(-1)).toBe('eatmem: stopped rounds=0');
  });

  it('writes a chunk no faster than --rate', () => {
    // 8 MiB at 16 MiB/s cannot take less than half a second, however fast the machine (a slow
    // machine only takes longer). Unpaced, the same chunk is written in a few milliseconds here.
    const t0 = performance.now();
    const r = runOnce(eatmemBin, ['--min', '8M', '--max', '8M', '--rate', '16M', '--rounds', '1', '--sleep-max', '0', '--seed', '2']);
    const tookMs = performance.now() - t0;
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/rate_kib_s=16384\n/);
    expect(r.stdout).toMatch(/^round=1 chunk_kib=8192 /m);
    expect(tookMs).toBeGreaterThanOrEqual(450);
  });

  it('draws chunks between --min and --max', () => {
    const r = runOnce(eatmemBin, ['--min', '6M', '--max', '8M', '--sleep-max', '0', '--rounds', '20', '--seed', '5', '--writes-max', '1']);
    expect(r.status).toBe(0);
    const chunks = r.stdout.split('\n').map((l) => ROUND.exec(l)).filter((m) => m !== null).map((m) => Number(m[2]));
    expect(chunks).toHaveLength(20);
    for (const c of chunks) {
      expect(c).toBeGreaterThanOrEqual(6 * 1024);
      expect(c).toBeLessThanOrEqual(8 * 1024);
    }
    expect(new Set(chunks).size).toBeGreaterThan(1);
  });

  it('keeps working when asked to publish without a xenstored, warning once', () => {
    const t = tempDir('eatmem');
    cleanups.push(t.cleanup);
    const r = runOnce(eatmemBin, ['--max', '1M', '--sleep-max', '0', '--rounds', '3', '--seed', '1', '--publish'], noXenstoreEnv(t.dir));
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/done rounds=3/);
    expect(r.stderr.trim().split('\n')).toEqual(['eatmem: cannot publish data/eatmem/chunk: No such file or directory; continuing without it']);
  });

  it.each([
    [['--max', '0']],
    [['--max', 'lots']],
    [['--writes-max', '0']],
    [['--sleep-min', '5', '--sleep-max', '1']],
    [['--min', '9M', '--max', '8M']],
    [['--min', '0']],
    [['--hold', 'long']],
    [['--rate', '0']],
    [['--nope']],
  ])('refuses %j with one line and exit 2', (args) => {
    const r = runOnce(eatmemBin, args);
    expect(r.status).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
  });
});
