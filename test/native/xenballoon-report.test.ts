/**
 * xenballoon-report as a process: options, when it publishes (thresholds, heartbeat), backoff
 * without xenstored, SIGTERM, and --self writing the balloon target. Publishing into a real
 * xenstore server is in xenstore.test.ts.
 */
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parseV1Record } from '../../src/report/v1.js';
import { Child, copyFixture, noXenstoreEnv, procFixtures, reportBin, runOnce, tempDir } from '../helpers/native.js';

const LAB = 'constructed-6.1-debian12-pv-lab';
const TARGET = 'sys/devices/system/xen_memory/xen_memory0/target_kb';

/** Complete v1 records printed so far (the lab fixture's records end with psi_full_total_us). */
function records(out: string[]): string[] {
  const recs: string[] = [];
  let cur: string[] | null = null;
  for (const line of out) {
    if (line === 'v=1') cur = [line];
    else if (cur !== null) {
      cur.push(line);
      if (line.startsWith('psi_full_total_us=')) {
        recs.push(cur.join('\n') + '\n');
        cur = null;
      }
    }
  }
  return recs;
}

function field(record: string, key: string): number {
  const r = parseV1Record(record);
  if (!r.ok) throw new Error(r.detail);
  return r.value[key as keyof typeof r.value] as number;
}

/** Replaces Committed_AS atomically (the publisher may be reading the file). */
function setCommitted(dir: string, kib: number): void {
  const text = readFileSync(join(dir, 'meminfo'), 'utf8').replace(/^Committed_AS:.*$/m, `Committed_AS:   ${kib} kB`);
  writeFileSync(join(dir, 'meminfo.new'), text);
  renameSync(join(dir, 'meminfo.new'), join(dir, 'meminfo'));
}

let cleanups: (() => void | Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c();
  cleanups = [];
});

function temp(prefix: string): string {
  const t = tempDir(prefix);
  cleanups.push(t.cleanup);
  return t.dir;
}

function start(args: string[], env?: NodeJS.ProcessEnv): Child {
  const c = new Child(reportBin, args, env);
  cleanups.push(() => c.stop());
  return c;
}

const pkgVersion = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

describe('xenballoon-report options', () => {
  it('prints help and the version', () => {
    const help = runOnce(reportBin, ['--help']);
    expect(help.status).toBe(0);
    expect(help.stdout).toMatch(/^usage: xenballoon-report/);
    expect(runOnce(reportBin, ['--version']).stdout).toBe(`xenballoon-report ${pkgVersion} (record format v1)\n`);
  });

  it.each([
    [['--interval', '0.1'], /--interval: expected seconds between 0.25 and 3600, got '0.1'/],
    [['--interval', 'soon'], /--interval/],
    [['--threshold-mem', '16Q'], /--threshold-mem: expected a size/],
    [['--key', 'data//x'], /--key/],
    [['--self-down', '0'], /--self-down/],
    [['--bogus'], /unknown or incomplete option '--bogus'/],
    [['--interval'], /unknown or incomplete option '--interval'/],
    [['extra'], /unexpected argument 'extra'/],
    [['--no-publish'], /--no-publish only makes sense with --self/],
    [['--heartbeat', '1', '--interval', '2'], /--heartbeat must not be shorter than --interval/],
  ])('refuses %j with one line and exit 2', (args, msg) => {
    const r = runOnce(reportBin, args);
    expect(r.status).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(msg);
  });

  it('--once without a xenstored fails with one clear line and exit 1', () => {
    const dir = temp('once');
    const r = runOnce(reportBin, ['--once', '--proc', join(procFixtures, LAB)], noXenstoreEnv(dir));
    expect(r.status).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/^xenballoon-report: cannot connect to xenstore: No such file or directory/);
  });

  it('--once with an unreadable /proc directory says which file', () => {
    const r = runOnce(reportBin, ['--once', '--print', '--proc', '/nonexistent']);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/cannot read \/nonexistent\/meminfo: No such file or directory/);
  });
});

describe('xenballoon-report publishing decisions', () => {
  it('publishes a change past the threshold, not one below it', async () => {
    const dir = copyFixture(LAB, temp('threshold'));
    const base = 9232;
    const p = start(['--print', '--verbose', '--interval', '0.25', '--heartbeat', '3600', '--proc', dir, '--sys', join(dir, 'sys')]);
    await p.waitFor('first record', () => records(p.out).length === 1);
    expect(field(records(p.out)[0] ?? '', 'committedAsKib')).toBe(base);

    setCommitted(dir, base + 1024); // 1 MiB: below the default 16 MiB
    const quiet = p.err.filter((l) => l.includes('no significant change')).length;
    await p.waitFor('two quiet samples after the small change', () =>
      p.err.filter((l) => l.includes('no significant change')).length >= quiet + 2,
    );
    setCommitted(dir, base + 65536); // 64 MiB
    await p.waitFor('second record', () => records(p.out).length === 2);
    const second = records(p.out)[1] ?? '';
    expect(field(second, 'seq')).toBe(2);
    expect(field(second, 'committedAsKib')).toBe(base + 65536);
    // stderr is a separate pipe: its line may arrive after the record.
    await p.waitFor('the reason logged', () => p.err.some((l) => /published seq 2 \(Committed_AS\)/.test(l)));
  });

  it('publishes a heartbeat without changes, and stops cleanly on SIGTERM', async () => {
    const dir = join(procFixtures, LAB);
    const p = start(['--print', '--verbose', '--interval', '0.25', '--heartbeat', '1', '--proc', dir]);
    await p.waitFor('three records', () => records(p.out).length >= 3);
    expect(records(p.out).map((r) => field(r, 'seq')).slice(0, 3)).toEqual([1, 2, 3]);
    await p.waitFor('heartbeats logged', () => p.err.filter((l) => /published seq \d+ \(heartbeat\)/.test(l)).length >= 2);
    p.proc.kill('SIGTERM');
    expect(await p.waitExit()).toEqual({ code: 0, signal: null });
  });

  it('backs off exponentially while xenstored is missing, keeps running, and stops on SIGTERM', async () => {
    const dir = temp('backoff');
    const p = start(['--verbose', '--interval', '0.25', '--proc', join(procFixtures, LAB)], noXenstoreEnv(dir));
    await p.waitFor('three failed attempts', () => p.err.filter((l) => l.includes('cannot connect')).length >= 3);
    const delays = p.err.filter((l) => l.includes('cannot connect')).map((l) => /retrying in (\d+) s/.exec(l)?.[1]);
    expect(delays.slice(0, 3)).toEqual(['1', '2', '4']);
    p.proc.kill('SIGTERM');
    expect(await p.waitExit()).toEqual({ code: 0, signal: null });
  });

  it('without --verbose, logs the first failure once with a hint', async () => {
    const dir = temp('quiet');
    const p = start(['--interval', '0.25', '--proc', join(procFixtures, LAB)], noXenstoreEnv(dir));
    await p.waitFor('first failure', () => p.err.length >= 1);
    expect(p.err[0]).toMatch(/backing off up to 60 s; further failures are logged with --verbose/);
    p.proc.kill('SIGTERM');
    expect((await p.waitExit()).code).toBe(0);
  });
});

describe('xenballoon-report --self (selfballooning)', () => {
  // Lab guest: Committed_AS 9232, MemTotal 79364, current 131072 KiB: the kernel holds
  // 51708 KiB beyond MemTotal. maxmem 256 MiB -> xenlinux floor 40 + 256/4 = 104 MiB.
  const run = (dir: string, ...extra: string[]) =>
    runOnce(reportBin, ['--self', '--no-publish', '--once', '--proc', dir, '--sys', join(dir, 'sys'), '--self-maxmem', '256M', ...extra]);
  const target = (dir: string) => readFileSync(join(dir, TARGET), 'utf8');

  it('shrinks by a tenth of the gap per step, toward the floor of the xenlinux curve', () => {
    const dir = copyFixture(LAB, temp('self-down'));
    const r = run(dir);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    // goal = max(9232 + 51708, 106496) = 106496; 131072 - (131072 - 106496) / 10
    expect(target(dir)).toBe(`${131072 - Math.floor((131072 - 106496) / 10)}\n`);
  });

  it('with --self-down 1 goes straight to the goal; --self-min overrides the floor', () => {
    const dir = copyFixture(LAB, temp('self-min'));
    expect(run(dir, '--self-down', '1').status).toBe(0);
    expect(target(dir)).toBe('106496\n');
    expect(run(dir, '--self-down', '1', '--self-min', '32M').status).toBe(0);
    expect(target(dir)).toBe(`${9232 + 51708}\n`);
  });

  it('grows at once (up-hysteresis 1) when Committed_AS rises, but never past maxmem', () => {
    const dir = copyFixture(LAB, temp('self-up'));
    setCommitted(dir, 150_000);
    expect(run(dir, '--self-reserve', '16M').status).toBe(0);
    expect(target(dir)).toBe(`${150_000 + 16384 + 51708}\n`);
    setCommitted(dir, 900_000);
    expect(run(dir).status).toBe(0);
    expect(target(dir)).toBe(`${256 * 1024}\n`);
  });

  it('refuses to run without a balloon driver, saying what is missing', () => {
    const r = runOnce(reportBin, ['--self', '--no-publish', '--once', '--proc', join(procFixtures, 'constructed-3.10-centos7-hvm'), '--sys', '/nonexistent']);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/--self needs the balloon driver's .*current_kb/);
  });
});
