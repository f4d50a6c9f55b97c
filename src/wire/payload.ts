/**
 * Payload helpers. Most payloads are NUL-terminated strings (`path|token|`); WRITE carries a
 * path then raw bytes. Strings are mapped byte-for-byte (latin1) by default so that tokens and
 * other opaque strings survive a round trip through the server unchanged.
 */

export type PayloadEncoding = 'latin1' | 'utf8';

const NUL = Buffer.from([0]);

/** Each string followed by a NUL, concatenated: `a|b|`. */
export function encodeStrings(strings: readonly string[], encoding: PayloadEncoding = 'latin1'): Buffer {
  const parts: Buffer[] = [];
  for (const s of strings) {
    parts.push(Buffer.from(s, encoding), NUL);
  }
  return Buffer.concat(parts);
}


/** Number of NUL bytes (xenstored's count of strings in a payload). */
export function countNuls(payload: Uint8Array): number {
  let n = 0;
  let i = payload.indexOf(0);
  while (i !== -1) {
    n++;
    i = payload.indexOf(0, i + 1);
  }
  return n;
}

/**
 * The NUL-terminated strings of a payload, in order. Bytes after the last NUL are not a string
 * and are ignored (as xenstored's get_strings does).
 */
export function decodeStrings(payload: Buffer, encoding: PayloadEncoding = 'latin1'): string[] {
  const out: string[] = [];
  let start = 0;
  let nul = payload.indexOf(0, start);
  while (nul !== -1) {
    out.push(payload.toString(encoding, start, nul));
    start = nul + 1;
    nul = payload.indexOf(0, start);
  }
  return out;
}

/**
 * The single argument of a one-argument request: the payload must be exactly one string and
 * its NUL. Anything else (no NUL, bytes after it, a second string) yields undefined.
 */
export function onlyArg(payload: Buffer, encoding: PayloadEncoding = 'latin1'): string | undefined {
  if (payload.length === 0 || payload.indexOf(0) !== payload.length - 1) return undefined;
  return payload.toString(encoding, 0, payload.length - 1);
}

/** WRITE's payload: `path|` then the value's raw bytes (which may contain NULs). */
export function splitPathValue(payload: Buffer, encoding: PayloadEncoding = 'latin1'): { path: string; value: Buffer } | undefined {
  const nul = payload.indexOf(0);
  if (nul === -1) return undefined;
  return { path: payload.toString(encoding, 0, nul), value: payload.subarray(nul + 1) };
}

/** WRITE's payload from a path and a value. */
export function encodePathValue(path: string, value: Uint8Array | string, encoding: PayloadEncoding = 'latin1'): Buffer {
  const v = typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
  return Buffer.concat([Buffer.from(path, encoding), NUL, v]);
}
