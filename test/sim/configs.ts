/**
 * Small guest and eatmem configurations the simulator's unit tests start from; each test file
 * overrides what its cases are about.
 */
import type { GuestOsConfig } from '../../src/sim/guest/linux-guest.js';
import type { EatmemConfig } from '../../src/sim/workloads/eatmem.js';

export const MiB = 1024;

/** A 50M-reserved Linux with 1G of swap, booted, no page cache to speak of. */
export const guestOs = (over: Partial<GuestOsConfig> = {}): GuestOsConfig => ({
  reservedKib: 50 * MiB,
  kernelKib: 12 * MiB,
  anonKib: 24 * MiB,
  committedKib: 72 * MiB,
  fileWsKib: 0,
  touchRateKibPerMs: 0,
  swapKib: 1024 * MiB,
  swapRateKibPerMs: 100 * MiB / 1000,
  diskRateKibPerMs: 100 * MiB / 1000,
  bootMs: 0,
  ...over,
});

/** The paper's eatmem: chunks up to 512M, up to 16 writes a page. */
export const eatmemConfig = (over: Partial<EatmemConfig> = {}): EatmemConfig => ({
  maxChunkKib: 512 * MiB,
  maxSleepMs: 63_000,
  maxWrites: 16,
  faultRateKibPerMs: 512 * MiB / 1000,
  writeMs: 0.000002,
  startDelayMs: 0,
  restartAfterMs: 10_000,
  ...over,
});
