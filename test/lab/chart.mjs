// Draws the lab's timeline (timeline.csv + host.csv, written in dom0 by scenarios/timeline.mjs)
// as chart.svg next to it, with the simulator's chart code, and prints a short summary per
// domain. Runs on the build machine after the lab (node is fast here, slow in the emulated dom0).
//
//   node test/lab/chart.mjs [RESULTS_DIR]     (default build/lab/results)
//
// Exit 0 with nothing drawn when there is no timeline (the lab broke before the sampler ran).
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CHART_PALETTE, lineChartSvg } from '../../dist/sim/harness/svg.js';

const dir = process.argv[2] ?? 'build/lab/results';
const timelinePath = join(dir, 'timeline.csv');
const hostPath = join(dir, 'host.csv');

/** Our own CSV: a header, then plain cells (names and flags hold no commas or quotes). */
function readCsv(path) {
  if (!existsSync(path)) return [];
  const [head, ...rows] = readFileSync(path, 'utf8').split('\n').filter((l) => l.trim() !== '');
  if (!head) return [];
  const cols = head.split(',');
  return rows.map((r) => Object.fromEntries(r.split(',').map((cell, i) => [cols[i], cell])));
}

const rows = readCsv(timelinePath);
// The sampler's rows before the daemon's first step carry no host figures.
const host = readCsv(hostPath).filter((h) => Number(h.total_kib) > 0);
if (rows.length === 0) {
  console.log(`lab chart: no timeline in ${timelinePath}; nothing to draw`);
  process.exit(0);
}

const mib = (kib) => (kib === '' || kib === undefined ? null : Number(kib) / 1024);
// By domid, labelled with its last name (a domain found mid-`xl create` is 'domain-N' at first).
const perDomid = new Map();
for (const r of rows) {
  if (r.domid === '0') continue;
  if (!perDomid.has(r.domid)) perDomid.set(r.domid, []);
  perDomid.get(r.domid).push(r);
}
const byDomain = new Map([...perDomid.entries()].map(([domid, list]) => [`${list.at(-1).name} (${domid})`, list]));

const series = [];
const points = (list, col) => list.flatMap((r) => (mib(r[col]) === null ? [] : [[Number(r.t_s), mib(r[col])]]));
[...byDomain.entries()].forEach(([key, list], i) => {
  const color = CHART_PALETTE[i % CHART_PALETTE.length];
  series.push({ name: `${key} memory`, points: points(list, 'current_kib'), color, width: 2 });
  series.push({ name: `${key} target`, points: points(list, 'target_kib'), color, dash: '6 3' });
  series.push({ name: `${key} need`, points: points(list, 'need_kib'), color, dash: '1 3', width: 1 });
  // The fixed chunk of the guest under test, to see the target answer it.
  const chunks = points(list, 'chunk_kib');
  if (chunks.some(([, y]) => y >= 64)) series.push({ name: `${key} eatmem chunk`, points: chunks, color: '#555555', dash: '2 2', width: 1 });
});
series.push({ name: 'host free', points: host.map((h) => [Number(h.t_s), mib(h.free_kib)]), color: '#000000', dash: '8 4', width: 2 });

const svg = lineChartSvg(series, {
  title: 'xenballoond on real Xen (make lab-test): memory, target and need per guest',
  xLabel: 'seconds since the first sample (wall clock in the emulated dom0)',
  yLabel: 'MiB',
});
writeFileSync(join(dir, 'chart.svg'), svg);

// Summary: per guest, the range of its target and memory.
const fmt = (x) => (x === null ? '-' : x.toFixed(0));
console.log(`lab chart: ${join(dir, 'chart.svg')} (${rows.length} rows, ${host.length} samples)`);
for (const [key, list] of byDomain) {
  const tgt = list.map((r) => mib(r.target_kib)).filter((x) => x !== null);
  const cur = list.map((r) => mib(r.current_kib)).filter((x) => x !== null);
  const first = Number(list[0].t_s);
  const last = Number(list.at(-1).t_s);
  console.log(
    `  ${key}: ${first}-${last} s, memory ${fmt(Math.min(...cur))}-${fmt(Math.max(...cur))} MiB, target ${fmt(tgt.length ? Math.min(...tgt) : null)}-${fmt(tgt.length ? Math.max(...tgt) : null)} MiB`,
  );
}
