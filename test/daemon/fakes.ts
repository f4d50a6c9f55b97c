/**
 * In-memory stand-ins for the daemon's ports, so the shell's logic (observer, actuator,
 * reservations, loop) is tested without processes. The integration tests use the real ones.
 */
import type { Action, Observation } from '../../src/core/types.js';
import type { GuestReport } from '../../src/report/types.js';
import type {
  DaemonStore, Decider, Decision, DomainVerdict, RawReportKeys, ReportIntake, ReportIntakeResult,
  ReservationVerdict, StoreEvent, StoreTx,
} from '../../src/daemon/ports.js';
import type { XsPermission } from '../../src/xen/xenstore-types.js';
import type { DomainInfo, Hypervisor, PhysInfo } from '../../src/xen/hypervisor.js';

export class FakeStoreError extends Error {
  constructor(readonly code: string, message: string) {
    super(message);
  }
}

export class FakeStore implements DaemonStore {
  readonly nodes = new Map<string, string>();
  readonly perms = new Map<string, XsPermission[]>();
  readonly watches = new Set<string>();
  readonly writes: { path: string; value: string }[] = [];
  readonly reads: string[] = [];
  connected = true;
  /** Makes the next N transactions fail with EAGAIN once each. */
  eagainBudget = 0;
  transactions = 0;
  /** Like the binding with its event shim: watches asked `{ value: true }` get the node's value with each event. */
  valueEvents = false;
  private readonly valueTokens = new Set<string>();
  private listeners = new Set<(ev: StoreEvent) => void>();

  set(path: string, value: string, fire = true): void {
    this.nodes.set(path, value);
    if (fire) this.fire(path);
  }

  rm(path: string): void {
    for (const k of [...this.nodes.keys()]) if (k === path || k.startsWith(path + '/')) this.nodes.delete(k);
    this.fire(path);
  }

  fire(path: string): void {
    for (const w of this.watches) {
      const [wp, token] = w.split('\0') as [string, string];
      if (path === wp || path.startsWith(wp + '/') || (wp.startsWith(path + '/') && !path.startsWith('@'))) {
        this.emit(this.watchEvent(path, token));
      }
    }
  }

  private watchEvent(path: string, token: string): StoreEvent {
    return this.valueEvents && this.valueTokens.has(token) ? { kind: 'watch', path, token, value: this.get(path) }
      : { kind: 'watch', path, token };
  }

  emit(ev: StoreEvent): void {
    for (const l of this.listeners) l(ev);
  }

  /** A node's value; a parent of existing nodes reads as '' (as xenstore's directories do). */
  get(path: string): string | null {
    const v = this.nodes.get(path);
    if (v !== undefined) return v;
    for (const k of this.nodes.keys()) if (k.startsWith(path + '/')) return '';
    return null;
  }

  private check(): void {
    if (!this.connected) throw new FakeStoreError('ECONNRESET', 'not connected');
  }

  /** While set, reads never answer (a hung xenstored); cleared, the waiting ones answer. */
  stall: { release: () => void; gate: Promise<void> } | null = null;

  setStalled(on: boolean): void {
    if (on && !this.stall) {
      let release!: () => void;
      const gate = new Promise<void>((r) => (release = r));
      this.stall = { release, gate };
    } else if (!on && this.stall) {
      this.stall.release();
      this.stall = null;
    }
  }

  async read(path: string): Promise<string | null> {
    if (this.stall) await this.stall.gate;
    this.check();
    this.reads.push(path);
    return this.get(path);
  }

  async directory(path: string): Promise<string[] | null> {
    this.check();
    const names = new Set<string>();
    for (const k of this.nodes.keys()) if (k.startsWith(path + '/')) names.add(k.slice(path.length + 1).split('/')[0] as string);
    return names.size ? [...names] : null;
  }

  async transaction<T>(fn: (tx: StoreTx) => Promise<T>): Promise<T> {
    this.check();
    for (;;) {
      this.transactions++;
      const pending: [string, string][] = [];
      const tx: StoreTx = {
        read: async (p) => pending.find(([k]) => k === p)?.[1] ?? this.get(p),
        write: async (p, v) => void pending.push([p, v]),
      };
      const result = await fn(tx);
      if (this.eagainBudget > 0) {
        this.eagainBudget--;
        continue;
      }
      for (const [p, v] of pending) {
        this.nodes.set(p, v);
        this.writes.push({ path: p, value: v });
      }
      for (const [p] of pending) this.fire(p);
      return result;
    }
  }

  async watch(path: string, token: string, options: { value?: boolean } = {}): Promise<void> {
    this.check();
    this.watches.add(`${path}\0${token}`);
    if (options.value === true) this.valueTokens.add(token);
    queueMicrotask(() => this.emit(this.watchEvent(path, token)));
  }

  async unwatch(path: string, token: string): Promise<void> {
    this.watches.delete(`${path}\0${token}`);
  }

  subscribe(listener: (ev: StoreEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async mkdir(path: string): Promise<void> {
    if (!this.nodes.has(path)) this.nodes.set(path, '');
  }

  async getPermissions(path: string): Promise<XsPermission[]> {
    const p = this.perms.get(path);
    if (!p) throw new FakeStoreError('ENOENT', path);
    return p;
  }

  async setPermissions(path: string, perms: XsPermission[]): Promise<void> {
    this.perms.set(path, perms);
  }

  async close(): Promise<void> {
    this.listeners.clear();
  }

  /** What libxl writes for a new domain. */
  addDomain(domid: number, name: string, targetKib: number, staticMaxKib: number): void {
    this.set(`/local/domain/${domid}/name`, name, false);
    this.set(`/local/domain/${domid}/memory/static-max`, String(staticMaxKib), false);
    this.set(`/local/domain/${domid}/memory/target`, String(targetKib), false);
  }
}

export class FakeHypervisor implements Hypervisor {
  readonly version = 'fake';
  phys: PhysInfo = { totalKib: 4 * 1024 * 1024, freeKib: 1024 * 1024, scrubKib: 0, outstandingKib: 0 };
  doms = new Map<number, DomainInfo>();
  maxmemCalls: { domid: number; kib: number }[] = [];
  failNext: Error | null = null;
  /** Every call fails with this while set. */
  failAlways: Error | null = null;
  /** When set, calls never resolve (a hung hypervisor). */
  hang = false;
  /** setMaxmem on these domains fails with this errno (an XSM denial: EPERM). */
  maxmemDenied = new Map<number, string>();

  add(domid: number, totKib: number, maxKib: number): void {
    this.doms.set(domid, {
      domid, totKib, maxKib, outstandingKib: 0, dying: false, shutdown: false, shutdownReason: 0, hvm: false, paused: false,
    });
  }

  private async gate(): Promise<void> {
    if (this.hang) await new Promise(() => undefined);
    if (this.failAlways) throw this.failAlways;
    if (this.failNext) {
      const e = this.failNext;
      this.failNext = null;
      throw e;
    }
  }

  async physinfo(): Promise<PhysInfo> {
    await this.gate();
    return { ...this.phys };
  }

  async domains(): Promise<DomainInfo[]> {
    await this.gate();
    return [...this.doms.values()].sort((a, b) => a.domid - b.domid).map((d) => ({ ...d }));
  }

  async setMaxmem(domid: number, kib: number): Promise<void> {
    const d = this.doms.get(domid);
    if (!d) throw Object.assign(new Error(`no domain ${domid}`), { code: 'ESRCH' });
    this.maxmemCalls.push({ domid, kib });
    const denied = this.maxmemDenied.get(domid);
    if (denied) throw Object.assign(new Error(`xc_domain_setmaxmem: ${denied}`), { code: denied });
    d.maxKib = kib;
  }

  async close(): Promise<void> {}
}

/** A report intake that accepts `need=<kib>` strings in data/xenballoon/report. */
export class FakeReports implements ReportIntake {
  readonly updates: { domid: number; raw: RawReportKeys }[] = [];
  private last = new Map<number, { report: GuestReport; atMs: number }>();

  update(domid: number, raw: RawReportKeys, nowMs: number): ReportIntakeResult {
    this.updates.push({ domid, raw });
    if (raw.v1 === null) return { kind: 'absent' };
    const m = /^need=(\d+)(?: psi=(\d+))?(?: swapin=(\d+))?$/.exec(raw.v1);
    if (!m) return { kind: 'rejected', reason: 'bad' };
    const report = fakeReport(Number(m[1]), m[2] === undefined ? null : Number(m[2]), m[3] === undefined ? null : Number(m[3]));
    this.last.set(domid, { report, atMs: nowMs });
    return { kind: 'accepted', report };
  }

  latest(domid: number): { report: GuestReport; atMs: number } | null {
    return this.last.get(domid) ?? null;
  }

  flags(domid: number): string[] {
    return this.last.has(domid) ? [] : ['no-report'];
  }

  forget(domid: number): void {
    this.last.delete(domid);
  }
}

export function fakeReport(committedKib: number, psi: number | null = null, pswpin: number | null = null): GuestReport {
  return {
    format: 'v1', seq: null, uptimeS: null,
    mem: {
      totalKib: null, freeKib: null, availableKib: null, buffersKib: null, cachedKib: null, shmemKib: null,
      swapTotalKib: null, swapFreeKib: null, committedAsKib: committedKib, usedKib: null,
    },
    counters: { pswpin, pswpout: null, pgmajfault: null, workingsetRefault: null, oomKill: null },
    pressure: psi === null ? null : { someAvg10: psi, fullAvg10: 0, someTotalUs: 0, fullTotalUs: 0 },
    balloonCurrentKib: null,
  };
}

/**
 * A scriptable decider: targets = the report's need (when present), reservations ready when
 * free memory covers them, impossible above `impossibleAboveKib`.
 */
export class FakeDecider implements Decider {
  intervalMs = 50;
  observations: Observation[] = [];
  impossibleAboveKib = Infinity;
  /** Extra actions to return once (then cleared). */
  extra: Action[] = [];
  throwNext: Error | null = null;
  /** The core's explanation to hand the daemon with each decision (for its event log lines). */
  explanation: Decision['explanation'];
  /** The host's books the decision reports (the negative-budget warning reads them). */
  hostBooks: Decision['host'] = undefined;

  decide(obs: Observation): Decision {
    this.observations.push(obs);
    if (this.throwNext) {
      const e = this.throwNext;
      this.throwNext = null;
      throw e;
    }
    const actions: Action[] = [...this.extra];
    this.extra = [];
    const domains = new Map<number, DomainVerdict>();
    for (const d of obs.domains) {
      const need = d.report?.mem.committedAsKib ?? null;
      domains.set(d.domid, { managed: d.domid !== 0, needKib: need, minKib: 0, maxKib: d.staticMaxKib, weight: 100, flags: [], swapInKibS: null, lines: () => ['fake'], detail: null });
      if (d.domid !== 0 && need !== null && need !== d.targetKib) actions.push({ kind: 'setTarget', domid: d.domid, kib: need });
    }
    const reservations = new Map<string, ReservationVerdict>();
    let free = obs.host.freeKib;
    for (const r of obs.reservations) {
      if (r.kib > this.impossibleAboveKib) reservations.set(r.id, { state: 'impossible', reason: 'minimums leave too little' });
      else if (free >= r.kib) {
        reservations.set(r.id, { state: 'ready', reason: null });
        free -= r.kib;
      } else reservations.set(r.id, { state: 'pending', reason: `${free} KiB free` });
    }
    return { actions, domains, reservations, host: this.hostBooks, ...(this.explanation ? { explanation: this.explanation } : {}) };
  }
}

export async function waitFor(cond: () => boolean | Promise<boolean>, what: string, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
