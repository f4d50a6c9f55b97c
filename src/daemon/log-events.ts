/**
 * Log lines for what an operator wants to hear about without asking: the host running short of
 * memory (guests need more than can be shared) and a guest coming under memory pressure, each
 * once when it starts and once when it ends. Computed from the core's explanation, purely: the
 * state goes in and comes out, time is a number. An end is declared only after `quietMs` without
 * the condition, so a guest hovering at a threshold does not log every step.
 */
import type { DomainExplanation, Explanation } from '../core/index.js';
import { formatKib } from '../policy/units.js';

export interface LogEvent {
  level: 'warn' | 'info';
  msg: string;
  fields: Record<string, unknown>;
}

interface Shortage {
  sinceMs: number;
  lastMs: number;
  peakKib: number;
}

interface Pressured {
  name: string;
  sinceMs: number;
  lastMs: number;
}

export interface EventState {
  shortage: Shortage | null;
  pressured: ReadonlyMap<number, Pressured>;
}

export const initialEventState: EventState = { shortage: null, pressured: new Map() };

/** How long a condition must be absent before its end is logged. */
export const DEFAULT_QUIET_MS = 30_000;

/** 192000 -> "3m12s". */
export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${s % 60 ? `${s % 60}s` : ''}`;
  return `${Math.floor(m / 60)}h${m % 60 ? `${m % 60}m` : ''}`;
}

/**
 * Whether the per-domain explanations are worth reading this step: they are built lazily by the
 * core and cost about a fifth of a step at 1,000 domains, so they are read when memory is short,
 * when a guest was pressured, when a guest asked for an urgent step, or every `every`th step.
 */
export function shouldScanDomains(state: EventState, e: Explanation, urgent: boolean, stepNo: number, every = 10): boolean {
  return urgent || e.host.shortKib > 0 || state.pressured.size > 0 || stepNo % every === 0;
}

function shortageEvents(prev: Shortage | null, e: Explanation, nowMs: number, quietMs: number): { next: Shortage | null; events: LogEvent[] } {
  const h = e.host;
  if (h.shortKib > 0) {
    if (prev) return { next: { ...prev, lastMs: nowMs, peakKib: Math.max(prev.peakKib, h.shortKib) }, events: [] };
    const mins = h.overcommitted ? '; the minimums alone do not fit' : '';
    return {
      next: { sinceMs: nowMs, lastMs: nowMs, peakKib: h.shortKib },
      events: [{
        level: 'warn',
        msg: `memory is short by ${formatKib(h.shortKib)}: guests need ${formatKib(h.needsKib)}, ` +
          `${formatKib(h.allocatableKib)} can be shared (reserve ${formatKib(h.reserveKib)}, reservations ${formatKib(h.reservedKib)})${mins}`,
        fields: { event: 'shortage-start', short_kib: h.shortKib, needs_kib: h.needsKib, allocatable_kib: h.allocatableKib, overcommitted: h.overcommitted },
      }],
    };
  }
  if (!prev || nowMs - prev.lastMs < quietMs) return { next: prev, events: [] };
  return {
    next: null,
    events: [{
      level: 'info',
      msg: `memory is no longer short (it was for ${formatDuration(prev.lastMs - prev.sinceMs)}, by up to ${formatKib(prev.peakKib)})`,
      fields: { event: 'shortage-end', peak_short_kib: prev.peakKib, duration_ms: prev.lastMs - prev.sinceMs },
    }],
  };
}

function signalsText(d: DomainExplanation): string {
  const r = d.rates;
  const bits = [
    r?.psiSome != null ? `PSI some ${Math.round(r.psiSome * 100)}%` : null,
    r?.swapInKibps != null && r.swapInKibps > 0 ? `swap-in ${formatKib(Math.round(r.swapInKibps))}/s` : null,
    r?.majorFaultsPs != null && r.majorFaultsPs > 0 ? `major faults ${Math.round(r.majorFaultsPs)}/s` : null,
  ].filter(Boolean);
  return bits.length ? bits.join(', ') : d.flags.filter((f) => f.startsWith('pressure:')).map((f) => f.slice(9)).join(', ');
}

function pressureStart(d: DomainExplanation, e: Explanation): LogEvent {
  const short = e.host.shortKib > 0 ? `; memory is short by ${formatKib(e.host.shortKib)}` : '';
  const target = d.newTargetKib ?? d.targetKib;
  return {
    level: 'warn',
    msg: `${d.name} (domain ${d.domid}) is under memory pressure: ${signalsText(d)}; target ${target === null ? 'none' : formatKib(target)}, ` +
      `need ${d.needKib === null ? 'unknown' : formatKib(d.needKib)}${short}`,
    fields: {
      event: 'pressure-start', domid: d.domid, domain: d.name, psi_some: d.rates?.psiSome ?? null,
      swap_in_kib_s: d.rates?.swapInKibps == null ? null : Math.round(d.rates.swapInKibps), target_kib: target,
      need_kib: d.needKib, short_kib: e.host.shortKib,
    },
  };
}

function pressureEvents(
  prev: ReadonlyMap<number, Pressured>, e: Explanation, nowMs: number, quietMs: number,
): { next: ReadonlyMap<number, Pressured>; events: LogEvent[] } {
  const events: LogEvent[] = [];
  const next = new Map<number, Pressured>();
  for (const d of e.domains) {
    const was = prev.get(d.domid);
    const same = was !== undefined && was.name === d.name;
    if (d.managed && d.flags.includes('pressure')) {
      if (!same) events.push(pressureStart(d, e));
      next.set(d.domid, { name: d.name, sinceMs: same ? was.sinceMs : nowMs, lastMs: nowMs });
    } else if (same && nowMs - was.lastMs < quietMs) {
      next.set(d.domid, was);
    } else if (same) {
      events.push({
        level: 'info',
        msg: `${d.name} (domain ${d.domid}) is no longer under memory pressure (it was for ${formatDuration(was.lastMs - was.sinceMs)})`,
        fields: { event: 'pressure-end', domid: d.domid, domain: d.name, duration_ms: was.lastMs - was.sinceMs },
      });
    }
    // A domain that went away (or whose domid now names another guest) is forgotten silently.
  }
  return { next, events };
}

/**
 * The events of one step. `scanDomains` false: only the host is looked at (pressure state kept);
 * see shouldScanDomains.
 */
export function stepEvents(
  state: EventState, e: Explanation, nowMs: number, scanDomains: boolean, quietMs = DEFAULT_QUIET_MS,
): { state: EventState; events: LogEvent[] } {
  const s = shortageEvents(state.shortage, e, nowMs, quietMs);
  if (!scanDomains) return { state: { shortage: s.next, pressured: state.pressured }, events: s.events };
  const p = pressureEvents(state.pressured, e, nowMs, quietMs);
  return { state: { shortage: s.next, pressured: p.next }, events: [...s.events, ...p.events] };
}

/** The daemon's holder of EventState: feeds each step's explanation, logs what happened. */
export class EventLog {
  private state: EventState = initialEventState;
  private steps = 0;

  constructor(private readonly log: { warn(o: object, m: string): void; info(o: object, m: string): void }, private readonly quietMs = DEFAULT_QUIET_MS) {}

  /** `urgent`: the step was asked for by something other than the interval (e.g. a guest's report). */
  step(e: Explanation, nowMs: number, urgent: boolean): void {
    const scan = shouldScanDomains(this.state, e, urgent, this.steps++);
    const r = stepEvents(this.state, e, nowMs, scan, this.quietMs);
    this.state = r.state;
    for (const ev of r.events) this.log[ev.level](ev.fields, ev.msg);
  }
}
