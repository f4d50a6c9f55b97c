import { describe, expect, it } from 'vitest';
import { FaultError, FaultPlan, parseFault } from '../../src/sim/sim-host/faults.js';

describe('sim-host --inject', () => {
  it('parses the faults and answers for them at a simulated time', () => {
    const plan = new FaultPlan([parseFault('setmaxmem-eperm:idle-3'), parseFault('xenstore-stall:10@30s'), parseFault('xenstore-stall:1m@2')]);
    expect(plan.deniesMaxmem('idle-3')).toBe(true);
    expect(plan.deniesMaxmem('idle-30')).toBe(false);
    expect([1_999, 2_000, 29_999, 30_000, 39_999, 40_000, 62_000].map((t) => plan.stalledAt(t))).toEqual([false, true, true, true, true, true, false]);
  });

  it('refuses a bad fault with one line naming the forms', () => {
    expect(() => parseFault('meteor:now')).toThrow(new FaultError("--inject: unknown fault 'meteor'; known: setmaxmem-eperm:NAME or xenstore-stall:SECONDS@AT"));
    expect(() => parseFault('setmaxmem-eperm:')).toThrow(/name the domain/);
    expect(() => parseFault('xenstore-stall:10')).toThrow(/give SECONDS@AT/);
    expect(() => parseFault('xenstore-stall:soon@5')).toThrow(/SECONDS 'soon' is not a duration/);
  });
});
