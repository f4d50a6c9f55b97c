/**
 * The first gate for anything read from a guest: size, NUL bytes, and the byte set. Every
 * format we read is printable ASCII lines separated by newlines, so anything else is refused
 * before any parsing happens.
 */
import { reject, type Parsed } from './result.js';

/** A xenstore value as the binding or a test hands it over. */
export type GuestValue = string | Uint8Array;

export function checkGuestText(input: GuestValue, maxBytes: number): Parsed<string> {
  // Cheap first: a string's length never exceeds its UTF-8 byte length, and any non-ASCII
  // character is refused below, so comparing lengths is exact for everything we accept.
  if (input.length > maxBytes) return reject('too_large', `${input.length} bytes, the limit is ${maxBytes}`);
  if (input.length === 0) return reject('empty', 'empty value');
  let text = '';
  for (let i = 0; i < input.length; i++) {
    const c = typeof input === 'string' ? input.charCodeAt(i) : (input[i] as number);
    if (c === 0) return reject('nul_byte', `NUL byte at offset ${i}`);
    if ((c < 0x20 && c !== 0x0a) || c > 0x7e) return reject('bad_byte', `byte 0x${c.toString(16)} at offset ${i}`);
  }
  text = typeof input === 'string' ? input : Buffer.from(input.buffer, input.byteOffset, input.length).toString('latin1');
  return { ok: true, value: text };
}

/**
 * Splits text into lines: one trailing newline is allowed (a file), as is none (the paper's
 * `$(cat /proc/meminfo)` strips it); empty lines anywhere else are not.
 */
export function splitLines(text: string): Parsed<string[]> {
  const body = text.endsWith('\n') ? text.slice(0, -1) : text;
  const lines = body.split('\n');
  const blank = lines.findIndex((l) => l.length === 0);
  if (blank >= 0) return reject('malformed_line', `empty line ${blank + 1}`);
  return { ok: true, value: lines };
}

/**
 * A decimal integer made of digits only, within [0, max]. Returns the number, 'range' when it
 * is a well-formed number out of range, or 'syntax'.
 */
export function decimal(digits: string, max: number): number | 'range' | 'syntax' {
  if (!/^[0-9]+$/.test(digits)) return 'syntax';
  // Beyond 16 digits a double is no longer exact; every bound we use is below 2^53.
  if (digits.replace(/^0+(?=.)/, '').length > 16) return 'range';
  const n = Number(digits);
  return n <= max ? n : 'range';
}
