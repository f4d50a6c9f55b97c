/**
 * `xenballoonctl plan SNAPSHOT.json [--policy FILE] [--json] [--settle]`: what the core would do
 * for a host written down as a snapshot (docs/snapshot.md). No I/O besides reading the files.
 */
import { existsSync, readFileSync } from 'node:fs';
import type { Explanation, StepResult } from '../../core/index.js';
import { observationFromSnapshot, SnapshotSchema } from '../../core/snapshot.js';
import type { Observation } from '../../core/types.js';
import { once, runUntil } from '../../plan/settle.js';
import { defaultPolicy, formatKib, loadPolicy, PolicyError, type Policy } from '../../policy/index.js';
import { parseCommandArgs, printUsage } from '../args.js';
import { UserError } from '../errors.js';
import { snakeKeys } from '../json.js';

export const summary = 'show the targets xenballoond would set for a host snapshot (JSON)';

const INSTALLED_POLICY = '/etc/xenballoond/policy.yaml';

const USAGE = `usage: xenballoonctl plan SNAPSHOT.json [--policy FILE] [--json] [--settle]

Runs xenballoond's decision core once on a host written down as JSON (format: docs/snapshot.md)
and prints each domain's new target, where it is heading and why.
  --policy FILE  policy to plan with (default: ${INSTALLED_POLICY} if present, else the shipped one)
  --json         machine-readable output: {"domains":[{"domid":N,"target_kib":N,...}],...}
  --settle       assume guests reach their targets at once and repeat until nothing changes:
                 the targets the host settles at (rate limits make that take several steps)`;

interface Plan {
  result: StepResult;
  steps: number;
  settleMs: number | null;
  observation: Observation;
}

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs('plan', {
    args: argv,
    options: {
      policy: { type: 'string' },
      json: { type: 'boolean' },
      settle: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    allowPositionals: true,
    strict: true,
  });
  if (values.help) return printUsage(USAGE);
  if (positionals.length !== 1) throw new UserError("plan: give one SNAPSHOT.json; run 'xenballoonctl plan --help'", 2);
  const file = positionals[0] as string;
  const policy = readPolicy(values.policy);
  const snapshot = readSnapshot(file);
  const { observation, nowMs, rejected } = observationFromSnapshot(snapshot);
  for (const r of rejected) process.stderr.write(`plan: dom${r.domid} (${r.name}): report ignored, as the daemon would: ${r.reason}\n`);
  const plan = values.settle ? settle(observation, policy, nowMs) : { ...once(observation, policy, nowMs), settleMs: null };
  if (values.json) {
    process.stdout.write(JSON.stringify(toJson(plan, policy)) + '\n');
  } else {
    process.stdout.write(table(plan, policy));
  }
  return 0;
}

export function readPolicy(path: string | undefined): Policy {
  try {
    if (path !== undefined) return loadPolicy(path);
    return existsSync(INSTALLED_POLICY) ? loadPolicy(INSTALLED_POLICY) : defaultPolicy();
  } catch (err) {
    if (err instanceof PolicyError) {
      const more = err.issues.length > 1 ? ` (and ${err.issues.length - 1} more; run 'xenballoonctl policy check')` : '';
      throw new UserError(`invalid policy: ${err.message.split('\n')[0]}${more}`, 1);
    }
    throw err;
  }
}

export function readSnapshot(file: string) {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new UserError(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`, 1);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new UserError(`${file}: not JSON: ${(err as Error).message}`, 1);
  }
  const result = SnapshotSchema.safeParse(json);
  if (!result.success) {
    const issue = result.error.issues[0];
    const where = issue?.path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('').replace(/^\./, '') ?? '';
    const more = result.error.issues.length > 1 ? ` (and ${result.error.issues.length - 1} more)` : '';
    throw new UserError(`${file}: ${where ? `${where}: ` : ''}${issue?.message ?? 'invalid snapshot'}${more}; see docs/snapshot.md`, 1);
  }
  return result.data;
}

function settle(start: Observation, policy: Policy, nowMs: number): Plan {
  const r = runUntil(start, policy, nowMs);
  return { result: r.result, steps: r.steps, settleMs: r.elapsedMs, observation: r.observation };
}

function toJson(plan: Plan, policy: Policy): unknown {
  const e = plan.result.explanation;
  return {
    policy: policy.sources,
    steps: plan.steps,
    settle_ms: plan.settleMs,
    host: snakeKeys(e.host),
    domains: e.domains.map((d) => {
      const { targetKib, newTargetKib, ...rest } = d;
      return {
        domid: d.domid,
        name: d.name,
        // The target the core sets now (unchanged ones included); for unmanaged domains, theirs.
        target_kib: newTargetKib ?? targetKib ?? d.currentKib,
        observed_target_kib: targetKib,
        ...(snakeKeys(rest) as object),
      };
    }),
    reservations: snakeKeys(e.reservations),
    actions: plan.result.actions,
  };
}

function table(plan: Plan, policy: Policy): string {
  const e: Explanation = plan.result.explanation;
  const h = e.host;
  const mib = (kib: number | null) => (kib === null ? '-' : formatKib(kib));
  const lines: string[] = [];
  lines.push(`policy: ${policy.sources.join(', ') || '(built-in defaults)'}`);
  if (plan.settleMs !== null) lines.push(`settled after ${plan.steps} step(s), ${plan.settleMs / 1000} s`);
  lines.push(
    `host: total ${formatKib(h.totalKib)}, free ${formatKib(h.freeKib)}, reserve ${formatKib(h.reserveKib)}, ` +
      `reserved ${formatKib(h.reservedKib)}, budget ${formatKib(h.budgetKib)}, needs ${formatKib(h.needsKib)}` +
      (h.shortKib > 0 ? `, short ${formatKib(h.shortKib)}` : '') +
      (h.overcommitted ? ' (OVERCOMMITTED: the minimums do not fit)' : ''),
  );
  const rows = [['DOMID', 'NAME', 'CUR', 'TARGET', 'NEW', 'DESIRED', 'NEED', 'MIN', 'MAX', 'W', 'BOUND', 'LIMIT', 'FLAGS']];
  for (const d of e.domains) {
    rows.push([
      String(d.domid),
      d.name,
      mib(d.currentKib),
      mib(d.targetKib),
      mib(d.newTargetKib),
      mib(d.desiredKib),
      mib(d.needKib),
      mib(d.minKib),
      mib(d.maxKib),
      d.weight === null ? '-' : String(d.weight),
      d.managed ? d.bound : `unmanaged:${d.unmanagedReason}`,
      d.limiter === 'none' ? '-' : d.limiter,
      d.flags.join(',') || '-',
    ]);
  }
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? [];
  for (const r of rows) lines.push(r.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd());
  for (const r of e.reservations) lines.push(`reservation ${r.id} (${formatKib(r.kib)}): ${r.state}${r.reason ? ` — ${r.reason}` : ''}`);
  return lines.join('\n') + '\n';
}
