import { describe, expect, it } from 'vitest';
import { formatKib, parseDurationMs, parsePercent, parseRateKibPerS, parseSizeKib, UnitError } from '../../src/policy/units.js';

describe('sizes (xl-style binary suffixes)', () => {
  it.each([
    ['512M', 512 * 1024],
    ['512MiB', 512 * 1024],
    ['512MB', 512 * 1024],
    ['512m', 512 * 1024],
    ['1G', 1024 * 1024],
    ['1.5G', 1.5 * 1024 * 1024],
    ['64K', 64],
    ['2T', 2 * 1024 ** 3],
    ['0', 0],
    [0, 0],
  ])('%s', (input, kib) => {
    expect(parseSizeKib(input)).toBe(kib);
  });

  it.each(['512', 512, '12X', 'M', '-5M', '1e3M', '0x10M', '', '5 M B', '64T5'])('refuses %s', (input) => {
    expect(() => parseSizeKib(input)).toThrow(UnitError);
  });

  it('says a bare number needs a unit', () => {
    expect(() => parseSizeKib('512')).toThrow(/has no unit/);
  });

  it('refuses absurd sizes', () => {
    expect(() => parseSizeKib('100T')).toThrow(/larger than 64T/);
  });
});

describe('rates, percentages, durations', () => {
  it('rates are sizes per second', () => {
    expect(parseRateKibPerS('64M/s')).toBe(65536);
    expect(parseRateKibPerS('1G/s')).toBe(1024 * 1024);
    expect(() => parseRateKibPerS('64M')).toThrow(/per second/);
    expect(() => parseRateKibPerS('64/s')).toThrow(UnitError);
  });

  it('percentages need the % sign and a range', () => {
    expect(parsePercent('10%')).toBeCloseTo(0.1);
    expect(parsePercent('2.5%')).toBeCloseTo(0.025);
    expect(() => parsePercent('10')).toThrow(/% sign/);
    expect(() => parsePercent('150%')).toThrow(/above 100%/);
  });

  it('durations have ms, s, m, h', () => {
    expect(parseDurationMs('500ms')).toBe(500);
    expect(parseDurationMs('1s')).toBe(1000);
    expect(parseDurationMs('1.5s')).toBe(1500);
    expect(parseDurationMs('2m')).toBe(120_000);
    expect(parseDurationMs('1h')).toBe(3_600_000);
    expect(() => parseDurationMs('5')).toThrow(UnitError);
    expect(() => parseDurationMs('5d')).toThrow(UnitError);
  });

  it('formats sizes for people', () => {
    expect(formatKib(300 * 1024)).toBe('300 MiB');
    expect(formatKib(1.5 * 1024 * 1024)).toBe('1.5 GiB');
    expect(formatKib(512)).toBe('512 KiB');
  });
});
