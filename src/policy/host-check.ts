/**
 * A sanity check `policy check` makes against the host it runs on: `host.reserve` is kept free
 * and never handed to guests, so a reserve at or above what the host has beside dom0 squeezes
 * every guest to its minimum (a `100%` or a `1T` on a 2 GiB host passed before). Pure: the host's
 * numbers come in as arguments.
 */
import { formatKib } from './units.js';
import type { Policy } from './schema.js';

export interface VisibleHost {
  totalKib: number;
  /** What dom0 holds (it is not a guest); 0 when unknown. */
  dom0Kib: number;
  /** Where the numbers come from, for the message (`this host`, `--host-memory`). */
  source: string;
}

export type ReserveVerdict =
  | { kind: 'ok' }
  | { kind: 'error'; message: string }
  | { kind: 'warning'; message: string };

export function reserveKibOn(policy: Policy, totalKib: number): number {
  const r = policy.host.reserve;
  return Math.round(r.kind === 'kib' ? r.kib : r.fraction * totalKib);
}

export function checkReserve(policy: Policy, host: VisibleHost | null): ReserveVerdict {
  const r = policy.host.reserve;
  if (r.kind === 'fraction' && r.fraction >= 1) {
    return { kind: 'error', message: `host.reserve: ${Math.round(r.fraction * 100)}% keeps all of the host's memory from the guests; use a size such as 256M or a small share such as 5%` };
  }
  if (!host) {
    const what = r.kind === 'kib' ? formatKib(r.kib) : `${Math.round(r.fraction * 1000) / 10}%`;
    return { kind: 'warning', message: `host.reserve ${what} not checked against a host (none visible here: not a Xen dom0, or not root); give --host-memory SIZE to check it` };
  }
  const reserveKib = reserveKibOn(policy, host.totalKib);
  const forGuests = host.totalKib - host.dom0Kib - reserveKib;
  if (forGuests <= 0) {
    const beside = host.dom0Kib > 0 ? ` beside dom0's ${formatKib(host.dom0Kib)}` : '';
    return {
      kind: 'error',
      message: `host.reserve: ${formatKib(reserveKib)} leaves nothing for guests on ${host.source} (${formatKib(host.totalKib)} in all${beside}); every guest would be held at its minimum: lower it`,
    };
  }
  return { kind: 'ok' };
}
