/**
 * Human units in policy files and on the command line, converted to the program's units (KiB,
 * KiB/s, fractions, milliseconds). Sizes follow xl: the suffixes K, M, G, T are binary (1024),
 * with an optional "B" or "iB" ("512M", "512MiB" and "512MB" are all 512 MiB), and a bare number
 * is MiB, as xl reads it: one rule for the CLI, policy files, scenarios and the guest tools.
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

const SIZE_HINT = 'use a number with K, M, G or T (binary, as xl reads them; a bare number is MiB), e.g. 512M or 1.5G';

/**
 * "512M" -> 524288 (KiB). A bare number is MiB, as xl reads `memory=` and `xl mem-set` (and as
 * the guest tools read their options): "512" and 512 are 512 MiB, 0 is nothing.
 */
export function parseSizeKib(input: string | number): number {
  if (input === 0 || input === '0') return 0;
  const text = String(input).trim();
  let kib: number;
  if (/^\d+(\.\d+)?$/.test(text)) {
    kib = Math.round(Number(text) * 1024);
  } else {
    const m = SIZE_RE.exec(text);
    if (!m) throw new UnitError(`invalid size '${input}': ${SIZE_HINT}`);
    const [, num, unit] = m as unknown as [string, string, string];
    const byteCount = bytes.parse(`${num}${unit.toLowerCase()}b`);
    if (byteCount === null || !Number.isFinite(byteCount)) throw new UnitError(`invalid size '${input}': ${SIZE_HINT}`);
    kib = Math.round(byteCount / 1024);
  }
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

const SIZE_UNITS: readonly [string, number][] = [['T', 1024 ** 3], ['G', 1024 ** 2], ['M', 1024], ['K', 1]];

/**
 * KiB -> an xl-style size for people: 145408 -> "142M", 1572864 -> "1.5G", 0 -> "0". At most
 * three significant digits (two decimals below 10, one below 100), trailing zeros dropped; what
 * it prints is a size every command reads back (parseSizeKib).
 */
export function formatKib(kib: number): string {
  if (!Number.isFinite(kib)) return String(kib);
  if (kib < 0) return '-' + formatKib(-kib);
  if (kib === 0) return '0';
  const [unit, factor] = SIZE_UNITS.find(([, f]) => kib >= f) ?? ['K', 1];
  const v = kib / factor;
  const text = v < 10 ? v.toFixed(2) : v < 100 ? v.toFixed(1) : v.toFixed(0);
  return (text.includes('.') ? text.replace(/\.?0+$/, '') : text) + unit;
}

/** KiB/s -> "64M/s". */
export function formatRateKib(kibPerS: number): string {
  return `${formatKib(kibPerS)}/s`;
}
