/**
 * One chart comparing the policies on a scenario (`build/sim/<scenario>/compare.svg`, and the
 * charts docs/benchmarks.md links): a panel per metric, a bar per policy, each panel on its own
 * scale — guests admitted (more is better), OOM kills, guest-minutes under pressure, guest-minutes
 * fully stalled, swap-out and swap-in (less is better), and the work the guests got done.
 */
import type { RunResult } from './run.js';
import { CHART_PALETTE } from './svg.js';

const PANELS: { title: string; value: (r: RunResult) => number; digits: number }[] = [
  { title: 'guests admitted', value: (r) => r.admitted, digits: 0 },
  { title: 'OOM kills', value: (r) => r.oom_kills, digits: 0 },
  { title: 'pressure guest-min (some ≥ 10 %)', value: (r) => r.pressure_guest_minutes, digits: 1 },
  { title: 'stalled guest-min (PSI full)', value: (r) => r.stall_full_guest_minutes, digits: 1 },
  { title: 'swap-out GiB', value: (r) => r.swap_out_mib / 1024, digits: 2 },
  { title: 'swap-in GiB', value: (r) => r.swap_in_mib / 1024, digits: 2 },
  { title: 'work done (M page writes)', value: (r) => r.work_done / 1e6, digits: 1 },
];

const COLS = 4;
const PW = 300;
const PH = 220;
const TOP = 70;

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

export function compareSvg(results: readonly RunResult[], title: string): string {
  const rows = Math.ceil(PANELS.length / COLS);
  const width = COLS * PW + 20;
  const height = TOP + rows * PH + 20;
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`);
  out.push(`<rect width="${width}" height="${height}" fill="#ffffff"/>`);
  out.push(`<text x="14" y="24" font-size="16">${esc(title)}</text>`);
  results.forEach((r, i) => {
    const x = 14 + (i % 8) * 150;
    const y = 44 + Math.floor(i / 8) * 14;
    out.push(`<rect x="${x}" y="${y - 9}" width="10" height="10" fill="${CHART_PALETTE[i % CHART_PALETTE.length]}"/>`);
    out.push(`<text x="${x + 14}" y="${y}">${esc(r.policy)}</text>`);
  });
  PANELS.forEach((p, k) => {
    const ox = 10 + (k % COLS) * PW;
    const oy = TOP + Math.floor(k / COLS) * PH;
    const values = results.map((r) => p.value(r));
    const max = Math.max(1e-9, ...values);
    const plotH = PH - 60;
    const barW = (PW - 40) / Math.max(1, results.length);
    out.push(`<text x="${ox + 10}" y="${oy + 14}" font-size="12">${esc(p.title)}</text>`);
    out.push(`<line x1="${ox + 10}" y1="${oy + 24 + plotH}" x2="${ox + PW - 20}" y2="${oy + 24 + plotH}" stroke="#999999"/>`);
    values.forEach((v, i) => {
      const h = (v / max) * plotH;
      const bx = ox + 14 + i * barW;
      const by = oy + 24 + plotH - h;
      out.push(`<rect x="${bx.toFixed(1)}" y="${by.toFixed(1)}" width="${(barW - 4).toFixed(1)}" height="${h.toFixed(1)}" fill="${CHART_PALETTE[i % CHART_PALETTE.length]}"/>`);
      out.push(`<text x="${(bx + (barW - 4) / 2).toFixed(1)}" y="${(by - 3).toFixed(1)}" text-anchor="middle" font-size="9">${v.toFixed(p.digits)}</text>`);
    });
  });
  out.push('</svg>');
  return out.join('\n') + '\n';
}
