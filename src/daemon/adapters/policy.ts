/**
 * Loading the daemon's policy: the given file or directory (plus its policy.d/), or, when the
 * default path does not exist, the shipped default. Errors become one UserError line that names
 * the first problem as file:line:col (the CLI's rule), with a pointer to `policy check` for all.
 */
import { existsSync } from 'node:fs';
import { EXIT, UserError } from '../../cli/errors.js';
import { defaultPolicy, formatIssue, loadPolicy, PolicyError, type Policy } from '../../policy/index.js';

export interface PolicySource {
  policy: Policy;
  files: string[];
  /** True when the default path was absent and the shipped default is in use. */
  builtin: boolean;
}

/** The policy, or a PolicyError as one line: `bad policy: FILE:LINE:COL: message (and N more…)`. */
export function policyErrorLine(err: PolicyError, path: string): string {
  const [first, ...rest] = err.issues;
  const head = first ? formatIssue(first) : err.message;
  const more = rest.length ? ` (and ${rest.length} more; run \`xenballoonctl policy check ${path}\` for all)` : '';
  return `bad policy: ${head}${more}`;
}

export function loadPolicySource(path: string, isDefaultPath: boolean): PolicySource {
  if (isDefaultPath && !existsSync(path)) {
    const policy = defaultPolicy();
    return { policy, files: [...policy.sources], builtin: true };
  }
  try {
    const policy = loadPolicy(path);
    return { policy, files: [...policy.sources], builtin: false };
  } catch (err) {
    if (err instanceof PolicyError) throw new UserError(policyErrorLine(err, path), EXIT.CONFIG);
    throw err;
  }
}
