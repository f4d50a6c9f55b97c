/**
 * Qubes OS's format: the guest's meminfo-writer puts one decimal number in memory/meminfo, the
 * KiB it uses (MemTotal - MemFree - Buffers - Cached + SwapTotal - SwapFree), and rewrites it
 * only when it changed noticeably. dom0 pre-creates that node owned by the guest.
 */
import { KIB_MAX, QUBES_MAX_BYTES } from './limits.js';
import { quote, reject, type ReportResult } from './result.js';
import { checkGuestText, decimal, type GuestValue } from './text.js';

export function parseQubesMeminfo(value: GuestValue): ReportResult {
  const text = checkGuestText(value, QUBES_MAX_BYTES);
  if (!text.ok) return { ...text, detail: `memory/meminfo: ${text.detail}` };
  const t = text.value;
  if (/^-[0-9]+$/.test(t)) return reject('out_of_range', `memory/meminfo: negative ${quote(t)}`);
  if (!/^(0|[1-9][0-9]*)$/.test(t)) return reject('bad_number', `memory/meminfo: ${quote(t)} is not a number of KiB`);
  const used = decimal(t, KIB_MAX);
  if (typeof used !== 'number') return reject('out_of_range', `memory/meminfo: ${quote(t)} KiB is beyond any memory`);
  return {
    ok: true,
    report: {
      format: 'qubes',
      seq: null,
      uptimeS: null,
      mem: {
        totalKib: null, freeKib: null, availableKib: null, buffersKib: null, cachedKib: null,
        shmemKib: null, swapTotalKib: null, swapFreeKib: null, committedAsKib: null,
        usedKib: used,
      },
      counters: { pswpin: null, pswpout: null, pgmajfault: null, workingsetRefault: null, oomKill: null },
      pressure: null,
      balloonCurrentKib: null,
    },
  };
}
