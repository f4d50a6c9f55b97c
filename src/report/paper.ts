/**
 * The paper's directed-ballooning format (Magenheimer 2008, xenballoond in Xen's
 * tools/xenballoon): the guest copies raw /proc/meminfo to memory/meminfo, raw /proc/vmstat to
 * memory/vmstat and /proc/uptime to memory/uptime. Only memory/meminfo is required; of it,
 * MemTotal and MemFree. Under libxl a guest cannot write memory/ unless dom0 created those
 * nodes for it (see provision.ts).
 */
import { RAW_MAX_BYTES, UPTIME_MAX_BYTES } from './limits.js';
import { parseMeminfoText, parseUptimeText, parseVmstatText, type VmstatCounters } from './proc.js';
import { reject, type ReportResult } from './result.js';
import { consistencyProblem, usedKibOf } from './schema.js';
import { checkGuestText, type GuestValue } from './text.js';

export interface PaperValues {
  meminfo: GuestValue;
  /** Absent, or an empty node, means the guest does not publish it. */
  vmstat?: GuestValue | null;
  uptime?: GuestValue | null;
}

function present(v: GuestValue | null | undefined): v is GuestValue {
  return v !== null && v !== undefined && v.length > 0;
}

export function parsePaperReport(values: PaperValues): ReportResult {
  const text = checkGuestText(values.meminfo, RAW_MAX_BYTES);
  if (!text.ok) return { ...text, detail: `memory/meminfo: ${text.detail}` };
  const mem = parseMeminfoText(text.value);
  if (!mem.ok) return mem;
  if (mem.value.totalKib === null) return reject('missing_field', 'meminfo has no MemTotal');
  if (mem.value.freeKib === null) return reject('missing_field', 'meminfo has no MemFree');
  const problem = consistencyProblem(mem.value);
  if (problem !== null) return reject('inconsistent', `meminfo: ${problem}`);

  let counters: VmstatCounters = { pswpin: null, pswpout: null, pgmajfault: null, workingsetRefault: null, oomKill: null };
  if (present(values.vmstat)) {
    const vt = checkGuestText(values.vmstat, RAW_MAX_BYTES);
    if (!vt.ok) return { ...vt, detail: `memory/vmstat: ${vt.detail}` };
    const vm = parseVmstatText(vt.value);
    if (!vm.ok) return vm;
    counters = vm.value;
  }
  let uptimeS: number | null = null;
  if (present(values.uptime)) {
    const ut = checkGuestText(values.uptime, UPTIME_MAX_BYTES);
    if (!ut.ok) return { ...ut, detail: `memory/uptime: ${ut.detail}` };
    const up = parseUptimeText(ut.value);
    if (!up.ok) return up;
    uptimeS = up.value;
  }
  return {
    ok: true,
    report: {
      format: 'paper',
      seq: null,
      uptimeS,
      mem: { ...mem.value, usedKib: usedKibOf(mem.value) },
      counters,
      pressure: null,
      balloonCurrentKib: null,
    },
  };
}
