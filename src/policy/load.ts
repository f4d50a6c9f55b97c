/**
 * From files to a Policy: the main file, then `policy.d/*.yaml` beside it in name order (config
 * management drops files there). Scalars and nested settings of later files override earlier
 * ones key by key; `domains` rules are appended, so a later rule overrides an earlier one for
 * the domains both match.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { packagePath } from '../paths.js';
import { BUILTIN_HOST, BUILTIN_INTERVAL_MS, BUILTIN_SETTINGS } from './defaults.js';
import { parsePolicyFile, PolicyError, type ParsedFile, type PolicyIssue } from './parse.js';
import { mergeSettings } from './merge.js';
import { minAboveMax, type Policy } from './schema.js';

export { mergeSettings };

/** Merge parsed files (in order) over the built-in defaults, checking what only the merge shows. */
export function buildPolicy(files: readonly ParsedFile[]): Policy {
  let host = { ...BUILTIN_HOST };
  let intervalMs = BUILTIN_INTERVAL_MS;
  let defaults = BUILTIN_SETTINGS;
  const rules: Policy['rules'] = [];
  const issues: PolicyIssue[] = [];
  // Where defaults.min / defaults.max were last set, to point at the right line on a conflict.
  let minFrom: ParsedFile | null = null;
  let maxFrom: ParsedFile | null = null;

  for (const parsed of files) {
    const f = parsed.file;
    if (f.host) host = { ...host, ...f.host };
    if (f.interval !== undefined) intervalMs = f.interval;
    if (f.defaults) {
      defaults = mergeSettings(defaults, f.defaults);
      if (f.defaults.min) minFrom = parsed;
      if (f.defaults.max) maxFrom = parsed;
    }
  }
  const conflict = minAboveMax(defaults.min, defaults.max);
  if (conflict) {
    const laterIsMax = maxFrom !== null && (minFrom === null || files.indexOf(maxFrom) >= files.indexOf(minFrom));
    const where = laterIsMax ? maxFrom : minFrom;
    if (where) {
      const key = laterIsMax ? 'max' : 'min';
      issues.push({ file: where.fileName, ...where.locate(['defaults', key]), message: `defaults.${key}: ${conflict}` });
    }
  }
  for (const parsed of files) {
    (parsed.file.domains ?? []).forEach((rule, i) => {
      rules.push(rule);
      if (rule.min && rule.max) return; // checked within the rule by the schema
      const message = minAboveMax(rule.min ?? defaults.min, rule.max ?? defaults.max);
      if (message) {
        const key = rule.min ? 'min' : 'max';
        issues.push({
          file: parsed.fileName,
          ...parsed.locate(['domains', i, key]),
          message: `domains[${i}].${key}: ${message} (from defaults)`,
        });
      }
    });
  }
  if (issues.length > 0) throw new PolicyError(issues);
  return { sources: files.map((f) => f.fileName), host, intervalMs, defaults, rules };
}

/** One file's text as a complete policy (built-in defaults for everything it leaves out). */
export function parsePolicy(text: string, fileName: string): Policy {
  return buildPolicy([parsePolicyFile(text, fileName)]);
}

/** Files a policy path stands for: the file itself and its sibling policy.d/*.yaml, in order. */
export function policyFiles(pathOrDir: string): string[] {
  let main = pathOrDir;
  if (isDirectory(pathOrDir)) main = join(pathOrDir, 'policy.yaml');
  if (!existsSync(main)) throw new PolicyError([{ file: main, line: 1, col: 1, message: 'no such policy file' }]);
  const dropInDir = join(dirname(main), 'policy.d');
  const dropIns = isDirectory(dropInDir)
    ? readdirSync(dropInDir)
        .filter((n) => /\.ya?ml$/.test(n) && !n.startsWith('.'))
        .sort()
        .map((n) => join(dropInDir, n))
    : [];
  return [main, ...dropIns];
}

/**
 * Load a policy: a file plus its sibling `policy.d/`, or a directory holding `policy.yaml` and
 * `policy.d/`. Throws PolicyError listing every problem in every file (file:line:col: message).
 */
export function loadPolicy(pathOrDir: string): Policy {
  const parsed: ParsedFile[] = [];
  const issues: PolicyIssue[] = [];
  for (const file of policyFiles(pathOrDir)) {
    try {
      parsed.push(parsePolicyFile(readText(file), file));
    } catch (err) {
      if (err instanceof PolicyError) issues.push(...err.issues);
      else throw err;
    }
  }
  if (issues.length > 0) throw new PolicyError(issues);
  return buildPolicy(parsed);
}

function readText(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    throw new PolicyError([{ file, line: 1, col: 1, message: `cannot read (${code})` }]);
  }
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/** Path of the shipped default policy (config/policy.yaml in the package). */
export const DEFAULT_POLICY_PATH = packagePath('config', 'policy.yaml');

/** The built-in defaults alone (what an empty policy file means). */
export function builtinPolicy(): Policy {
  return buildPolicy([]);
}

/** The shipped config/policy.yaml (the same values as the built-in defaults, with comments). */
export function defaultPolicy(): Policy {
  if (!existsSync(DEFAULT_POLICY_PATH)) return { ...builtinPolicy(), sources: ['(built-in)'] };
  return parsePolicy(readText(DEFAULT_POLICY_PATH), DEFAULT_POLICY_PATH);
}
