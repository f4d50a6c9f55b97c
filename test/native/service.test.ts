import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot, reportBin, tempDir } from '../helpers/native.js';

const unit = join(repoRoot, 'config/xenballoon-report.service');
const hasSystemdAnalyze = spawnSync('systemd-analyze', ['--version']).status === 0;

describe('config/xenballoon-report.service', () => {
  it.skipIf(!hasSystemdAnalyze)('passes systemd-analyze verify (with ExecStart pointing at the built binary)', () => {
    const t = tempDir('unit');
    try {
      const path = join(t.dir, 'xenballoon-report.service');
      writeFileSync(path, readFileSync(unit, 'utf8').replace('/usr/local/sbin/xenballoon-report', reportBin));
      const r = spawnSync('systemd-analyze', ['verify', path], { encoding: 'utf8' });
      expect(r.stderr.split('\n').filter((l) => l.includes('xenballoon-report.service'))).toEqual([]);
    } finally {
      t.cleanup();
    }
  });

  it('starts the documented binary path and keeps the reporter away from the OOM killer', () => {
    const text = readFileSync(unit, 'utf8');
    expect(text).toMatch(/^ExecStart=\/usr\/local\/sbin\/xenballoon-report$/m);
    expect(text).toMatch(/^OOMScoreAdjust=-900$/m);
    expect(text).toMatch(/^DeviceAllow=\/dev\/xen\/xenbus rw$/m);
  });
});
