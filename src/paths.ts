/**
 * Where the program's own files are (config/policy.yaml, config/scenarios/, build/lib/): the
 * nearest directory above this module that holds config/policy.yaml. One answer for every
 * layout the code runs from: src/ under vitest, dist/ after tsc, build/bench/src/ for the
 * benchmarks, build/bundle/ (the esbuild bundles), and /usr/lib/xenballoond/bin/ in the Debian
 * package, where a module's own path no longer says how deep it was in src/.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

let cached: string | undefined;

/** The package's root directory; falls back to the module's parent when nothing matches. */
export function packageRoot(): string {
  if (cached !== undefined) return cached;
  const start = dirname(fileURLToPath(import.meta.url));
  let dir = start;
  for (let i = 0; i < 6; i++) {
    if (existsSync(join(dir, 'config', 'policy.yaml'))) return (cached = dir);
    const up = dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  return (cached = dirname(start));
}

/** A path inside the package root, e.g. packagePath('config', 'scenarios'). */
export function packagePath(...parts: string[]): string {
  return join(packageRoot(), ...parts);
}
