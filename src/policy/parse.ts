/**
 * Reading one policy file: YAML -> zod-validated PolicyFile, with every problem reported as
 * `file:line:col: message` at the node that caused it (the yaml library keeps source ranges).
 */
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node } from 'yaml';
import { z } from 'zod';
import { PolicyFileSchema, type PolicyFile } from './schema.js';

export interface PolicyIssue {
  file: string;
  line: number;
  col: number;
  message: string;
}

export function formatIssue(issue: PolicyIssue): string {
  return `${issue.file}:${issue.line}:${issue.col}: ${issue.message}`;
}

/** A policy that cannot be used; `issues` holds every problem found, in file order. */
export class PolicyError extends Error {
  constructor(readonly issues: PolicyIssue[]) {
    super(issues.map(formatIssue).join('\n'));
    this.name = 'PolicyError';
  }
}

/** A parsed file and a way to point at any of its keys. */
export interface ParsedFile {
  fileName: string;
  file: PolicyFile;
  /** Where the value at `path` is (or its key, or the nearest enclosing node that exists). */
  locate(path: readonly PropertyKey[], at?: 'key' | 'value'): { line: number; col: number };
}

/** Files larger than this are refused: a policy is a page of YAML, not a data set. */
const MAX_POLICY_BYTES = 1024 * 1024;

export function parsePolicyFile(text: string, fileName: string): ParsedFile {
  if (text.length > MAX_POLICY_BYTES) {
    throw new PolicyError([{ file: fileName, line: 1, col: 1, message: 'policy file is larger than 1 MiB' }]);
  }
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const at = (offset: number) => lineCounter.linePos(offset);
  if (doc.errors.length > 0) {
    throw new PolicyError(
      doc.errors.map((e) => ({ file: fileName, ...at(e.pos[0]), message: yamlMessage(e.code, e.message) })),
    );
  }
  const locate = (path: readonly PropertyKey[], which: 'key' | 'value' = 'value') => {
    const found = findNode(doc, path);
    const node = which === 'key' ? (found.key ?? found.node) : (found.node ?? found.key);
    return node?.range ? at(node.range[0]) : { line: 1, col: 1 };
  };
  const raw: unknown = doc.toJS({ maxAliasCount: 100 }) ?? {};
  const result = PolicyFileSchema.safeParse(raw, { reportInput: true });
  if (!result.success) {
    throw new PolicyError(sortIssues(zodIssues(result.error, fileName, locate)));
  }
  return { fileName, file: result.data, locate };
}

function yamlMessage(code: string, message: string): string {
  if (code === 'DUPLICATE_KEY') return 'duplicate key (each key may appear once in a mapping)';
  return `YAML: ${message.replace(/\s+/g, ' ').trim()}`;
}

function sortIssues(issues: PolicyIssue[]): PolicyIssue[] {
  return issues.sort((a, b) => a.line - b.line || a.col - b.col);
}

function zodIssues(
  error: z.ZodError,
  file: string,
  locate: ParsedFile['locate'],
): PolicyIssue[] {
  const out: PolicyIssue[] = [];
  for (const issue of error.issues) {
    const where = dotted(issue.path);
    if (issue.code === 'unrecognized_keys') {
      const allowed = keysAt(issue.path);
      for (const key of issue.keys) {
        const hint = suggest(key, allowed);
        const scope = where ? ` in ${where}` : ' at top level';
        const message =
          `unknown key '${key}'${scope}` +
          (hint ? ` (did you mean '${hint}'?)` : allowed.length ? ` (allowed: ${allowed.join(', ')})` : '');
        out.push({ file, ...locate([...issue.path, key], 'key'), message });
      }
      continue;
    }
    let message = issue.message;
    if (issue.code === 'invalid_type') {
      message = `expected ${article(issue.expected)}, not ${received(issue.input)}`;
    } else if (issue.code === 'invalid_value') {
      message = `must be one of ${issue.values.map((v) => String(v)).join(', ')}`;
    }
    out.push({ file, ...locate(issue.path), message: where ? `${where}: ${message}` : message });
  }
  return out;
}

function article(expected: string): string {
  if (expected === 'object') return 'a mapping';
  if (expected === 'array') return 'a list';
  if (expected === 'int') return 'a whole number';
  return /^[aeiou]/.test(expected) ? `an ${expected}` : `a ${expected}`;
}

function received(input: unknown): string {
  if (input === undefined) return 'nothing';
  if (input === null) return 'an empty value';
  if (Array.isArray(input)) return 'a list';
  if (typeof input === 'object') return 'a mapping';
  return `${typeof input} ${JSON.stringify(input)}`;
}

function dotted(path: readonly PropertyKey[]): string {
  return path
    .map((p, i) => (typeof p === 'number' ? `[${p}]` : `${i === 0 ? '' : '.'}${String(p)}`))
    .join('');
}

/** The keys the schema allows at `path`, for "did you mean" hints. */
function keysAt(path: readonly PropertyKey[]): string[] {
  let schema: unknown = PolicyFileSchema;
  for (const seg of path) {
    schema = unwrap(schema);
    if (schema instanceof z.ZodObject) schema = (schema.shape as Record<string, unknown>)[String(seg)];
    else if (schema instanceof z.ZodArray) schema = schema.element;
    else return [];
  }
  schema = unwrap(schema);
  return schema instanceof z.ZodObject ? Object.keys(schema.shape as object) : [];
}

function unwrap(schema: unknown): unknown {
  let s = schema;
  while (s instanceof z.ZodOptional) s = s.unwrap();
  return s;
}

function suggest(key: string, allowed: string[]): string | null {
  let best: string | null = null;
  let bestDistance = 3;
  for (const candidate of allowed) {
    const d = editDistance(key.toLowerCase(), candidate.toLowerCase());
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min((prev[j] ?? 0) + 1, (cur[j - 1] ?? 0) + 1, (prev[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length] ?? 0;
}

function findNode(doc: Document, path: readonly PropertyKey[]): { node: Node | null; key: Node | null } {
  let node: Node | null = (doc.contents as Node | null) ?? null;
  let key: Node | null = null;
  for (const seg of path) {
    if (isMap(node)) {
      const pair = node.items.find((p) => (isScalar(p.key) ? String(p.key.value) : String(p.key)) === String(seg));
      if (!pair) break;
      key = isScalar(pair.key) ? pair.key : null;
      node = (pair.value as Node | null) ?? null;
      if (node === null || (isScalar(node) && node.range === undefined)) {
        node = null;
        break;
      }
    } else if (isSeq(node)) {
      const item = node.items[Number(seg)] as Node | undefined;
      if (!item) break;
      key = null;
      node = item;
    } else {
      break;
    }
  }
  return { node, key };
}
