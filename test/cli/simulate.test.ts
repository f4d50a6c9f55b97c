import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const ctl = fileURLToPath(new URL('../../dist/cli/xenballoonctl.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'xb-simulate-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function run(...args: string[]) {
  return spawnSync(process.execPath, [ctl, 'simulate', ...args], { encoding: 'utf8', cwd: dir });
}

/** A short scenario, so the CLI test runs every policy in a few seconds. */
const short = join(dir, 'short.yaml');
writeFileSync(short, `name: short
duration: 3m
tick: 200ms
host: { memory: 2G }
dom0: { memory: 256M }
launch: { gap: 5s }
guests:
  - name: eat
    count: 10
    memory: 512M
    maxmem: 1G
    workload: { kind: eatmem, max_chunk: 256M, max_sleep: 20s }
`);

describe('xenballoonctl simulate', () => {
  it('refuses what a user can get wrong with one line and a non-zero exit', () => {
    const cases: [string[], number, RegExp][] = [
      [[], 2, /--scenario is required/],
      [['--scenario', 'no-such-scenario'], 1, /unknown scenario 'no-such-scenario'; known: .*paper-eatmem-2g/],
      [['--scenario', short, '--seed', '3.5'], 2, /--seed must be a whole number/],
      [['--scenario', short, '--compare', 'everyone'], 2, /--compare takes 'peers'/],
      [['--scenario', short, '--bogus'], 2, /Unknown option '--bogus'/],
      [['--scenario', join(dir, 'missing.yaml')], 1, /does not exist/],
    ];
    for (const [args, code, msg] of cases) {
      const r = run(...args);
      expect(r.status, args.join(' ')).toBe(code);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(msg);
      expect(r.stderr).not.toMatch(/internal error|at .*\.js/);
    }
  });

  it('reports a scenario file error as file:line:col', () => {
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, readFileSync(short, 'utf8').replace('memory: 512M', 'memory: lots'));
    const r = run('--scenario', bad);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`${bad.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}:10:13: guests\\.0\\.memory: 'lots' is not a size`));
  });

  it('refuses a broken --policy with its file:line:col', () => {
    const pol = join(dir, 'broken-policy.yaml');
    writeFileSync(pol, 'interval: soon\n');
    const r = run('--scenario', short, '--policy', pol);
    expect(r.status).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toContain(`${pol}:1:`);
  });

  it('prints the JSON shape DESIGN.md fixes, identical for a seed, and writes results and charts', () => {
    const a = run('--scenario', short, '--compare', 'peers', '--seed', '7', '--json');
    expect(a.stderr).toBe('');
    expect(a.status).toBe(0);
    const report = JSON.parse(a.stdout);
    expect(report).toMatchObject({ scenario: 'short', seed: 7 });
    expect(report.results.map((r: { policy: string }) => r.policy)).toEqual(['xenballoond', 'static', 'selfballoon', 'selfballoon-kernel', 'squeezed', 'qmemman', 'mom', 'proxmox']);
    for (const r of report.results) {
      for (const k of ['admitted', 'oom_kills', 'swap_in_mib', 'pressure_guest_minutes', 'idle_mib', 'targets_per_min', 'reservation_wait_p99_s',
        'swap_out_mib', 'stall_full_guest_minutes', 'work_done', 'admit_s']) {
        expect(r).toHaveProperty(k);
      }
      expect(r.admit_s).toHaveLength(r.admitted);
    }
    expect(run('--scenario', short, '--compare', 'peers', '--seed', '7', '--json').stdout).toBe(a.stdout);
    for (const f of ['results.json', 'results.csv', 'compare.svg', 'xenballoond.svg', 'xenballoond.domains.csv', 'static.host.csv']) {
      expect(existsSync(join(dir, 'build', 'sim', 'short', f)), f).toBe(true);
    }
    const bad = run('--scenario', short, '--compare', 'peers', '--peer-floor', 'lots', '--no-files');
    expect(bad.status).toBe(2);
    expect(bad.stderr.trim().split('\n')).toHaveLength(1);
    expect(bad.stderr).toMatch(/--peer-floor takes a size/);
    const table = run('--scenario', short, '--no-files');
    expect(table.status).toBe(0);
    expect(table.stdout).toMatch(/^short \(seed 1, 3 simulated minutes\)\npolicy\s+admitted\s+OOM kills\s+swap-in\s+pressure/);
    expect(table.stdout).toMatch(/\nxenballoond\s+\d+/);
  });
});
