/**
 * hypervisor.sock: the simulated host's stand-in for libxenctrl (and the bit of the toolstack a
 * launcher needs), as newline-delimited JSON over a unix socket. One request per line:
 *
 *   {"id":1,"op":"physinfo"}
 *   -> {"id":1,"ok":true,"result":{"total_kib":2097152,"free_kib":...,"scrub_kib":0,"outstanding_kib":0}}
 *   -> {"id":1,"ok":false,"error":{"code":"ENOENT","message":"no domain 7"}}
 *
 * Replies carry the request's id and may come out of order (a `create` answers once the domain
 * is built). Sizes are KiB, times ms. Reference: docs/simulator.md.
 *
 * Shared by the server (src/sim/sim-host) and the client (src/xen/sim-hypervisor.ts).
 */
import { z } from 'zod';

export const PROTOCOL_VERSION = 1;
/** A request or reply line longer than this is refused (and the connection closed). */
export const MAX_LINE_BYTES = 1024 * 1024;

const id = z.union([z.number().int(), z.string().max(64)]);
const domid = z.number().int().min(0).max(0x7fef);
const kib = z.number().int().min(0).max(2 ** 50);

export const requestSchema = z.discriminatedUnion('op', [
  z.strictObject({ id, op: z.literal('hello') }),
  z.strictObject({ id, op: z.literal('physinfo') }),
  z.strictObject({ id, op: z.literal('domains') }),
  z.strictObject({ id, op: z.literal('setmaxmem'), domid, kib }),
  z.strictObject({
    id,
    op: z.literal('create'),
    name: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/),
    memory_kib: kib.refine((v) => v > 0, 'memory_kib must be positive'),
    maxmem_kib: kib,
    /** A guest template of the running scenario (its OS, workload, balloon); default: the first. */
    template: z.string().max(64).optional(),
  }),
  z.strictObject({ id, op: z.literal('destroy'), domid }),
  z.strictObject({ id, op: z.literal('guest'), domid }),
  z.strictObject({
    id,
    op: z.literal('set-guest'),
    domid,
    /** A workload as scenario files write it (e.g. {"kind":"steady","anon":"300M"}). */
    workload: z.record(z.string(), z.unknown()).optional(),
    /** Balloon driver settings as scenario files write them (e.g. {"stuck_for":"1h"}). */
    balloon: z.record(z.string(), z.unknown()).optional(),
  }),
  z.strictObject({ id, op: z.literal('time') }),
]);

export type HvRequest = z.infer<typeof requestSchema>;
export type HvOp = HvRequest['op'];

export type HvErrorCode = 'EINVAL' | 'ENOENT' | 'ENOMEM' | 'EEXIST' | 'EBUSY' | 'ESHUTDOWN' | 'EPERM';

/** A request the host refused, with the code its reply carries. */
export class SimHostError extends Error {
  constructor(readonly code: HvErrorCode, message: string) {
    super(message);
    this.name = 'SimHostError';
  }
}

export interface HvPhysinfo {
  total_kib: number;
  free_kib: number;
  scrub_kib: number;
  outstanding_kib: number;
}

export interface HvDomain {
  domid: number;
  name: string;
  tot_kib: number;
  max_kib: number;
  outstanding_kib: number;
  dying: boolean;
  shutdown: boolean;
  shutdown_reason: number;
  hvm: boolean;
  paused: boolean;
  /** `building` while xl create is still populating it. */
  state: 'building' | 'running' | 'dying';
}

export interface HvHello {
  version: 'sim';
  protocol: number;
  scenario: string;
  seed: number;
  speed: number;
  now_ms: number;
}

export interface HvGuest {
  domid: number;
  name: string;
  template: string;
  workload: string;
  booted: boolean;
  target_kib: number;
  tot_kib: number;
  mem_total_kib: number;
  free_kib: number;
  available_kib: number;
  cached_kib: number;
  anon_kib: number;
  swap_used_kib: number;
  committed_kib: number;
  swap_in_kib: number;
  swap_out_kib: number;
  oom_kills: number;
  psi_some_avg10: number;
  balloon_stuck: boolean;
  reports: number;
}

export interface HvResults {
  hello: HvHello;
  physinfo: HvPhysinfo;
  domains: { domains: HvDomain[] };
  setmaxmem: Record<string, never>;
  create: { domid: number };
  destroy: Record<string, never>;
  guest: HvGuest;
  'set-guest': Record<string, never>;
  time: { now_ms: number; speed: number };
}

export type HvReply =
  | { id: number | string | null; ok: true; result: unknown }
  | { id: number | string | null; ok: false; error: { code: HvErrorCode; message: string } };
