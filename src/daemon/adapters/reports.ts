/**
 * The daemon's report intake (ports.ReportIntake) over src/report: parse whatever the domain
 * published (v1, the paper's meminfo/vmstat, Qubes' number), track it per domain (last good
 * report, staleness, rejections), count rejections in metrics and log them at most once per
 * domain per minute, as the tracker decides.
 */
import {
  DEFAULT_TRACKER_OPTIONS, initialTrackerState, parseDomainReport, provisionGuestNodes, reportStatus, trackReport,
  usableReport, type ReportTrackerState, type TrackerOptions,
} from '../../report/index.js';
import type { GuestReport } from '../../report/types.js';
import type { XenstoreNodeOps } from '../../xen/xenstore-types.js';
import type { Logger } from '../log.js';
import type { DaemonMetrics } from '../metrics.js';
import type { RawReportKeys, ReportIntake, ReportIntakeResult } from '../ports.js';

export class ReportTrackerIntake implements ReportIntake {
  private readonly states = new Map<number, ReportTrackerState>();
  private readonly opts: TrackerOptions;

  constructor(private readonly o: { log: Logger; metrics: DaemonMetrics | null; tracker?: TrackerOptions }) {
    this.opts = o.tracker ?? DEFAULT_TRACKER_OPTIONS;
  }

  update(domid: number, raw: RawReportKeys, nowMs: number): ReportIntakeResult {
    const state = this.states.get(domid) ?? initialTrackerState();
    const result = parseDomainReport({ v1: raw.v1, meminfo: raw.meminfo, vmstat: raw.vmstat, uptime: raw.uptime });
    const step = trackReport(state, result, nowMs, this.opts);
    this.states.set(domid, step.state);
    if (step.log?.kind === 'rejected') {
      const more = step.log.suppressed ? ` (${step.log.suppressed} more rejected since the last message)` : '';
      this.o.log.warn({ domid, reason: step.log.reason }, `domain ${domid}: report rejected (${step.log.reason}): ${step.log.detail}${more}`);
    } else if (step.log?.kind === 'recovered') {
      this.o.log.info({ domid }, `domain ${domid}: valid reports again after ${step.log.rejectedSinceGood} rejected`);
    }
    if (step.restart === 'guest') this.o.log.info({ domid }, `domain ${domid}: the guest rebooted (its counters went back)`);
    if (result !== null && !result.ok) {
      this.o.metrics?.badReports.inc({ reason: result.reason });
      return { kind: 'rejected', reason: result.reason };
    }
    if (step.outcome === 'accepted' && step.state.last) return { kind: 'accepted', report: step.state.last as GuestReport };
    return { kind: step.outcome === 'unchanged' ? 'unchanged' : 'absent' };
  }

  latest(domid: number, nowMs: number): { report: GuestReport; atMs: number } | null {
    const s = this.states.get(domid);
    return s ? usableReport(s, nowMs, this.opts) : null;
  }

  flags(domid: number, nowMs: number): string[] {
    const s = this.states.get(domid);
    if (!s) return ['no-report'];
    const flags: string[] = [];
    const st = reportStatus(s, nowMs, this.opts);
    if (st === 'none') flags.push('no-report');
    if (st === 'stale') flags.push('stale-report');
    if (s.rejectedSinceGood > 0) flags.push('bad-report');
    return flags;
  }

  forget(domid: number): void {
    this.states.delete(domid);
  }
}

/** Makes data/xenballoon exist and belong to the guest (idempotent), for xenballoon-report. */
export async function provisionReportNode(xs: XenstoreNodeOps, domid: number): Promise<void> {
  if (domid === 0) return;
  await provisionGuestNodes(xs, domid);
}
