/**
 * The daemon's view of the host written down as a snapshot (docs/snapshot.md): what
 * `xenballoonctl snapshot > host.json` saves and `xenballoonctl plan host.json` reads back. Built
 * from the observation the core last decided on, plus the raw report text each guest published
 * (the snapshot carries reports as text, parsed again by the same parsers). Pure.
 */
import type { Snapshot } from '../core/snapshot.js';
import type { Observation } from '../core/types.js';
import type { RawReportKeys } from './ports.js';

type SnapshotReport = NonNullable<Snapshot['domains'][number]['report']>;

/** The schema's limits on report texts: a text over them is left out (the guest is untrusted). */
const LIMITS = { meminfo: 65_536, vmstat: 65_536, uptime: 256, v1: 4096, qubes: 64 } as const;

function within(text: string | null, max: number): text is string {
  return text !== null && text.length <= max;
}

/** A domain's published report as snapshot text, or null when there is none it could carry. */
export function snapshotReport(raw: RawReportKeys, ageMs: number): SnapshotReport | null {
  const age = { age_ms: Math.max(0, Math.round(ageMs)) };
  if (raw.v1 !== null) return within(raw.v1, LIMITS.v1) ? { v1: raw.v1, ...age } : null;
  if (raw.meminfo === null) return null;
  // Qubes writes one number into memory/meminfo; the paper's guests write /proc/meminfo's text.
  if (/^\s*\d+\s*$/.test(raw.meminfo)) return within(raw.meminfo, LIMITS.qubes) ? { qubes: raw.meminfo, ...age } : null;
  if (!within(raw.meminfo, LIMITS.meminfo)) return null;
  return {
    meminfo: raw.meminfo,
    ...(within(raw.vmstat, LIMITS.vmstat) ? { vmstat: raw.vmstat } : {}),
    ...(within(raw.uptime, LIMITS.uptime) ? { uptime: raw.uptime } : {}),
    ...age,
  };
}

/**
 * `rawOf(domid)`: the report keys the guest published (null when unknown). A domain's report is
 * included only when the core had a usable one (so a stale or missing report stays missing).
 */
export function snapshotFromObservation(obs: Observation, nowMs: number, rawOf: (domid: number) => RawReportKeys | null): Snapshot {
  return {
    now_ms: Math.max(0, Math.round(nowMs)),
    host: {
      total_kib: obs.host.totalKib, free_kib: obs.host.freeKib, scrub_kib: obs.host.scrubKib, outstanding_kib: obs.host.outstandingKib,
    },
    domains: obs.domains.map((d) => {
      const raw = d.report && d.reportAtMs !== null ? rawOf(d.domid) : null;
      const report = raw && d.reportAtMs !== null ? snapshotReport(raw, nowMs - d.reportAtMs) : null;
      return {
        domid: d.domid,
        name: d.name.slice(0, 256),
        current_kib: d.currentKib,
        static_max_kib: d.staticMaxKib,
        target_kib: d.targetKib,
        maxmem_kib: d.maxmemKib,
        videoram_kib: d.videoramKib,
        dying: d.dying,
        shutdown: d.shutdown,
        hvm: d.hvm,
        ...(report ? { report } : {}),
      };
    }),
    reservations: obs.reservations.map((r) => ({ id: r.id.slice(0, 128), kib: r.kib, age_ms: Math.max(0, Math.round(nowMs - r.createdAtMs)) })),
  };
}
