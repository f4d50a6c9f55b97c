/**
 * Turns a scenario's guest template into the parts of a simulated guest: its OS configuration,
 * workload, balloon driver settings and reporter settings, each workload with its own seeded
 * random stream (named after the domain, so streams do not depend on launch order elsewhere).
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Prng } from '../prng.js';
import type { GuestTemplate, WorkloadSpec } from '../scenario/schema.js';
import { Batch } from '../workloads/batch.js';
import { Database } from '../workloads/database.js';
import { Eatmem } from '../workloads/eatmem.js';
import { Hostile } from '../workloads/hostile.js';
import { Idle } from '../workloads/idle.js';
import { Steady } from '../workloads/steady.js';
import { parseTraceCsv, type TracePoint, TraceReplay } from '../workloads/trace.js';
import type { Workload } from '../workloads/types.js';
import { WebServer } from '../workloads/web.js';
import type { BalloonConfig } from './balloon.js';
import { defaultReservedKib, type GuestOsConfig } from './linux-guest.js';
import type { ReporterConfig } from './reporter.js';

const traceCache = new Map<string, TracePoint[]>();

function loadTrace(path: string): TracePoint[] {
  let points = traceCache.get(path);
  if (!points) {
    points = parseTraceCsv(readFileSync(path, 'utf8'), path);
    traceCache.set(path, points);
  }
  return points;
}

export function buildWorkload(spec: WorkloadSpec, rng: Prng, baseDir: string): Workload {
  switch (spec.kind) {
    case 'eatmem':
      return new Eatmem({
        maxChunkKib: spec.max_chunk,
        maxSleepMs: spec.max_sleep,
        maxWrites: spec.max_writes,
        faultRateKibPerMs: spec.fault_rate,
        writeMs: spec.write_time,
        startDelayMs: spec.start_delay,
        restartAfterMs: spec.restart_after,
      }, rng);
    case 'idle':
      return new Idle();
    case 'liar':
    case 'flipper':
    case 'silent-after-lie':
    case 'qubes-liar':
      return new Hostile(spec.kind, {
        periodMs: spec.period, flipMs: spec.flip, lieForMs: spec.lie_for,
        swapKib: spec.swap, committedKib: spec.committed, usedKib: spec.used,
      });
    case 'web':
      return new WebServer({
        baseAnonKib: spec.base_anon,
        loadAnonKib: spec.load_anon,
        hotFileKib: spec.hot_file,
        streamKibPerMs: spec.stream,
        touchRateKibPerMs: spec.touch_rate,
        periodMs: spec.period,
        restartAfterMs: spec.restart_after,
      }, rng);
    case 'database':
      return new Database({
        poolKib: spec.pool,
        otherAnonKib: spec.other_anon,
        hotFraction: spec.hot_fraction,
        warmupMs: spec.warmup,
        fileWsKib: spec.file_ws,
        touchRateKibPerMs: spec.touch_rate,
        streamKibPerMs: spec.stream,
        restartAfterMs: spec.restart_after,
      }, rng);
    case 'batch':
      return new Batch({
        baseAnonKib: spec.base_anon,
        minSpikeKib: spec.min_spike,
        maxSpikeKib: spec.max_spike,
        meanGapMs: spec.mean_gap,
        rampMs: spec.ramp,
        maxHoldMs: spec.max_hold,
        touchRateKibPerMs: spec.touch_rate,
        startDelayMs: spec.start_delay,
        restartAfterMs: spec.restart_after,
      }, rng);
    case 'trace':
      return new TraceReplay({
        points: loadTrace(resolve(baseDir, spec.file)),
        hotFraction: spec.hot_fraction,
        touchRateKibPerMs: spec.touch_rate,
        loop: spec.loop,
        restartAfterMs: spec.restart_after,
      });
    case 'steady':
      return new Steady({
        anonKib: spec.anon,
        committedKib: spec.committed,
        hotFraction: spec.hot_fraction,
        touchRateKibPerMs: spec.touch_rate,
        fileWsKib: spec.file_ws,
      });
  }
}

export function osConfig(t: Pick<GuestTemplate, 'os' | 'maxmem'>): GuestOsConfig {
  const o = t.os;
  return {
    reservedKib: o.reserved === 'auto' ? defaultReservedKib(t.maxmem) : o.reserved,
    kernelKib: o.kernel,
    anonKib: o.anon,
    committedKib: o.committed,
    committedScale: o.committed_scale,
    fileWsKib: o.file_ws,
    touchRateKibPerMs: o.touch_rate,
    swapKib: o.swap,
    swapRateKibPerMs: o.swap_rate,
    diskRateKibPerMs: o.disk_rate,
    bootMs: o.boot,
  };
}

export function balloonConfig(t: Pick<GuestTemplate, 'balloon'>, rng: Prng): BalloonConfig {
  const b = t.balloon;
  return {
    upRateKibPerMs: b.up_rate ?? b.rate,
    downRateKibPerMs: b.down_rate ?? b.rate,
    floorKib: b.floor ?? null,
    ceilingKib: b.ceiling ?? null,
    stuckFromMs: b.stuck_from ?? (b.stuck_for !== undefined ? 0 : null),
    stuckForMs: b.stuck_for ?? null,
    intermittent: b.intermittent
      ? { periodMs: b.intermittent.period, stuckMs: b.intermittent.stuck, phaseMs: rng.int(0, Math.max(0, b.intermittent.period - 1)) }
      : null,
  };
}

export function reporterConfig(t: Pick<GuestTemplate, 'reporter'>): ReporterConfig {
  const r = t.reporter;
  return {
    pollMs: r.poll,
    heartbeatMs: r.heartbeat,
    minIntervalMs: r.min_interval,
    thresholdKib: r.threshold_mem,
    thresholdEvents: r.threshold_events,
    thresholdStallUs: r.threshold_stall * 1000,
  };
}
