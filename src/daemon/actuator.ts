/**
 * Applies the core's actions in the order given: targets through xenstore transactions, maxmem
 * through the hypervisor, flags into the daemon's own state. Idempotent: a value equal to what
 * the domain already has is never written again. A domain that disappears mid-way is skipped,
 * not an error. In dry-run mode nothing is written; each decision is logged once.
 */
import type { Action } from '../core/types.js';
import type { Hypervisor } from '../xen/hypervisor.js';
import { formatKib } from '../policy/units.js';
import { type DomainFaults, errorCode } from './domain-faults.js';
import type { ConditionLog, Logger } from './log.js';
import type { DaemonMetrics } from './metrics.js';
import { DOMAIN_KEYS, domainPath, parseKib, type DomainRecord } from './observer.js';
import type { DaemonStore } from './ports.js';

export interface ApplyResult {
  applied: number;
  skipped: number;
  failed: number;
  /** Actions not tried: their domain is waiting out its backoff after a failure. */
  deferred: number;
  /** Domains that were gone when we tried to act on them. */
  vanished: number[];
}

export interface ActuatorOptions {
  store: DaemonStore;
  hypervisor: Hypervisor;
  domains: Map<number, DomainRecord>;
  log: Logger;
  conditions: ConditionLog;
  metrics: DaemonMetrics | null;
  dryRun: boolean;
  /** Per-domain error state and backoff: a failing domain is skipped until its retry is due. */
  faults: DomainFaults;
  now: () => number;
  /** Told before each target write (+1) and when it failed (-1), so its watch event is not read back. */
  onTargetWrite?: (domid: number, delta: 1 | -1) => void;
  /**
   * Whether a target found in xenstore is one we wrote or adopted (default: always). A target
   * write checks this inside its transaction, so an operator's write that landed since we last
   * read is never overwritten: it is taken as the domain's target and pinned at the next step.
   */
  isOwnTarget?: (domid: number, kib: number | null) => boolean;
  /** Told the value just before a target write (it is ours). */
  onOwnTarget?: (domid: number, kib: number) => void;
}

/** An operator's target was found where we were about to write ours. */
class ForeignTarget extends Error {
  constructor(readonly kib: number | null) {
    super('the target was changed by someone else');
  }
}

class DomainGone extends Error {}

/** How a domain is named in messages: its name, else "domain 7". */
export function domainLabel(domid: number, name: string | null): string {
  return name ?? `domain ${domid}`;
}

const size = (kib: number | null): string => (kib === null ? 'none' : formatKib(kib));

function isGoneError(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  return code === 'ENOENT' || code === 'ESRCH' || err instanceof DomainGone;
}

export class Actuator {
  /** Flags the core set, per domain. */
  readonly flags = new Map<number, Set<string>>();
  /** Dry run: the last decision logged per action key, so each is logged once. */
  private readonly dryLogged = new Map<string, number | boolean>();

  constructor(private readonly o: ActuatorOptions) {}

  /**
   * Applies `actions` in order. `stillCurrent` is checked before each write so a step that was
   * abandoned (timed out) can never write after a newer step started.
   */
  async apply(actions: readonly Action[], stillCurrent: () => boolean = () => true): Promise<ApplyResult> {
    const res: ApplyResult = { applied: 0, skipped: 0, failed: 0, deferred: 0, vanished: [] };
    const failedNow = new Set<number>();
    const now = this.o.now();
    for (const a of actions) {
      if (!stillCurrent()) return res;
      if (res.vanished.includes(a.domid)) {
        res.skipped++;
        continue;
      }
      // A domain that failed (now or before its retry is due) is left alone; the order of its
      // actions matters (maxmem before a larger target), so the rest of them wait too.
      if (failedNow.has(a.domid) || !this.o.faults.due(a.domid, now)) {
        res.deferred++;
        continue;
      }
      try {
        const did = await this.applyOne(a);
        if (did) {
          res.applied++;
          this.o.metrics?.actions.inc({ kind: a.kind });
        } else {
          res.skipped++;
        }
      } catch (err) {
        if (isGoneError(err) || !this.o.domains.has(a.domid)) {
          res.vanished.push(a.domid);
          this.o.log.debug({ domid: a.domid, action: a.kind }, `domain ${a.domid} went away before ${a.kind}`);
          continue;
        }
        res.failed++;
        failedNow.add(a.domid);
        this.o.metrics?.actionFailures.inc({ kind: a.kind });
        this.fail(a, err, now);
      }
    }
    for (const c of this.o.faults.settle(failedNow, now)) {
      this.o.conditions.clear(`dom:${c.domid}:fault`, `domain ${this.label(c.domid)} works again (${c.fault.action} had failed ${c.fault.failures}× with ${c.fault.code})`, { domid: c.domid });
    }
    return res;
  }

  private fail(a: Action, err: unknown, now: number): void {
    const code = errorCode(err);
    const message = (err as Error).message ?? String(err);
    const kib = a.kind === 'flag' ? null : a.kib;
    this.o.faults.failed(a.domid, { action: a.kind, kib }, code, message, now);
    // Logged when the error begins or changes, not at every retry.
    // The value tried is a field, not part of the message: a new value is not a new condition.
    this.o.conditions.raise(`dom:${a.domid}:fault`, 'error',
      `${a.kind} on domain ${this.label(a.domid)} failed with ${code}: ${message}; retrying with backoff, the other domains go on`,
      { domid: a.domid, action: a, code });
  }

  private label(domid: number): string {
    const name = this.o.domains.get(domid)?.name;
    return name ? `${domid} (${name})` : String(domid);
  }

  private async applyOne(a: Action): Promise<boolean> {
    const rec = this.o.domains.get(a.domid);
    if (!rec) throw new DomainGone();
    if (a.kind === 'flag') return this.setFlag(rec, a.flag, a.on);
    if (!Number.isSafeInteger(a.kib) || a.kib <= 0) {
      throw new Error(`refusing to apply ${a.kind} with a bad size ${String(a.kib)} KiB (a bug: please report)`);
    }
    const who = domainLabel(a.domid, rec.name);
    if (a.kind === 'setTarget') {
      if (rec.targetKib === a.kib) return false;
      const fields = { domid: a.domid, domain: rec.name, action: a.kind, from_kib: rec.targetKib, to_kib: a.kib };
      const change = `${size(rec.targetKib)} → ${size(a.kib)}`;
      if (this.o.dryRun) return this.dry(`setTarget:${a.domid}`, a.kib, fields, `would set ${who} ${change}`);
      try {
        await this.writeTarget(rec, a.kib);
      } catch (err) {
        if (!(err instanceof ForeignTarget)) throw err;
        rec.targetKib = err.kib;
        return false;
      }
      this.o.log.debug(fields, `set ${who} ${change}`);
      rec.targetKib = a.kib;
      return true;
    }
    if (rec.info.maxKib === a.kib) return false;
    const fields = { domid: a.domid, domain: rec.name, action: a.kind, from_kib: rec.info.maxKib, to_kib: a.kib };
    const change = `${size(rec.info.maxKib)} → ${size(a.kib)}`;
    if (this.o.dryRun) return this.dry(`setMaxmem:${a.domid}`, a.kib, fields, `would set ${who}'s maxmem ${change}`);
    await this.o.hypervisor.setMaxmem(a.domid, a.kib);
    this.o.log.debug(fields, `set ${who}'s maxmem ${change}`);
    rec.info = { ...rec.info, maxKib: a.kib };
    return true;
  }

  /** Writes memory/target in a transaction that first checks the domain still exists. */
  private async writeTarget(rec: DomainRecord, kib: number): Promise<void> {
    // Announced before the commit: its watch event may arrive before the commit's reply.
    this.o.onTargetWrite?.(rec.domid, +1);
    try {
      await this.o.store.transaction(async (tx) => {
        // A domain being destroyed loses its home; writing then would re-create a stray node.
        if ((await tx.read(domainPath(rec.domid))) === null) throw new DomainGone();
        if (this.o.isOwnTarget) {
          const current = parseKib(await tx.read(domainPath(rec.domid, DOMAIN_KEYS.target)));
          if (!this.o.isOwnTarget(rec.domid, current)) throw new ForeignTarget(current);
        }
        this.o.onOwnTarget?.(rec.domid, kib);
        await tx.write(domainPath(rec.domid, DOMAIN_KEYS.target), String(kib));
      });
    } catch (err) {
      this.o.onTargetWrite?.(rec.domid, -1);
      throw err;
    }
  }

  private setFlag(rec: DomainRecord, flag: string, on: boolean): boolean {
    let set = this.flags.get(rec.domid);
    const had = set?.has(flag) ?? false;
    if (had === on) return false;
    if (on) {
      if (!set) this.flags.set(rec.domid, (set = new Set()));
      set.add(flag);
      this.o.log.warn({ domid: rec.domid, domain: rec.name, flag }, `${domainLabel(rec.domid, rec.name)} (domain ${rec.domid}) is ${flag}`);
    } else {
      set?.delete(flag);
      this.o.log.info({ domid: rec.domid, domain: rec.name, flag }, `${domainLabel(rec.domid, rec.name)} (domain ${rec.domid}) is no longer ${flag}`);
    }
    return true;
  }

  private dry(key: string, value: number, fields: Record<string, unknown>, msg: string): boolean {
    if (this.dryLogged.get(key) !== value) {
      this.dryLogged.set(key, value);
      this.o.log.info({ dry_run: true, ...fields }, msg);
    }
    return false;
  }

  forget(domid: number): void {
    this.flags.delete(domid);
    this.o.faults.forget(domid);
    for (const k of [...this.dryLogged.keys()]) if (k.endsWith(`:${domid}`)) this.dryLogged.delete(k);
  }
}
