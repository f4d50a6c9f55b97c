/**
 * Static allocation: Xen without any balloon manager. Every guest keeps the memory it was
 * created with (xl's memory=) for its whole life; nobody ever writes memory/target or maxmem.
 *
 * Source: Xen's default behaviour (xl/libxl create a domain with memory= populated and
 * memory/target = memory=; without a balancing daemon nothing changes it).
 *
 * Launching: `xl create` succeeds only when free memory covers the new domain (memory= plus
 * libxl's 1 MiB PV build extra). Nothing will ever free memory on such a host, so a launch
 * that does not fit fails at once instead of waiting.
 *
 * Simplifications: dom0 autoballooning (xl's autoballoon=) is off, as recommended when dom0
 * has a fixed dom0_mem.
 */
import type { Action, Observation } from '../../core/types.js';
import type { Controller } from '../controller.js';
import { DEFAULT_FREE_LAUNCH, FreeLaunchPeer, type FreeLaunchOptions } from './common.js';

export interface StaticOptions {
  launch?: Partial<FreeLaunchOptions>;
}

export class StaticPeer extends FreeLaunchPeer implements Controller {
  readonly name = 'static' as const;
  /** Nothing to do periodically; a slow tick keeps the harness cheap. */
  readonly intervalMs = 10_000;

  constructor(opts: StaticOptions = {}) {
    super('static', { ...DEFAULT_FREE_LAUNCH, patienceMs: 0, ...opts.launch });
  }

  step(_obs: Observation, _nowMs: number): Action[] {
    return [];
  }
}
