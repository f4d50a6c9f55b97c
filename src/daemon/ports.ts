/**
 * What the daemon's shell needs from the outside world, as small interfaces: the xenstore
 * binding, the hypervisor (src/xen/hypervisor.ts), the decision core and the report parsers are
 * adapted to these in src/daemon/adapters/, so the shell can be tested with in-memory fakes.
 */
import type { Explanation } from '../core/explain.js';
import type { Action, Observation } from '../core/types.js';
import type { GuestReport } from '../report/types.js';
import type { XenstoreNodeOps } from '../xen/xenstore-types.js';

export interface StoreWatchEvent {
  path: string;
  token: string;
}

export interface StoreTx {
  /** The node's value, or null when it does not exist. */
  read(path: string): Promise<string | null>;
  write(path: string, value: string): Promise<void>;
}

export type StoreEvent =
  /**
   * `value`: for a watch registered with `{ value: true }` when the store can, the node's value
   * read right after the event (null: it does not exist); absent: read it yourself.
   */
  | { kind: 'watch'; path: string; token: string; value?: string | null }
  /** The connection to xenstored was lost; calls fail until `reconnected`. */
  | { kind: 'disconnected'; error: string }
  /** The connection is back and every watch has been registered again. */
  | { kind: 'reconnected' };

export interface DaemonStore extends XenstoreNodeOps {
  /** The node's value, or null when it does not exist. */
  read(path: string): Promise<string | null>;
  /** Child names, or null when the node does not exist. */
  directory(path: string): Promise<string[] | null>;
  /** Runs `fn` in a transaction, retrying the whole function on EAGAIN (bounded). */
  transaction<T>(fn: (tx: StoreTx) => Promise<T>): Promise<T>;
  /** `value`: deliver the changed node's value with each event when the store can (see StoreEvent). */
  watch(path: string, token: string, options?: { value?: boolean }): Promise<void>;
  /** Missing watches are not an error. */
  unwatch(path: string, token: string): Promise<void>;
  /** Delivers watch events and connection changes; returns an unsubscribe function. */
  subscribe(listener: (ev: StoreEvent) => void): () => void;
  readonly connected: boolean;
  close(): Promise<void>;
}

/** What the daemon shows for each domain, from the core's explanation. */
export interface DomainVerdict {
  managed: boolean;
  needKib: number | null;
  minKib: number | null;
  maxKib: number | null;
  weight: number | null;
  /** Flags the decision sets: stuck, uncooperative, pressure, hold, stale, no-report… */
  flags: string[];
  /** Swap-in rate the decision measured, KiB/s; null when unknown. */
  swapInKibS: number | null;
  /** Why the core rejected its current report, or null/absent; rejections in all. */
  reportRejected?: string | null;
  reportRejections?: number;
  /** Its weighted fair share (policy alone), when the core worked it out. */
  fairShareKib?: number | null;
  /** Why the target is what it is, for `explain` (one line each); built only when asked. */
  lines: () => string[];
  /** The core's own explanation object, passed through to `explain --json`. */
  detail: unknown;
}

export type ReservationVerdictState = 'ready' | 'pending' | 'impossible';
export interface ReservationVerdict {
  state: ReservationVerdictState;
  reason: string | null;
}

export interface Decision {
  actions: Action[];
  domains: Map<number, DomainVerdict>;
  /** Domains whose current report failed the core's trust checks (logged once per episode). */
  untrusted?: readonly { domid: number; name: string; reason: string; count: number }[];
  reservations: Map<string, ReservationVerdict>;
  /** The core's own explanation (for the shortage and pressure log lines); absent in fakes. */
  explanation?: Explanation;
  /** The host's books as the decision saw them (for the negative-budget warning); optional. */
  host?: { budgetKib: number; reserveKib: number; freeKib: number; managedKib: number; fixedKib: number };
}

/** The decision core with its state and policy (src/core behind an adapter). */
export interface Decider {
  readonly intervalMs: number;
  decide(obs: Observation, nowMs: number): Decision;
  /** The policy in force as one policy file (YAML), for snapshots; absent in fakes. */
  policyYaml?(): string;
}

/** Raw report values as read from a domain's xenstore keys (null = node absent). */
export interface RawReportKeys {
  /** data/xenballoon/report */
  v1: string | null;
  /** memory/meminfo (the paper's raw /proc/meminfo, or Qubes' one number) */
  meminfo: string | null;
  /** memory/vmstat (the paper's raw /proc/vmstat) */
  vmstat: string | null;
  /** memory/uptime (the paper's /proc/uptime) */
  uptime: string | null;
}

export type ReportIntakeResult =
  | { kind: 'accepted'; report: GuestReport }
  | { kind: 'rejected'; reason: string }
  /** The same report read again: nothing new. */
  | { kind: 'unchanged' }
  | { kind: 'absent' };

/** Per-domain report parsing and tracking (src/report behind an adapter). */
export interface ReportIntake {
  /** Parses the domain's latest raw keys; remembers the last good report. */
  update(domid: number, raw: RawReportKeys, nowMs: number): ReportIntakeResult;
  /** The last good report and when it arrived, if it is not stale at `nowMs`. */
  latest(domid: number, nowMs: number): { report: GuestReport; atMs: number } | null;
  /** Status flags for the domain's report: `no-report`, `stale-report`, `bad-report`. */
  flags(domid: number, nowMs: number): string[];
  forget(domid: number): void;
}
