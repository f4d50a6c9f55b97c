import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const template = fileURLToPath(new URL('../../config/xenballoond.service.in', import.meta.url));
const daemonJs = fileURLToPath(new URL('../../dist/cli/xenballoond.js', import.meta.url));
const hasSystemdAnalyze = spawnSync('systemd-analyze', ['--version']).status === 0;

/** The unit as `make install SBINDIR=/usr/sbin` writes it. */
const text = readFileSync(template, 'utf8').replaceAll('@SBINDIR@', '/usr/sbin');

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'xbd-unit-i15pkg-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function unitFile(body: string): string {
  const path = join(dir, 'xenballoond.service');
  writeFileSync(path, body);
  return path;
}

describe('config/xenballoond.service.in', () => {
  it.skipIf(!hasSystemdAnalyze)('passes systemd-analyze verify (with ExecStart pointing at the built daemon)', () => {
    const path = unitFile(text.replace('/usr/sbin/xenballoond', `${process.execPath} ${daemonJs}`).replace(/^Documentation=.*$/m, ''));
    const r = spawnSync('systemd-analyze', ['verify', path], { encoding: 'utf8' });
    expect(r.stderr.split('\n').filter((l) => l.includes('xenballoond.service'))).toEqual([]);
  });

  it.skipIf(!hasSystemdAnalyze)('is hardened to an exposure of at most 4.0 (systemd-analyze security --offline)', () => {
    const r = spawnSync('systemd-analyze', ['security', '--offline=true', unitFile(text)], { encoding: 'utf8' });
    const m = /Overall exposure level for xenballoond\.service: (\d+(?:\.\d+)?)/.exec(r.stdout);
    expect(m, r.stdout + r.stderr).not.toBeNull();
    expect(Number(m?.[1])).toBeLessThanOrEqual(4.0);
  });

  it('fits Debian\'s Xen: wants and follows xen.service (and upstream\'s units), runs only in a dom0', () => {
    expect(text).toMatch(/^Wants=.*\bxen\.service\b/m);
    expect(text).toMatch(/^After=.*\bxen\.service\b.*\bxenstored\.service\b.*\bproc-xen\.mount\b/m);
    expect(text).toMatch(/^ConditionPathExists=\/proc\/xen\/capabilities$/m);
    // systemd says a dom0 is not virtualized: this condition would skip the unit where it belongs.
    expect(text).not.toMatch(/^ConditionVirtualization=/m);
  });

  it('is Type=notify with a watchdog, restarted on failure but not after a configuration error', () => {
    expect(text).toMatch(/^Type=notify$/m);
    expect(text).toMatch(/^WatchdogSec=\d+s$/m);
    expect(text).toMatch(/^Restart=on-failure$/m);
    // The exits of src/cli/errors.ts that a restart cannot fix: USAGE, NOPERM, CONFIG.
    expect(text).toMatch(/^RestartPreventExitStatus=2 77 78$/m);
    expect(text).toMatch(/^ExecReload=\/bin\/kill -HUP \$MAINPID$/m);
    expect(text).toMatch(/^ExecStart=\/usr\/sbin\/xenballoond \$XENBALLOOND_OPTS$/m);
    expect(text).toMatch(/^RuntimeDirectory=xenballoond$/m);
    expect(text).toMatch(/^StateDirectory=xenballoond$/m);
  });

  it('keeps the devices libxenctrl and libxenstore open, and the capability libxencall may need', () => {
    expect(text).toMatch(/^DevicePolicy=closed$/m);
    for (const dev of ['privcmd', 'hypercall', 'xenbus']) expect(text).toContain(`DeviceAllow=/dev/xen/${dev} rw`);
    expect(text).toMatch(/^CapabilityBoundingSet=CAP_IPC_LOCK$/m);
  });
});
