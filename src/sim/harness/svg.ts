/**
 * Line charts as standalone SVG. `lineChartSvg` draws any set of series (the real-Xen lab's
 * timeline uses it too); `timelineSvg` is the simulator's: memory (MiB) over time (minutes), one
 * line per domain — or per guest group when there are too many domains to tell apart — plus the
 * host's free memory.
 */
import type { Timeline } from './timeline.js';

const WIDTH = 960;
const HEIGHT = 540;
const M = { left: 70, right: 190, top: 40, bottom: 50 };
const MAX_LINES = 24;
const PALETTE = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];

export interface ChartSeries {
  name: string;
  points: [number, number][];
  color: string;
  /** Stroke dash pattern, e.g. '6 4'. */
  dash?: string;
  width?: number;
}

export interface ChartOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  /** Right end of the x axis; default: the largest x of any point. */
  xMax?: number;
}

export const CHART_PALETTE: readonly string[] = PALETTE;

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** 1, 2, 5 x 10^n steps giving about `n` ticks over [0, max]. */
function niceStep(max: number, n: number): number {
  const raw = max / Math.max(1, n);
  const p = 10 ** Math.floor(Math.log10(raw || 1));
  for (const m of [1, 2, 5, 10]) if (raw <= m * p) return m * p;
  return 10 * p;
}

export function timelineSvg(t: Timeline, title: string): string {
  const byName = new Map<string, Map<number, number>>();
  const groups = new Map<string, Map<number, number>>();
  for (const r of t.domains) {
    const key = `${r.name} (${r.domid})`;
    if (!byName.has(key)) byName.set(key, new Map());
    byName.get(key)?.set(r.tS, r.currentMib);
    if (!groups.has(r.group)) groups.set(r.group, new Map());
    const g = groups.get(r.group) as Map<number, number>;
    g.set(r.tS, (g.get(r.tS) ?? 0) + r.currentMib);
  }
  const perDomain = byName.size <= MAX_LINES;
  const source = perDomain ? byName : groups;
  const series: ChartSeries[] = [...source.entries()].map(([name, pts], i) => ({
    name: perDomain ? name : `${name} (sum)`,
    points: [...pts.entries()].map(([x, y]) => [x / 60, y] as [number, number]),
    color: PALETTE[i % PALETTE.length] as string,
  }));
  series.push({ name: 'host free', points: t.host.map((h) => [h.tS / 60, h.freeMib]), color: '#000000', dash: '6 4', width: 2 });
  return lineChartSvg(series, {
    title,
    xLabel: 'simulated minutes',
    yLabel: `MiB (domain memory${perDomain ? '' : ', summed per group'})`,
    xMax: Math.max(1 / 60, ...t.host.map((h) => h.tS / 60)),
  });
}

export function lineChartSvg(series: readonly ChartSeries[], o: ChartOptions): string {
  const xMax = o.xMax ?? Math.max(1e-9, ...series.flatMap((s) => s.points.map((p) => p[0])));
  const yMax = Math.max(1, ...series.flatMap((s) => s.points.map((p) => p[1]))) * 1.05;
  const pw = WIDTH - M.left - M.right;
  const ph = HEIGHT - M.top - M.bottom;
  const X = (x: number) => M.left + (x / xMax) * pw;
  const Y = (y: number) => M.top + ph - (y / yMax) * ph;

  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" viewBox="0 0 ${WIDTH} ${HEIGHT}" font-family="sans-serif" font-size="12">`);
  out.push(`<rect width="${WIDTH}" height="${HEIGHT}" fill="#ffffff"/>`);
  out.push(`<text x="${M.left}" y="24" font-size="16">${esc(o.title)}</text>`);
  const xs = niceStep(xMax, 10);
  for (let x = 0; x <= xMax + 1e-9; x += xs) {
    out.push(`<line x1="${X(x).toFixed(1)}" y1="${M.top}" x2="${X(x).toFixed(1)}" y2="${M.top + ph}" stroke="#e5e5e5"/>`);
    out.push(`<text x="${X(x).toFixed(1)}" y="${M.top + ph + 16}" text-anchor="middle">${Number(x.toFixed(2))}</text>`);
  }
  const ys = niceStep(yMax, 8);
  for (let y = 0; y <= yMax + 1e-9; y += ys) {
    out.push(`<line x1="${M.left}" y1="${Y(y).toFixed(1)}" x2="${M.left + pw}" y2="${Y(y).toFixed(1)}" stroke="#e5e5e5"/>`);
    out.push(`<text x="${M.left - 6}" y="${(Y(y) + 4).toFixed(1)}" text-anchor="end">${Number(y.toFixed(1))}</text>`);
  }
  out.push(`<rect x="${M.left}" y="${M.top}" width="${pw}" height="${ph}" fill="none" stroke="#999999"/>`);
  out.push(`<text x="${M.left + pw / 2}" y="${HEIGHT - 12}" text-anchor="middle">${esc(o.xLabel)}</text>`);
  out.push(`<text x="16" y="${M.top + ph / 2}" transform="rotate(-90 16 ${M.top + ph / 2})" text-anchor="middle">${esc(o.yLabel)}</text>`);
  series.forEach((s, i) => {
    if (s.points.length === 0) return;
    const dash = s.dash ? ` stroke-dasharray="${s.dash}"` : '';
    const d = s.points.map(([x, y], j) => `${j === 0 ? 'M' : 'L'}${X(x).toFixed(1)},${Y(y).toFixed(1)}`).join(' ');
    out.push(`<path d="${d}" fill="none" stroke="${s.color}" stroke-width="${s.width ?? 1.3}"${dash}/>`);
    const ly = M.top + 10 + i * 16;
    if (ly < HEIGHT - 10) {
      out.push(`<line x1="${M.left + pw + 12}" y1="${ly}" x2="${M.left + pw + 32}" y2="${ly}" stroke="${s.color}" stroke-width="2"${dash}/>`);
      out.push(`<text x="${M.left + pw + 38}" y="${ly + 4}">${esc(s.name)}</text>`);
    }
  });
  out.push('</svg>');
  return out.join('\n') + '\n';
}
