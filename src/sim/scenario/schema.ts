/**
 * Scenario files (config/scenarios/*.yaml): the host, dom0, the guests launched one after another
 * (and any fleet already running at the start), each guest's OS, balloon driver, reporter and
 * workload. The zod schema is the single definition: it validates, fills defaults, converts sizes
 * (`512M`), rates (`1G/s`) and durations (`63s`) to KiB and ms, and is the TypeScript type.
 * Format reference: docs/simulator.md.
 */
import { z } from 'zod';
import { parseDurationMs, parseRateKibPerMs, parseSizeKib } from '../units.js';

function converted<T>(parse: (v: string | number) => T, what: string) {
  return z.union([z.string(), z.number()]).transform((v, ctx): T => {
    try {
      return parse(v);
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: (err as Error).message || `bad ${what}` });
      return z.NEVER;
    }
  });
}

const size = converted(parseSizeKib, 'size');
const duration = converted(parseDurationMs, 'duration');
const rate = converted((v) => {
  if (typeof v === 'number') throw new Error(`'${v}' is not a rate (use e.g. 100M/s)`);
  return parseRateKibPerMs(v);
}, 'rate');
const fraction = z.number().min(0).max(1);

const eatmem = z.strictObject({
  kind: z.literal('eatmem'),
  max_chunk: size.default(512 * 1024),
  max_sleep: duration.default(63_000),
  max_writes: z.number().int().min(1).max(1_000_000).default(16),
  fault_rate: rate.default(512 * 1024 / 1000),
  /** Each further write to a mapped page (a byte per cache line: nanoseconds). */
  write_time: duration.default(0.000002),
  start_delay: duration.default(0),
  restart_after: duration.default(10_000),
});

const idle = z.strictObject({ kind: z.literal('idle') });

const web = z.strictObject({
  kind: z.literal('web'),
  base_anon: size.default(256 * 1024),
  load_anon: size.default(512 * 1024),
  hot_file: size.default(1024 * 1024),
  stream: rate.default(2 * 1024 / 1000),
  touch_rate: rate.default(200 * 1024 / 1000),
  period: duration.default(3_600_000),
  restart_after: duration.default(10_000),
});

const database = z.strictObject({
  kind: z.literal('database'),
  pool: size.default(4 * 1024 * 1024),
  other_anon: size.default(256 * 1024),
  hot_fraction: fraction.default(0.8),
  warmup: duration.default(300_000),
  file_ws: size.default(256 * 1024),
  touch_rate: rate.default(1024 * 1024 / 1000),
  stream: rate.default(1024 / 1000),
  restart_after: duration.default(30_000),
});

const batch = z.strictObject({
  kind: z.literal('batch'),
  base_anon: size.default(128 * 1024),
  min_spike: size.default(256 * 1024),
  max_spike: size.default(2 * 1024 * 1024),
  mean_gap: duration.default(600_000),
  ramp: duration.default(30_000),
  max_hold: duration.default(300_000),
  touch_rate: rate.default(1024 * 1024 / 1000),
  start_delay: duration.default(0),
  restart_after: duration.default(10_000),
});

const trace = z.strictObject({
  kind: z.literal('trace'),
  /** CSV path, relative to the scenario file. */
  file: z.string().min(1),
  hot_fraction: fraction.default(0.5),
  touch_rate: rate.default(100 * 1024 / 1000),
  loop: z.boolean().default(true),
  restart_after: duration.default(10_000),
});

const steady = z.strictObject({
  kind: z.literal('steady'),
  anon: size.default(0),
  committed: size.default(0),
  hot_fraction: fraction.default(0.5),
  touch_rate: rate.default(100 * 1024 / 1000),
  file_ws: size.default(0),
});

/** Hostile guests (workloads/hostile.ts): forged reports, no memory of their own. */
const hostileFields = {
  period: duration.default(2000),
  flip: duration.default(3000),
  lie_for: duration.default(30_000),
  swap: size.default(1024 * 1024),
  committed: size.default(4_000_000),
  used: size.default(1024 * 1024),
};
const liar = z.strictObject({ kind: z.literal('liar'), ...hostileFields });
const flipper = z.strictObject({ kind: z.literal('flipper'), ...hostileFields });
const silentAfterLie = z.strictObject({ kind: z.literal('silent-after-lie'), ...hostileFields });
const qubesLiar = z.strictObject({ kind: z.literal('qubes-liar'), ...hostileFields });

export const workloadSchema = z.discriminatedUnion('kind', [eatmem, idle, web, database, batch, trace, steady, liar, flipper, silentAfterLie, qubesLiar]);
export type WorkloadSpec = z.infer<typeof workloadSchema>;

const os = z.strictObject({
  /** Kernel memory outside MemTotal; `auto`: measured Debian 12 footprint, scaled by maxmem. */
  reserved: z.union([z.literal('auto'), size]).default('auto'),
  kernel: size.default(12 * 1024),
  anon: size.default(24 * 1024),
  committed: size.default(72 * 1024),
  /**
   * Committed_AS counts the workload's commitments times this: > 1 over-states what it touches
   * (runtimes that reserve heap up front), < 1 under-states it (MAP_NORESERVE arenas, memory
   * the kernel does not account). 1: as Linux counts private writable mappings.
   */
  committed_scale: z.number().min(0).max(100).default(1),
  file_ws: size.default(16 * 1024),
  touch_rate: rate.default(256 / 1000),
  swap: size.default(1024 * 1024),
  swap_rate: rate.default(50 * 1024 / 1000),
  disk_rate: rate.default(50 * 1024 / 1000),
  boot: duration.default(5000),
});

export const balloonSchema = z.strictObject({
  rate: rate.default(1024 * 1024 / 1000),
  up_rate: rate.optional(),
  down_rate: rate.optional(),
  floor: size.optional(),
  ceiling: size.optional(),
  stuck_from: duration.optional(),
  stuck_for: duration.optional(),
  intermittent: z.strictObject({ period: duration, stuck: duration }).optional(),
});

const reporter = z.strictObject({
  poll: duration.default(1000),
  heartbeat: duration.default(10_000),
  min_interval: duration.default(250),
  /** xenballoon-report's --threshold-mem, --threshold-events, --threshold-stall-ms. */
  threshold_mem: size.default(16 * 1024),
  threshold_events: z.number().int().min(0).default(1024),
  threshold_stall: duration.default(10),
});

/** Keys a guest template may set; `guest_defaults` uses the same shape, all optional. */
const templateFields = {
  memory: size,
  maxmem: size,
  os: os.default(os.parse({})),
  balloon: balloonSchema.default(balloonSchema.parse({})),
  reporter: reporter.default(reporter.parse({})),
  workload: workloadSchema,
};

export const guestTemplateSchema = z.strictObject({
  /** Domains are named `<name>-<n>`. */
  name: z.string().regex(/^[A-Za-z0-9_.-]{1,48}$/, 'names: letters, digits, _ . - (at most 48)'),
  count: z.number().int().min(1).max(100_000).default(1),
  ...templateFields,
});
export type GuestTemplate = z.infer<typeof guestTemplateSchema>;

export const scenarioSchema = z.strictObject({
  name: z.string().min(1),
  description: z.string().default(''),
  seed: z.number().int().min(0).max(0xffffffff).default(1),
  duration: duration,
  tick: duration.default(100),
  /** Timeline sampling period for CSV/SVG output. */
  sample: duration.default(5000),
  host: z.strictObject({
    memory: size,
    /** Xen's own memory; `auto`: 8 MiB + memory/128 (heap + frame table). */
    xen_overhead: z.union([z.literal('auto'), size]).default('auto'),
    per_domain_overhead: size.default(1024),
    scrub_rate: rate.default(1024 * 1024 / 1000),
    teardown_rate: rate.default(2 * 1024 * 1024 / 1000),
    build_rate: rate.default(1024 * 1024 / 1000),
    claims: z.boolean().default(true),
  }),
  dom0: z.strictObject({ memory: size }),
  launch: z.strictObject({
    /** After a launched guest is built, wait this long before asking for the next one. */
    gap: duration.default(10_000),
    /** `sequential`: each template's guests in turn; `interleave`: round-robin across templates. */
    order: z.enum(['sequential', 'interleave']).default('sequential'),
  }).default({ gap: 10_000, order: 'sequential' }),
  /** Merged under every template in `guests` and `fleet` (a template's own keys win). */
  guest_defaults: z.record(z.string(), z.unknown()).default({}),
  /** Launched one after another through the controller's launch API. */
  guests: z.array(z.unknown()).default([]),
  /** Already running when the scenario starts (created without asking the controller). */
  fleet: z.array(z.unknown()).default([]),
});

export type ScenarioHeader = z.infer<typeof scenarioSchema>;

export interface Scenario extends Omit<ScenarioHeader, 'guests' | 'fleet' | 'guest_defaults'> {
  guests: GuestTemplate[];
  fleet: GuestTemplate[];
  /** Directory of the scenario file (trace files resolve against it). */
  baseDir: string;
  /** Where it came from, for messages. */
  source: string;
}
