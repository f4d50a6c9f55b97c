/**
 * Finding and reading scenario files. A NAME is looked up in config/scenarios/ of this checkout
 * (`paper-eatmem-2g` -> config/scenarios/paper-eatmem-2g.yaml); anything with a slash or a
 * .yaml/.yml ending is a path. Errors are one line with `file:line:col: message`.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { packagePath } from '../../paths.js';
import { isMap, LineCounter, parseDocument } from 'yaml';
import type { z } from 'zod';
import { guestTemplateSchema, type GuestTemplate, type Scenario, scenarioSchema } from './schema.js';

export class ScenarioError extends Error {}

/** config/scenarios/ of the checkout or package this module belongs to (src/paths.ts). */
export function scenarioDir(): string {
  return packagePath('config', 'scenarios') + '/';
}

export function builtinScenarioNames(): string[] {
  const dir = scenarioDir();
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.endsWith('.yaml'))
    .map((f) => f.slice(0, -'.yaml'.length))
    .sort();
}

export function resolveScenarioPath(nameOrFile: string): string {
  const looksLikePath = nameOrFile.includes('/') || /\.ya?ml$/.test(nameOrFile);
  if (looksLikePath) {
    const p = resolve(nameOrFile);
    if (!existsSync(p)) throw new ScenarioError(`scenario file ${nameOrFile} does not exist`);
    return p;
  }
  if (!/^[A-Za-z0-9_.-]+$/.test(nameOrFile)) throw new ScenarioError(`'${nameOrFile}' is not a scenario name`);
  const p = join(scenarioDir(), `${nameOrFile}.yaml`);
  if (!existsSync(p)) {
    const known = builtinScenarioNames();
    throw new ScenarioError(`unknown scenario '${nameOrFile}'; known: ${known.join(', ') || '(none)'}, or give a file path`);
  }
  return p;
}

export function loadScenario(nameOrFile: string): Scenario {
  const path = resolveScenarioPath(nameOrFile);
  return parseScenario(readFileSync(path, 'utf8'), path);
}

type Path = (string | number)[];

export function parseScenario(text: string, source: string): Scenario {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const where = (path: Path): string => {
    for (let n = path.length; n >= 0; n--) {
      const node = doc.getIn(path.slice(0, n), true) as { range?: [number, number, number] } | undefined;
      if (node && typeof node === 'object' && node.range) {
        const pos = lineCounter.linePos(node.range[0]);
        return `${source}:${pos.line}:${pos.col}`;
      }
      // A missing key: point at the map that should hold it.
      if (n > 0 && isMap(doc.getIn(path.slice(0, n - 1), true))) continue;
    }
    return `${source}:1:1`;
  };
  const firstError = doc.errors[0];
  if (firstError) {
    const pos = firstError.linePos?.[0];
    throw new ScenarioError(`${source}:${pos?.line ?? 1}:${pos?.col ?? 1}: ${firstError.message.split('\n')[0]}`);
  }
  const raw: unknown = doc.toJS();
  const header = scenarioSchema.safeParse(raw ?? {});
  if (!header.success) throw new ScenarioError(describe(header.error, [], where));
  const h = header.data;
  const templates = (key: 'guests' | 'fleet'): GuestTemplate[] =>
    h[key].map((entry, i) => {
      const merged = mergeDefaults(h.guest_defaults, entry);
      const parsed = guestTemplateSchema.safeParse(merged);
      if (!parsed.success) throw new ScenarioError(describe(parsed.error, [key, i], where));
      if (parsed.data.maxmem < parsed.data.memory) {
        throw new ScenarioError(`${where([key, i, 'maxmem'])}: maxmem is smaller than memory`);
      }
      if (parsed.data.workload.kind === 'trace' && !existsSync(resolve(dirname(source), parsed.data.workload.file))) {
        throw new ScenarioError(`${where([key, i, 'workload', 'file'])}: trace file ${parsed.data.workload.file} does not exist`);
      }
      return parsed.data;
    });
  const guests = templates('guests');
  const fleet = templates('fleet');
  if (h.tick <= 0) throw new ScenarioError(`${where(['tick'])}: tick must be positive`);
  if (h.duration < h.tick) throw new ScenarioError(`${where(['duration'])}: duration is shorter than one tick`);
  if (h.dom0.memory <= 0 || h.dom0.memory >= h.host.memory) {
    throw new ScenarioError(`${where(['dom0', 'memory'])}: dom0 memory must be positive and below host memory`);
  }
  const { guest_defaults: _d, guests: _g, fleet: _f, ...rest } = h;
  return { ...rest, guests, fleet, baseDir: dirname(source), source };
}

function describe(error: z.ZodError, prefix: Path, where: (p: Path) => string): string {
  const issue = error.issues[0];
  if (!issue) return `${where(prefix)}: invalid scenario`;
  const path = [...prefix, ...(issue.path as Path)];
  const key = path.length > 0 ? `${path.join('.')}: ` : '';
  return `${where(path)}: ${key}${issue.message}`;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Deep merge, template wins; a workload of another kind replaces the default one whole. */
export function mergeDefaults(defaults: Record<string, unknown>, entry: unknown): unknown {
  if (!isPlainObject(entry)) return entry;
  const out: Record<string, unknown> = { ...defaults };
  for (const [k, v] of Object.entries(entry)) {
    const base = out[k];
    if (k === 'workload' && isPlainObject(base) && isPlainObject(v) && v.kind !== undefined && v.kind !== base.kind) {
      out[k] = v;
    } else if (isPlainObject(base) && isPlainObject(v)) {
      out[k] = mergeDefaults(base, v);
    } else {
      out[k] = v;
    }
  }
  return out;
}
