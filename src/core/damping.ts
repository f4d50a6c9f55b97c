/**
 * Damping of flipping claims. A guest whose need reverses direction again and again (big, small,
 * big: a lie that flips, or a workload that cannot make up its mind) would make every other
 * guest's target follow it. Once its need reversed by a quarter or more FLIPS_TO_DAMP times
 * within FLIP_WINDOW_MS,
 * its levels are held at their peak over the damping period (the larger of its recent claims):
 * its own target stays put, and so do the others'. Steady guests, and guests whose need moves one
 * way, are never damped.
 */
import type { DomainState } from './state.js';

const FLIP_WINDOW_MS = 20_000;
const FLIPS_TO_DAMP = 3;
/** A move counts when it is at least this share of the larger need (noise and drift do not). */
const FLIP_SHARE = 0.25;
const DAMP_MS = 30_000;

/** Records a new report's need, then holds levels 1..3 at their peak while damped (in place). */
export function damp(
  next: DomainState,
  levels: [number, number, number, number],
  isNew: boolean,
  nowMs: number,
  hysteresisKib: number,
): boolean {
  if (isNew) {
    const need = levels[2];
    const last = next.lastNeedKib;
    if (last !== null && Math.abs(need - last) >= Math.max(hysteresisKib, FLIP_SHARE * Math.max(last, need))) {
      const dir = need > last ? 1 : -1;
      if (next.needDir !== 0 && dir !== next.needDir) {
        const recent = next.flipsAtMs.filter((t) => nowMs - t < FLIP_WINDOW_MS).slice(-(FLIPS_TO_DAMP + 1));
        next.flipsAtMs = [...recent, nowMs];
        if (next.flipsAtMs.length >= FLIPS_TO_DAMP) next.dampUntilMs = nowMs + DAMP_MS;
      }
      next.needDir = dir;
    }
    next.lastNeedKib = need;
  }
  if (next.dampUntilMs === null || nowMs >= next.dampUntilMs) {
    next.dampUntilMs = null;
    next.peakLevels = null;
    return false;
  }
  const p = next.peakLevels;
  const peak: [number, number, number] = [
    Math.max(p?.[0] ?? 0, levels[1]),
    Math.max(p?.[1] ?? 0, levels[2]),
    Math.max(p?.[2] ?? 0, levels[3]),
  ];
  next.peakLevels = peak;
  levels[1] = peak[0];
  levels[2] = Math.max(peak[0], peak[1]);
  levels[3] = Math.max(levels[2], peak[2]);
  return true;
}
