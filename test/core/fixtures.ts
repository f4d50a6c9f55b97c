/** Builders for observations and reports in core tests. Sizes in MiB unless named *Kib. */
import type { DomainObservation, Observation, ReservationObservation } from '../../src/core/types.js';
import type { GuestReport } from '../../src/report/types.js';
import { parsePolicy, type Policy } from '../../src/policy/index.js';

export const MiB = 1024;
export const GiB = 1024 * 1024;

export interface ReportSpec {
  committedAs?: number | null;
  total?: number | null;
  free?: number | null;
  available?: number | null;
  buffers?: number | null;
  cached?: number | null;
  shmem?: number | null;
  swapTotal?: number | null;
  swapFree?: number | null;
  used?: number | null;
  uptimeS?: number | null;
  pswpin?: number | null;
  pgmajfault?: number | null;
  refault?: number | null;
  psiSomeUs?: number | null;
  psiAvg10?: number;
  balloonCurrent?: number | null;
}

const mib = (x: number | null | undefined) => (x === null || x === undefined ? null : Math.round(x * MiB));

/** A v1-style report; sizes in MiB. */
export function report(r: ReportSpec = {}): GuestReport {
  return {
    format: 'v1',
    seq: 1,
    uptimeS: r.uptimeS ?? 100,
    mem: {
      totalKib: mib(r.total === undefined ? 1000 : r.total),
      freeKib: mib(r.free === undefined ? 100 : r.free),
      availableKib: mib(r.available === undefined ? 500 : r.available),
      buffersKib: mib(r.buffers === undefined ? 10 : r.buffers),
      cachedKib: mib(r.cached === undefined ? 100 : r.cached),
      shmemKib: mib(r.shmem === undefined ? 1 : r.shmem),
      swapTotalKib: mib(r.swapTotal === undefined ? 1024 : r.swapTotal),
      swapFreeKib: mib(r.swapFree === undefined ? 1024 : r.swapFree),
      committedAsKib: mib(r.committedAs === undefined ? 200 : r.committedAs),
      usedKib: mib(r.used ?? null),
    },
    counters: {
      pswpin: r.pswpin === undefined ? 0 : r.pswpin,
      pswpout: 0,
      pgmajfault: r.pgmajfault === undefined ? 0 : r.pgmajfault,
      workingsetRefault: r.refault === undefined ? 0 : r.refault,
      oomKill: 0,
    },
    pressure:
      r.psiSomeUs === null
        ? null
        : { someAvg10: r.psiAvg10 ?? 0, fullAvg10: 0, someTotalUs: r.psiSomeUs ?? 0, fullTotalUs: 0 },
    balloonCurrentKib: mib(r.balloonCurrent ?? null),
  };
}

export interface DomainSpec {
  domid: number;
  name?: string;
  /** MiB */
  current: number;
  /** MiB; defaults to current */
  target?: number | null;
  /** MiB */
  staticMax?: number | null;
  /** MiB; defaults to target + 1 */
  maxmem?: number;
  report?: GuestReport | null;
  reportAtMs?: number | null;
  dying?: boolean;
  shutdown?: boolean;
  videoram?: number;
}

export function domain(d: DomainSpec): DomainObservation {
  const target = d.target === undefined ? d.current : d.target;
  return {
    domid: d.domid,
    name: d.name ?? `vm${d.domid}`,
    currentKib: Math.round(d.current * MiB),
    maxmemKib: Math.round((d.maxmem ?? (target ?? d.current) + 1) * MiB),
    staticMaxKib: d.staticMax === null ? null : Math.round((d.staticMax ?? 1024) * MiB),
    targetKib: target === null ? null : Math.round(target * MiB),
    videoramKib: Math.round((d.videoram ?? 0) * MiB),
    dying: d.dying ?? false,
    shutdown: d.shutdown ?? false,
    hvm: false,
    report: d.report === undefined ? null : d.report,
    reportAtMs: d.reportAtMs === undefined ? (d.report ? 0 : null) : d.reportAtMs,
  };
}

export function observation(
  host: { total: number; free: number },
  domains: DomainObservation[],
  reservations: ReservationObservation[] = [],
): Observation {
  return {
    host: { totalKib: host.total * MiB, freeKib: host.free * MiB, scrubKib: 0, outstandingKib: 0 },
    domains,
    reservations,
  };
}

export function policy(yaml = ''): Policy {
  return parsePolicy(yaml, 'test.yaml');
}

export function reservation(id: string, sizeMiB: number, createdAtMs = 0, expiresAtMs = 1e12): ReservationObservation {
  return { id, kib: sizeMiB * MiB, createdAtMs, expiresAtMs };
}
