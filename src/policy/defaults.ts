/**
 * The built-in defaults: what a policy file that says nothing means. config/policy.yaml writes
 * the same values out with the reasoning behind each (test/policy keeps them equal); change both.
 */
import type { DomainSettings, HostSettings } from './schema.js';

const MiB = 1024;

export const BUILTIN_HOST: HostSettings = {
  reserve: { kind: 'kib', kib: 64 * MiB },
  manage_dom0: false,
  idle_tax: 0.9,
};

export const BUILTIN_INTERVAL_MS = 1000;

export const BUILTIN_SETTINGS: DomainSettings = {
  manage: true,
  need: {
    estimator: 'committed_as',
    factor: 1,
    headroom: 0.1,
    min_headroom: 32 * MiB,
    cache_in_use: 0.5,
    stale_after: 60_000,
    active_for: 120_000,
  },
  pressure: {
    swap_in: 1 * MiB,
    major_faults: null,
    refaults: 8 * MiB,
    psi_some: 0.1,
    step: { kind: 'fraction', fraction: 0.1 },
    quiet: 30_000,
    decay: 8 * MiB,
  },
  min: { kind: 'kib', kib: 64 * MiB },
  min_usable: 32 * MiB,
  squeeze: 32 * MiB,
  max: { kind: 'static-max' },
  weight: 100,
  rate: { down: 64 * MiB, up: null },
  hysteresis: 16 * MiB,
  surplus: 'keep-free',
  stuck: {
    after: 5_000,
    uncooperative_after: 20_000,
    tolerance: 4 * MiB,
    retry: 60_000,
  },
};
