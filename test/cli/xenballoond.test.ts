/**
 * xenballoond's start-up refusals: each is one line on stderr and a non-zero exit, never a
 * stack trace (docs/operations.md lists them for operators).
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const daemon = fileURLToPath(new URL('../../dist/cli/xenballoond.js', import.meta.url));

function run(args: string[], opts: { uid?: number } = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [daemon, ...args], { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'xbd-cli-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function oneLine(stderr: string): string {
  const lines = stderr.trim().split('\n');
  expect(lines).toHaveLength(1);
  expect(stderr).not.toMatch(/\n\s+at /);
  return lines[0] as string;
}

describe('xenballoond start-up errors', () => {
  it('prints its usage with --help', async () => {
    const r = await run(['--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^usage: xenballoond/);
  });

  it('prints its version with --version', async () => {
    const r = await run(['--version']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^xenballoond \d+\.\d+\.\d+\S* \(node v\d+/);
  });

  it('refuses a bad policy with file:line:col', async () => {
    const p = join(dir, 'bad.yaml');
    await writeFile(p, 'interval: 1s\ndefaults:\n  weight: -5\n');
    const r = await run(['--policy', p, '--xenstore', join(dir, 'none.sock'), '--hypervisor', 'sim:/nonexistent', '--control', join(dir, 'c.sock')]);
    // 78 (EX_CONFIG): the unit's RestartPreventExitStatus= stops systemd restarting a bad policy.
    expect(r.code).toBe(78);
    expect(oneLine(r.stderr)).toMatch(new RegExp(`^xenballoond: bad policy: ${p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:3:\\d+: `));
  });

  it('refuses an unknown hypervisor backend and a bad metrics address (usage errors, exit 2)', async () => {
    const a = await run(['--hypervisor', 'kvm']);
    expect(a.code).toBe(2);
    expect(oneLine(a.stderr)).toMatch(/--hypervisor must be 'xen' or 'sim:PATH'/);
    const b = await run(['--metrics', 'everywhere']);
    expect(b.code).toBe(2);
    expect(oneLine(b.stderr)).toMatch(/--metrics must be ADDR:PORT/);
  });

  it('says plainly when this is not a Xen dom0 (no hypervisor interface)', async () => {
    // The real defaults: libxenctrl loads, but this machine has no /dev/xen/privcmd.
    const r = await run(['--control', join(dir, 'c2.sock')]);
    expect(r.code).toBe(1);
    expect(oneLine(r.stderr)).toMatch(process.getuid?.() === 0 ? /^xenballoond: cannot open libxenctrl: / : /^xenballoond: must run as root/);
  });

  it('reports an unknown option as a usage error', async () => {
    const r = await run(['--frobnicate']);
    expect(r.code).toBe(2);
    expect(oneLine(r.stderr)).toMatch(/Unknown option '--frobnicate'/);
  });

  it('refuses to run as an ordinary user with the real defaults', async () => {
    const asRoot = process.getuid?.() === 0;
    const r = await run([], asRoot ? { uid: 65534 } : {});
    expect(r.code).toBe(77);
    expect(oneLine(r.stderr)).toMatch(/^xenballoond: must run as root/);
  });
});
