import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const unit = fileURLToPath(new URL('../../config/xenballoond.service', import.meta.url));
const daemonJs = fileURLToPath(new URL('../../dist/cli/xenballoond.js', import.meta.url));
const hasSystemdAnalyze = spawnSync('systemd-analyze', ['--version']).status === 0;

describe('config/xenballoond.service', () => {
  it.skipIf(!hasSystemdAnalyze)('passes systemd-analyze verify (with ExecStart pointing at the built daemon)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'xbd-unit-'));
    try {
      const path = join(dir, 'xenballoond.service');
      writeFileSync(path, readFileSync(unit, 'utf8').replace('/usr/local/sbin/xenballoond', `${process.execPath} ${daemonJs}`));
      const r = spawnSync('systemd-analyze', ['verify', path], { encoding: 'utf8' });
      expect(r.stderr.split('\n').filter((l) => l.includes('xenballoond.service'))).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('is Type=notify with a watchdog, ordered after xenstored, restarted on any exit, reloaded by SIGHUP', () => {
    const text = readFileSync(unit, 'utf8');
    expect(text).toMatch(/^Type=notify$/m);
    expect(text).toMatch(/^WatchdogSec=\d+s$/m);
    expect(text).toMatch(/^After=.*\bxenstored\.service\b/m);
    expect(text).toMatch(/^Restart=always$/m);
    expect(text).toMatch(/^ExecReload=\/bin\/kill -HUP \$MAINPID$/m);
    expect(text).toMatch(/^ExecStart=\/usr\/local\/sbin\/xenballoond \$XENBALLOOND_OPTS$/m);
    expect(text).toMatch(/^RuntimeDirectory=xenballoond$/m);
  });
});
