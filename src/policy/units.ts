/**
 * Human units in policy files and on the command line, converted to the program's units (KiB,
 * KiB/s, fractions, milliseconds). Sizes follow xl: the suffixes K, M, G, T are binary (1024),
 * with an optional "B" or "iB" ("512M", "512MiB" and "512MB" are all 512 MiB). A bare number is
 * refused rather than guessed (xl reads it as MiB, Xen's tools as KiB, people as bytes).
 *
 * The multiplication itself is done by the `bytes` package; this module only fixes the grammar
 * so that `bytes`' lenient fallbacks (it reads "512M" as 512 bytes) can never be reached.
 */
import bytes from 'bytes';

export class UnitError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UnitError';
  }
}

const SIZE_RE = /^(\d+(?:\.\d+)?)\s*([kKmMgGtT])(?:i?[bB])?$/;
const PERCENT_RE = /^(\d+(?:\.\d+)?)\s*%$/;
const DURATION_RE = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h)$/;
const PER_SECOND_RE = /^(\d+(?:\.\d+)?)\s*\/\s*s$/;

/** Largest size we accept: 64 TiB in KiB, far above any Xen host, far below 2^53. */
export const MAX_SIZE_KIB = 64 * 1024 ** 3;

const SIZE_HINT = 'use a number with K, M, G or T (binary, as xl reads them), e.g. 512M or 1.5G';

/** "512M" -> 524288 (KiB). Accepts the number 0 (a size of nothing needs no unit). */
export function parseSizeKib(input: string | number): number {
  if (input === 0 || input === '0') return 0;
  if (typeof input === 'number') throw new UnitError(`size ${input} has no unit: ${SIZE_HINT}`);
  const text = input.trim();
  const m = SIZE_RE.exec(text);
  if (!m) {
    if (/^\d+(\.\d+)?$/.test(text)) throw new UnitError(`size '${input}' has no unit: ${SIZE_HINT}`);
    throw new UnitError(`invalid size '${input}': ${SIZE_HINT}`);
  }
  const [, num, unit] = m as unknown as [string, string, string];
  const byteCount = bytes.parse(`${num}${unit.toLowerCase()}b`);
  if (byteCount === null || !Number.isFinite(byteCount)) throw new UnitError(`invalid size '${input}': ${SIZE_HINT}`);
  const kib = Math.round(byteCount / 1024);
  if (kib > MAX_SIZE_KIB) throw new UnitError(`size '${input}' is larger than 64T`);
  return kib;
}

/** "64M/s" -> 65536 (KiB per second). */
export function parseRateKibPerS(input: string): number {
  const text = input.trim();
  const slash = text.lastIndexOf('/');
  if (slash < 0 || text.slice(slash + 1).trim() !== 's') {
    throw new UnitError(`invalid rate '${input}': use a size per second, e.g. 64M/s`);
  }
  try {
    return parseSizeKib(text.slice(0, slash).trim());
  } catch {
    throw new UnitError(`invalid rate '${input}': use a size per second, e.g. 64M/s`);
  }
}

/** "10%" -> 0.1. */
export function parsePercent(input: string | number, maxPercent = 100): number {
  const text = String(input).trim();
  const m = PERCENT_RE.exec(text);
  if (!m) throw new UnitError(`invalid percentage '${input}': write it with a % sign, e.g. 10%`);
  const pct = Number(m[1]);
  if (pct > maxPercent) throw new UnitError(`percentage '${input}' is above ${maxPercent}%`);
  return pct / 100;
}

/** "200/s" -> 200 (events per second). */
export function parsePerSecond(input: string | number): number {
  const text = String(input).trim();
  const m = PER_SECOND_RE.exec(text);
  if (!m) throw new UnitError(`invalid event rate '${input}': use a count per second, e.g. 200/s`);
  return Number(m[1]);
}

const DURATION_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/**
 * "1s" -> 1000. Durations have four units (ms, s, m, h); no dependency offers that grammar
 * strictly (bare numbers would silently mean milliseconds), so it is spelled out here.
 */
export function parseDurationMs(input: string | number): number {
  if (input === 0 || input === '0') return 0;
  const text = String(input).trim();
  const m = DURATION_RE.exec(text);
  if (!m) throw new UnitError(`invalid duration '${input}': use a number with ms, s, m or h, e.g. 1s or 500ms`);
  const [, num, unit] = m as unknown as [string, string, string];
  return Math.round(Number(num) * (DURATION_MS[unit] ?? NaN));
}

/** 307200 -> "300 MiB": for messages and tables. */
export function formatKib(kib: number): string {
  if (!Number.isFinite(kib)) return String(kib);
  const sign = kib < 0 ? '-' : '';
  const text = bytes.format(Math.abs(kib) * 1024, { decimalPlaces: 1, unitSeparator: ' ' }) ?? `${kib} KiB`;
  return sign + text.replace(/^(\S+) ([KMGTP])B$/, '$1 $2iB').replace(/ B$/, ' bytes');
}
