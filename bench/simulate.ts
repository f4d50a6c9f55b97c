/**
 * `make bench`: runs `xenballoonctl simulate --compare peers --json` on every shipped scenario,
 * times an hour of scale-1000 with xenballoond alone, checks the issue's goals, and records the
 * tables in docs/benchmarks.md (its own section, between markers; other sections are left as
 * they are). A benchmark, not a test: it prints numbers and asserts nothing. Wall times depend
 * on the machine and its load.
 *
 *   node build/bench/bench/simulate.js [--seeds 1-5] [--scenarios a,b]    (make bench BENCH_SEEDS=1-5)
 *
 * With several seeds the first one gets the full tables, and every seed a row in a summary per
 * scenario; the goals are checked on each seed.
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { formatTable, type ScenarioReport } from '../src/sim/harness/output.js';
import type { RunResult } from '../src/sim/harness/run.js';

// Built to build/bench/bench/simulate.js; the CLI it runs is the one `make build` put in dist/.
const root = new URL('../../../', import.meta.url);
const ctl = fileURLToPath(new URL('dist/cli/xenballoonctl.js', root));
const docPath = fileURLToPath(new URL('docs/benchmarks.md', root));
const scenarioDir = fileURLToPath(new URL('config/scenarios/', root));
const chartDir = fileURLToPath(new URL('docs/charts/', root));

/** The first seed's policy comparison chart, kept beside the docs; returns its link, or ''. */
function keepChart(name: string): string {
  const src = fileURLToPath(new URL(`build/sim/${name}/compare.svg`, root));
  if (!existsSync(src)) return '';
  mkdirSync(chartDir, { recursive: true });
  copyFileSync(src, `${chartDir}${name}-compare.svg`);
  return `Chart: [charts/${name}-compare.svg](charts/${name}-compare.svg).\n\n`;
}

function builtinScenarioNames(): string[] {
  return readdirSync(scenarioDir).filter((f) => f.endsWith('.yaml')).map((f) => f.slice(0, -5)).sort();
}
const BEGIN = '<!-- BEGIN simulate (make bench; generated, edits are overwritten) -->';
const END = '<!-- END simulate -->';
const ORDER = ['paper-eatmem-2g', 'paper-eatmem-4g', 'paper-eatmem-big-4g', 'paper-eatmem-busy-2g', 'paper-eatmem-noswap-2g', 'paper-idle-2g', 'mixed-64g', 'scale-1000'];
/** The peers' floors swept on paper-eatmem-2g (first seed): `simulate --peer-floor`. */
const FLOOR_SWEEP = ['64M', '128M', '25%', '50%', '512M'];
const FLOORED = ['squeezed', 'mom', 'proxmox'];

/**
 * Issue 12's rule 4, on one scenario and seed: xenballoond OOM-kills nobody; it admits at least
 * as many guests as any peer that OOM-kills nobody; and at equal admissions it spends no more
 * guest-minutes under pressure than that peer. Returns the verdict and every peer it loses to.
 */
export function rule4(report: ScenarioReport): { holds: boolean; text: string } {
  const ours = report.results.find((r) => r.policy === 'xenballoond');
  if (!ours) return { holds: false, text: 'no xenballoond run' };
  const losses: string[] = [];
  if (ours.oom_kills > 0) losses.push(`xenballoond OOM-kills ${ours.oom_kills}`);
  for (const p of report.results) {
    if (p.policy === 'xenballoond' || p.oom_kills > 0) continue;
    if (p.admitted > ours.admitted) losses.push(`${p.policy} admits ${p.admitted} > ${ours.admitted}`);
    else if (p.admitted === ours.admitted && p.pressure_guest_minutes < ours.pressure_guest_minutes) {
      losses.push(`${p.policy} at ${p.admitted} guests: ${p.pressure_guest_minutes} < ${ours.pressure_guest_minutes} pressure guest-min`);
    }
  }
  return losses.length === 0 ? { holds: true, text: 'rule 4 holds' } : { holds: false, text: `rule 4 **fails**: ${losses.join('; ')}` };
}

function simulate(args: string[]): { reports: ScenarioReport[]; wallS: number } {
  const t0 = performance.now();
  const out = execFileSync(process.execPath, [ctl, 'simulate', ...args, '--json'], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  const wallS = (performance.now() - t0) / 1000;
  return { reports: out.trim().split('\n').map((l) => JSON.parse(l) as ScenarioReport), wallS };
}

/** Seeds from "1-5", "1,3,7" or "2". */
function parseSeeds(text: string): number[] {
  const out: number[] = [];
  for (const part of text.split(',')) {
    const m = /^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$/.exec(part);
    if (!m) throw new Error(`--seeds: '${part}' is not a seed or a range like 1-5`);
    const a = Number(m[1]);
    const b = m[2] !== undefined ? Number(m[2]) : a;
    for (let x = a; x <= b; x++) out.push(x);
  }
  return out;
}

interface GoalCheck {
  text: string;
  /** Per seed: the measured value and whether it meets the goal. */
  perSeed: Map<number, { value: string; ok: boolean }>;
}

function checkGoals(bySeed: Map<number, Map<string, ScenarioReport>>, scaleWallS: Map<number, number>): GoalCheck[] {
  const checks: GoalCheck[] = [];
  const goal = (text: string) => {
    const g: GoalCheck = { text, perSeed: new Map() };
    checks.push(g);
    return g;
  };
  const eatAdmit = goal('paper-eatmem-2g: xenballoond admits ≥ 7 (static 3)');
  const eatOom = goal('paper-eatmem-2g: 0 OOM kills');
  const eatPeers = goal('paper-eatmem-2g: admits at least as many as any peer');
  const eatSwap = goal('paper-eatmem-2g: swap-in ≤ half the best peer admitting as many');
  const idle = goal('paper-idle-2g: xenballoond admits ≥ 14');
  const scaleWall = goal('scale-1000: one simulated hour with xenballoond alone in < 60 s of wall time');
  const scaleSwap = goal('scale-1000: swap-in ≤ qmemman\'s, admitting as many, 0 OOM kills');
  const mixed = goal('mixed-64g: admits more than 15 with 0 OOM kills');
  for (const [seed, reports] of bySeed) {
    const eat = reports.get('paper-eatmem-2g');
    const ours = eat?.results.find((r) => r.policy === 'xenballoond');
    if (eat && ours) {
      const peers = eat.results.filter((r) => r.policy !== 'xenballoond');
      const best = Math.max(...peers.map((r) => r.admitted));
      const asMany = peers.filter((r) => r.admitted >= ours.admitted);
      const bestSwap = asMany.length > 0 ? Math.min(...asMany.map((r) => r.swap_in_mib)) : null;
      eatAdmit.perSeed.set(seed, { value: String(ours.admitted), ok: ours.admitted >= 7 });
      eatOom.perSeed.set(seed, { value: String(ours.oom_kills), ok: ours.oom_kills === 0 });
      eatPeers.perSeed.set(seed, { value: `${ours.admitted} vs ${best}`, ok: ours.admitted >= best });
      eatSwap.perSeed.set(seed, bestSwap === null
        ? { value: `${ours.swap_in_mib} MiB, no peer admits as many`, ok: true }
        : { value: `${ours.swap_in_mib} vs ${bestSwap} MiB`, ok: ours.swap_in_mib <= bestSwap / 2 });
    }
    const idleOurs = reports.get('paper-idle-2g')?.results.find((r) => r.policy === 'xenballoond');
    if (idleOurs) idle.perSeed.set(seed, { value: String(idleOurs.admitted), ok: idleOurs.admitted >= 14 });
    const wall = scaleWallS.get(seed);
    if (wall !== undefined) scaleWall.perSeed.set(seed, { value: `${wall.toFixed(1)} s`, ok: wall < 60 });
    const scale = reports.get('scale-1000');
    const sOurs = scale?.results.find((r) => r.policy === 'xenballoond');
    const sQ = scale?.results.find((r) => r.policy === 'qmemman');
    if (sOurs && sQ) {
      scaleSwap.perSeed.set(seed, {
        value: `${Math.round(sOurs.swap_in_mib)} vs ${Math.round(sQ.swap_in_mib)} MiB`,
        ok: sOurs.swap_in_mib <= sQ.swap_in_mib && sOurs.admitted >= sQ.admitted && sOurs.oom_kills === 0,
      });
    }
    const mOurs = reports.get('mixed-64g')?.results.find((r) => r.policy === 'xenballoond');
    if (mOurs) mixed.perSeed.set(seed, { value: `${mOurs.admitted}, ${mOurs.oom_kills} OOM`, ok: mOurs.admitted > 15 && mOurs.oom_kills === 0 });
  }
  return checks.filter((c) => c.perSeed.size > 0);
}

function goalLines(checks: GoalCheck[]): string[] {
  return checks.map((c) => {
    const seeds = [...c.perSeed.keys()];
    const missed = seeds.filter((s) => !c.perSeed.get(s)?.ok);
    const values = seeds.map((s) => c.perSeed.get(s)?.value ?? '?');
    const label = seeds.length === 1 ? `seed ${seeds[0]}` : `seeds ${seeds.join(', ')}`;
    const verdict = missed.length === 0 ? 'met' : `**missed** (seed${missed.length > 1 ? 's' : ''} ${missed.join(', ')})`;
    return `- ${c.text}: ${verdict}; ${label}: ${values.join(' / ')}`;
  });
}

/** One row per policy: a metric on every seed, `a / b / c`. */
function seedSummary(name: string, perSeed: Map<number, ScenarioReport>): string {
  const seeds = [...perSeed.keys()];
  const first = perSeed.get(seeds[0] ?? 1);
  if (!first) return '';
  const head = ['policy', 'admitted', 'OOM kills', 'swap-in MiB', 'pressure guest-min', 'stall-full guest-min', 'work M'];
  const rows = first.results.map((r0) => {
    const of = (f: (r: RunResult) => number) =>
      seeds.map((s) => {
        const r = perSeed.get(s)?.results.find((x) => x.policy === r0.policy);
        return r ? String(Math.round(f(r) * 10) / 10) : '?';
      }).join(' / ');
    return [r0.policy, of((r) => r.admitted), of((r) => r.oom_kills), of((r) => Math.round(r.swap_in_mib)), of((r) => r.pressure_guest_minutes),
      of((r) => r.stall_full_guest_minutes), of((r) => Math.round(r.work_done / 1e5) / 10)];
  });
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  return [
    `#### ${name}, seeds ${seeds.join(', ')}`,
    '',
    line(head),
    line(head.map((_, i) => (i === 0 ? ':--' : '--:'))),
    ...rows.map(line),
    '',
  ].join('\n');
}

function extraColumns(r: RunResult): string {
  return `${r.policy}: swap-out ${r.swap_out_mib} MiB, stalled ${r.stall_guest_minutes} guest-min, host free ${r.host_free_mib} MiB, peak ${r.peak_guests} guests${r.launch_stopped ? `; launching stopped: ${r.launch_stopped}` : ''}`;
}

/** paper-eatmem-2g at each floor of FLOOR_SWEEP: admissions and pressure of the floored peers. */
function floorSweep(seed: number): string[] {
  const rows: string[] = [];
  let ours: RunResult | undefined;
  for (const floor of FLOOR_SWEEP) {
    process.stderr.write(`bench: paper-eatmem-2g --seed ${seed} --peer-floor ${floor} ...\n`);
    const { reports: [report] } = simulate(['--scenario', 'paper-eatmem-2g', '--seed', String(seed), '--compare', 'peers', '--peer-floor', floor, '--no-files']);
    if (!report) continue;
    ours ??= report.results.find((r) => r.policy === 'xenballoond');
    const cells = FLOORED.map((p) => {
      const r = report.results.find((x) => x.policy === p);
      return r ? `${r.admitted} / ${r.pressure_guest_minutes} / ${r.oom_kills}` : '?';
    });
    rows.push(`| ${floor} | ${cells.join(' | ')} |`);
  }
  const text = [
    `### Peers' floor swept (paper-eatmem-2g, seed ${seed}; \`simulate --peer-floor F\`)`,
    '',
    'Each cell: guests admitted / pressure guest-minutes / OOM kills. `25%` of static-max (256M here)',
    'is the protocol\'s setting; `512M` = memory=, the floor earlier tables used.',
    ours ? `xenballoond on the same run (its policy has no such floor): ${ours.admitted} / ${ours.pressure_guest_minutes} / ${ours.oom_kills}.` : '',
    '',
    `| floor | ${FLOORED.join(' | ')} |`,
    `| :-- | ${FLOORED.map(() => '--:').join(' | ')} |`,
    ...rows,
    '',
  ];
  process.stdout.write(`\n${text.join('\n')}\n`);
  return text;
}

function main(): void {
  const { values } = parseArgs({ options: { seeds: { type: 'string', default: '1' }, scenarios: { type: 'string' } } });
  const seeds = parseSeeds(values.seeds ?? '1');
  const firstSeed = seeds[0] ?? 1;
  const all = [...ORDER.filter((n) => builtinScenarioNames().includes(n)), ...builtinScenarioNames().filter((n) => !ORDER.includes(n))];
  const only = values.scenarios?.split(',').map((x) => x.trim());
  const names = only ? all.filter((n) => only.includes(n)) : all;
  const bySeed = new Map<number, Map<string, ScenarioReport>>();
  const byScenario = new Map<string, Map<number, ScenarioReport>>();
  const scaleWallS = new Map<number, number>();
  const sections: string[] = [];
  const rule4Rows: string[] = [];
  for (const seed of seeds) {
    const reports = new Map<string, ScenarioReport>();
    bySeed.set(seed, reports);
    for (const name of names) {
      process.stderr.write(`bench: ${name} --seed ${seed} --compare peers ...\n`);
      const out = fileURLToPath(new URL(`build/sim/${name}`, root));
      const { reports: [report], wallS } = simulate(['--scenario', name, '--seed', String(seed), '--compare', 'peers', ...(seed === firstSeed ? ['--out', out] : ['--no-files'])]);
      if (!report) continue;
      reports.set(name, report);
      if (!byScenario.has(name)) byScenario.set(name, new Map());
      byScenario.get(name)?.set(seed, report);
      const verdict = rule4(report);
      rule4Rows.push(`| ${name} | ${seed} | ${verdict.holds ? 'holds' : verdict.text.replace('rule 4 **fails**: ', '**fails**: ')} |`);
      process.stdout.write(`\n${name} (seed ${report.seed}; ${wallS.toFixed(1)} s wall for ${report.results.length} runs)\n${formatTable(report)}\n${verdict.text.replace(/\*\*/g, '')}\n`);
      if (seed !== firstSeed) continue;
      const table = formatTable(report, true);
      sections.push(`### ${name} (seed ${report.seed})\n\n${table}\n\n${verdict.text}.\n\n${keepChart(name)}<details><summary>more numbers</summary>\n\n${report.results.map((r) => `- ${extraColumns(r)}`).join('\n')}\n\n</details>\n\nWall time for the ${report.results.length} runs: ${wallS.toFixed(1)} s.\n`);
    }
    if (!names.includes('scale-1000')) continue;
    process.stderr.write(`bench: scale-1000 --seed ${seed}, xenballoond alone, timed ...\n`);
    scaleWallS.set(seed, simulate(['--scenario', 'scale-1000', '--seed', String(seed), '--no-files']).wallS);
  }
  const sweep = names.includes('paper-eatmem-2g') ? floorSweep(firstSeed) : [];
  const lines = goalLines(checkGoals(bySeed, scaleWallS));
  process.stdout.write(`\ngoals:\n${lines.join('\n')}\n`);
  const summaries = seeds.length > 1 ? [...byScenario].map(([name, perSeed]) => seedSummary(name, perSeed)) : [];

  const when = new Date().toISOString().slice(0, 10);
  const body = [
    BEGIN,
    '## Simulator: xenballoond and its peers on the same simulated hosts',
    '',
    `Measured ${when} on ${cpus().length} cores shared with other work (wall times are indicative only).`,
    'Each table is `xenballoonctl simulate --scenario NAME --compare peers` (virtual time, seed as shown;',
    'the same seed gives the same numbers on any machine). Columns: guests admitted by the launcher,',
    'OOM kills, swap-in, guest-minutes with PSI some avg10 ≥ 10 % ("pressure"), guest-minutes with all',
    'tasks stalled (PSI full total), swap-out, work done (millions of eatmem page writes), mean memory',
    'guests hold without using it (free + cold cache, summed over guests), memory/target writes per',
    'minute, and the wait from a guest\'s first launch request to the answer (p50/p99; 60 = given up).',
    'Model and metrics: docs/simulator.md. `--json` also gives `admit_s`, each guest\'s time to admission.',
    '',
    'Protocol (docs/peers.md, "The protocol"): every peer at its documented or supported setting —',
    'squeezed, MOM and Proxmox with the same floor, static-max / 4 (XenServer\'s lowest supported',
    'dynamic-min; MOM and Proxmox are "algorithm run on Xen"), qmemman, selfballoon (2008 script) and',
    'selfballoon-kernel (Linux xen-selfballoon.c) stock; one launcher rule for all: launch when the',
    'controller\'s own API says the next guest fits, ask again every 10 s after a refusal, give a guest',
    'up 60 s after its first request and stop launching (xenballoond\'s reservation times out at 60 s).',
    'The guest model can fail: eatmem re-writes its chunk (swap-in), OOM kills when RAM + swap cannot',
    'hold an allocation, swap bounded by the swap disk\'s rate (docs/simulator.md).',
    '',
    '### Rule 4 (issue 12), per scenario and seed',
    '',
    'Rule 4: xenballoond OOM-kills nobody, admits at least as many guests as any peer that OOM-kills',
    'nobody, and at equal admissions spends no more guest-minutes under pressure than that peer.',
    '',
    '| scenario | seed | rule 4 |',
    '| :-- | --: | :-- |',
    ...rule4Rows,
    '',
    ...(sweep.length > 0 ? sweep : []),
    `### Goals (issue 6, and the tuning goals), seed${seeds.length > 1 ? 's' : ''} ${seeds.join(', ')}`,
    '',
    ...lines,
    '',
    ...(summaries.length > 0
      ? [`### Every seed (${seeds.join(', ')}): values per seed, in that order`, '', ...summaries]
      : []),
    ...sections,
    END,
  ].join('\n');
  const old = existsSync(docPath) ? readFileSync(docPath, 'utf8') : '# Benchmarks\n\nNumbers measured on this project\'s machines; each section says how to reproduce it.\n';
  const start = old.indexOf(BEGIN);
  const stop = old.indexOf(END);
  const next = start >= 0 && stop > start
    ? old.slice(0, start) + body + old.slice(stop + END.length)
    : `${old.trimEnd()}\n\n${body}\n`;
  writeFileSync(docPath, next);
  process.stdout.write(`\nrecorded in ${docPath}\n`);
}

main();
