/** The per-domain flood guard (src/daemon/flood.ts): windows, strikes, cool-downs, probation, clock steps. */
import { describe, expect, it } from 'vitest';
import {
  FLOOD_COOLDOWN_MAX_MS, FLOOD_COOLDOWN_MS, FLOOD_EVENTS_PER_WINDOW, FLOOD_PROBATION_MS, FLOOD_WINDOW_MS, FloodGuard,
} from '../../src/daemon/flood.js';

function burst(g: FloodGuard, n: number, at: number): string[] {
  return Array.from({ length: n }, () => g.onEvent(at));
}

describe('FloodGuard', () => {
  it('never flags a guest that stays at the limit in every window, however long', () => {
    const g = new FloodGuard();
    for (let w = 0; w < 100; w++) expect(burst(g, FLOOD_EVENTS_PER_WINDOW, w * FLOOD_WINDOW_MS)).not.toContain('throttle');
    expect(g.flagged).toBe(false);
  });

  it('throttles on the first event over the limit, ignores the rest, and counts one episode', () => {
    const g = new FloodGuard();
    const v = burst(g, FLOOD_EVENTS_PER_WINDOW + 50, 0);
    expect(v.indexOf('throttle')).toBe(FLOOD_EVENTS_PER_WINDOW);
    expect(v.slice(FLOOD_EVENTS_PER_WINDOW + 1).every((x) => x === 'ignore')).toBe(true);
    expect(g).toMatchObject({ state: 'throttled', strikes: 1, episodes: 1, ignored: 49 });
  });

  it('doubles the cool-down per strike up to its maximum, and ends the episode after a quiet probation', () => {
    const g = new FloodGuard();
    let now = 0;
    const cooldowns: number[] = [];
    for (let strike = 1; strike <= 6; strike++) {
      burst(g, FLOOD_EVENTS_PER_WINDOW + 1, now);
      const from = now;
      while (g.tick(now) !== 'rewatch') now += 1000;
      cooldowns.push(now - from);
      now += FLOOD_WINDOW_MS;
    }
    expect(cooldowns).toEqual([1, 2, 4, 8, 16, 32].map((k) => Math.min(FLOOD_COOLDOWN_MAX_MS, k * FLOOD_COOLDOWN_MS)));
    expect(g.episodes).toBe(1);
    expect(g.tick(now + FLOOD_PROBATION_MS)).toBe('cleared');
    expect(g).toMatchObject({ state: 'ok', strikes: 0, flagged: false });
    burst(g, FLOOD_EVENTS_PER_WINDOW + 1, now + FLOOD_PROBATION_MS + FLOOD_WINDOW_MS);
    expect(g).toMatchObject({ episodes: 2, strikes: 1 });
  });

  it('is not fooled by a clock stepped back: a new window, no endless cool-down', () => {
    const g = new FloodGuard();
    const t0 = 10_000_000;
    burst(g, FLOOD_EVENTS_PER_WINDOW, t0);
    // An hour back: the old window must not keep counting.
    expect(burst(g, FLOOD_EVENTS_PER_WINDOW, t0 - 3_600_000)).not.toContain('throttle');
    burst(g, FLOOD_EVENTS_PER_WINDOW + 1, t0);
    const back = t0 - 3_600_000;
    expect(g.tick(back)).toBe('none');
    expect(g.tick(back + FLOOD_COOLDOWN_MAX_MS)).toBe('rewatch');
  });
});
