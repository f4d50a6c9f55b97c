/**
 * Rates from consecutive guest reports: swap-in, major faults, refaults, PSI stall. Counters are
 * cumulative since the guest booted, so a counter that goes backwards or an uptime that
 * decreases means a reboot: the history restarts and no rate is derived across it (never a
 * negative or huge rate). Rates are also capped, so a guest inventing counters can at most look
 * "under pressure", which raises its need no further than its policy max.
 */
import type { GuestReport } from '../report/types.js';
import type { Rates, Sample } from './state.js';

const KEEP_SAMPLES = 4;
/** Rates need reports at least this far apart (shorter spans are mostly noise). */
const MIN_SPAN_MS = 1000;
const MAX_KIBPS = 64 * 1024 * 1024; // 64 GiB/s: beyond any real swap or refault rate
const MAX_EVENTS_PS = 100_000_000;
const PAGE_KIB = 4;

function finiteOrNull(x: number | null | undefined): number | null {
  return typeof x === 'number' && Number.isFinite(x) && x >= 0 ? x : null;
}

export function sampleOf(report: GuestReport, atMs: number): Sample {
  const c = report.counters;
  return {
    atMs,
    uptimeS: finiteOrNull(report.uptimeS),
    pswpin: finiteOrNull(c.pswpin),
    pgmajfault: finiteOrNull(c.pgmajfault),
    refault: finiteOrNull(c.workingsetRefault),
    psiSomeUs: finiteOrNull(report.pressure?.someTotalUs),
    psiSomeAvg10: finiteOrNull(report.pressure?.someAvg10),
  };
}

function back(a: number | null, b: number | null): boolean {
  return a !== null && b !== null && b < a;
}

/** True when `next` cannot follow `prev` without a reboot in between. */
export function isReset(prev: Sample, next: Sample): boolean {
  if (prev.uptimeS !== null && next.uptimeS !== null && next.uptimeS < prev.uptimeS) return true;
  return back(prev.pswpin, next.pswpin) || back(prev.pgmajfault, next.pgmajfault) ||
    back(prev.refault, next.refault) || back(prev.psiSomeUs, next.psiSomeUs);
}

export interface Ingested {
  samples: Sample[];
  rates: Rates | null;
  reset: boolean;
}

/** Add a new report's sample to the history and derive rates. */
export function ingest(history: readonly Sample[], next: Sample): Ingested {
  const last = history[history.length - 1];
  if (last && next.atMs <= last.atMs) return { samples: [...history], rates: null, reset: false };
  if (last && isReset(last, next)) return { samples: [next], rates: null, reset: true };
  // The last KEEP_SAMPLES - 1 of the history, then the new one (one array, no intermediates).
  const from = Math.max(0, history.length - (KEEP_SAMPLES - 1));
  const samples: Sample[] = new Array<Sample>(history.length - from + 1);
  for (let i = from; i < history.length; i++) samples[i - from] = history[i] as Sample;
  samples[history.length - from] = next;
  let ref: Sample | undefined;
  for (let i = samples.length - 2; i >= 0; i--) {
    const s = samples[i];
    if (s && next.atMs - s.atMs >= MIN_SPAN_MS) {
      ref = s;
      break;
    }
  }
  if (!ref) {
    const oldest = samples[0];
    ref = oldest !== next ? oldest : undefined;
  }
  if (!ref) {
    const psi = next.psiSomeAvg10 !== null ? Math.min(1, next.psiSomeAvg10 / 100) : null;
    return { samples, rates: psi === null ? null : { swapInKibps: null, majorFaultsPs: null, refaultKibps: null, psiSome: psi, spanMs: 0 }, reset: false };
  }
  return { samples, rates: ratesBetween(ref, next), reset: false };
}

function perS(x: number | null, y: number | null, scale: number, cap: number, spanMs: number): number | null {
  return x === null || y === null || y < x ? null : Math.min(cap, ((y - x) * scale * 1000) / spanMs);
}

function ratesBetween(a: Sample, b: Sample): Rates {
  const spanMs = b.atMs - a.atMs;
  let psiSome = perS(a.psiSomeUs, b.psiSomeUs, 1e-6, 1, spanMs);
  if (psiSome === null && b.psiSomeAvg10 !== null) psiSome = Math.min(1, b.psiSomeAvg10 / 100);
  return {
    swapInKibps: perS(a.pswpin, b.pswpin, PAGE_KIB, MAX_KIBPS, spanMs),
    majorFaultsPs: perS(a.pgmajfault, b.pgmajfault, 1, MAX_EVENTS_PS, spanMs),
    refaultKibps: perS(a.refault, b.refault, PAGE_KIB, MAX_KIBPS, spanMs),
    psiSome,
    spanMs,
  };
}
