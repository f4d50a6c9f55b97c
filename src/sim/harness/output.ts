/**
 * What `simulate` shows and keeps: a table per scenario (a row per policy) for people, the JSON
 * shape DESIGN.md fixes for machines, and files under build/sim/<scenario>/ — results as JSON
 * and CSV, each policy's timeline as CSV and as an SVG chart.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { formatKib } from '../../policy/units.js';
import type { RunOutput, RunResult } from './run.js';
import { compareSvg } from './compare-svg.js';
import { timelineSvg } from './svg.js';

export interface ScenarioReport {
  scenario: string;
  seed: number;
  results: RunResult[];
}

const COLUMNS: [string, (r: RunResult) => string][] = [
  ['policy', (r) => r.policy],
  ['admitted', (r) => String(r.admitted)],
  ['OOM kills', (r) => String(r.oom_kills)],
  ['swap-in', (r) => formatKib(Math.round(r.swap_in_mib * 1024))],
  ['pressure guest-min', (r) => r.pressure_guest_minutes.toFixed(1)],
  ['stall-full guest-min', (r) => r.stall_full_guest_minutes.toFixed(1)],
  ['swap-out', (r) => formatKib(Math.round(r.swap_out_mib * 1024))],
  ['work M', (r) => (r.work_done / 1e6).toFixed(1)],
  ['idle', (r) => formatKib(Math.round(r.idle_mib * 1024))],
  ['targets/min', (r) => r.targets_per_min.toFixed(1)],
  ['wait p50 s', (r) => (r.reservation_wait_p50_s === null ? '-' : r.reservation_wait_p50_s.toFixed(1))],
  ['wait p99 s', (r) => (r.reservation_wait_p99_s === null ? '-' : r.reservation_wait_p99_s.toFixed(1))],
];

/** A plain-text table (also valid Markdown when `markdown` is set). */
export function formatTable(report: ScenarioReport, markdown = false): string {
  const rows = report.results.map((r) => COLUMNS.map(([, f]) => f(r)));
  const head = COLUMNS.map(([h]) => h);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] as string).length)));
  const line = (cells: string[]) => {
    const padded = cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] as number) : c.padStart(widths[i] as number)));
    return markdown ? `| ${padded.join(' | ')} |` : padded.join('  ');
  };
  const out = [line(head)];
  if (markdown) out.push(`| ${widths.map((w, i) => (i === 0 ? ':' + '-'.repeat(w - 1) : '-'.repeat(w - 1) + ':')).join(' | ')} |`);
  else out.push(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const r of rows) out.push(line(r));
  return out.join('\n');
}

export function resultsCsv(report: ScenarioReport): string {
  const first = report.results[0];
  if (!first) return '';
  const keys = Object.keys(first) as (keyof RunResult)[];
  const cell = (v: unknown) => (v === null ? '' : Array.isArray(v) ? `"${v.join(' ')}"` : typeof v === 'string' && /[",\n]/.test(v) ? `"${v.replace(/"/g, '""')}"` : String(v));
  return [keys.join(','), ...report.results.map((r) => keys.map((k) => cell(r[k])).join(','))].join('\n') + '\n';
}

/** Writes results and every run's timeline; returns the files written. */
export function writeOutputs(dir: string, report: ScenarioReport, runs: RunOutput[]): string[] {
  mkdirSync(dir, { recursive: true });
  const files: string[] = [];
  const put = (name: string, text: string) => {
    const p = join(dir, name);
    writeFileSync(p, text);
    files.push(p);
  };
  put('results.json', JSON.stringify(report, null, 2) + '\n');
  put('results.csv', resultsCsv(report));
  if (report.results.length > 1) put('compare.svg', compareSvg(report.results, `${report.scenario} (seed ${report.seed}): policies compared`));
  for (const run of runs) {
    if (!run.timeline) continue;
    const p = run.result.policy;
    put(`${p}.domains.csv`, run.timeline.domainsCsv());
    put(`${p}.host.csv`, run.timeline.hostCsv());
    put(`${p}.svg`, timelineSvg(run.timeline, `${report.scenario} (seed ${report.seed}): ${p}`));
  }
  return files;
}
