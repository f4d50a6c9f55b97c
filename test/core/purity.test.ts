/**
 * The decision core is pure: nothing it imports, directly or through other modules, reads a file,
 * a socket or a clock (eslint forbids the direct imports; this follows them all the way).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const FORBIDDEN = [/^node:/, /^koffi$/, /^timers(\/|$)/, /^(fs|net|child_process|os)$/];
/** Pure libraries the core may use. */
const ALLOWED = new Set(['zod', 'bytes', 'yaml']);

function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const out: string[] = [];
  // Value imports and re-exports only: `import type` brings nothing at run time.
  for (const m of text.matchAll(/^(?:import|export)\s+(?!type\b)[^;]*?from\s+'([^']+)'/gms)) out.push(m[1] as string);
  return out;
}

function reach(): { modules: Set<string>; bare: Map<string, string> } {
  const start = readdirSync(join(root, 'src/core')).filter((f) => f.endsWith('.ts')).map((f) => join(root, 'src/core', f));
  const modules = new Set<string>();
  const bare = new Map<string, string>();
  const todo = [...start];
  while (todo.length) {
    const f = todo.pop() as string;
    if (modules.has(f)) continue;
    modules.add(f);
    for (const spec of importsOf(f)) {
      if (spec.startsWith('.')) todo.push(resolve(dirname(f), spec.replace(/\.js$/, '.ts')));
      else bare.set(spec, relative(root, f));
    }
  }
  return { modules, bare };
}

describe('src/core is pure', () => {
  it('reaches no node:* module, FFI, timers or the policy loader, directly or not', () => {
    const { modules, bare } = reach();
    const bad = [...bare].filter(([spec]) => FORBIDDEN.some((r) => r.test(spec)) || !ALLOWED.has(spec));
    expect(bad).toEqual([]);
    expect([...modules].map((m) => relative(root, m))).not.toContain('src/policy/load.ts');
  });
});
