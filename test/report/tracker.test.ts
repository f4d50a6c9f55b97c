import { describe, expect, it } from 'vitest';
import { parseQubesMeminfo } from '../../src/report/qubes.js';
import { reject, type ReportResult } from '../../src/report/result.js';
import {
  DEFAULT_TRACKER_OPTIONS,
  initialTrackerState,
  reportStatus,
  staleAtMs,
  trackReport,
  usableReport,
  type ReportTrackerState,
  type TrackerOptions,
} from '../../src/report/tracker.js';
import { formatV1, parseV1, type V1Record } from '../../src/report/v1.js';

const opts: TrackerOptions = { staleAfterMs: { v1: 30_000, paper: 30_000, qubes: null }, logIntervalMs: 60_000 };

const base: V1Record = {
  seq: 1, uptimeS: 100, memTotalKib: 1_000_000, memFreeKib: 100_000, memAvailableKib: 400_000, buffersKib: 1000,
  cachedKib: 200_000, shmemKib: 100, swapTotalKib: 0, swapFreeKib: 0, committedAsKib: 500_000, balloonCurrentKib: null,
  pswpin: 10, pswpout: 20, pgmajfault: 30, workingsetRefault: 40, oomKill: 0,
  psiSomeAvg10Bp: null, psiFullAvg10Bp: null, psiSomeTotalUs: null, psiFullTotalUs: null,
};
const good = (over: Partial<V1Record> = {}): ReportResult => parseV1(formatV1({ ...base, ...over }));
const bad = reject('bad_number', 'seq="x" is not a decimal integer');

function feed(state: ReportTrackerState, steps: [ReportResult | null, number][]) {
  const logs = [];
  for (const [r, t] of steps) {
    const s = trackReport(state, r, t, opts);
    state = s.state;
    if (s.log) logs.push({ at: t, ...s.log });
  }
  return { state, logs };
}

describe('report tracker', () => {
  it('keeps the last good report and its time', () => {
    const s = trackReport(initialTrackerState(), good(), 1000, opts);
    expect(s.outcome).toBe('accepted');
    expect(s.state.lastAtMs).toBe(1000);
    expect(usableReport(s.state, 2000, opts)?.report.mem.committedAsKib).toBe(500_000);
  });

  it('a rejected report changes nothing but the counters: the last good one stays in use', () => {
    const first = trackReport(initialTrackerState(), good(), 1000, opts).state;
    const after = trackReport(first, bad, 2000, opts);
    expect(after.outcome).toBe('rejected');
    expect(after.state.last).toBe(first.last);
    expect(after.state.lastAtMs).toBe(1000);
    expect(after.state.rejected).toBe(1);
    expect(after.state.rejectedByReason).toEqual({ bad_number: 1 });
    expect(after.state.lastRejection).toEqual({ reason: 'bad_number', detail: bad.detail, atMs: 2000 });
  });

  it('logs a flood of bad writes once per interval, with the number left unlogged', () => {
    const steps: [ReportResult, number][] = [];
    for (let t = 0; t < 150_000; t += 100) steps.push([t % 200 === 0 ? bad : reject('too_large', 'big'), t]);
    const { state, logs } = feed(initialTrackerState(), steps);
    expect(logs.map((l) => l.at)).toEqual([0, 60_000, 120_000]);
    expect(logs[0]).toMatchObject({ kind: 'rejected', reason: 'bad_number', suppressed: 0 });
    expect(logs[1]).toMatchObject({ suppressed: 599 });
    expect(state.rejected).toBe(1500);
    expect(state.rejectedByReason).toEqual({ bad_number: 750, too_large: 750 });
  });

  it('says once when a guest that was logged as bad publishes good reports again', () => {
    const { logs } = feed(initialTrackerState(), [
      [good({ seq: 1 }), 0],
      [bad, 1000],
      [bad, 2000],
      [good({ seq: 2 }), 3000],
      [good({ seq: 3 }), 4000],
    ]);
    expect(logs).toEqual([
      { at: 1000, kind: 'rejected', reason: 'bad_number', detail: bad.detail, suppressed: 0 },
      { at: 3000, kind: 'recovered', rejectedSinceGood: 2 },
    ]);
  });

  it('goes stale after the format\'s interval without a new good report, rejections or not', () => {
    let st = trackReport(initialTrackerState(), good(), 1000, opts).state;
    st = trackReport(st, bad, 20_000, opts).state;
    expect(staleAtMs(st, opts)).toBe(31_000);
    expect(reportStatus(st, 30_999, opts)).toBe('fresh');
    expect(reportStatus(st, 31_000, opts)).toBe('stale');
    expect(usableReport(st, 31_000, opts)).toBeNull();
    st = trackReport(st, good({ seq: 2 }), 40_000, opts).state;
    expect(reportStatus(st, 40_001, opts)).toBe('fresh');
  });

  it('never calls a Qubes report stale (its writer only writes on change)', () => {
    const st = trackReport(initialTrackerState(), parseQubesMeminfo('5000'), 0, opts).state;
    expect(reportStatus(st, 10 ** 9, opts)).toBe('fresh');
    expect(reportStatus(initialTrackerState(), 0, opts)).toBe('none');
  });

  it('does not refresh the time when the same report is read again', () => {
    let st = trackReport(initialTrackerState(), good(), 1000, opts).state;
    const again = trackReport(st, good(), 9000, opts);
    expect(again.outcome).toBe('unchanged');
    st = again.state;
    expect(st.lastAtMs).toBe(1000);
    expect(st.unchanged).toBe(1);
  });

  it('ignores "nothing published yet"', () => {
    const st = initialTrackerState();
    expect(trackReport(st, null, 5, opts)).toEqual({ state: st, outcome: 'none', log: null, restart: null });
  });

  it('tells a guest reboot from a publisher restart, and keeps the new report either way', () => {
    const st = trackReport(initialTrackerState(), good({ seq: 50, uptimeS: 5000 }), 0, opts).state;
    const reboot = trackReport(st, good({ seq: 1, uptimeS: 20, pswpin: 0 }), 1000, opts);
    expect(reboot.restart).toBe('guest');
    expect(reboot.state.last?.uptimeS).toBe(20);
    const counterBack = trackReport(st, good({ seq: 51, uptimeS: 5001, pgmajfault: 1 }), 1000, opts);
    expect(counterBack.restart).toBe('guest');
    const restarted = trackReport(st, good({ seq: 1, uptimeS: 5010 }), 1000, opts);
    expect(restarted.restart).toBe('publisher');
    expect(trackReport(st, good({ seq: 51, uptimeS: 5001 }), 1000, opts).restart).toBeNull();
  });

  it('has defaults that tolerate a few missed 10 s heartbeats', () => {
    expect(DEFAULT_TRACKER_OPTIONS.staleAfterMs.v1).toBeGreaterThan(30_000);
  });
});
