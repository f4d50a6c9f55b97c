/**
 * The program's version: one source for `--version`, `status` and the metrics' build_info.
 * The bundles (make bundle, make deb) have it compiled in by esbuild's `define`; run from the
 * checkout (tsc's dist/, vitest) it is read from package.json once.
 */
import { readFileSync } from 'node:fs';
import { packagePath } from './paths.js';

declare const __XENBALLOOND_VERSION__: string | undefined;

function readVersion(): string {
  if (typeof __XENBALLOOND_VERSION__ === 'string') return __XENBALLOOND_VERSION__;
  try {
    const pkg = JSON.parse(readFileSync(packagePath('package.json'), 'utf8')) as { version?: unknown };
    return typeof pkg.version === 'string' ? pkg.version : 'unknown';
  } catch {
    return 'unknown';
  }
}

export const VERSION: string = readVersion();

/** What `--version` prints: `PROG VERSION (node vX.Y.Z)`. */
export function versionLine(prog: string): string {
  return `${prog} ${VERSION} (node ${process.version})`;
}
