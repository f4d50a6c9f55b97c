import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseDomainReport } from '../../src/report/domain.js';
import { parsePaperReport } from '../../src/report/paper.js';
import { parseMeminfoText, parsePressureText, parseUptimeText, parseVmstatText } from '../../src/report/proc.js';
import { parseQubesMeminfo } from '../../src/report/qubes.js';
import { guestReportSchema } from '../../src/report/schema.js';
import { procFixtures } from '../helpers/native.js';

const fixtures = readdirSync(procFixtures);
const read = (dir: string, file: string) => readFileSync(join(procFixtures, dir, file), 'utf8');
const readIf = (dir: string, file: string) => (existsSync(join(procFixtures, dir, file)) ? read(dir, file) : null);

function ok<T>(r: { ok: true; value: T } | { ok: false; detail: string }): T {
  if (!r.ok) throw new Error(r.detail);
  return r.value;
}

describe('raw /proc parsers on every fixture kernel', () => {
  it('has fixtures from several kernels', () => {
    expect(fixtures.length).toBeGreaterThanOrEqual(5);
  });

  it.each(fixtures)('%s: meminfo, vmstat, uptime and pressure parse', (dir) => {
    const mem = ok(parseMeminfoText(read(dir, 'meminfo')));
    expect(mem.totalKib).toBeGreaterThan(0);
    expect(mem.committedAsKib).not.toBeNull();
    ok(parseVmstatText(read(dir, 'vmstat')));
    expect(ok(parseUptimeText(read(dir, 'uptime')))).toBeGreaterThan(0);
    const psi = readIf(dir, 'pressure/memory');
    if (psi !== null) ok(parsePressureText(psi));
  });

  it('reads the fields a controller needs from a 5.10 meminfo', () => {
    const mem = ok(parseMeminfoText(read('constructed-5.10-debian11-hvm', 'meminfo')));
    expect(mem).toEqual({
      totalKib: 2030612, freeKib: 64220, availableKib: 132808, buffersKib: 2084, cachedKib: 121736,
      shmemKib: 17372, swapTotalKib: 1048572, swapFreeKib: 611840, committedAsKib: 2410968,
    });
  });

  it('sums the split refault counters (5.9+) and reads the single one (older kernels)', () => {
    expect(ok(parseVmstatText(read('constructed-5.10-debian11-hvm', 'vmstat'))).workingsetRefault).toBe(96114 + 1220931);
    expect(ok(parseVmstatText(read('constructed-4.19-debian10-pv', 'vmstat'))).workingsetRefault).toBe(88412);
  });

  it('gives null for counters an old kernel lacks (3.10 has no oom_kill)', () => {
    const c = ok(parseVmstatText(read('constructed-3.10-centos7-hvm', 'vmstat')));
    expect(c.oomKill).toBeNull();
    expect(c.pgmajfault).toBe(10442);
  });

  it('reads PSI averages in basis points and totals in microseconds', () => {
    expect(ok(parsePressureText(read('constructed-5.10-debian11-hvm', 'pressure/memory')))).toEqual({
      someAvg10Bp: 2341, fullAvg10Bp: 1102, someTotalUs: 412093811, fullTotalUs: 201877312,
    });
  });

  it.each([
    ['malformed_line', 'MemTotal 123 kB\n'],
    ['bad_unit', 'MemTotal:  123\n'],
    ['bad_unit', 'MemTotal:  123 MB\n'],
    ['duplicate_key', 'MemTotal: 1 kB\nMemTotal: 2 kB\n'],
    ['duplicate_key', 'Foo: 1 kB\nFoo: 1 kB\n'],
    ['out_of_range', 'Committed_AS: 99999999999999999 kB\n'],
    ['out_of_range', 'Committed_AS: 2000000000000 kB\n'],
    ['malformed_line', 'MemTotal: -5 kB\n'],
    ['malformed_line', 'MemTotal: 1 kB\n\nMemFree: 1 kB\n'],
  ])('meminfo rejects with %s: %j', (reason, text) => {
    const r = parseMeminfoText(text);
    expect(r.ok ? 'ok' : r.reason).toBe(reason);
  });

  it('meminfo ignores lines it does not know, such as the huge VmallocTotal', () => {
    const r = ok(parseMeminfoText('MemTotal: 100 kB\nVmallocTotal:   34359738367 kB\nHugePages_Total:   0\n'));
    expect(r.totalKib).toBe(100);
  });

  it.each([
    ['malformed_line', 'pswpin -1\n'],
    ['malformed_line', 'pswpin 1 2\n'],
    ['duplicate_key', 'pswpin 1\npswpin 1\n'],
    ['out_of_range', 'pswpin 9007199254740992\n'],
    ['out_of_range', 'workingset_refault_anon 9007199254740991\nworkingset_refault_file 1\n'],
  ])('vmstat rejects with %s: %j', (reason, text) => {
    const r = parseVmstatText(text);
    expect(r.ok ? 'ok' : r.reason).toBe(reason);
  });

  it.each([
    ['missing_field', 'some avg10=0.00 avg60=0.00 avg300=0.00 total=0\n'],
    ['out_of_range', 'some avg10=100.01 avg60=0.00 avg300=0.00 total=0\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n'],
    ['duplicate_key', 'some avg10=0.00 avg60=0.00 avg300=0.00 total=0\nsome avg10=0.00 avg60=0.00 avg300=0.00 total=0\n'],
    ['malformed_line', 'some avg10=1 avg60=0.00 avg300=0.00 total=0\n'],
  ])('pressure rejects with %s: %j', (reason, text) => {
    const r = parsePressureText(text);
    expect(r.ok ? 'ok' : r.reason).toBe(reason);
  });
});

describe("the paper's format (memory/meminfo + memory/vmstat + memory/uptime)", () => {
  it.each(fixtures)('%s: a full report with counters and uptime', (dir) => {
    const r = parsePaperReport({ meminfo: read(dir, 'meminfo'), vmstat: read(dir, 'vmstat'), uptime: read(dir, 'uptime') });
    if (!r.ok) throw new Error(r.detail);
    expect(r.report.format).toBe('paper');
    expect(r.report.seq).toBeNull();
    expect(r.report.pressure).toBeNull();
    expect(r.report.uptimeS).toBe(Math.floor(Number(read(dir, 'uptime').split(' ')[0])));
    expect(guestReportSchema.safeParse(r.report).success).toBe(true);
  });

  it('accepts meminfo alone, as the bash script wrote it (no trailing newline)', () => {
    const r = parsePaperReport({ meminfo: read('constructed-4.19-debian10-pv', 'meminfo').trimEnd() });
    if (!r.ok) throw new Error(r.detail);
    expect(r.report.mem.totalKib).toBe(481252);
    expect(r.report.counters.pswpin).toBeNull();
    expect(r.report.uptimeS).toBeNull();
  });

  it('accepts a subset of meminfo (old Qubes) with nulls for the rest', () => {
    const r = parsePaperReport({ meminfo: 'MemTotal: 4000 kB\nMemFree: 1000 kB\n' });
    if (!r.ok) throw new Error(r.detail);
    expect(r.report.mem.committedAsKib).toBeNull();
    expect(r.report.mem.usedKib).toBeNull();
  });

  it('rejects a report without MemTotal or with MemFree above MemTotal, or a bad vmstat', () => {
    const bad = [
      parsePaperReport({ meminfo: 'MemFree: 1000 kB\n' }),
      parsePaperReport({ meminfo: 'MemTotal: 1000 kB\nMemFree: 2000 kB\n' }),
      parsePaperReport({ meminfo: 'MemTotal: 4000 kB\nMemFree: 1000 kB\n', vmstat: 'pswpin x\n' }),
      parsePaperReport({ meminfo: 'MemTotal: 4000 kB\nMemFree: 1000 kB\n', uptime: 'soon' }),
      parsePaperReport({ meminfo: 'x'.repeat(5000) }),
    ];
    expect(bad.map((r) => (r.ok ? 'ok' : r.reason))).toEqual([
      'missing_field', 'inconsistent', 'malformed_line', 'malformed_line', 'too_large',
    ]);
  });
});

describe("Qubes' format (one number in memory/meminfo)", () => {
  it('reads the used KiB and nothing else', () => {
    const r = parseQubesMeminfo('734512');
    if (!r.ok) throw new Error(r.detail);
    expect(r.report.format).toBe('qubes');
    expect(r.report.mem.usedKib).toBe(734512);
    expect(r.report.mem.totalKib).toBeNull();
    expect(r.report.mem.committedAsKib).toBeNull();
  });

  it.each([
    ['out_of_range', '-5'],
    ['bad_number', '12 kB'],
    ['bad_number', '012'],
    ['bad_number', '1e9'],
    ['out_of_range', '99999999999999'],
    ['too_large', '1'.repeat(64)],
    ['nul_byte', '12\0'],
  ])('rejects with %s: %j', (reason, text) => {
    const r = parseQubesMeminfo(text);
    expect(r.ok ? 'ok' : r.reason).toBe(reason);
  });
});

describe('choosing the format of what a domain published', () => {
  const v1 = 'v=1\nseq=1\nuptime_s=5\nmem_total_kib=100\nmem_free_kib=10\nbuffers_kib=1\ncached_kib=1\nswap_total_kib=0\nswap_free_kib=0\ncommitted_as_kib=50\n';

  it('prefers the v1 record, and does not fall back when it is bad', () => {
    expect(parseDomainReport({ v1, meminfo: '1234' })).toMatchObject({ ok: true, report: { format: 'v1' } });
    expect(parseDomainReport({ v1: 'v=9\n', meminfo: '1234' })).toMatchObject({ ok: false, reason: 'bad_version' });
  });

  it("tells the paper's text from Qubes' number", () => {
    expect(parseDomainReport({ meminfo: '1234' })).toMatchObject({ ok: true, report: { format: 'qubes' } });
    expect(parseDomainReport({ meminfo: 'MemTotal: 4000 kB\nMemFree: 1000 kB\n', vmstat: 'pswpin 3\n' })).toMatchObject({
      ok: true,
      report: { format: 'paper', counters: { pswpin: 3 } },
    });
    expect(parseDomainReport({ meminfo: Buffer.from('MemTotal: 4000 kB\nMemFree: 1000 kB\n') })).toMatchObject({
      ok: true,
      report: { format: 'paper' },
    });
  });

  it('says "nothing yet" (null) for absent or empty nodes, which is not a rejection', () => {
    expect(parseDomainReport({})).toBeNull();
    expect(parseDomainReport({ v1: '', meminfo: null })).toBeNull();
    expect(parseDomainReport({ v1: null, meminfo: Buffer.alloc(0) })).toBeNull();
  });
});
