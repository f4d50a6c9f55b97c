/**
 * Sizes, rates and durations as scenario files write them (`512M`, `1G/s`, `63s`, `30m`), turned
 * into the simulator's units: KiB and milliseconds. Sizes go through the `bytes` library (binary
 * multiples, like xl); xl's one-letter suffixes (`512M`) are accepted by adding the `B` it wants.
 */
import bytes from 'bytes';

export const KIB_PER_MIB = 1024;
export const KIB_PER_GIB = 1024 * 1024;
export const PAGE_KIB = 4;

const SIZE_RE = /^\s*(\d+(?:\.\d+)?)\s*([kKmMgGtT]?)([bB]?)\s*$/;

/**
 * `512M`, `1G`, `4096K`, `1.5GB` -> KiB. A bare number is MiB, as xl reads it (the same rule as
 * policy files, the CLI and the guest tools: src/policy/units.ts).
 */
export function parseSizeKib(text: string | number): number {
  if (typeof text === 'number') return checkFinite(text, String(text)) * KIB_PER_MIB;
  const m = SIZE_RE.exec(text);
  if (!m) throw new Error(`'${text}' is not a size (use e.g. 512M, 1G, 4096K)`);
  const unit = (m[2] ?? '').toUpperCase();
  if (unit === '') return checkFinite(Number(m[1]), text) * KIB_PER_MIB;
  const parsed = bytes.parse(`${m[1]}${unit}B`);
  if (parsed === null) throw new Error(`'${text}' is not a size (use e.g. 512M, 1G, 4096K)`);
  return parsed / 1024;
}

const DURATION_UNITS: Record<string, number> = { ns: 1e-6, us: 1e-3, ms: 1, s: 1000, m: 60_000, min: 60_000, h: 3_600_000 };
const DURATION_RE = /^\s*(\d+(?:\.\d+)?)\s*(ns|us|ms|s|min|m|h)\s*$/;

/** `2ns`, `100ms`, `63s`, `30m`, `1h` -> ms (a bare number is seconds). */
export function parseDurationMs(text: string | number): number {
  if (typeof text === 'number') return checkFinite(text * 1000, String(text));
  const m = DURATION_RE.exec(text);
  if (!m) throw new Error(`'${text}' is not a duration (use e.g. 100ms, 63s, 30m, 1h)`);
  return Number(m[1]) * (DURATION_UNITS[m[2] as string] as number);
}

/** `1G/s`, `100M/s` -> KiB per millisecond. */
export function parseRateKibPerMs(text: string): number {
  const slash = text.lastIndexOf('/');
  if (slash < 0 || text.slice(slash + 1).trim() !== 's') {
    throw new Error(`'${text}' is not a rate (use e.g. 100M/s, 1G/s)`);
  }
  return parseSizeKib(text.slice(0, slash)) / 1000;
}

function checkFinite(n: number, text: string): number {
  if (!Number.isFinite(n) || n < 0) throw new Error(`'${text}' is not a non-negative number`);
  return n;
}

export function mib(kib: number): number {
  return kib / KIB_PER_MIB;
}
