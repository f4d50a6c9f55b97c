/**
 * The policy file format. One zod schema per level; the TypeScript types are inferred from them,
 * so what is validated is exactly what the program reads. Values come out in program units:
 * sizes in KiB, rates in KiB/s, percentages as fractions, durations in ms, thresholds set to
 * `off` as null.
 *
 * Every field of a file is optional: a file (or a `policy.d/` drop-in) says only what it
 * changes. The complete set of defaults is BUILTIN_SETTINGS (defaults.ts), which the shipped
 * config/policy.yaml spells out with comments (a test keeps the two equal).
 */
import { z } from 'zod';
import {
  formatKib,
  parseDurationMs,
  parsePercent,
  parsePerSecond,
  parseRateKibPerS,
  parseSizeKib,
  UnitError,
} from './units.js';

/** A schema for a value written with a unit; the parser's message becomes the zod issue. */
function unit<T>(what: string, parse: (v: string | number) => T) {
  return z.unknown().transform((value, ctx): T => {
    if (typeof value !== 'string' && typeof value !== 'number') {
      ctx.issues.push({ code: 'custom', message: `expected ${what}, not ${describe(value)}`, input: value });
      return z.NEVER;
    }
    try {
      return parse(value);
    } catch (err) {
      if (!(err instanceof UnitError)) throw err;
      ctx.issues.push({ code: 'custom', message: err.message, input: value });
      return z.NEVER;
    }
  });
}

function describe(value: unknown): string {
  if (value === null || value === undefined) return 'an empty value';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  return `${typeof value} ${JSON.stringify(value)}`;
}

/** An amount of memory, or a share of a whole (static-max for min/max, host total for reserve). */
export type SizeOrFraction = { kind: 'kib'; kib: number } | { kind: 'fraction'; fraction: number };
export type MinSpec = { kind: 'auto' } | SizeOrFraction;
export type MaxSpec = { kind: 'static-max' } | SizeOrFraction;

function sizeOrFraction(value: string | number, maxPercent = 100): SizeOrFraction {
  if (typeof value === 'string' && value.trim().endsWith('%')) {
    return { kind: 'fraction', fraction: parsePercent(value, maxPercent) };
  }
  return { kind: 'kib', kib: parseSizeKib(value) };
}

const Size = unit('a size such as 512M', parseSizeKib);
const Percent = unit('a percentage such as 10%', (v) => parsePercent(v, 1000));
const Duration = unit('a duration such as 5s', parseDurationMs);
const SizeOrPct = unit('a size such as 64M or a percentage such as 2%', (v) => sizeOrFraction(v));
const Min = unit('auto, a size such as 256M, or a percentage of static-max such as 25%', (v): MinSpec =>
  v === 'auto' ? { kind: 'auto' } : sizeOrFraction(v),
);
const Max = unit('static-max, a size such as 4G, or a percentage of static-max such as 75%', (v): MaxSpec =>
  v === 'static-max' ? { kind: 'static-max' } : sizeOrFraction(v),
);
/** A rate, or null for `off`/`unlimited` (meaning depends on the key; documented there). */
const RateOrOff = (off: string) =>
  unit(`a rate such as 64M/s, or ${off}`, (v) => (v === off ? null : parseRateKibPerS(String(v))));
const PercentOrOff = unit('a percentage such as 10%, or off', (v) => (v === 'off' ? null : parsePercent(v)));
const PerSecondOrOff = unit('a count per second such as 200/s, or off', (v) => (v === 'off' ? null : parsePerSecond(v)));
const Step = unit('a size such as 64M or a percentage of current memory such as 10%', (v) => sizeOrFraction(v, 1000));

export const Estimator = z.enum(['committed_as', 'used', 'available']);
export type Estimator = z.output<typeof Estimator>;
export const SurplusMode = z.enum(['keep-free', 'share']);
export type SurplusMode = z.output<typeof SurplusMode>;

export const NeedSchema = z.strictObject({
  /** Which guest statistic is the base of the need (docs/policy.md). */
  estimator: Estimator.optional(),
  /** Multiplier on the base (qmemman uses 1.3 on `used`). */
  factor: z.number().min(0.1).max(10).optional(),
  /** Kept above the base, as a fraction of it ... */
  headroom: Percent.optional(),
  /** ... and at least this much (KiB). */
  min_headroom: Size.optional(),
  /** A report older than this (ms) is stale: the domain's target is held. */
  stale_after: Duration.pipe(z.number().min(1, 'stale_after must be above 0')).optional(),
  /**
   * Share of the guest's page cache counted in its use level (with what it holds in RAM and
   * swap): the re-read part of a cache is a working set, the rest is not.
   */
  cache_in_use: unit('a percentage such as 50%', (v) => parsePercent(v, 100)).optional(),
  /**
   * How long (ms) a domain counts as active after its need rose or it showed pressure: while
   * active, reservations for new domains do not take memory it needs.
   */
  active_for: Duration.optional(),
});

export const PressureSchema = z.strictObject({
  /** Swap-in faster than this (KiB/s) is pressure; null = ignore. */
  swap_in: RateOrOff('off').optional(),
  /** Major page faults per second above this are pressure; null = ignore. */
  major_faults: PerSecondOrOff.optional(),
  /** Refaults of evicted pages (KiB/s) above this are pressure; null = ignore. */
  refaults: RateOrOff('off').optional(),
  /** Share of wall time with some task stalled on memory (PSI some) above this; null = ignore. */
  psi_some: PercentOrOff.optional(),
  /** How much a pressured domain's need is raised above its current memory, per interval. */
  step: Step.optional(),
  /** How long without pressure before the raised need starts to decay (ms). */
  quiet: Duration.optional(),
  /** How fast the raised need decays back toward the estimate (KiB/s). */
  decay: unit('a rate such as 8M/s', (v) => parseRateKibPerS(String(v))).optional(),
});

export const RateSchema = z.strictObject({
  /** Fastest a target may shrink (KiB/s) below what the domain holds. */
  down: unit('a rate such as 64M/s', (v) => parseRateKibPerS(String(v)))
    .pipe(z.number().min(1, 'rate.down must be above 0 (a domain must be able to give memory back)'))
    .optional(),
  /** Fastest a target may grow (KiB/s); null = as fast as free memory allows. */
  up: RateOrOff('unlimited').optional(),
});

export const StuckSchema = z.strictObject({
  /** A domain that has not moved toward its target for this long (ms) is stuck. */
  after: Duration.pipe(z.number().min(1, 'stuck.after must be above 0')).optional(),
  /** ... and flagged uncooperative after this long (ms). */
  uncooperative_after: Duration.optional(),
  /** Within this distance (KiB) of its target a domain counts as there. */
  tolerance: Size.optional(),
  /** How long (ms) a domain that could not grow keeps its learned ceiling before we try again. */
  retry: Duration.optional(),
});

const settingsShape = {
  /** Whether xenballoond sets this domain's target at all. */
  manage: z.boolean().optional(),
  need: NeedSchema.optional(),
  pressure: PressureSchema.optional(),
  /** Floor: never allocate less. */
  min: Min.optional(),
  /** Least memory (KiB) the guest's kernel keeps usable above its own measured footprint. */
  min_usable: Size.optional(),
  /**
   * How far below what an idle domain actually uses (anonymous + kernel memory) a reservation
   * for a new domain may push it, into swap. Active domains keep their whole need.
   */
  squeeze: Size.optional(),
  /** Ceiling: never allocate more (always also capped by static-max). */
  max: Max.optional(),
  /** Share of contested memory relative to other domains. */
  weight: z.number().int().min(1).max(10_000).optional(),
  rate: RateSchema.optional(),
  /** No target change smaller than this (KiB). */
  hysteresis: Size.optional(),
  /** What to do with memory nobody needs: keep it free in Xen, or share it by weight up to max. */
  surplus: SurplusMode.optional(),
  stuck: StuckSchema.optional(),
};

type SettingsShapeOutput = z.output<z.ZodObject<typeof settingsShape>>;

/** min > max (both sizes, or both percentages) can be caught without knowing the domain. */
function checkMinMax(s: Pick<SettingsShapeOutput, 'min' | 'max'>, ctx: z.RefinementCtx): void {
  const message = minAboveMax(s.min, s.max);
  if (message) ctx.addIssue({ code: 'custom', message, path: ['min'] });
}

/** Report min > max even when other keys of the same mapping are wrong (every error at once). */
const alwaysCheck = { when: (p: { value: unknown }) => typeof p.value === 'object' && p.value !== null };

export function minAboveMax(min: MinSpec | undefined, max: MaxSpec | undefined): string | null {
  if (!min || !max) return null;
  if (min.kind === 'kib' && max.kind === 'kib' && min.kib > max.kib) {
    return `min (${formatKib(min.kib)}) is above max (${formatKib(max.kib)})`;
  }
  if (min.kind === 'fraction' && max.kind === 'fraction' && min.fraction > max.fraction) {
    return `min (${Math.round(min.fraction * 1000) / 10}%) is above max (${Math.round(max.fraction * 1000) / 10}%)`;
  }
  return null;
}

export const SettingsSchema = z.strictObject(settingsShape).superRefine(checkMinMax, alwaysCheck);
export type Settings = z.output<typeof SettingsSchema>;

export const MatchSchema = z
  .strictObject({
    /** Domain name glob: `*` any run of characters, `?` one character. */
    name: z.string().min(1).max(256).optional(),
    domid: z.number().int().min(0).max(0x7fef).optional(),
  })
  .refine((m) => m.name !== undefined || m.domid !== undefined, { message: 'match needs a name glob or a domid' });
export type Match = z.output<typeof MatchSchema>;

export const RuleSchema = z.strictObject({ match: MatchSchema, ...settingsShape }).superRefine(checkMinMax, alwaysCheck);
export type Rule = z.output<typeof RuleSchema>;

export const HostSchema = z.strictObject({
  /** Kept free in Xen, never handed to guests: a size, or a share of host memory. */
  reserve: SizeOrPct.optional(),
  /** Whether dom0 (domid 0) is balanced like any other domain. */
  manage_dom0: z.boolean().optional(),
  /**
   * When memory is short, memory a domain would get above its use level (Committed_AS it has
   * not touched, its headroom) costs it 1 / (1 - idle_tax) times its share; 100% serves every
   * domain's use before anyone's need, 0% shares use and need alike.
   */
  idle_tax: unit('a percentage such as 90%', (v) => parsePercent(v, 100)).optional(),
});

export const PolicyFileSchema = z.strictObject({
  host: HostSchema.optional(),
  /** How often the daemon runs a control step (ms). */
  interval: Duration.pipe(
    z.number().min(100, 'interval must be at least 100ms').max(600_000, 'interval must be at most 10m'),
  ).optional(),
  defaults: SettingsSchema.optional(),
  /** Per-domain rules; every matching rule applies, later ones override earlier ones. */
  domains: z.array(RuleSchema).optional(),
});
export type PolicyFile = z.output<typeof PolicyFileSchema>;

/** Every key present, nested objects included (what a domain's effective settings are). */
type Complete<T> = {
  [K in keyof T]-?: Exclude<T[K], undefined> extends infer V
    ? V extends { kind: string }
      ? V
      : V extends object
        ? Complete<V>
        : V
    : never;
};

export type DomainSettings = Complete<Settings>;
export type HostSettings = Complete<z.output<typeof HostSchema>>;

/** A policy after every file is read and merged: what the core consumes. */
export interface Policy {
  /** Files it was read from, in the order they were applied. */
  sources: string[];
  host: HostSettings;
  intervalMs: number;
  /** Defaults for every domain (built-in defaults overridden by the files'). */
  defaults: DomainSettings;
  /** Rules in application order (files in name order, rules in file order). */
  rules: Rule[];
}
