/**
 * The C publisher and the TypeScript encoder must write the same bytes from the same /proc
 * input (the simulator's guests publish through formatV1), and the daemon's parser must read
 * back exactly what the C publisher read.
 */
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { V1_MAX_BYTES } from '../../src/report/limits.js';
import { parseMeminfoText, parsePressureText, parseSysfsKib, parseUptimeText, parseVmstatText } from '../../src/report/proc.js';
import { formatV1, parseV1, parseV1Record, v1RecordFromSample } from '../../src/report/v1.js';
import { copyFixture, procFixtures, reportBin, runOnce, tempDir } from '../helpers/native.js';

const fixtures = readdirSync(procFixtures);
const balloonPath = 'sys/devices/system/xen_memory/xen_memory0/info/current_kb';

function value<T>(r: { ok: true; value: T } | { ok: false; detail: string }): T {
  if (!r.ok) throw new Error(r.detail);
  return r.value;
}

/** What the TypeScript port of the publisher makes of a fixture directory. */
function tsRecord(dir: string): string {
  const f = (name: string) => (existsSync(join(dir, name)) ? readFileSync(join(dir, name), 'utf8') : null);
  const meminfo = value(parseMeminfoText(f('meminfo') ?? ''));
  const vm = f('vmstat');
  const psi = f('pressure/memory');
  const balloon = f(balloonPath);
  const rec = value(
    v1RecordFromSample(
      {
        meminfo,
        uptimeS: value(parseUptimeText(f('uptime') ?? '')),
        vmstat: vm === null ? null : value(parseVmstatText(vm)),
        pressure: psi === null ? null : value(parsePressureText(psi)),
        balloonCurrentKib: balloon === null ? null : value(parseSysfsKib(balloon)),
      },
      1,
    ),
  );
  return formatV1(rec);
}

function cRecord(dir: string): string {
  const r = runOnce(reportBin, ['--once', '--print', '--proc', dir, '--sys', join(dir, 'sys')]);
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  return r.stdout;
}

describe('xenballoon-report (C) and formatV1 (TypeScript) agree', () => {
  it.each(fixtures)('%s: same bytes, at most 2048 of them, read back exactly', (name) => {
    const dir = join(procFixtures, name);
    const c = cRecord(dir);
    expect(c).toBe(tsRecord(dir));
    expect(Buffer.byteLength(c)).toBeLessThanOrEqual(V1_MAX_BYTES);
    const back = parseV1Record(c);
    if (!back.ok) throw new Error(back.detail);
    const mem = value(parseMeminfoText(readFileSync(join(dir, 'meminfo'), 'utf8')));
    expect(back.value.memTotalKib).toBe(mem.totalKib);
    expect(back.value.committedAsKib).toBe(mem.committedAsKib);
    expect(back.value.seq).toBe(1);
  });

  it('records what each kernel has and leaves out what it lacks', () => {
    const r419 = cRecord(join(procFixtures, 'constructed-4.19-debian10-pv'));
    expect(r419).toMatch(/^workingset_refault=88412$/m);
    expect(r419).toMatch(/^oom_kill=1$/m);
    expect(r419).toMatch(/^balloon_current_kib=524288$/m);
    expect(r419).not.toMatch(/psi_/);
    const r310 = cRecord(join(procFixtures, 'constructed-3.10-centos7-hvm'));
    expect(r310).not.toMatch(/oom_kill|balloon_current_kib|psi_/);
    const r510 = parseV1(cRecord(join(procFixtures, 'constructed-5.10-debian11-hvm')));
    expect(r510).toMatchObject({ ok: true, report: { pressure: { someAvg10: 23.41, fullTotalUs: 201877312 } } });
  });

  describe('on odd kernel output', () => {
    let cleanup = () => {};
    afterEach(() => cleanup());

    it('clamps MemFree above MemTotal the same way in C and TypeScript, so the record is accepted', () => {
      const t = tempDir('clamp');
      cleanup = t.cleanup;
      const dir = copyFixture('constructed-6.1-debian12-pv-lab', t.dir);
      const mi = readFileSync(join(dir, 'meminfo'), 'utf8').replace(/^MemFree: .*$/m, 'MemFree:          79400 kB');
      writeFileSync(join(dir, 'meminfo'), mi);
      const c = cRecord(dir);
      expect(c).toMatch(/^mem_free_kib=79364$/m);
      expect(c).toBe(tsRecord(dir));
      expect(parseV1(c).ok).toBe(true);
    });

    it('refuses to publish without Committed_AS, with one clear line and exit 1', () => {
      const t = tempDir('nocommit');
      cleanup = t.cleanup;
      const dir = copyFixture('constructed-6.1-debian12-pv-lab', t.dir);
      writeFileSync(join(dir, 'meminfo'), readFileSync(join(dir, 'meminfo'), 'utf8').replace(/^Committed_AS:.*\n/m, ''));
      const r = runOnce(reportBin, ['--once', '--print', '--proc', dir]);
      expect(r.status).toBe(1);
      expect(r.stdout).toBe('');
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(/has no usable Committed_AS/);
    });

    it('drops counters it cannot represent instead of publishing a record the daemon rejects', () => {
      const t = tempDir('huge');
      cleanup = t.cleanup;
      const dir = copyFixture('constructed-5.10-debian11-hvm', t.dir);
      writeFileSync(join(dir, 'vmstat'), readFileSync(join(dir, 'vmstat'), 'utf8').replace(/^pswpin .*$/m, 'pswpin 18446744073709551615'));
      const c = cRecord(dir);
      expect(c).not.toMatch(/^pswpin=/m);
      expect(parseV1(c).ok).toBe(true);
    });
  });
});
