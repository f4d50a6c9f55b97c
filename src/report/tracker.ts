/**
 * Per-domain bookkeeping of guest reports for the daemon: the last good report and when it
 * arrived, rejections counted by reason, when to log (once per domain per interval, however
 * often a guest writes garbage), and when the last good report is too old to trust.
 *
 * Pure: state in, state out, the clock passed in. A rejected report changes only the
 * counters: the last good report stays in use until it goes stale. Rates (the core's job) are
 * computed from consecutive accepted reports; an uptime or counter that went back means the
 * guest rebooted, which the tracker reports but does not act on.
 */
import { isDeepStrictEqual } from 'node:util';
import type { RejectReason, ReportResult } from './result.js';
import type { GuestReport, ReportFormat } from './types.js';

export interface TrackerOptions {
  /** A report older than this is stale; null = never (Qubes' writer only writes on change). */
  staleAfterMs: Record<ReportFormat, number | null>;
  /** At most one rejection log line per domain per interval. */
  logIntervalMs: number;
}

/** v1 heartbeats every 10 s by default: three missed heartbeats and a margin. */
export const DEFAULT_TRACKER_OPTIONS: TrackerOptions = {
  staleAfterMs: { v1: 35_000, paper: 35_000, qubes: null },
  logIntervalMs: 60_000,
};

export interface ReportTrackerState {
  last: GuestReport | null;
  /** When `last` arrived (injected clock, ms). */
  lastAtMs: number | null;
  accepted: number;
  /** The same report read again (a re-read, not a new sample): its time is not refreshed. */
  unchanged: number;
  rejected: number;
  rejectedByReason: Readonly<Partial<Record<RejectReason, number>>>;
  lastRejection: { reason: RejectReason; detail: string; atMs: number } | null;
  /** Rejections since the last accepted report. */
  rejectedSinceGood: number;
  lastLogAtMs: number | null;
  /** Rejections since the last log line that were not logged. */
  suppressed: number;
  /** A rejection was logged and no recovery line yet. */
  owesRecoveryLog: boolean;
}

export type TrackerLog =
  | { kind: 'rejected'; reason: RejectReason; detail: string; suppressed: number }
  | { kind: 'recovered'; rejectedSinceGood: number };

export type TrackerOutcome = 'accepted' | 'unchanged' | 'rejected' | 'none';

/** What an accepted report says about the guest compared with the previous one. */
export type Restart = 'guest' | 'publisher' | null;

export interface TrackerStep {
  state: ReportTrackerState;
  outcome: TrackerOutcome;
  /** A line the daemon should log now, or null. */
  log: TrackerLog | null;
  /** For an accepted report: 'guest' when uptime or a counter went back (a reboot),
   * 'publisher' when only the sequence number did (xenballoon-report restarted). */
  restart: Restart;
}

export function initialTrackerState(): ReportTrackerState {
  return {
    last: null,
    lastAtMs: null,
    accepted: 0,
    unchanged: 0,
    rejected: 0,
    rejectedByReason: {},
    lastRejection: null,
    rejectedSinceGood: 0,
    lastLogAtMs: null,
    suppressed: 0,
    owesRecoveryLog: false,
  };
}

function wentBack(prev: number | null, next: number | null): boolean {
  return prev !== null && next !== null && next < prev;
}

export function detectRestart(prev: GuestReport | null, next: GuestReport): Restart {
  if (prev === null || prev.format !== next.format) return null;
  const c0 = prev.counters;
  const c1 = next.counters;
  const counterBack =
    wentBack(c0.pswpin, c1.pswpin) ||
    wentBack(c0.pswpout, c1.pswpout) ||
    wentBack(c0.pgmajfault, c1.pgmajfault) ||
    wentBack(c0.workingsetRefault, c1.workingsetRefault) ||
    wentBack(c0.oomKill, c1.oomKill) ||
    wentBack(prev.pressure?.someTotalUs ?? null, next.pressure?.someTotalUs ?? null) ||
    wentBack(prev.pressure?.fullTotalUs ?? null, next.pressure?.fullTotalUs ?? null);
  if (wentBack(prev.uptimeS, next.uptimeS) || counterBack) return 'guest';
  if (wentBack(prev.seq, next.seq)) return 'publisher';
  return null;
}

/**
 * Feeds one parse result (null = nothing published, see parseDomainReport) read at nowMs.
 */
export function trackReport(
  state: ReportTrackerState,
  result: ReportResult | null,
  nowMs: number,
  opts: TrackerOptions = DEFAULT_TRACKER_OPTIONS,
): TrackerStep {
  if (result === null) return { state, outcome: 'none', log: null, restart: null };
  if (result.ok) {
    if (state.last !== null && isDeepStrictEqual(state.last, result.report)) {
      return { state: { ...state, unchanged: state.unchanged + 1 }, outcome: 'unchanged', log: null, restart: null };
    }
    const log: TrackerLog | null = state.owesRecoveryLog
      ? { kind: 'recovered', rejectedSinceGood: state.rejectedSinceGood }
      : null;
    return {
      state: {
        ...state,
        last: result.report,
        lastAtMs: nowMs,
        accepted: state.accepted + 1,
        rejectedSinceGood: 0,
        owesRecoveryLog: false,
      },
      outcome: 'accepted',
      log,
      restart: detectRestart(state.last, result.report),
    };
  }
  const byReason = { ...state.rejectedByReason, [result.reason]: (state.rejectedByReason[result.reason] ?? 0) + 1 };
  const base: ReportTrackerState = {
    ...state,
    rejected: state.rejected + 1,
    rejectedByReason: byReason,
    lastRejection: { reason: result.reason, detail: result.detail, atMs: nowMs },
    rejectedSinceGood: state.rejectedSinceGood + 1,
  };
  const due = state.lastLogAtMs === null || nowMs - state.lastLogAtMs >= opts.logIntervalMs || nowMs < state.lastLogAtMs;
  if (!due) return { state: { ...base, suppressed: state.suppressed + 1 }, outcome: 'rejected', log: null, restart: null };
  return {
    state: { ...base, lastLogAtMs: nowMs, suppressed: 0, owesRecoveryLog: true },
    outcome: 'rejected',
    log: { kind: 'rejected', reason: result.reason, detail: result.detail, suppressed: state.suppressed },
    restart: null,
  };
}

export type ReportStatus = 'none' | 'fresh' | 'stale';

/** When the last good report goes (or went) stale; null if it never does or there is none. */
export function staleAtMs(state: ReportTrackerState, opts: TrackerOptions = DEFAULT_TRACKER_OPTIONS): number | null {
  if (state.last === null || state.lastAtMs === null) return null;
  const after = opts.staleAfterMs[state.last.format];
  return after === null ? null : state.lastAtMs + after;
}

export function reportStatus(
  state: ReportTrackerState,
  nowMs: number,
  opts: TrackerOptions = DEFAULT_TRACKER_OPTIONS,
): ReportStatus {
  if (state.last === null) return 'none';
  const at = staleAtMs(state, opts);
  return at !== null && nowMs >= at ? 'stale' : 'fresh';
}

/** The report the core should use now: the last good one unless it is stale. */
export function usableReport(
  state: ReportTrackerState,
  nowMs: number,
  opts: TrackerOptions = DEFAULT_TRACKER_OPTIONS,
): { report: GuestReport; atMs: number } | null {
  if (state.last === null || state.lastAtMs === null) return null;
  if (reportStatus(state, nowMs, opts) === 'stale') return null;
  return { report: state.last, atMs: state.lastAtMs };
}
