/**
 * The control socket's protocol (docs/control-protocol.md): JSON lines over a unix stream socket.
 * Each request is one JSON object on one line; the daemon answers each with one line, in order.
 * The schemas below are the protocol: the daemon types its answers with them and xenballoonctl
 * validates what it receives with them, so the two cannot drift apart.
 */
import { z } from 'zod';
import { SnapshotSchema } from '../core/snapshot.js';

export const PROTOCOL_VERSION = 1;
/** A request line longer than this closes the connection (the socket is root-only, but still). */
export const MAX_REQUEST_BYTES = 64 * 1024;
export const DEFAULT_CONTROL_PATH = '/run/xenballoond/control.sock';

const kib = z.number().int().nonnegative();
const ms = z.number().int().nonnegative();

export const RequestSchema = z.discriminatedUnion('op', [
  z.object({ op: z.literal('ping') }),
  z.object({ op: z.literal('status') }),
  z.object({ op: z.literal('explain'), domain: z.string().min(1).max(256) }),
  z.object({
    op: z.literal('reserve'),
    kib: kib.positive(),
    /** How long to wait for the memory before failing; default 30 s. */
    timeout_ms: ms.max(3_600_000).optional(),
    /** How long the reservation is held once granted unless released; default 300 s. */
    ttl_ms: ms.positive().max(86_400_000).optional(),
    /** Free text shown in status (e.g. the command being launched). */
    label: z.string().max(200).optional(),
    /** The name of the domain it is for (from the xl config): only a new domain of that name takes it. */
    domain: z.string().min(1).max(256).optional(),
  }),
  z.object({
    op: z.literal('release'),
    id: z.string().min(1).max(64),
    /**
     * Release only once a domain created after the reservation was granted has been seen
     * holding its memory (what `launch` asks after `xl create` returns); default false.
     */
    after_domain: z.boolean().optional(),
    timeout_ms: ms.max(3_600_000).optional(),
  }),
  z.object({ op: z.literal('reload') }),
  /** The host as the daemon last saw it, as a snapshot (docs/snapshot.md), with its policy. */
  z.object({ op: z.literal('snapshot') }),
  /** Holds a domain's target where it is, or at `kib` (an operator's decision). */
  z.object({ op: z.literal('pin'), domain: z.string().min(1).max(256), kib: kib.positive().optional() }),
  z.object({ op: z.literal('unpin'), domain: z.string().min(1).max(256) }),
]);
export type Request = z.infer<typeof RequestSchema>;

export const ErrorCodeSchema = z.enum([
  'bad-request', 'not-found', 'impossible', 'timeout', 'cancelled', 'invalid-policy', 'shutting-down', 'internal',
]);
export type ErrorCode = z.infer<typeof ErrorCodeSchema>;

export const ErrorResponseSchema = z.object({ ok: z.literal(false), code: ErrorCodeSchema, error: z.string() });
export type ErrorResponse = z.infer<typeof ErrorResponseSchema>;

export const DomainStatusSchema = z.object({
  domid: z.number().int().nonnegative(),
  name: z.string(),
  /** What the domain holds now (tot_pages). */
  current_kib: kib,
  /** memory/target as the daemon last read or wrote it. */
  target_kib: kib.nullable(),
  /** The core's estimate of what the guest needs; null when unknown (no or stale report). */
  need_kib: kib.nullable(),
  min_kib: kib.nullable(),
  max_kib: kib.nullable(),
  maxmem_kib: kib,
  static_max_kib: kib.nullable(),
  weight: z.number().nonnegative().nullable(),
  /** Swap-in rate from the guest's counters, KiB/s; null when the guest does not report it. */
  swap_in_kib_s: z.number().nonnegative().nullable(),
  /** PSI memory "some" avg10, percent; null when not reported. */
  pressure_some_avg10: z.number().nonnegative().nullable(),
  report_format: z.string().nullable(),
  report_age_ms: ms.nullable(),
  /** Whether the policy manages this domain (dom0 and excluded domains are only shown). */
  managed: z.boolean(),
  /**
   * e.g. `stuck`, `uncooperative`, `no-report`, `stale-report`, `bad-report`, `dying`, `error`,
   * `pinned`, `flooding`; from the core's trust checks: `report-rejected`, `floor-capped`,
   * `claim-capped`, `damped`, `decay`.
   */
  flags: z.array(z.string()),
  /** Set while an action on this domain keeps failing (flag `error`): what was tried and the errno. */
  error: z.object({
    action: z.string(),
    kib: kib.nullable(),
    code: z.string(),
    message: z.string(),
    failures: z.number().int().positive(),
    since_ms: ms,
    retry_at_ms: ms,
  }).nullable().optional(),
  /** Set while the operator holds this domain's target (flag `pinned`). */
  pin: z.object({ target_kib: kib, since_ms: ms, source: z.string() }).nullable().optional(),
  /** Why the core rejected the current report (it counts as no report); null when it did not. */
  report_rejected: z.string().nullable().optional(),
  /** Reports the core's trust checks rejected since the daemon started. */
  report_rejections: z.number().int().nonnegative().optional(),
  /** Its weighted fair share of what managed domains can have; null when not worked out. */
  fair_share_kib: kib.nullable().optional(),
});
export type DomainStatus = z.infer<typeof DomainStatusSchema>;

export const ReservationStateSchema = z.enum(['pending', 'held']);
export const ReservationStatusSchema = z.object({
  id: z.string(),
  kib,
  /** What is still set aside: kib minus what the domain it was bound to already holds. */
  remaining_kib: kib,
  state: ReservationStateSchema,
  label: z.string().nullable(),
  /** The domain it was made for, when the launcher named it. */
  domain: z.string().nullable().optional(),
  created_at_ms: ms,
  expires_at_ms: ms,
  /** The new domain this reservation was consumed by, once one appeared. */
  domid: z.number().int().nonnegative().nullable(),
  /** Why a pending reservation is not ready yet, as the core explains it. */
  reason: z.string().nullable(),
});
export type ReservationStatus = z.infer<typeof ReservationStatusSchema>;

export const StatusSchema = z.object({
  version: z.literal(PROTOCOL_VERSION),
  time_ms: ms,
  daemon: z.object({
    pid: z.number().int(),
    started_at_ms: ms,
    dry_run: z.boolean(),
    interval_ms: ms,
    hypervisor: z.string(),
    xenstore_connected: z.boolean(),
    /** `unresponsive`: connected, but a read has gone unanswered past its deadline (xenstored hung). */
    xenstore: z.enum(['connected', 'unresponsive', 'disconnected']).optional(),
    policy_files: z.array(z.string()),
    policy_loaded_at_ms: ms,
    steps: z.number().int().nonnegative(),
    step_failures: z.number().int().nonnegative(),
    last_step_at_ms: ms.nullable(),
    last_step_duration_ms: z.number().nonnegative().nullable(),
    last_error: z.string().nullable(),
    stalled: z.boolean(),
    /** The daemon's own memory: resident set and V8 heap in use. */
    rss_kib: kib,
    heap_used_kib: kib,
  }),
  host: z.object({
    total_kib: kib,
    free_kib: kib,
    scrub_kib: kib,
    outstanding_kib: kib,
    /** Held for reservations (remaining). */
    reserved_kib: kib,
  }),
  domains: z.array(DomainStatusSchema),
  reservations: z.array(ReservationStatusSchema),
});
export type Status = z.infer<typeof StatusSchema>;

export const ExplainSchema = z.object({
  domain: DomainStatusSchema,
  /** Human-readable lines: what bound the target, in order. */
  lines: z.array(z.string()),
  /** The core's explanation for this domain, as it gave it. */
  detail: z.unknown(),
});
export type Explain = z.infer<typeof ExplainSchema>;

export const ReservationGrantSchema = z.object({ id: z.string(), kib, expires_at_ms: ms });

export const ResponseSchemas = {
  ping: z.object({ ok: z.literal(true), version: z.literal(PROTOCOL_VERSION), pid: z.number().int() }),
  status: z.object({ ok: z.literal(true), status: StatusSchema }),
  explain: z.object({ ok: z.literal(true), explain: ExplainSchema }),
  reserve: z.object({ ok: z.literal(true), reservation: ReservationGrantSchema }),
  release: z.object({ ok: z.literal(true), id: z.string(), domid: z.number().int().nullable() }),
  reload: z.object({ ok: z.literal(true), policy_files: z.array(z.string()) }),
  snapshot: z.object({
    ok: z.literal(true),
    snapshot: SnapshotSchema,
    /** The policy in force, as one policy file (YAML, its own units): what `plan` needs to agree. */
    policy: z.string().nullable(),
    policy_files: z.array(z.string()),
  }),
  pin: z.object({ ok: z.literal(true), domid: z.number().int(), name: z.string(), target_kib: kib }),
  unpin: z.object({ ok: z.literal(true), domid: z.number().int(), name: z.string(), target_kib: kib }),
} as const;

export type ResponseFor<Op extends Request['op']> = z.infer<(typeof ResponseSchemas)[Op]>;
export type Response<Op extends Request['op'] = Request['op']> = ResponseFor<Op> | ErrorResponse;
