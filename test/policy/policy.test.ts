import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  BUILTIN_SETTINGS,
  builtinPolicy,
  defaultPolicy,
  globToRegExp,
  loadPolicy,
  parsePolicy,
  PolicyError,
  settingsFor,
} from '../../src/policy/index.js';

function issuesOf(text: string, file = 'p.yaml'): string[] {
  try {
    parsePolicy(text, file);
  } catch (err) {
    if (err instanceof PolicyError) return err.message.split('\n');
    throw err;
  }
  return [];
}

describe('policy errors point at file:line:col', () => {
  it('reports an unknown key at the key, with a suggestion', () => {
    expect(issuesOf('host:\n  reserv: 64M\n')).toEqual([
      "p.yaml:2:3: unknown key 'reserv' in host (did you mean 'reserve'?)",
    ]);
  });

  it('lists the allowed keys when nothing is close', () => {
    expect(issuesOf('colour: blue\n')[0]).toMatch(/^p\.yaml:1:1: unknown key 'colour' at top level \(allowed: host, interval, defaults, domains\)$/);
  });

  it('reports a wrong type at the value', () => {
    expect(issuesOf('defaults:\n  weight: heavy\n')).toEqual(['p.yaml:2:11: defaults.weight: expected a number, not string "heavy"']);
  });

  it('reports a bad unit at the value', () => {
    expect(issuesOf('defaults:\n  rate:\n    down: 64Q/s\n')).toEqual([
      "p.yaml:3:11: defaults.rate.down: invalid rate '64Q/s': use a size per second, e.g. 64M/s",
    ]);
  });

  it('reports min > max within a mapping, and against the defaults', () => {
    expect(issuesOf('defaults:\n  min: 2G\n  max: 1G\n')).toEqual(['p.yaml:2:8: defaults.min: min (2G) is above max (1G)']);
    expect(issuesOf('defaults:\n  max: 1G\ndomains:\n  - match: { name: big }\n    min: 2G\n')).toEqual([
      'p.yaml:5:10: domains[0].min: min (2G) is above max (1G) (from defaults)',
    ]);
  });

  it('reports every error at once, in line order', () => {
    const issues = issuesOf('interval: 1\ndefaults:\n  surplus: hoard\n  weight: 0\ndomains:\n  - match: {}\n');
    expect(issues).toHaveLength(4);
    expect(issues.map((i) => i.split(':').slice(1, 2)[0])).toEqual(['1', '3', '4', '6']);
    expect(issues[1]).toMatch(/surplus: must be one of keep-free, share/);
  });

  it('reports YAML syntax errors and duplicate keys', () => {
    expect(issuesOf('a: [1, 2\n')[0]).toMatch(/^p\.yaml:\d+:\d+: YAML: /);
    expect(issuesOf('interval: 1s\ninterval: 2s\n')).toEqual(['p.yaml:2:1: duplicate key (each key may appear once in a mapping)']);
  });
});

describe('the shipped policy', () => {
  it('config/policy.yaml says exactly what the built-in defaults are', () => {
    const shipped = defaultPolicy();
    const builtin = builtinPolicy();
    expect({ ...shipped, sources: [] }).toEqual({ ...builtin, sources: [] });
    expect(shipped.sources[0]).toMatch(/config\/policy\.yaml$/);
  });

  it('an empty file means the built-in defaults', () => {
    expect(parsePolicy('', 'empty.yaml').defaults).toEqual(BUILTIN_SETTINGS);
    expect(parsePolicy('# nothing\n', 'c.yaml').defaults).toEqual(BUILTIN_SETTINGS);
  });

  it('every example in config/examples is valid', () => {
    const dir = new URL('../../config/examples/', import.meta.url).pathname;
    const files = readdirSync(dir).filter((f) => f.endsWith('.yaml'));
    expect(files.length).toBeGreaterThanOrEqual(3);
    for (const f of files) expect(() => loadPolicy(join(dir, f))).not.toThrow();
  });
});

describe('merging policy.d and resolving per domain', () => {
  let dir: string | null = null;
  afterEach(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
    dir = null;
  });

  function tree(files: Record<string, string>): string {
    dir = mkdtempSync(join(tmpdir(), 'xbpolicy-'));
    for (const [name, text] of Object.entries(files)) {
      const path = join(dir, name);
      mkdirSync(join(path, '..'), { recursive: true });
      writeFileSync(path, text);
    }
    return dir;
  }

  it('reads policy.d files in name order, later keys and rules winning', () => {
    const d = tree({
      'policy.yaml': 'host: { reserve: 128M }\ndefaults: { weight: 100, need: { headroom: 20% } }\ndomains:\n  - match: { name: "web-*" }\n    weight: 200\n',
      'policy.d/20-late.yaml': 'defaults: { need: { min_headroom: 8M } }\ndomains:\n  - match: { name: "web-1" }\n    weight: 50\n',
      'policy.d/10-early.yaml': 'defaults: { need: { min_headroom: 16M }, weight: 150 }\n',
      'policy.d/README': 'not yaml: [',
    });
    const p = loadPolicy(join(d, 'policy.yaml'));
    expect(p.sources.map((s) => s.slice(d.length + 1))).toEqual(['policy.yaml', 'policy.d/10-early.yaml', 'policy.d/20-late.yaml']);
    expect(p.host.reserve).toEqual({ kind: 'kib', kib: 128 * 1024 });
    expect(p.defaults.weight).toBe(150);
    expect(p.defaults.need.headroom).toBeCloseTo(0.2);
    expect(p.defaults.need.min_headroom).toBe(8 * 1024);
    expect(p.defaults.need.estimator).toBe('committed_as');
    expect(settingsFor(p, { domid: 5, name: 'web-1' }).weight).toBe(50);
    expect(settingsFor(p, { domid: 6, name: 'web-2' }).weight).toBe(200);
    expect(settingsFor(p, { domid: 7, name: 'db' }).weight).toBe(150);
    // A directory means its policy.yaml.
    expect(loadPolicy(d).sources).toEqual(p.sources);
  });

  it('reports errors from every file, each with its own name', () => {
    const d = tree({
      'policy.yaml': 'defaults: { weight: x }\n',
      'policy.d/a.yaml': 'hosts: {}\n',
    });
    try {
      loadPolicy(join(d, 'policy.yaml'));
      expect.unreachable();
    } catch (err) {
      const lines = (err as Error).message.split('\n');
      expect(lines).toHaveLength(2);
      expect(lines[0]).toContain('policy.yaml:1:21: defaults.weight');
      expect(lines[1]).toContain("policy.d/a.yaml:1:1: unknown key 'hosts' at top level (did you mean 'host'?)");
    }
  });

  it('a missing file is one clear error', () => {
    expect(() => loadPolicy('/nonexistent/policy.yaml')).toThrow(/no such policy file/);
  });

  it('matches rules by glob and domid; dom0 only when the host says so', () => {
    const p = parsePolicy('domains:\n  - match: { name: "db-?" }\n    weight: 7\n  - match: { domid: 3 }\n    weight: 9\n  - match: { name: "*" }\n    min: 1G\n', 'r.yaml');
    expect(settingsFor(p, { domid: 1, name: 'db-1' }).weight).toBe(7);
    expect(settingsFor(p, { domid: 2, name: 'db-10' }).weight).toBe(100);
    expect(settingsFor(p, { domid: 3, name: 'db-2' }).weight).toBe(9);
    expect(settingsFor(p, { domid: 2, name: 'x' }).min).toEqual({ kind: 'kib', kib: 1024 * 1024 });
    expect(settingsFor(p, { domid: 0, name: 'Domain-0' }).manage).toBe(false);
    const managed = parsePolicy('host: { manage_dom0: true }\n', 'd.yaml');
    expect(settingsFor(managed, { domid: 0, name: 'Domain-0' }).manage).toBe(true);
  });

  it('globs treat everything but * and ? literally', () => {
    expect(globToRegExp('a.b*').test('a.bc')).toBe(true);
    expect(globToRegExp('a.b*').test('axbc')).toBe(false);
    expect(globToRegExp('(x)+').test('(x)+')).toBe(true);
  });
});
