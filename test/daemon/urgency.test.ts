import { describe, expect, it } from 'vitest';
import { commitGrowthIsUrgent, URGENT_COMMIT_GROWTH_KIB } from '../../src/daemon/observer.js';

describe('committed memory growth as an urgent event', () => {
  it('is urgent for a jump of at least 16 MiB on a small guest', () => {
    expect(commitGrowthIsUrgent(100_000, 100_000 + URGENT_COMMIT_GROWTH_KIB, 131_072)).toBe(true);
    expect(commitGrowthIsUrgent(100_000, 100_000 + URGENT_COMMIT_GROWTH_KIB - 1, 131_072)).toBe(false);
  });

  it('scales with the guest: 1/16 of its target on a large one', () => {
    const target = 16 * 1024 * 1024; // 16 GiB: 1 GiB is the threshold
    expect(commitGrowthIsUrgent(4_000_000, 4_000_000 + 512 * 1024, target)).toBe(false);
    expect(commitGrowthIsUrgent(4_000_000, 4_000_000 + 1024 * 1024, target)).toBe(true);
  });

  it('is never urgent for shrinking, or without two readings', () => {
    expect(commitGrowthIsUrgent(500_000, 100_000, 131_072)).toBe(false);
    expect(commitGrowthIsUrgent(null, 900_000, 131_072)).toBe(false);
    expect(commitGrowthIsUrgent(100_000, null, 131_072)).toBe(false);
  });
});
