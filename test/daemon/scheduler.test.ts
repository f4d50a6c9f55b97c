import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { StepScheduler } from '../../src/daemon/scheduler.js';

describe('StepScheduler', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  function make(intervalMs = 1000) {
    const steps: { at: number; reasons: readonly string[] }[] = [];
    const s = new StepScheduler({
      intervalMs,
      now: () => Date.now(),
      onError: () => undefined,
      step: async (reasons) => void steps.push({ at: Date.now(), reasons }),
    });
    return { s, steps };
  }

  it('steps once per interval with no events', async () => {
    const { s, steps } = make();
    s.start();
    await vi.advanceTimersByTimeAsync(5_500);
    expect(steps.length).toBe(6); // t=0 and every second after
    await s.stop();
  });

  it('a guest asking for urgency 1,000 times a second costs at most one extra step per interval', async () => {
    const { s, steps } = make();
    s.start();
    await vi.advanceTimersByTimeAsync(1); // first step at t=0
    const timer = setInterval(() => s.urgent('dom:7', 'pressure'), 1);
    await vi.advanceTimersByTimeAsync(10_000);
    clearInterval(timer);
    await s.stop();
    // 10 s: 10 regular steps, plus at most one urgent step per interval from that one guest.
    expect(steps.length).toBeLessThanOrEqual(21);
    expect(steps.length).toBeGreaterThanOrEqual(10);
    const urgent = steps.filter((x) => x.reasons.some((r) => r === 'pressure'));
    expect(urgent.length).toBeGreaterThan(0);
  });

  it('runs an urgent step at once (after the minimum gap), not at the next tick', async () => {
    const { s, steps } = make(1000);
    s.start();
    await vi.advanceTimersByTimeAsync(300);
    expect(steps).toHaveLength(1);
    expect(s.urgent('reservation:r1', 'reservation r1')).toBe(true);
    await vi.advanceTimersByTimeAsync(1);
    expect(steps).toHaveLength(2);
    expect(steps[1]?.reasons).toEqual(['reservation r1']);
    // The same source cannot force another one in the same interval.
    expect(s.urgent('reservation:r1', 'again')).toBe(false);
    await s.stop();
  });

  it('never runs two steps at once, and a failing step does not stop the loop', async () => {
    let running = 0;
    let maxRunning = 0;
    let n = 0;
    const errors: unknown[] = [];
    const s = new StepScheduler({
      intervalMs: 100,
      onError: (e) => errors.push(e),
      step: async () => {
        running++;
        maxRunning = Math.max(maxRunning, running);
        await new Promise((r) => setTimeout(r, 250));
        running--;
        if (++n % 2 === 0) throw new Error('boom');
      },
    });
    s.start();
    for (let i = 0; i < 50; i++) {
      s.urgent(`src${i}`, 'x');
      await vi.advanceTimersByTimeAsync(20);
    }
    await vi.advanceTimersByTimeAsync(2000);
    const stopped = s.stop();
    await vi.advanceTimersByTimeAsync(500);
    await stopped;
    expect(maxRunning).toBe(1);
    expect(n).toBeGreaterThan(5);
    expect(errors.length).toBeGreaterThan(2);
  });

  it('stop waits for the step in flight', async () => {
    let finished = false;
    const s = new StepScheduler({
      intervalMs: 100,
      onError: () => undefined,
      step: async () => {
        await new Promise((r) => setTimeout(r, 500));
        finished = true;
      },
    });
    s.start();
    await vi.advanceTimersByTimeAsync(10);
    const stopped = s.stop();
    await vi.advanceTimersByTimeAsync(600);
    await stopped;
    expect(finished).toBe(true);
  });
});
