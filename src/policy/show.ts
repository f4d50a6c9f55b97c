/**
 * The merged policy written back in the policy file's own units (`512M`, `64M/s`, `10%`, `1s`),
 * for `xenballoonctl policy show`: what an operator wrote, after every file and default is
 * applied, in the words they would write it. The inverse of the schema's unit conversions.
 */
import { stringify } from 'yaml';
import type { Policy } from './schema.js';
import { formatKib, formatRateKib } from './units.js';

const SIZE_KEYS = new Set(['min_headroom', 'min_usable', 'squeeze', 'hysteresis', 'tolerance']);
const RATE_KEYS: Record<string, string> = { swap_in: 'off', refaults: 'off', decay: 'off', down: 'off', up: 'unlimited' };
const PERCENT_KEYS: Record<string, string> = { headroom: 'off', cache_in_use: 'off', psi_some: 'off', idle_tax: 'off' };
const DURATION_KEYS = new Set(['stale_after', 'active_for', 'quiet', 'after', 'uncooperative_after', 'retry']);

function percent(f: number): string {
  return `${Math.round(f * 10000) / 100}%`;
}

/** 1000 -> "1s", 90000 -> "90s", 300000 -> "5m", 250 -> "250ms". */
export function formatDurationMs(ms: number): string {
  if (ms === 0) return '0';
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}

function kinded(v: { kind: string; kib?: number; fraction?: number }): string {
  if (v.kind === 'kib') return formatKib(v.kib ?? 0);
  if (v.kind === 'fraction') return percent(v.fraction ?? 0);
  return v.kind; // auto, static-max
}

function human(key: string, v: unknown): unknown {
  if (v !== null && typeof v === 'object' && 'kind' in v) return kinded(v as { kind: string });
  if (key in RATE_KEYS) return v === null ? RATE_KEYS[key] : formatRateKib(v as number);
  if (key in PERCENT_KEYS) return v === null ? PERCENT_KEYS[key] : percent(v as number);
  if (key === 'major_faults') return v === null ? 'off' : `${v as number}/s`;
  if (typeof v === 'number' && SIZE_KEYS.has(key)) return formatKib(v);
  if (typeof v === 'number' && DURATION_KEYS.has(key)) return formatDurationMs(v);
  if (Array.isArray(v)) return v.map((x) => human('', x));
  if (v !== null && typeof v === 'object') {
    return Object.fromEntries(Object.entries(v).filter(([, x]) => x !== undefined).map(([k, x]) => [k, human(k, x)]));
  }
  return v;
}

/** Settings (defaults, a rule, a domain's effective settings) in the file's units. */
export function humanSettings(settings: object): Record<string, unknown> {
  return human('', settings) as Record<string, unknown>;
}

/** The whole merged policy as a policy file would say it (YAML). */
export function policyAsYaml(p: Policy): string {
  const doc = {
    host: humanSettings(p.host),
    interval: formatDurationMs(p.intervalMs),
    defaults: humanSettings(p.defaults),
    ...(p.rules.length ? { domains: p.rules.map((r) => humanSettings(r)) } : {}),
  };
  const from = p.sources.length ? p.sources.join(', ') : 'the built-in defaults';
  return `# the merged policy, from ${from}\n${stringify(doc)}`;
}
