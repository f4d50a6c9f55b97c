/**
 * Text rendering of the daemon's status for `xenballoonctl status` and `top`: a xentop-like
 * table, one row per domain (the paper's Figure 1 columns), under a host line.
 */
import type { Explain, Status } from '../daemon/control-protocol.js';
import { formatKib } from '../policy/units.js';

/** KiB -> an xl-style size ("512M", "1.5G"); "-" for unknown. */
export function mib(kib: number | null): string {
  return kib === null ? '-' : formatKib(kib);
}

function rate(kibS: number | null): string {
  if (kibS === null) return '-';
  if (kibS === 0) return '0';
  return `${formatKib(Math.round(kibS * 10) / 10)}/s`;
}

function pct(p: number | null): string {
  return p === null ? '-' : `${p.toFixed(p >= 10 ? 0 : 1)}%`;
}

function ago(ms: number | null, now: number): string {
  if (ms === null) return 'never';
  const s = Math.max(0, (now - ms) / 1000);
  return s < 10 ? `${s.toFixed(1)}s ago` : `${Math.round(s)}s ago`;
}

function short(s: string | null, n: number): string | null {
  if (s === null || s.length <= n) return s;
  return s.slice(0, n - 1) + '…';
}

interface Column {
  head: string;
  align: 'l' | 'r';
}

function table(cols: Column[], rows: string[][]): string[] {
  const widths = cols.map((c, i) => Math.max(c.head.length, ...rows.map((r) => (r[i] ?? '').length)));
  const fmt = (cells: string[]) =>
    cells.map((cell, i) => (cols[i]?.align === 'r' ? cell.padStart(widths[i] ?? 0) : cell.padEnd(widths[i] ?? 0))).join('  ').trimEnd();
  return [fmt(cols.map((c) => c.head)), ...rows.map(fmt)];
}

export function hostLine(st: Status): string {
  const h = st.host;
  const d = st.daemon;
  const parts = [
    `host: total ${mib(h.total_kib)}`,
    `free ${mib(h.free_kib)}`,
    ...(h.scrub_kib ? [`scrub ${mib(h.scrub_kib)}`] : []),
    ...(h.outstanding_kib ? [`claimed ${mib(h.outstanding_kib)}`] : []),
    `reserved ${mib(h.reserved_kib)}`,
    `domains ${st.domains.length}`,
  ];
  return parts.join('  ') + (d.dry_run ? '  [dry run]' : '');
}

export function daemonLine(st: Status): string {
  const d = st.daemon;
  const parts = [
    `xenballoond pid ${d.pid}`,
    `interval ${d.interval_ms}ms`,
    `steps ${d.steps}`,
    `failures ${d.step_failures}`,
    `last step ${ago(d.last_step_at_ms, st.time_ms)}${d.last_step_duration_ms === null ? '' : ` (${d.last_step_duration_ms.toFixed(1)}ms)`}`,
    `hypervisor ${d.hypervisor}`,
  ];
  if (!d.xenstore_connected) parts.push('XENSTORE DISCONNECTED');
  else if (d.xenstore === 'unresponsive') parts.push('XENSTORE UNRESPONSIVE');
  if (d.stalled) parts.push('STALLED');
  return parts.join('  ');
}

/** `top -s` keys: the column to sort domains by (numbers largest first, names A-Z). */
export const SORT_KEYS = ['id', 'name', 'current', 'target', 'need', 'min', 'max', 'weight', 'swapin', 'psi'] as const;
export type SortKey = (typeof SORT_KEYS)[number];

type DomainRow = Status['domains'][number];
const SORT_VALUE: Record<Exclude<SortKey, 'id' | 'name'>, (d: DomainRow) => number | null> = {
  current: (d) => d.current_kib,
  target: (d) => d.target_kib,
  need: (d) => d.need_kib,
  min: (d) => d.min_kib,
  max: (d) => d.max_kib,
  weight: (d) => d.weight,
  swapin: (d) => d.swap_in_kib_s,
  psi: (d) => d.pressure_some_avg10,
};

export function sortDomains(domains: readonly DomainRow[], key: SortKey): DomainRow[] {
  const list = [...domains];
  if (key === 'id') return list.sort((a, b) => a.domid - b.domid);
  if (key === 'name') return list.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : a.domid - b.domid));
  const v = SORT_VALUE[key];
  // Unknown values (null) last; ties by domid, so rows do not jump between refreshes.
  return list.sort((a, b) => (v(b) ?? -Infinity) - (v(a) ?? -Infinity) || a.domid - b.domid);
}

/** Columns given up first when the terminal is narrow (NAME, ID, CURRENT, TARGET stay). */
const DROP_ORDER = ['WEIGHT', 'MIN', 'MAX', 'SWAPIN', 'PSI', 'NEED', 'FLAGS'];

export interface TableOptions {
  sort?: SortKey;
  /** Terminal width: columns are dropped (DROP_ORDER), then lines cut, to fit. */
  width?: number;
}

export function domainTable(st: Status, opts: TableOptions = {}): string[] {
  let cols: Column[] = [
    { head: 'NAME', align: 'l' }, { head: 'ID', align: 'r' }, { head: 'CURRENT', align: 'r' }, { head: 'TARGET', align: 'r' },
    { head: 'NEED', align: 'r' }, { head: 'MIN', align: 'r' }, { head: 'MAX', align: 'r' }, { head: 'WEIGHT', align: 'r' },
    { head: 'SWAPIN', align: 'r' }, { head: 'PSI', align: 'r' }, { head: 'FLAGS', align: 'l' },
  ];
  let rows = sortDomains(st.domains, opts.sort ?? 'id').map((d) => [
    d.name, String(d.domid), mib(d.current_kib), mib(d.target_kib), mib(d.need_kib), mib(d.min_kib), mib(d.max_kib),
    d.weight === null ? '-' : String(d.weight), rate(d.swap_in_kib_s), pct(d.pressure_some_avg10),
    [...(d.managed ? [] : ['unmanaged']), ...d.flags].join(',') || '-',
  ]);
  if (opts.sort && opts.sort !== 'id') {
    const i = { name: 0, current: 2, target: 3, need: 4, min: 5, max: 6, weight: 7, swapin: 8, psi: 9 }[opts.sort];
    cols = cols.map((c, j) => (j === i ? { ...c, head: c.head + (opts.sort === 'name' ? '↑' : '↓') } : c));
  }
  let lines = table(cols, rows);
  const width = opts.width;
  if (width === undefined) return lines;
  for (const drop of DROP_ORDER) {
    if (Math.max(...lines.map((l) => l.length)) <= width) break;
    const i = cols.findIndex((c) => c.head.replace(/[↑↓]$/, '') === drop);
    if (i < 0) continue;
    cols = cols.filter((_, j) => j !== i);
    rows = rows.map((r) => r.filter((_, j) => j !== i));
    lines = table(cols, rows);
  }
  return lines.map((l) => fit(l, width));
}

/** Cuts a line to `width` characters (a terminal would wrap it and break the table). */
export function fit(line: string, width: number): string {
  return line.length <= width ? line : line.slice(0, Math.max(0, width - 1)) + '…';
}

export function reservationLines(st: Status): string[] {
  if (st.reservations.length === 0) return [];
  const cols: Column[] = [
    { head: 'RESERVATION', align: 'l' }, { head: 'SIZE', align: 'r' }, { head: 'LEFT', align: 'r' }, { head: 'STATE', align: 'l' },
    { head: 'DOMAIN', align: 'r' }, { head: 'EXPIRES', align: 'r' }, { head: 'NOTE', align: 'l' },
  ];
  const rows = st.reservations.map((r) => [
    r.id, mib(r.kib), mib(r.remaining_kib), r.state, r.domid === null ? '-' : String(r.domid),
    `${Math.max(0, Math.round((r.expires_at_ms - st.time_ms) / 1000))}s`, [short(r.label, 40), r.reason].filter(Boolean).join(': ') || '-',
  ]);
  return table(cols, rows);
}

export function renderStatus(st: Status, opts: TableOptions = {}): string {
  const head = [hostLine(st), daemonLine(st)].map((l) => (opts.width === undefined ? l : fit(l, opts.width)));
  const lines = [...head, '', ...domainTable(st, opts)];
  const res = reservationLines(st);
  if (res.length) lines.push('', ...res);
  if (st.daemon.last_error && st.daemon.step_failures > 0) lines.push('', `last error: ${st.daemon.last_error}`);
  return lines.join('\n') + '\n';
}

export function renderExplain(e: Explain): string {
  const d = e.domain;
  const head = `${d.name} (domain ${d.domid}): current ${mib(d.current_kib)}, target ${mib(d.target_kib)}, need ${mib(d.need_kib)}, ` +
    `min ${mib(d.min_kib)}, max ${mib(d.max_kib)}, maxmem ${mib(d.maxmem_kib)}, weight ${d.weight ?? '-'}` +
    `${d.flags.length ? `, flags ${d.flags.join(',')}` : ''}${d.managed ? '' : ' (not managed by the policy)'}`;
  const report = d.report_format === null ? 'no valid report' : `${d.report_format} report, ${d.report_age_ms === null ? '?' : (d.report_age_ms / 1000).toFixed(1)}s old`;
  return [head, report, ...e.lines.map((l) => `  ${l}`)].join('\n') + '\n';
}
