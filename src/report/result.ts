/**
 * Typed outcomes of parsing untrusted guest input: a value, or a rejection with a reason (for
 * counting and metrics) and a short, printable detail (for one log line). Parsers never throw.
 */
import type { GuestReport } from './types.js';

export const REJECT_REASONS = [
  /** Larger than the format allows (v1: 2048 bytes). */
  'too_large',
  /** Nothing but an empty value. */
  'empty',
  /** A NUL byte anywhere. */
  'nul_byte',
  /** A control character other than newline, or a non-ASCII byte. */
  'bad_byte',
  /** No `v=1` first line, or a version this daemon does not read. */
  'bad_version',
  /** A line that does not follow the format's grammar. */
  'malformed_line',
  /** A key the (fixed) format does not define. */
  'unknown_key',
  /** The same key twice. */
  'duplicate_key',
  /** A required field is absent. */
  'missing_field',
  /** Not a decimal number where one is required. */
  'bad_number',
  /** A number outside its field's range (negative, overflowing, absurdly large). */
  'out_of_range',
  /** A memory figure without its `kB` unit, or with another unit. */
  'bad_unit',
  /** Fields that contradict each other (MemFree above MemTotal, ...). */
  'inconsistent',
] as const;

export type RejectReason = (typeof REJECT_REASONS)[number];

export interface Rejection {
  ok: false;
  reason: RejectReason;
  /** One short printable line (guest text in it is ASCII-checked and truncated). */
  detail: string;
}

export type Parsed<T> = { ok: true; value: T } | Rejection;

export type ReportResult = { ok: true; report: GuestReport } | Rejection;

export function reject(reason: RejectReason, detail: string): Rejection {
  return { ok: false, reason, detail };
}

/** Quotes a piece of guest text for a log line: JSON-escaped and at most 40 characters. */
export function quote(text: string): string {
  const cut = text.length > 40 ? `${text.slice(0, 40)}...` : text;
  return JSON.stringify(cut);
}
