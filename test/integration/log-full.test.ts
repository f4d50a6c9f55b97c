/**
 * The real daemon with its stdout on /dev/full (a log disk that filled up): every log write fails
 * with ENOSPC, and the daemon must go on stepping and answering, not die.
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { controlRequest } from '../../src/daemon/control-client.js';
import { daemonPath, Rig, waitFor } from './harness.js';

describe('xenballoond logging to a full device', () => {
  const rig = new Rig();
  beforeAll(() => rig.start());
  afterAll(() => rig.cleanup());

  it('keeps stepping and answering with stdout on /dev/full', async () => {
    const full = openSync('/dev/full', 'w');
    let stderr = '';
    const child = spawn(process.execPath, [
      daemonPath, '--xenstore', join(rig.dir, 'xenstored.sock'), '--hypervisor', `sim:${join(rig.dir, 'hypervisor.sock')}`,
      '--control', rig.control, '--policy', rig.policy, '--log-level', 'debug', '--log-format', 'journal',
    ], { stdio: ['ignore', full, 'pipe'] });
    closeSync(full);
    child.stderr!.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    let exited: number | string | null = null;
    child.once('exit', (code, sig) => (exited = code ?? sig));
    rig.cleanups.push(async () => {
      if (exited === null) child.kill('SIGKILL');
    });
    const status = async () => (await controlRequest(rig.control, { op: 'status' })).status;
    const first = await waitFor('daemon answering', async () => {
      if (exited !== null) throw new Error(`xenballoond exited (${exited}): ${stderr}`);
      return (await status().catch(() => undefined))?.daemon.steps;
    });
    await rig.create('logfull-1', 'steady');
    const later = await waitFor('more steps', async () => {
      if (exited !== null) throw new Error(`xenballoond exited (${exited}): ${stderr}`);
      const st = await status();
      return st.daemon.steps >= first + 5 && st.domains.some((d) => d.name === 'logfull-1' && d.managed) ? st : undefined;
    });
    expect(later.daemon.stalled).toBe(false);
    expect(exited).toBeNull();
    expect(stderr).toBe('');
  });
});
