import { describe, expect, it } from 'vitest';
import { COUNTER_MAX, KIB_MAX, V1_MAX_BYTES } from '../../src/report/limits.js';
import { guestReportSchema } from '../../src/report/schema.js';
import { formatV1, parseV1, parseV1Record, type V1Record } from '../../src/report/v1.js';

const sampleRecord: V1Record = {
  seq: 7,
  uptimeS: 3600,
  memTotalKib: 2030612,
  memFreeKib: 64220,
  memAvailableKib: 132808,
  buffersKib: 2084,
  cachedKib: 121736,
  shmemKib: 17372,
  swapTotalKib: 1048572,
  swapFreeKib: 611840,
  committedAsKib: 2410968,
  balloonCurrentKib: 2097152,
  pswpin: 219844,
  pswpout: 301102,
  pgmajfault: 388120,
  workingsetRefault: 1317045,
  oomKill: 0,
  psiSomeAvg10Bp: 2341,
  psiFullAvg10Bp: 1102,
  psiSomeTotalUs: 412093811,
  psiFullTotalUs: 201877312,
};

const sampleText = [
  'v=1',
  'seq=7',
  'uptime_s=3600',
  'mem_total_kib=2030612',
  'mem_free_kib=64220',
  'mem_available_kib=132808',
  'buffers_kib=2084',
  'cached_kib=121736',
  'shmem_kib=17372',
  'swap_total_kib=1048572',
  'swap_free_kib=611840',
  'committed_as_kib=2410968',
  'balloon_current_kib=2097152',
  'pswpin=219844',
  'pswpout=301102',
  'pgmajfault=388120',
  'workingset_refault=1317045',
  'oom_kill=0',
  'psi_some_avg10_bp=2341',
  'psi_full_avg10_bp=1102',
  'psi_some_total_us=412093811',
  'psi_full_total_us=201877312',
  '',
].join('\n');

/** The sample text with one line replaced (by key), removed (null) or added (new key). */
function edit(key: string, line: string | null): string {
  const lines = sampleText.split('\n');
  const i = lines.findIndex((l) => l.startsWith(`${key}=`));
  if (i < 0) lines.splice(lines.length - 1, 0, line ?? '');
  else if (line === null) lines.splice(i, 1);
  else lines[i] = line;
  return lines.join('\n');
}

function reasonOf(input: string | Uint8Array): string {
  const r = parseV1(input);
  return r.ok ? 'ok' : r.reason;
}

describe('v1 record: encoding', () => {
  it('formats the fixed key order, decimal values, one trailing newline', () => {
    expect(formatV1(sampleRecord)).toBe(sampleText);
  });

  it('leaves optional keys out when unknown and keeps the order of the rest', () => {
    const text = formatV1({
      ...sampleRecord,
      memAvailableKib: null,
      balloonCurrentKib: null,
      oomKill: null,
      psiSomeAvg10Bp: null,
      psiFullAvg10Bp: null,
      psiSomeTotalUs: null,
      psiFullTotalUs: null,
    });
    expect(text).not.toMatch(/mem_available_kib|balloon_current_kib|oom_kill|psi_/);
    expect(text.split('\n').slice(0, 5)).toEqual(['v=1', 'seq=7', 'uptime_s=3600', 'mem_total_kib=2030612', 'mem_free_kib=64220']);
  });

  it('throws on what the format cannot carry (a caller bug, never guest input)', () => {
    expect(() => formatV1({ ...sampleRecord, memFreeKib: 1.5 })).toThrow(RangeError);
    expect(() => formatV1({ ...sampleRecord, pswpin: -1 })).toThrow(RangeError);
    expect(() => formatV1({ ...sampleRecord, committedAsKib: Number.NaN })).toThrow(RangeError);
    expect(() => formatV1({ ...sampleRecord, memTotalKib: null as unknown as number })).toThrow(/memTotalKib is required/);
    expect(() => formatV1({ ...sampleRecord, psiFullTotalUs: null })).toThrow(/PSI/);
    expect(() => formatV1({ ...sampleRecord, memFreeKib: sampleRecord.memTotalKib + 1 })).toThrow(/exceeds MemTotal/);
  });

  it('fits in 2048 bytes even with every field at its maximum', () => {
    const max: V1Record = {
      ...sampleRecord,
      seq: COUNTER_MAX,
      uptimeS: COUNTER_MAX,
      memTotalKib: KIB_MAX,
      memFreeKib: KIB_MAX,
      memAvailableKib: KIB_MAX,
      buffersKib: KIB_MAX,
      cachedKib: KIB_MAX,
      shmemKib: KIB_MAX,
      swapTotalKib: KIB_MAX,
      swapFreeKib: KIB_MAX,
      committedAsKib: KIB_MAX,
      balloonCurrentKib: KIB_MAX,
      pswpin: COUNTER_MAX,
      pswpout: COUNTER_MAX,
      pgmajfault: COUNTER_MAX,
      workingsetRefault: COUNTER_MAX,
      oomKill: COUNTER_MAX,
      psiSomeAvg10Bp: 10000,
      psiFullAvg10Bp: 10000,
      psiSomeTotalUs: COUNTER_MAX,
      psiFullTotalUs: COUNTER_MAX,
    };
    const text = formatV1(max);
    expect(Buffer.byteLength(text)).toBeLessThanOrEqual(V1_MAX_BYTES);
    expect(parseV1(text).ok).toBe(true);
  });
});

describe('v1 record: parsing', () => {
  it('reads back exactly what was formatted', () => {
    const r = parseV1Record(formatV1(sampleRecord));
    expect(r).toEqual({ ok: true, value: sampleRecord });
  });

  it('maps to a GuestReport with units converted and used memory derived', () => {
    const r = parseV1(sampleText);
    if (!r.ok) throw new Error(r.detail);
    expect(r.report.format).toBe('v1');
    expect(r.report.seq).toBe(7);
    expect(r.report.uptimeS).toBe(3600);
    expect(r.report.mem.committedAsKib).toBe(2410968);
    expect(r.report.mem.usedKib).toBe(2030612 - 64220 - 2084 - 121736 + (1048572 - 611840));
    expect(r.report.pressure).toEqual({ someAvg10: 23.41, fullAvg10: 11.02, someTotalUs: 412093811, fullTotalUs: 201877312 });
    expect(r.report.counters.workingsetRefault).toBe(1317045);
    expect(r.report.balloonCurrentKib).toBe(2097152);
    expect(guestReportSchema.safeParse(r.report).success).toBe(true);
  });

  it('gives null, not 0, for optional fields the guest did not send', () => {
    const r = parseV1(edit('oom_kill', null));
    if (!r.ok) throw new Error(r.detail);
    expect(r.report.counters.oomKill).toBeNull();
  });

  it('accepts bytes as well as strings, and keys in any order after v=1', () => {
    expect(parseV1(Buffer.from(sampleText)).ok).toBe(true);
    const lines = sampleText.trimEnd().split('\n');
    const shuffled = [lines[0], ...lines.slice(1).reverse()].join('\n') + '\n';
    expect(parseV1(shuffled)).toEqual(parseV1(sampleText));
  });

  it('accepts Committed_AS above memory plus swap (normal with overcommit)', () => {
    expect(reasonOf(edit('committed_as_kib', 'committed_as_kib=99999999'))).toBe('ok');
  });

  it.each([
    ['too_large', sampleText + 'x'.repeat(V1_MAX_BYTES)],
    ['empty', ''],
    ['nul_byte', sampleText.replace('seq=7', 'seq=7\0')],
    ['bad_byte', sampleText.replace('\n', '\r\n')],
    ['bad_byte', sampleText.replace('seq=7', 'seq=\t7')],
    ['bad_byte', sampleText.replace('seq=7', 'seq=7é')],
    ['bad_version', sampleText.replace('v=1', 'v=2')],
    ['bad_version', sampleText.replace('v=1\n', '')],
    ['malformed_line', sampleText.trimEnd()],
    ['malformed_line', sampleText.replace('seq=7\n', 'seq=7\n\n')],
    ['malformed_line', edit('seq', 'seq 7')],
    ['malformed_line', edit('seq', 'SEQ=7')],
    ['unknown_key', edit('bogus', 'bogus=1')],
    ['duplicate_key', edit('bogus', 'seq=8')],
    ['duplicate_key', edit('bogus', 'v=1')],
    ['missing_field', edit('committed_as_kib', null)],
    ['missing_field', edit('mem_total_kib', null)],
    ['bad_number', edit('seq', 'seq=-7')],
    ['bad_number', edit('seq', 'seq=07')],
    ['bad_number', edit('seq', 'seq=7.0')],
    ['bad_number', edit('seq', 'seq=+7')],
    ['bad_number', edit('seq', 'seq=0x7')],
    ['bad_number', edit('seq', 'seq=7 ')],
    ['bad_number', edit('seq', 'seq=')],
    ['out_of_range', edit('seq', 'seq=9007199254740992')],
    ['out_of_range', edit('pswpin', 'pswpin=99999999999999999999999')],
    ['out_of_range', edit('committed_as_kib', `committed_as_kib=${KIB_MAX + 1}`)],
    ['out_of_range', edit('psi_some_avg10_bp', 'psi_some_avg10_bp=10001')],
    ['inconsistent', edit('mem_free_kib', 'mem_free_kib=2030613')],
    ['inconsistent', edit('swap_free_kib', 'swap_free_kib=1048573')],
    ['inconsistent', edit('mem_total_kib', 'mem_total_kib=0')],
    ['inconsistent', edit('psi_full_total_us', null)],
  ])('rejects with %s: %j', (reason, input) => {
    const r = parseV1(input);
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.reason).toBe(reason);
      expect(r.detail).toMatch(/^[\x20-\x7e]{1,200}$/);
    }
  });
});
