/**
 * The program's version, read once from package.json (one level above both src/ and dist/), for
 * status and the metrics' build_info. (The packaging work provides the same `VERSION` export,
 * compiled into the bundles; this module is its stand-in until that lands.)
 */
import { readFileSync } from 'node:fs';

function readVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version?: unknown };
    return typeof pkg.version === 'string' ? pkg.version : 'unknown';
  } catch {
    return 'unknown';
  }
}

export const VERSION: string = readVersion();
