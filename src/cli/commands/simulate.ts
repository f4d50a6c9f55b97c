/**
 * xenballoonctl simulate --scenario NAME|FILE [--scenario ...] [--seed N] [--policy FILE]
 *                       [--compare peers] [--peer-floor SIZE|PCT] [--json] [--out DIR] [--no-files]
 *
 * Runs a scenario on the simulated host in virtual time, in this process: xenballoond with its
 * policy, and with --compare peers every peer on the same host, guests and workloads. Prints a
 * table per scenario (or, with --json, {"scenario","seed","results":[...]} per scenario, one per
 * line), and writes results and charts under build/sim/<scenario>/.
 */
import { join, resolve } from 'node:path';
import type { PolicyName } from '../../sim/controller.js';
import { availablePolicies, ControllerUnavailable, createController, POLICY_ORDER } from '../../sim/controllers.js';
import { formatTable, type ScenarioReport, writeOutputs } from '../../sim/harness/output.js';
import { type RunOutput, runScenario } from '../../sim/harness/run.js';
import { parsePeerFloor, type PeerFloor } from '../../sim/peers/floor.js';
import { compareHostile, isHostileKind } from '../../sim/hostile-run.js';
import { loadScenario, ScenarioError } from '../../sim/scenario/load.js';
import type { Scenario } from '../../sim/scenario/schema.js';
import { defaultPolicy, formatIssue, loadPolicy, PolicyError } from '../../policy/index.js';
import { parseCommandArgs, printUsage } from '../args.js';
import { UserError } from '../errors.js';
import { Progress } from '../progress.js';

export const summary = 'run a scenario on the simulated host, xenballoond and (--compare peers) the systems it is measured against';

const USAGE = `usage: xenballoonctl simulate --scenario NAME|FILE [--scenario ...] [--seed N] [--policy FILE]
                            [--compare peers] [--peer-floor SIZE|PCT] [--json] [--out DIR] [--no-files]

  --scenario NAME|FILE  a scenario from config/scenarios (e.g. paper-eatmem-2g) or a YAML file; repeatable
  --seed N              random seed (default: the scenario's); the same seed gives the same run
  --policy FILE         xenballoond's policy (default: the shipped config/policy.yaml)
  --compare peers       also run static, selfballoon, selfballoon-kernel, squeezed, qmemman, mom and proxmox
  --peer-floor SIZE|PCT the floor of squeezed (dynamic-min), mom (balloon_min) and proxmox (balloon):
                        a size (128M) or a share of static-max (25%, the default)
  --json                print {"scenario","seed","results":[...]} per scenario (one per line)
  --out DIR             where files go (default build/sim/<scenario>)
  --no-files            write no files`;

export async function run(argv: string[]): Promise<number> {
  const args = parseCommandArgs('simulate', {
    args: argv,
    options: {
      scenario: { type: 'string', multiple: true },
      seed: { type: 'string' },
      policy: { type: 'string' },
      compare: { type: 'string' },
      'peer-floor': { type: 'string' },
      json: { type: 'boolean', default: false },
      out: { type: 'string' },
      'no-files': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    allowPositionals: false,
  });
  const o = args.values;
  if (o.help) return printUsage(USAGE);
  const scenarios = o.scenario ?? [];
  if (scenarios.length === 0) throw new UserError("--scenario is required (e.g. --scenario paper-eatmem-2g); run 'xenballoonctl simulate --help'", 2);
  if (o.compare !== undefined && o.compare !== 'peers') throw new UserError(`--compare takes 'peers', not '${o.compare}'`, 2);
  let seedOverride: number | null = null;
  if (o.seed !== undefined) {
    if (!/^\d+$/.test(o.seed) || Number(o.seed) > 0xffffffff) throw new UserError(`--seed must be a whole number from 0 to 4294967295, not '${o.seed}'`, 2);
    seedOverride = Number(o.seed);
  }
  let peerFloor: PeerFloor | undefined;
  if (o['peer-floor'] !== undefined) {
    try {
      peerFloor = parsePeerFloor(o['peer-floor']);
    } catch (err) {
      throw new UserError((err as Error).message, 2);
    }
  }
  if (o.out !== undefined && scenarios.length > 1) throw new UserError('--out takes one scenario; give it once per run', 2);
  const loaded = scenarios.map((name) => {
    try {
      return loadScenario(name);
    } catch (err) {
      if (err instanceof ScenarioError) throw new UserError(err.message, 1);
      throw err;
    }
  });
  const policies: PolicyName[] = o.compare === 'peers' ? [...POLICY_ORDER] : ['xenballoond'];
  const missing = policies.filter((p) => !availablePolicies().includes(p));
  if (missing.length > 0) throw new UserError(`this build cannot run ${missing.join(', ')}: its controller is not built in`, 1);

  // A run of scale-1000 takes many seconds: say how far it is, on a terminal only.
  const progress = process.stderr.isTTY ? new Progress({ write: (t) => process.stderr.write(t), now: Date.now }) : null;
  for (const scenario of loaded) {
    const seed = seedOverride ?? scenario.seed;
    const runs: RunOutput[] = [];
    for (const policy of policies) {
      let controller;
      try {
        controller = await createController(policy, { policyFile: o.policy ?? null, ...(peerFloor ? { peerFloor } : {}) });
      } catch (err) {
        if (err instanceof ControllerUnavailable) throw new UserError(err.message, 1);
        if (err instanceof PolicyError) {
          const [first] = err.issues;
          const more = err.issues.length > 1 ? ` (and ${err.issues.length - 1} more: run 'xenballoonctl policy check ${o.policy ?? ''}')` : '';
          throw new UserError(`${first ? formatIssue(first) : err.message}${more}`, 1);
        }
        throw err;
      }
      const label = `${scenario.name}, ${policy}`;
      runs.push(runScenario(scenario, controller, {
        seed, timeline: !o['no-files'], ...(progress ? { onProgress: (t: number, total: number) => progress.update(label, t, total) } : {}),
      }));
    }
    progress?.done();
    const report: ScenarioReport = { scenario: scenario.name, seed, results: runs.map((r) => r.result) };
    const files = o['no-files'] ? [] : writeOutputs(resolve(o.out ?? join('build', 'sim', scenario.name)), report, runs);
    // A scenario with hostile guests: each honest guest's target with and without them.
    const honest = hasHostile(scenario) ? honestGuests(scenario, o.policy ?? null, seed) : null;
    if (o.json) {
      process.stdout.write(JSON.stringify(honest ? { ...report, honest_guests: honest } : report) + '\n');
    } else {
      process.stdout.write(`${scenario.name} (seed ${seed}, ${scenario.duration / 60_000} simulated minutes)\n`);
      process.stdout.write(formatTable(report) + '\n');
      if (honest) process.stdout.write(formatHonest(honest) + '\n');
      if (files.length > 0) process.stdout.write(`charts and data: ${resolve(o.out ?? join('build', 'sim', scenario.name))}/\n`);
      process.stdout.write('\n');
    }
  }
  return 0;
}

interface HonestRow {
  name: string;
  /** Median target over the run's second half, with and without the hostile guests (KiB). */
  with_target_kib: number;
  without_target_kib: number;
  /** The core's need and fair share for it at the end of the run with them. */
  need_kib: number | null;
  fair_share_kib: number | null;
}

function hasHostile(s: Scenario): boolean {
  return [...s.fleet, ...s.guests].some((t) => isHostileKind(t.workload.kind));
}

function median(xs: number[]): number {
  const a = [...xs].sort((x, y) => x - y);
  return a[Math.floor(a.length / 2)] ?? 0;
}

function honestGuests(scenario: Scenario, policyFile: string | null, seed: number): HonestRow[] {
  const policy = policyFile === null ? defaultPolicy() : loadPolicy(policyFile);
  const c = compareHostile(scenario, policy, seed);
  const half = (xs: number[]) => median(xs.slice(Math.floor(xs.length / 2)));
  return c.withHostile.map((s) => ({
    name: s.name,
    with_target_kib: half(s.targetsKib),
    without_target_kib: half(c.withoutHostile.find((x) => x.name === s.name)?.targetsKib ?? []),
    need_kib: s.needKib.at(-1) ?? null,
    fair_share_kib: s.fairKib.at(-1) ?? null,
  }));
}

function formatHonest(rows: HonestRow[]): string {
  const m = (k: number | null) => (k === null ? '-' : `${Math.round(k / 1024)}M`);
  const lines = ['honest guest   target with hostile   without   need   fair share'];
  for (const r of rows) {
    lines.push(`${r.name.padEnd(14)} ${m(r.with_target_kib).padStart(19)} ${m(r.without_target_kib).padStart(9)} ${m(r.need_kib).padStart(6)} ${m(r.fair_share_kib).padStart(12)}`);
  }
  return lines.join('\n');
}
