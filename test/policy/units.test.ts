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
    ['512', 512 * 1024],
    [512, 512 * 1024],
    ['1.5', 1.5 * 1024],
  ])('%s', (input, kib) => {
    expect(parseSizeKib(input)).toBe(kib);
  });

  it.each(['12X', 'M', '-5M', '1e3M', '0x10M', '', '5 M B', '64T5'])('refuses %s', (input) => {
    expect(() => parseSizeKib(input)).toThrow(UnitError);
  });

  it('reads a bare number as MiB, as xl does', () => {
    expect(parseSizeKib('2048')).toBe(parseSizeKib('2G'));
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
    expect(parseRateKibPerS('64/s')).toBe(65536);
    expect(() => parseRateKibPerS('fast/s')).toThrow(UnitError);
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
    expect(formatKib(300 * 1024)).toBe('300M');
    expect(formatKib(1.5 * 1024 * 1024)).toBe('1.5G');
    expect(formatKib(512)).toBe('512K');
    expect(formatKib(145408)).toBe('142M');
    expect(formatKib(100 * 1024)).toBe('100M');
    expect(formatKib(1.27 * 1024 * 1024)).toBe('1.27G');
    expect(formatKib(0)).toBe('0');
    expect(formatKib(-724 * 1024)).toBe('-724M');
  });

  it('prints sizes every command reads back', () => {
    for (const kib of [4, 1000, 145408, 1048576, 1.5 * 1048576, 123456789]) {
      const back = parseSizeKib(formatKib(kib));
      expect(Math.abs(back - kib) / kib).toBeLessThan(0.005);
    }
  });
});
