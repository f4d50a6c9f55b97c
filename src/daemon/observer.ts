/**
 * The observer keeps the daemon's picture of the host: which domains exist (the hypervisor's
 * list, reconciled every step and on @introduceDomain/@releaseDomain), their xenstore keys
 * (read once at discovery, then again only when a watch says they changed), and their latest
 * valid report. Watch events only mark keys dirty (a per-domain set of at most the keys below:
 * events are coalesced per domain, never queued); dirty keys are re-read at most once per
 * `minGapMs` however often a guest writes, and a report showing memory pressure asks the
 * scheduler for an urgent step. A domain whose events exceed a rate is throttled (flood.ts): its
 * watches are removed and its keys are read once per step until the flood is over.
 */
import type { DomainObservation, Observation, ReservationObservation } from '../core/types.js';
import type { GuestReport } from '../report/types.js';
import type { DomainInfo, Hypervisor, PhysInfo } from '../xen/hypervisor.js';
import { FloodGuard } from './flood.js';
import type { ConditionLog, Logger } from './log.js';
import type { DaemonMetrics } from './metrics.js';
import type { DaemonStore, RawReportKeys, ReportIntake, ReportIntakeResult, StoreEvent } from './ports.js';

/** Keys read for every domain, relative to /local/domain/<id>. */
export const DOMAIN_KEYS = {
  name: 'name',
  staticMax: 'memory/static-max',
  target: 'memory/target',
  videoram: 'memory/videoram',
  v1: 'data/xenballoon/report',
  meminfo: 'memory/meminfo',
  vmstat: 'memory/vmstat',
  uptime: 'memory/uptime',
} as const;
const ALL_KEYS: readonly string[] = Object.values(DOMAIN_KEYS);
/**
 * Paths watched per domain; every key above is one of them or below one (except `name`).
 * `memory/` belongs to the toolstack (a guest can write only the legacy report keys there, when
 * provisioned); of the guest's own `data/xenballoon/` only the report key is watched, so writes
 * to anything else the guest keeps there never reach the daemon.
 */
export const WATCHED_PATHS = ['memory', DOMAIN_KEYS.v1] as const;
/** Keys read every step while a domain's watches are off (flood.ts): all but `name`. */
const POLLED_KEYS = ALL_KEYS.filter((k) => k !== DOMAIN_KEYS.name);

/** Every domain's keys are read again this often, whatever the watches said. */
export const RESYNC_MS = 300_000;

/** PSI "some" avg10 (percent) at or above which a guest's report is urgent. */
export const URGENT_PRESSURE_PCT = 10;

/** Committed_AS growth between two reports that is urgent: this much, or 1/16 of the target. */
export const URGENT_COMMIT_GROWTH_KIB = 16 * 1024;

/**
 * Whether a guest's Committed_AS grew enough since its last report to act before the next
 * interval: a guest without swap that just committed a large chunk would otherwise touch it
 * before its target backs it. Small drifts wait for the regular step.
 */
export function commitGrowthIsUrgent(prevKib: number | null, nowKib: number | null, targetKib: number | null): boolean {
  if (prevKib === null || nowKib === null) return false;
  const threshold = Math.max(URGENT_COMMIT_GROWTH_KIB, (targetKib ?? 0) / 16);
  return nowKib - prevKib >= threshold;
}

export const domainPath = (domid: number, key?: string): string =>
  key ? `/local/domain/${domid}/${key}` : `/local/domain/${domid}`;
/** Tokens are unique per watch (the binding requires it). */
const watchToken = (domid: number, sub: string) => `xbd:${domid}:${sub}`;

export interface DomainRecord {
  domid: number;
  info: DomainInfo;
  name: string | null;
  staticMaxKib: number | null;
  targetKib: number | null;
  videoramKib: number;
  raw: RawReportKeys;
  /** Keys (relative) to read again. */
  dirty: Set<string>;
  /** Values of dirty keys that came with their watch event (null: gone): used instead of a read. */
  given: Map<string, string | null> | null;
  watched: boolean;
  provisioned: boolean;
  firstSeenMs: number;
  /** Swap-in rate from the last two accepted reports, KiB/s. */
  swapInKibS: number | null;
  lastCounters: { pswpin: number | null; oomKill: number | null; committedAsKib: number | null; atMs: number } | null;
  lastReportResult: ReportIntakeResult['kind'] | null;
  /** When this domain's keys were last read because of a watch event (throttle). */
  lastReadAt: number;
  readTimer: PendingRead | null;
  /** Reads of this domain's keys run one after another (a newer value is never overwritten by an older one). */
  reading: Promise<void>;
  /** Targets we wrote whose watch event is still to come: not a change to read back. */
  echoes: number;
  /** Counts this domain's watch events; throttles it when they flood. */
  flood: FloodGuard;
}

/** A domain's scheduled read of its dirty keys. */
type PendingRead = { timeout: NodeJS.Timeout } | { immediate: NodeJS.Immediate };

function cancelRead(rec: DomainRecord): void {
  const t = rec.readTimer;
  if (t === null) return;
  if ('timeout' in t) clearTimeout(t.timeout);
  else clearImmediate(t.immediate);
  rec.readTimer = null;
}

/** A KiB value written by the toolstack: digits only, bounded. */
export function parseKib(v: string | null): number | null {
  if (v === null) return null;
  const s = v.trim();
  if (!/^\d{1,15}$/.test(s)) return null;
  return Number(s);
}

/** Names come from the toolstack, but are shown on terminals: keep them printable and short. */
function cleanName(v: string | null): string | null {
  if (v === null) return null;
  const s = v.replace(/[^\x20-\x7e]/g, '?').slice(0, 64);
  return s === '' ? null : s;
}

export interface ObserverOptions {
  store: DaemonStore;
  hypervisor: Hypervisor;
  reports: ReportIntake;
  log: Logger;
  conditions: ConditionLog;
  now: () => number;
  /** Re-reads of dirty keys outside steps are at least this far apart. */
  minGapMs: number;
  /** Called for a new domU once (and again after a failure), to create the nodes it reports into. */
  provision?: (domid: number) => Promise<void>;
  /** A guest under pressure (`trusted` false), or a domain appeared/went away (true). */
  onUrgent: (source: string, reason: string, trusted: boolean) => void;
  /** A domain left the hypervisor's list. */
  onGone?: (domid: number) => void;
  metrics?: DaemonMetrics | null;
}

export class Observer {
  readonly domains = new Map<number, DomainRecord>();
  host: PhysInfo | null = null;
  private unsubscribe: (() => void) | null = null;
  private started = false;
  private lastResyncAt = -Infinity;

  constructor(private readonly o: ObserverOptions) {}

  async start(): Promise<void> {
    this.unsubscribe = this.o.store.subscribe((ev) => this.onStoreEvent(ev));
    await this.o.store.watch('@introduceDomain', 'xbd:introduce');
    await this.o.store.watch('@releaseDomain', 'xbd:release');
    this.started = true;
  }

  async stop(): Promise<void> {
    this.started = false;
    for (const rec of this.domains.values()) {
      cancelRead(rec);
    }
    this.unsubscribe?.();
    await Promise.all([...this.domains.values()].map((r) => r.reading));
  }

  /** The actuator wrote this domain's target: its watch event is our own echo, not news. */
  noteOwnTargetWrite(domid: number, delta: 1 | -1): void {
    const rec = this.domains.get(domid);
    // Unwatched (flooding), no event will come back.
    if (rec && rec.watched) rec.echoes = Math.max(0, rec.echoes + delta);
  }

  /** Status flags the observer adds for a domain (`flooding`). */
  flags(domid: number): string[] {
    return this.domains.get(domid)?.flood.flagged ? ['flooding'] : [];
  }

  /** `explain` lines the observer adds for a domain. */
  explainLines(domid: number): string[] {
    const line = this.domains.get(domid)?.flood.describe(this.o.now());
    return line ? [line] : [];
  }

  private onStoreEvent(ev: StoreEvent): void {
    if (ev.kind === 'reconnected') {
      // Events may have been missed while disconnected: read everything again.
      this.markAllDirty();
      this.o.onUrgent('xenstore', 'xenstore reconnected', true);
      return;
    }
    if (ev.kind !== 'watch') return;
    if (ev.token === 'xbd:introduce' || ev.token === 'xbd:release') {
      // A domain found in the hypervisor's list while the toolstack was still building it had
      // no name (nor target) yet, and `name` is not under a watched subtree: read it again now
      // that a domain is complete.
      if (ev.token === 'xbd:introduce') {
        for (const rec of this.domains.values()) {
          if (rec.name === null || rec.targetKib === null) for (const k of ALL_KEYS) rec.dirty.add(k);
        }
      }
      this.o.onUrgent('topology', ev.token === 'xbd:introduce' ? 'domain introduced' : 'domain released', true);
      return;
    }
    const m = /^\/local\/domain\/(\d+)(?:\/(.*))?$/.exec(ev.path);
    if (!m) return;
    const rec = this.domains.get(Number(m[1]));
    if (!rec) return;
    const verdict = rec.flood.onEvent(this.o.now());
    if (verdict === 'ignore') return;
    if (verdict === 'throttle') {
      this.throttle(rec, rec.flood.strikes === 1);
      return;
    }
    const rel = m[2] ?? '';
    if (rel === DOMAIN_KEYS.target && rec.echoes > 0) {
      rec.echoes--;
      return;
    }
    let marked = false;
    for (const k of ALL_KEYS) {
      // The key itself, or a parent of it (a subtree removed or the watch just registered).
      if (k === rel || rel === '' || k.startsWith(rel + '/')) {
        rec.dirty.add(k);
        // A value read with this very event saves a read; an event without one voids an older one.
        if (k === rel && ev.value !== undefined) (rec.given ??= new Map()).set(k, ev.value);
        else rec.given?.delete(k);
        marked = true;
      }
    }
    if (marked) this.readSoon(rec);
  }

  /**
   * Turns a flooding domain's watches off: xenstored then stops sending its events, so the flood
   * costs the daemon nothing; its keys are read once per step until a cool-down is over. Logged
   * and counted once per episode (`announce`: its first strike).
   */
  private throttle(rec: DomainRecord, announce: boolean): void {
    rec.echoes = 0;
    rec.given = null;
    for (const k of POLLED_KEYS) rec.dirty.add(k);
    if (rec.watched) {
      rec.watched = false;
      for (const sub of WATCHED_PATHS) {
        this.o.store.unwatch(domainPath(rec.domid, sub), watchToken(rec.domid, sub)).catch(() => undefined);
      }
    }
    if (!announce) return;
    this.o.metrics?.floodEpisodes.inc();
    const who = `domain ${rec.domid}${rec.name ? ` (${rec.name})` : ''}`;
    this.o.conditions.raise(`dom:${rec.domid}:flood`, 'warn',
      `${who} floods xenstore (${rec.flood.peakPerWindow} watch events within a second): its keys are not watched and its report ` +
      `is read once per step until it stops (flag 'flooding')`, { domid: rec.domid });
  }

  /** Every key of every domain will be read again at the next step (missed events, resync). */
  markAllDirty(): void {
    for (const rec of this.domains.values()) {
      rec.echoes = 0;
      rec.given = null;
      for (const k of ALL_KEYS) rec.dirty.add(k);
    }
  }

  /**
   * Reads a domain's dirty keys soon: at once if its last read is at least `minGapMs` old (an
   * isolated report is seen without delay), else when that gap is over — so a guest rewriting
   * its keys 1,000 times a second costs at most one read pass per gap, and delays nobody else.
   */
  private readSoon(rec: DomainRecord): void {
    if (rec.readTimer || !this.started) return;
    const wait = Math.max(0, rec.lastReadAt + this.o.minGapMs - this.o.now());
    const go = () => {
      rec.readTimer = null;
      rec.lastReadAt = this.o.now();
      this.readDomain(rec).catch((err: unknown) => {
        this.o.conditions.raise('flush', 'warn', `reading changed xenstore keys failed: ${(err as Error).message}`);
      });
    };
    // No gap to wait out: read in this turn of the event loop (a timer of 0 waits at least 1 ms,
    // and this is on the path of every urgent report). Still deferred, so a burst of events
    // delivered together is read once.
    rec.readTimer = wait > 0 ? { timeout: setTimeout(go, wait) } : { immediate: setImmediate(go) };
  }

  /** Reads one domain's dirty keys, after any read of it still in flight. */
  private readDomain(rec: DomainRecord): Promise<void> {
    const next = rec.reading.then(() => (rec.dirty.size ? this.readDirty(rec) : undefined));
    rec.reading = next.catch(() => undefined);
    return next;
  }

  /** Re-reads every dirty key of every domain (before each step). */
  async flushDirty(): Promise<void> {
    const recs = [...this.domains.values()].filter((r) => r.dirty.size > 0);
    await forEachLimited(recs, 32, (r) => this.readDomain(r));
    this.o.conditions.clear('flush', 'reading xenstore keys works again');
  }

  private async readDirty(rec: DomainRecord): Promise<void> {
    const keys = [...rec.dirty];
    rec.dirty.clear();
    const given = rec.given;
    rec.given = null;
    const values = new Map<string, string | null>();
    try {
      for (const k of keys) {
        const v = given?.get(k);
        values.set(k, v !== undefined ? v : await this.o.store.read(domainPath(rec.domid, k)));
      }
    } catch (err) {
      // Read again next time (values that came with events are dropped: a read is always right).
      for (const k of keys) rec.dirty.add(k);
      throw err;
    }
    let reportTouched = false;
    for (const [k, v] of values) {
      switch (k) {
        case DOMAIN_KEYS.name: rec.name = cleanName(v); break;
        case DOMAIN_KEYS.staticMax: rec.staticMaxKib = parseKib(v); break;
        case DOMAIN_KEYS.target: rec.targetKib = parseKib(v); break;
        case DOMAIN_KEYS.videoram: rec.videoramKib = parseKib(v) ?? 0; break;
        case DOMAIN_KEYS.v1: rec.raw.v1 = v; reportTouched = true; break;
        case DOMAIN_KEYS.meminfo: rec.raw.meminfo = v; reportTouched = true; break;
        case DOMAIN_KEYS.vmstat: rec.raw.vmstat = v; reportTouched = true; break;
        case DOMAIN_KEYS.uptime: rec.raw.uptime = v; reportTouched = true; break;
      }
    }
    if (reportTouched && this.domains.get(rec.domid) === rec) this.takeReport(rec);
  }

  private takeReport(rec: DomainRecord): void {
    const now = this.o.now();
    const res = this.o.reports.update(rec.domid, { ...rec.raw }, now);
    rec.lastReportResult = res.kind;
    if (res.kind !== 'accepted') return;
    const urgent = this.urgency(rec, res.report, now);
    if (urgent) this.o.onUrgent(`dom:${rec.domid}`, `domain ${rec.domid}: ${urgent}`, false);
  }

  /** Why a fresh report deserves a step now, or null. Also keeps the swap-in rate. */
  private urgency(rec: DomainRecord, r: GuestReport, now: number): string | null {
    const prev = rec.lastCounters;
    const c = { pswpin: r.counters.pswpin, oomKill: r.counters.oomKill, committedAsKib: r.mem.committedAsKib, atMs: now };
    rec.lastCounters = c;
    let reason: string | null = null;
    if (prev && c.pswpin !== null && prev.pswpin !== null) {
      const dt = (now - prev.atMs) / 1000;
      // Counters going backwards mean the guest rebooted: no rate from that pair.
      const d = c.pswpin - prev.pswpin;
      if (d >= 0 && dt > 0) rec.swapInKibS = (d * 4) / dt;
      if (d > 0) reason = 'swapping in';
    } else if (c.pswpin === null) {
      rec.swapInKibS = null;
    }
    if (prev && c.oomKill !== null && prev.oomKill !== null && c.oomKill > prev.oomKill) reason = 'OOM kill in the guest';
    if (r.pressure && r.pressure.someAvg10 >= URGENT_PRESSURE_PCT) reason ??= `memory pressure ${r.pressure.someAvg10}%`;
    if (commitGrowthIsUrgent(prev?.committedAsKib ?? null, c.committedAsKib, rec.targetKib)) reason ??= 'committed memory grew';
    return reason;
  }

  /** Samples the hypervisor, reconciles the domain list, registers watches, reads dirty keys. */
  async refresh(): Promise<void> {
    const [phys, list] = await Promise.all([this.o.hypervisor.physinfo(), this.o.hypervisor.domains()]);
    this.host = phys;
    const now = this.o.now();
    // Watches are reliable, but a full re-read now and then heals anything missed (cheap).
    if (now - this.lastResyncAt >= RESYNC_MS) {
      if (this.lastResyncAt !== -Infinity) this.markAllDirty();
      this.lastResyncAt = now;
    }
    const seen = new Set<number>();
    for (const info of list) {
      seen.add(info.domid);
      const rec = this.domains.get(info.domid);
      if (rec) {
        rec.info = info;
        continue;
      }
      this.domains.set(info.domid, {
        domid: info.domid, info, name: null, staticMaxKib: null, targetKib: null, videoramKib: 0,
        raw: { v1: null, meminfo: null, vmstat: null, uptime: null }, dirty: new Set(ALL_KEYS), given: null, watched: false,
        provisioned: info.domid === 0, firstSeenMs: now, swapInKibS: null, lastCounters: null, lastReportResult: null,
        lastReadAt: -Infinity, readTimer: null, reading: Promise.resolve(), echoes: 0, flood: new FloodGuard(),
      });
      this.o.log.info({ domid: info.domid }, `domain ${info.domid} appeared`);
    }
    for (const [domid, rec] of this.domains) {
      if (seen.has(domid)) continue;
      this.domains.delete(domid);
      cancelRead(rec);
      this.o.reports.forget(domid);
      this.o.conditions.forget(`dom:${domid}:`);
      this.o.onGone?.(domid);
      this.o.log.info({ domid, domain: rec.name }, `${rec.name ?? `domain ${domid}`} (domain ${domid}) is gone`);
      if (rec.watched) {
        for (const sub of WATCHED_PATHS) {
          await this.o.store.unwatch(domainPath(domid, sub), watchToken(domid, sub)).catch(() => undefined);
        }
      }
    }
    for (const rec of this.domains.values()) {
      this.floodTick(rec, now);
      if (!rec.watched && !rec.info.dying && rec.flood.state !== 'throttled') await this.watchDomain(rec);
      if (!rec.provisioned && !rec.info.dying && this.o.provision) await this.provision(rec);
    }
    await this.flushDirty();
  }

  /** A throttled domain's keys are polled (read once per step); its cool-down and probation end here. */
  private floodTick(rec: DomainRecord, now: number): void {
    const t = rec.flood.tick(now);
    if (rec.flood.state === 'throttled') for (const k of POLLED_KEYS) rec.dirty.add(k);
    if (t === 'cleared') {
      this.o.conditions.clear(`dom:${rec.domid}:flood`, `domain ${rec.domid} stopped flooding xenstore; its keys are watched again`,
        { domid: rec.domid });
    }
  }

  private async watchDomain(rec: DomainRecord): Promise<void> {
    try {
      for (const sub of WATCHED_PATHS) {
        try {
          await this.o.store.watch(domainPath(rec.domid, sub), watchToken(rec.domid, sub), { value: true });
        } catch (err) {
          // Registering the same watch twice (after a partial failure) is harmless.
          if ((err as { code?: string }).code !== 'EEXIST') throw err;
        }
      }
      rec.watched = true;
      // It flooded while its watches were being registered: off again (the next cool-down ends it).
      if (rec.flood.state === 'throttled') this.throttle(rec, false);
      this.o.conditions.clear(`dom:${rec.domid}:watch`, `watching domain ${rec.domid} again`);
    } catch (err) {
      this.o.conditions.raise(`dom:${rec.domid}:watch`, 'warn', `cannot watch domain ${rec.domid}'s keys (will retry): ${(err as Error).message}`);
    }
  }

  private async provision(rec: DomainRecord): Promise<void> {
    try {
      await this.o.provision?.(rec.domid);
      rec.provisioned = true;
      this.o.conditions.clear(`dom:${rec.domid}:provision`, `provisioned domain ${rec.domid}'s report node`);
    } catch (err) {
      this.o.conditions.raise(`dom:${rec.domid}:provision`, 'warn', `cannot create domain ${rec.domid}'s report node (will retry): ${(err as Error).message}`);
    }
  }

  /** The core's input, from what the last refresh saw. */
  observation(reservations: ReservationObservation[]): Observation {
    const now = this.o.now();
    const h = this.host;
    if (!h) throw new Error('no hypervisor sample yet');
    const domains: DomainObservation[] = [];
    // The map holds domains in the order they appeared (the hypervisor lists them by domid),
    // so sorting is only needed after a domid was reused out of order.
    let sorted = true;
    let prev = -1;
    for (const rec of this.domains.values()) {
      if (rec.domid < prev) sorted = false;
      prev = rec.domid;
      const latest = this.o.reports.latest(rec.domid, now);
      domains.push({
        domid: rec.domid,
        name: rec.name ?? `domain-${rec.domid}`,
        currentKib: rec.info.totKib,
        maxmemKib: rec.info.maxKib,
        staticMaxKib: rec.staticMaxKib,
        targetKib: rec.targetKib,
        videoramKib: rec.videoramKib,
        dying: rec.info.dying,
        shutdown: rec.info.shutdown,
        hvm: rec.info.hvm,
        report: latest?.report ?? null,
        reportAtMs: latest?.atMs ?? null,
      });
    }
    if (!sorted) domains.sort((a, b) => a.domid - b.domid);
    return { host: { ...h }, domains, reservations };
  }
}

/** Runs `fn` over `items` with at most `limit` in flight; rejects with the first failure. */
export async function forEachLimited<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let firstError: unknown = null;
  const worker = async () => {
    while (next < items.length) {
      const item = items[next++] as T;
      try {
        await fn(item);
      } catch (err) {
        firstError ??= err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (firstError !== null) throw firstError;
}
