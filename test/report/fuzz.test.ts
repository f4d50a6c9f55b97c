/**
 * Property tests: every parser of guest input, fed random and mutated input, returns a typed
 * result and never throws; whatever it accepts is a valid GuestReport (every number finite,
 * non-negative, within bounds).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseDomainReport } from '../../src/report/domain.js';
import { parsePaperReport } from '../../src/report/paper.js';
import { parseMeminfoText, parsePressureText, parseUptimeText, parseVmstatText } from '../../src/report/proc.js';
import { parseQubesMeminfo } from '../../src/report/qubes.js';
import { REJECT_REASONS, type ReportResult } from '../../src/report/result.js';
import { guestReportSchema } from '../../src/report/schema.js';
import { checkGuestText } from '../../src/report/text.js';
import { formatV1, parseV1, type V1Record } from '../../src/report/v1.js';
import { procFixtures } from '../helpers/native.js';

const fixtureDirs = readdirSync(procFixtures);
const fixtureText = (file: string) => fixtureDirs.map((d) => readFileSync(join(procFixtures, d, file), 'utf8'));
const meminfos = fixtureText('meminfo');
const vmstats = fixtureText('vmstat');

/** Every number anywhere in the value is finite and >= 0. */
function allNumbersSane(v: unknown): boolean {
  if (typeof v === 'number') return Number.isFinite(v) && v >= 0;
  if (v === null || typeof v !== 'object') return true;
  return Object.values(v).every(allNumbersSane);
}

function checkResult(r: ReportResult | null): void {
  if (r === null) return;
  if (r.ok) {
    expect(guestReportSchema.safeParse(r.report).success).toBe(true);
    expect(allNumbersSane(r.report)).toBe(true);
  } else {
    expect(REJECT_REASONS).toContain(r.reason);
    expect(r.detail).toMatch(/^[\x20-\x7e]{1,300}$/);
  }
}

function checkParsed(r: { ok: boolean; value?: unknown; reason?: string }): void {
  if (r.ok) expect(allNumbersSane(r.value)).toBe(true);
  else expect(REJECT_REASONS).toContain(r.reason);
}

/** Values that break parsers: signs, fractions, exponents, huge and boundary numbers. */
const nastyNumber = fc.oneof(
  fc.constantFrom('-1', '0', '00', '1.5', '1e9', '+3', ' 7', '7 ', '0x10', 'NaN', 'Infinity', '', '-0'),
  fc.constantFrom('9007199254740991', '9007199254740992', '1099511627776', '1099511627777', '18446744073709551615'),
  fc.bigInt({ min: 0n, max: 10n ** 30n }).map(String),
  fc.integer().map(String),
  fc.double().map(String),
);

/** Mutations of a valid text: cut, insert, replace a line, duplicate a line, swap a number. */
function mutated(base: fc.Arbitrary<string>): fc.Arbitrary<string> {
  return fc.oneof(
    fc.tuple(base, fc.nat(), fc.nat()).map(([s, a, b]) => s.slice(0, a % (s.length + 1)) + s.slice(a % (s.length + 1) + (b % 8))),
    fc.tuple(base, fc.nat(), fc.string({ maxLength: 8 })).map(([s, a, ins]) => {
      const i = a % (s.length + 1);
      return s.slice(0, i) + ins + s.slice(i);
    }),
    fc.tuple(base, fc.nat(), fc.string({ maxLength: 40 })).map(([s, a, line]) => {
      const lines = s.split('\n');
      lines[a % lines.length] = line;
      return lines.join('\n');
    }),
    fc.tuple(base, fc.nat()).map(([s, a]) => {
      const lines = s.split('\n');
      const i = a % lines.length;
      lines.splice(i, 0, lines[i] ?? '');
      return lines.join('\n');
    }),
    fc.tuple(base, fc.nat(), nastyNumber).map(([s, a, num]) => {
      const lines = s.split('\n');
      const i = a % lines.length;
      lines[i] = (lines[i] ?? '').replace(/[0-9]+/, num);
      return lines.join('\n');
    }),
    fc.tuple(base, fc.nat(), fc.integer({ min: 0, max: 255 })).map(([s, a, byte]) => {
      const i = a % (s.length + 1);
      return s.slice(0, i) + String.fromCharCode(byte) + s.slice(i);
    }),
  );
}

const kib = fc.integer({ min: 0, max: 2 ** 40 });
const counter = fc.option(fc.maxSafeNat(), { nil: null });
const validRecord: fc.Arbitrary<V1Record> = fc
  .record({
    seq: fc.maxSafeNat(),
    uptimeS: fc.maxSafeNat(),
    memTotalKib: fc.integer({ min: 1, max: 2 ** 40 }),
    fractions: fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { minLength: 6, maxLength: 6 }),
    swapTotalKib: kib,
    committedAsKib: kib,
    balloonCurrentKib: fc.option(kib, { nil: null }),
    pswpin: counter,
    pswpout: counter,
    pgmajfault: counter,
    workingsetRefault: counter,
    oomKill: counter,
    psi: fc.option(
      fc.tuple(fc.integer({ min: 0, max: 10000 }), fc.integer({ min: 0, max: 10000 }), fc.maxSafeNat(), fc.maxSafeNat()),
      { nil: null },
    ),
    withAvailable: fc.boolean(),
    withShmem: fc.boolean(),
  })
  .map((g) => {
    const part = (i: number, of: number) => Math.floor((g.fractions[i] ?? 0) * of);
    return {
      seq: g.seq,
      uptimeS: g.uptimeS,
      memTotalKib: g.memTotalKib,
      memFreeKib: part(0, g.memTotalKib),
      memAvailableKib: g.withAvailable ? part(1, g.memTotalKib) : null,
      buffersKib: part(2, g.memTotalKib),
      cachedKib: part(3, g.memTotalKib),
      shmemKib: g.withShmem ? part(4, g.memTotalKib) : null,
      swapTotalKib: g.swapTotalKib,
      swapFreeKib: part(5, g.swapTotalKib),
      committedAsKib: g.committedAsKib,
      balloonCurrentKib: g.balloonCurrentKib,
      pswpin: g.pswpin,
      pswpout: g.pswpout,
      pgmajfault: g.pgmajfault,
      workingsetRefault: g.workingsetRefault,
      oomKill: g.oomKill,
      psiSomeAvg10Bp: g.psi?.[0] ?? null,
      psiFullAvg10Bp: g.psi?.[1] ?? null,
      psiSomeTotalUs: g.psi?.[2] ?? null,
      psiFullTotalUs: g.psi?.[3] ?? null,
    };
  });

const anyText = fc.oneof(fc.string({ maxLength: 300 }), fc.string({ unit: 'binary', maxLength: 300 }));
const anyBytes = fc.uint8Array({ maxLength: 3000 });
const RUNS = { numRuns: 300 };

describe('v1 parser under fuzzing', () => {
  it('round-trips every valid record exactly, within 2048 bytes', () => {
    fc.assert(
      fc.property(validRecord, (rec) => {
        const text = formatV1(rec);
        expect(Buffer.byteLength(text)).toBeLessThanOrEqual(2048);
        const r = parseV1(text);
        checkResult(r);
        expect(r.ok && r.report.seq === rec.seq && r.report.mem.committedAsKib === rec.committedAsKib).toBe(true);
      }),
      RUNS,
    );
  });

  it('never throws on mutated records, random text or random bytes', () => {
    fc.assert(fc.property(mutated(validRecord.map(formatV1)), (s) => checkResult(parseV1(s))), { numRuns: 2000 });
    fc.assert(fc.property(anyText, (s) => checkResult(parseV1('v=1\n' + s))), RUNS);
    fc.assert(fc.property(anyBytes, (b) => checkResult(parseV1(b))), RUNS);
  });

  it('never accepts a record with a negative, fractional or oversized value', () => {
    fc.assert(
      fc.property(validRecord, fc.nat(), nastyNumber, (rec, which, num) => {
        const lines = formatV1(rec).split('\n');
        const i = 1 + (which % (lines.length - 2));
        const [key] = (lines[i] ?? '').split('=');
        lines[i] = `${key}=${num}`;
        const r = parseV1(lines.join('\n'));
        checkResult(r);
        if (r.ok) expect(/^(0|[1-9][0-9]{0,15})$/.test(num)).toBe(true);
      }),
      { numRuns: 1000 },
    );
  });
});

describe('raw /proc and Qubes parsers under fuzzing', () => {
  const meminfo = fc.constantFrom(...meminfos);
  const vmstat = fc.constantFrom(...vmstats);

  it('paper format: mutated meminfo and vmstat never throw', () => {
    fc.assert(
      fc.property(mutated(meminfo), fc.option(mutated(vmstat), { nil: null }), (m, v) =>
        checkResult(parsePaperReport({ meminfo: m, vmstat: v })),
      ),
      { numRuns: 1000 },
    );
    fc.assert(fc.property(anyBytes, anyBytes, (m, v) => checkResult(parsePaperReport({ meminfo: m, vmstat: v }))), RUNS);
  });

  it('single-file parsers never throw and never yield a bad number', () => {
    const texts = fc.oneof(anyText, mutated(meminfo), mutated(vmstat));
    fc.assert(
      fc.property(texts, (s) => {
        const t = checkGuestText(s, 4096);
        if (!t.ok) return;
        checkParsed(parseMeminfoText(t.value));
        checkParsed(parseVmstatText(t.value));
        checkParsed(parsePressureText(t.value));
        checkParsed(parseUptimeText(t.value));
      }),
      { numRuns: 1000 },
    );
    const psi = fc.constant('some avg10=1.00 avg60=2.00 avg300=3.00 total=100\nfull avg10=0.50 avg60=1.00 avg300=1.50 total=50\n');
    fc.assert(
      fc.property(mutated(psi), (s) => {
        const t = checkGuestText(s, 4096);
        if (t.ok) checkParsed(parsePressureText(t.value));
      }),
      { numRuns: 500 },
    );
  });

  it('Qubes: random numbers and text never throw; accepted values are within bounds', () => {
    fc.assert(fc.property(fc.oneof(nastyNumber, anyText), (s) => checkResult(parseQubesMeminfo(s))), { numRuns: 1000 });
  });

  it('format detection: any combination of keys never throws', () => {
    const val = fc.option(fc.oneof(anyText, anyBytes, mutated(meminfo), nastyNumber), { nil: null });
    fc.assert(
      fc.property(val, val, val, val, (v1, m, vm, up) => checkResult(parseDomainReport({ v1, meminfo: m, vmstat: vm, uptime: up }))),
      { numRuns: 1000 },
    );
  });
});
