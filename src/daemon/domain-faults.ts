/**
 * Per-domain failure containment, as a Kubernetes controller requeues one key: a domain whose
 * action fails (a setmaxmem denied by XSM, a dying domain, a xenstore write refused) gets its own
 * error record and an exponential backoff; the daemon skips only that domain's actions until its
 * retry is due, and every other domain goes on being managed. Pure: time comes in as arguments.
 */

export interface FaultAttempt {
  /** The action that failed (`setTarget`, `setMaxmem`). */
  action: string;
  /** The value it tried to set, KiB. */
  kib: number | null;
}

export interface DomainFault extends FaultAttempt {
  /** errno name when the failure had one (EPERM, EACCES, ETIMEDOUT…), else `error`. */
  code: string;
  message: string;
  /** Consecutive failed attempts. */
  failures: number;
  sinceMs: number;
  lastAtMs: number;
  /** No action is tried on this domain before this time. */
  retryAtMs: number;
}

export interface BackoffOptions {
  /** The wait after the first failure (the daemon uses its interval). */
  baseMs: number;
  /** The longest wait between two attempts. */
  maxMs: number;
}

export const DEFAULT_MAX_BACKOFF_MS = 60_000;

/** Wait before the next attempt after `failures` consecutive failures: base, 2·base, 4·base… up to max. */
export function backoffMs(failures: number, o: BackoffOptions): number {
  const exp = Math.min(30, Math.max(0, failures - 1));
  return Math.min(o.maxMs, o.baseMs * 2 ** exp);
}

export function errorCode(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^[A-Z][A-Z0-9_]{1,31}$/.test(code) ? code : 'error';
}

export type FaultChange =
  | { kind: 'failed'; domid: number; fault: DomainFault; first: boolean }
  | { kind: 'recovered'; domid: number; fault: DomainFault };

export class DomainFaults {
  private readonly faults = new Map<number, DomainFault>();

  constructor(private opts: BackoffOptions) {}

  setBaseMs(baseMs: number): void {
    this.opts = { ...this.opts, baseMs };
  }

  /** Whether the domain's actions may be tried at `nowMs` (no error, or its retry is due). */
  due(domid: number, nowMs: number): boolean {
    const f = this.faults.get(domid);
    return !f || nowMs >= f.retryAtMs;
  }

  /** Records a failed attempt; the domain waits out its backoff before the next one. */
  failed(domid: number, attempt: FaultAttempt, code: string, message: string, nowMs: number): FaultChange {
    const prev = this.faults.get(domid);
    const failures = (prev?.failures ?? 0) + 1;
    const fault: DomainFault = {
      ...attempt, code, message, failures, sinceMs: prev?.sinceMs ?? nowMs, lastAtMs: nowMs,
      retryAtMs: nowMs + backoffMs(failures, this.opts),
    };
    this.faults.set(domid, fault);
    return { kind: 'failed', domid, fault, first: prev === undefined };
  }

  /**
   * After a step: each domain that was due and did not fail this time has recovered (what it
   * was asked succeeded, or nothing is asked of it any more).
   */
  settle(failedNow: ReadonlySet<number>, nowMs: number): FaultChange[] {
    const out: FaultChange[] = [];
    for (const [domid, fault] of this.faults) {
      if (failedNow.has(domid) || nowMs < fault.retryAtMs) continue;
      this.faults.delete(domid);
      out.push({ kind: 'recovered', domid, fault });
    }
    return out;
  }

  get(domid: number): DomainFault | undefined {
    return this.faults.get(domid);
  }

  forget(domid: number): void {
    this.faults.delete(domid);
  }

  get size(): number {
    return this.faults.size;
  }
}

/** One line for status/explain: what was attempted, the errno, how often, and when it is tried again. */
export function describeFault(f: DomainFault, nowMs: number): string {
  const what = f.kib === null ? f.action : `${f.action} to ${f.kib} KiB`;
  const retry = Math.max(0, Math.ceil((f.retryAtMs - nowMs) / 1000));
  return `${what} failed with ${f.code} (${f.failures}× since ${Math.round((nowMs - f.sinceMs) / 1000)} s ago; next try in ${retry} s): ${f.message}`;
}
