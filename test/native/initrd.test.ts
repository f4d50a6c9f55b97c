/**
 * The real-Xen lab copies the guest tools into a tiny busybox initrd. Check that they run in
 * an otherwise empty root: the dynamic build with only libxenstore, libxentoolcore, libc and
 * the loader beside it, the static build with nothing at all. Needs root (chroot).
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, cpSync, mkdirSync, readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { eatmemBin, procFixtures, repoRoot, reportBin, runOnce, tempDir } from '../helpers/native.js';

const isRoot = process.getuid?.() === 0;
const LAB = 'constructed-6.1-debian12-pv-lab';
const staticReport = join(repoRoot, 'build/static/xenballoon-report');
const staticEatmem = join(repoRoot, 'build/static/eatmem');

/** The shared libraries ldd names for a binary: [soname, resolved path]. */
function sharedLibs(bin: string): [string, string][] {
  const out = spawnSync('ldd', [bin], { encoding: 'utf8' }).stdout;
  const libs: [string, string][] = [];
  for (const line of out.split('\n')) {
    const m = /^\s*(\S+) => (\/\S+)/.exec(line) ?? /^\s*(\/\S+) \(/.exec(line);
    if (m) libs.push([basename(m[1] ?? ''), m[2] ?? m[1] ?? '']);
  }
  return libs;
}

let cleanup = () => {};
afterEach(() => cleanup());

function initrdRoot(): string {
  const t = tempDir('initrd');
  cleanup = t.cleanup;
  cpSync(join(procFixtures, LAB), join(t.dir, 'fixture'), { recursive: true });
  return t.dir;
}

const expected = () => runOnce(reportBin, ['--once', '--print', '--proc', join(procFixtures, LAB)]).stdout;

describe('guest tools in a bare initrd', () => {
  it('the dynamic build needs only libxenstore, libxentoolcore, libc and the loader', () => {
    for (const bin of [reportBin, eatmemBin]) {
      const names = sharedLibs(bin).map(([n]) => n).sort();
      expect(names).toEqual(['ld-linux-x86-64.so.2', 'libc.so.6', 'libxenstore.so.4', 'libxentoolcore.so.1']);
    }
  });

  it.skipIf(!isRoot)('the dynamic build runs with just those four files beside it', () => {
    const root = initrdRoot();
    copyFileSync(reportBin, join(root, 'xenballoon-report'));
    for (const [, path] of sharedLibs(reportBin)) {
      mkdirSync(join(root, dirname(path)), { recursive: true });
      copyFileSync(path, join(root, path));
    }
    const r = spawnSync('chroot', [root, '/xenballoon-report', '--once', '--print', '--proc', '/fixture'], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe(expected());
  });

  it('the static build has no dynamic section', () => {
    for (const bin of [staticReport, staticEatmem]) {
      const elf = readFileSync(bin);
      expect(elf.subarray(0, 4).toString('latin1')).toBe('\x7fELF');
      const ldd = spawnSync('ldd', [bin], { encoding: 'utf8' });
      expect(ldd.stdout + ldd.stderr).toMatch(/not a dynamic executable/);
    }
  });

  it.skipIf(!isRoot)('the static builds run in an empty root', () => {
    const root = initrdRoot();
    copyFileSync(staticReport, join(root, 'xenballoon-report'));
    copyFileSync(staticEatmem, join(root, 'eatmem'));
    const r = spawnSync('chroot', [root, '/xenballoon-report', '--once', '--print', '--proc', '/fixture'], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe(expected());
    const e = spawnSync('chroot', [root, '/eatmem', '--max', '4M', '--sleep-max', '0', '--rounds', '2', '--seed', '3'], {
      encoding: 'utf8',
    });
    expect(e.status).toBe(0);
    expect(e.stdout).toBe(runOnce(eatmemBin, ['--max', '4M', '--sleep-max', '0', '--rounds', '2', '--seed', '3']).stdout);
  });
});
