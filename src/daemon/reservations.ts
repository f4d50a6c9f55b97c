/**
 * Reservations: memory set aside for a domain about to be created, so that nothing else takes
 * it in the meantime (the race qmemman users hit: QubesOS #1389, #3265, #9431).
 *
 * A reservation is `pending` until the core says the host has the memory free for it (the core
 * sees every reservation in its Observation, takes it out of the budget it divides among guests
 * and balloons others down within policy to free it), then `held` until released or expired.
 * While held, the first domain that appears binds to it and consumes it as it populates its
 * memory (remaining = size - what that domain holds), so the new domain's memory is never
 * counted twice. A reservation made for a named domain (`launch` knows it from the xl config or
 * `--name`) binds only to a new domain of that name, so a concurrent `xl create` cannot take it.
 * The core may also answer `impossible` (e.g. the minimums do not leave enough); then the
 * request fails with the core's reason (the daemon first lets domains that are still settling
 * report). Held reservations are persisted by the daemon (`persisted()`/`restore()`), so a
 * restart keeps them with their remaining time.
 */
import type { ReservationObservation } from '../core/types.js';
import { formatKib } from '../policy/units.js';
import type { ReservationStatus } from './control-protocol.js';
import type { ReservationVerdict } from './ports.js';

export const DEFAULT_RESERVE_TIMEOUT_MS = 30_000;
export const DEFAULT_RESERVATION_TTL_MS = 300_000;
export const DEFAULT_RELEASE_WAIT_MS = 30_000;

export type ReserveOutcome =
  | { ok: true; id: string; kib: number; expiresAtMs: number }
  | { ok: false; code: 'impossible' | 'timeout' | 'cancelled' | 'shutting-down'; error: string };

export type ReleaseOutcome = { ok: true; id: string; domid: number | null } | { ok: false; code: 'not-found'; error: string };

/** A held reservation as the state file keeps it (times are wall-clock ms). */
export interface PersistedReservation {
  id: string;
  kib: number;
  label: string | null;
  domain: string | null;
  createdAtMs: number;
  expiresAtMs: number;
  knownDomids: number[];
  domid: number | null;
  consumedKib: number;
}

interface Reservation {
  id: string;
  kib: number;
  label: string | null;
  /** The name of the domain it is for, when the launcher knows it: only that domain binds. */
  domain: string | null;
  state: 'pending' | 'held';
  createdAtMs: number;
  /** While pending: when the request times out. While held: when the reservation expires. */
  deadlineMs: number;
  ttlMs: number;
  reason: string | null;
  /** Domains that existed when the reservation was granted (a new one binds to it). */
  knownDomids: Set<number> | null;
  domid: number | null;
  /** The most the bound domain has held: memory it has taken out of the reservation. */
  consumedKib: number;
  waiter: ((o: ReserveOutcome) => void) | null;
  releaseWaiters: ((o: ReleaseOutcome) => void)[];
  releaseDeadlineMs: number | null;
}

export interface ReservationEvent {
  kind: 'granted' | 'failed' | 'expired' | 'released' | 'bound';
  id: string;
  kib: number;
  detail: string;
}

export class ReservationBook {
  private readonly items = new Map<string, Reservation>();
  private seq = 0;
  /** Bumped by every change worth persisting (a held reservation appeared, changed or went). */
  private revision = 0;

  constructor(private readonly idPrefix = 'r') {}

  /** Changes since the book was made; the daemon saves the state file when it moves. */
  get changes(): number {
    return this.revision;
  }

  /** Starts a reservation request; the promise settles at a later `afterDecision`. */
  request(kib: number, opts: { timeoutMs: number; ttlMs: number; label: string | null; domain?: string | null; nowMs: number; signal?: AbortSignal }): { id: string; outcome: Promise<ReserveOutcome> } {
    const id = `${this.idPrefix}${++this.seq}`;
    let resolveFn!: (o: ReserveOutcome) => void;
    const outcome = new Promise<ReserveOutcome>((resolve) => (resolveFn = resolve));
    const r: Reservation = {
      id, kib, label: opts.label, domain: opts.domain ?? null, state: 'pending', createdAtMs: opts.nowMs, deadlineMs: opts.nowMs + opts.timeoutMs,
      ttlMs: opts.ttlMs, reason: null, knownDomids: null, domid: null, consumedKib: 0, waiter: resolveFn,
      releaseWaiters: [], releaseDeadlineMs: null,
    };
    this.items.set(id, r);
    opts.signal?.addEventListener('abort', () => {
      if (r.state === 'pending' && this.items.get(id) === r) this.settle(r, { ok: false, code: 'cancelled', error: 'the client went away' });
    }, { once: true });
    return { id, outcome };
  }

  /** Releases now, or (afterDomain) once a new domain has bound to it; unknown ids fail. */
  release(id: string, opts: { afterDomain: boolean; waitMs: number; nowMs: number }): Promise<ReleaseOutcome> {
    const r = this.items.get(id);
    if (!r) return Promise.resolve({ ok: false, code: 'not-found', error: `no reservation '${id}' (released, expired, or never granted)` });
    if (!opts.afterDomain || r.domid !== null || r.state === 'pending') {
      this.drop(r, { ok: false, code: 'cancelled', error: 'released before it was granted' });
      return Promise.resolve({ ok: true, id, domid: r.domid });
    }
    r.releaseDeadlineMs = Math.min(r.releaseDeadlineMs ?? Infinity, opts.nowMs + opts.waitMs);
    return new Promise((resolve) => r.releaseWaiters.push(resolve));
  }

  /** What the core sees: every reservation with the memory it still sets aside. */
  observations(): ReservationObservation[] {
    return [...this.items.values()]
      .sort((a, b) => a.createdAtMs - b.createdAtMs || Number(a.id.slice(this.idPrefix.length)) - Number(b.id.slice(this.idPrefix.length)))
      .map((r) => ({
        id: r.id,
        kib: this.remaining(r),
        createdAtMs: r.createdAtMs,
        expiresAtMs: r.deadlineMs,
      }));
  }

  private remaining(r: Reservation): number {
    return Math.max(0, r.kib - r.consumedKib);
  }

  /**
   * Deadlines: pending requests that waited too long fail, held reservations past their ttl and
   * `after_domain` releases past their wait are dropped. Runs at every step attempt, also when
   * the step itself fails (the hypervisor gone): a client never waits past its timeout.
   */
  expire(nowMs: number): ReservationEvent[] {
    const events: ReservationEvent[] = [];
    for (const r of this.ordered()) {
      if (r.releaseDeadlineMs !== null && nowMs >= r.releaseDeadlineMs) {
        this.drop(r, null);
        events.push({ kind: 'released', id: r.id, kib: r.kib, detail: `released reservation ${r.id}: no new domain appeared in time` });
      } else if (r.state === 'held' && nowMs >= r.deadlineMs) {
        this.drop(r, null);
        events.push({ kind: 'expired', id: r.id, kib: r.kib, detail: `reservation ${r.id} expired (never released)` });
      } else if (r.state === 'pending' && nowMs >= r.deadlineMs) {
        const why = r.reason ? `: ${r.reason}` : '';
        this.settle(r, { ok: false, code: 'timeout', error: `could not free ${formatKib(r.kib)} in time${why}` });
        events.push({ kind: 'failed', id: r.id, kib: r.kib, detail: `reservation ${r.id} timed out${why}` });
      }
    }
    return events;
  }

  /**
   * Before the core runs, with the domains just observed: binds held reservations to newly
   * appeared domains, updates what they consumed, and completes `after_domain` releases.
   */
  bind(domains: ReadonlyMap<number, { currentKib: number; name?: string | null }>): ReservationEvent[] {
    const events: ReservationEvent[] = [];
    const bound = new Set<number>();
    for (const r of this.items.values()) if (r.domid !== null) bound.add(r.domid);
    // A domain someone reserved by name is theirs: an unnamed reservation does not take it.
    const claimed = new Set<string>();
    for (const r of this.items.values()) if (r.domain !== null && r.domid === null) claimed.add(r.domain);
    for (const r of this.ordered()) {
      if (r.state === 'held' && r.domid === null && r.knownDomids) {
        const fresh = [...domains.entries()]
          .filter(([d, v]) => !r.knownDomids?.has(d) && !bound.has(d) &&
            (r.domain !== null ? v.name === r.domain : !(v.name && claimed.has(v.name))))
          .map(([d]) => d).sort((a, b) => a - b)[0];
        if (fresh !== undefined) {
          r.domid = fresh;
          bound.add(fresh);
          this.revision++;
          events.push({ kind: 'bound', id: r.id, kib: r.kib, detail: `domain ${fresh} took reservation ${r.id}` });
        }
      }
      if (r.domid !== null) {
        const d = domains.get(r.domid);
        if (d && d.currentKib > r.consumedKib) {
          r.consumedKib = d.currentKib;
          this.revision++;
        }
      }
      if (r.domid !== null && r.releaseWaiters.length) {
        this.drop(r, null);
        events.push({ kind: 'released', id: r.id, kib: r.kib, detail: `released reservation ${r.id} to domain ${r.domid}` });
      }
    }
    return events;
  }

  /** After the core ran: grants what is ready, fails what is impossible. */
  afterDecision(verdicts: ReadonlyMap<string, ReservationVerdict>, domids: Iterable<number>, nowMs: number): ReservationEvent[] {
    const events: ReservationEvent[] = [];
    for (const r of this.ordered()) {
      if (r.state !== 'pending') continue;
      const v = verdicts.get(r.id);
      if (!v) continue;
      r.reason = v.reason;
      if (v.state === 'ready') {
        r.state = 'held';
        r.deadlineMs = nowMs + r.ttlMs;
        r.knownDomids = new Set(domids);
        this.revision++;
        const w = r.waiter;
        r.waiter = null;
        w?.({ ok: true, id: r.id, kib: r.kib, expiresAtMs: r.deadlineMs });
        events.push({ kind: 'granted', id: r.id, kib: r.kib, detail: `reservation ${r.id} of ${r.kib} KiB granted` });
      } else if (v.state === 'impossible') {
        const reason = v.reason ?? 'the policy cannot free that much memory';
        this.settle(r, { ok: false, code: 'impossible', error: reason });
        events.push({ kind: 'failed', id: r.id, kib: r.kib, detail: `reservation ${r.id} impossible: ${reason}` });
      }
    }
    return events;
  }

  /**
   * Daemon shutting down: waiting requests fail (their clients are told), held reservations are
   * only forgotten here: they are in the state file and come back at the next start.
   */
  shutdown(): void {
    for (const r of [...this.items.values()]) {
      if (r.state === 'pending') this.drop(r, { ok: false, code: 'shutting-down', error: 'xenballoond is shutting down' });
      else for (const w of r.releaseWaiters.splice(0)) w({ ok: true, id: r.id, domid: r.domid });
    }
  }

  /** Held reservations as the state file keeps them (pending ones die with their client). */
  persisted(): PersistedReservation[] {
    return this.ordered().filter((r) => r.state === 'held').map((r) => ({
      id: r.id, kib: r.kib, label: r.label, domain: r.domain, createdAtMs: r.createdAtMs, expiresAtMs: r.deadlineMs,
      knownDomids: [...(r.knownDomids ?? [])], domid: r.domid, consumedKib: r.consumedKib,
    }));
  }

  /** Held reservations from the state file, with their remaining time; expired ones are dropped. */
  restore(list: readonly PersistedReservation[], nowMs: number): string[] {
    const kept: string[] = [];
    for (const p of list) {
      const n = p.id.startsWith(this.idPrefix) ? Number(p.id.slice(this.idPrefix.length)) : NaN;
      if (Number.isSafeInteger(n)) this.seq = Math.max(this.seq, n);
      if (p.expiresAtMs <= nowMs || this.items.has(p.id)) continue;
      this.items.set(p.id, {
        id: p.id, kib: p.kib, label: p.label, domain: p.domain, state: 'held', createdAtMs: p.createdAtMs,
        deadlineMs: p.expiresAtMs, ttlMs: p.expiresAtMs - p.createdAtMs, reason: null, knownDomids: new Set(p.knownDomids),
        domid: p.domid, consumedKib: p.consumedKib, waiter: null, releaseWaiters: [], releaseDeadlineMs: null,
      });
      kept.push(p.id);
    }
    return kept;
  }

  /** The next ID is above every ID the state file ever handed out (none is reused). */
  noteSeq(seq: number): void {
    this.seq = Math.max(this.seq, seq);
  }

  get lastSeq(): number {
    return this.seq;
  }

  /** True while any reservation is pending or held (bind has work to do). */
  get isEmpty(): boolean {
    return this.items.size === 0;
  }

  get reservedKib(): number {
    let s = 0;
    for (const r of this.items.values()) s += this.remaining(r);
    return s;
  }

  get size(): number {
    return this.items.size;
  }

  status(): ReservationStatus[] {
    return this.ordered().map((r) => ({
      id: r.id, kib: r.kib, remaining_kib: this.remaining(r), state: r.state, label: r.label, domain: r.domain,
      created_at_ms: r.createdAtMs, expires_at_ms: r.deadlineMs, domid: r.domid, reason: r.reason,
    }));
  }

  private ordered(): Reservation[] {
    return [...this.items.values()].sort((a, b) => a.createdAtMs - b.createdAtMs);
  }

  private settle(r: Reservation, o: ReserveOutcome & { ok: false }): void {
    this.items.delete(r.id);
    const w = r.waiter;
    r.waiter = null;
    w?.(o);
  }

  private drop(r: Reservation, pendingOutcome: (ReserveOutcome & { ok: false }) | null): void {
    this.items.delete(r.id);
    if (r.state === 'held') this.revision++;
    if (r.waiter && pendingOutcome) r.waiter(pendingOutcome);
    r.waiter = null;
    for (const w of r.releaseWaiters) w({ ok: true, id: r.id, domid: r.domid });
    r.releaseWaiters = [];
  }
}
