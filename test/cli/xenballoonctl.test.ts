import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ctl = fileURLToPath(new URL('../../dist/cli/xenballoonctl.js', import.meta.url));

function run(...args: string[]) {
  return spawnSync(process.execPath, [ctl, ...args], { encoding: 'utf8' });
}

describe('xenballoonctl dispatch', () => {
  it('prints usage for --help with every command and its summary, and exits 0', () => {
    const r = run('--help');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^usage: xenballoonctl \[--control PATH\] COMMAND/);
    expect(r.stdout).toMatch(/^ {2}status +show the daemon's view/m);
    expect(r.stdout).toMatch(/^ {2}launch +reserve memory, run a command/m);
  });

  it('prints the package version with --version, the same as package.json', async () => {
    const { version } = (await import('../../package.json', { with: { type: 'json' } })).default;
    const r = run('--version');
    expect(r.status).toBe(0);
    expect(r.stdout).toBe(`xenballoonctl ${version} (node ${process.version})\n`);
  });

  it('refuses an unknown command with one line and exit 2', () => {
    const r = run('no-such-command');
    expect(r.status).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/unknown command 'no-such-command'/);
  });

  it('reports an unknown option as a one-line usage error (exit 2), not an internal error', () => {
    const r = run('status', '--no-such-option');
    expect(r.status).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/Unknown option '--no-such-option'; see --help/);
  });
});
