/**
 * One simulated Xen host with its guests: the hypervisor's accounting (host/xen-host.ts), dom0,
 * and for each domain the Linux guest model, its balloon driver and its report publisher, plus
 * the per-domain xenstore values a controller reads and writes (memory/target, static-max, the
 * latest report). Time only moves through `step(dtMs)`; `simulate` drives it in virtual time and
 * `sim-host` in real time, attaching a real xenstore through the hooks.
 */
import type { DomainFlag, DomainObservation, Observation } from '../core/types.js';
import type { GuestReport } from '../report/types.js';
import { BalloonDriver } from './guest/balloon.js';
import { balloonConfig, buildWorkload, osConfig, reporterConfig } from './guest/factory.js';
import { LinuxGuest } from './guest/linux-guest.js';
import { ReportPublisher } from './guest/reporter.js';
import { type HostEvent, XenHost, type XenHostConfig } from './host/xen-host.js';
import { streamFor } from './prng.js';
import type { GuestTemplate, Scenario } from './scenario/schema.js';
import type { Workload } from './workloads/types.js';

/** libxl's LIBXL_MAXMEM_CONSTANT: max_pages at creation is memory + 1 MiB (Xen 4.17). */
export const LIBXL_MAXMEM_CONSTANT_KIB = 1024;

export interface SimDomain {
  domid: number;
  name: string;
  template: GuestTemplate;
  staticMaxKib: number;
  /** memory/target as written in xenstore (libxl writes memory= at creation). */
  targetKib: number;
  createdAtMs: number;
  /** Null while the domain is being built; the guest exists from the moment it boots. */
  guest: LinuxGuest | null;
  balloon: BalloonDriver | null;
  reporter: ReportPublisher;
  workload: Workload | null;
  report: GuestReport | null;
  reportAtMs: number | null;
  flags: Set<DomainFlag>;
  dying: boolean;
}

export interface SimHooks {
  /** The domain exists in the hypervisor: write its xenstore nodes as libxl does. */
  domainCreated?(d: SimDomain): void;
  /** Built and about to boot (libxl introduces it to xenstored here). */
  domainBuilt?(d: SimDomain): void;
  /** Its last page is gone. */
  domainGone?(domid: number, name: string): void;
  /** The guest's publisher produced a report (sim-host writes it to xenstore as a v1 record). */
  reportPublished?(d: SimDomain, report: GuestReport): void;
}

export type SimCreateResult = { ok: true; domid: number } | { ok: false; reason: string };

export function xenHostConfig(s: Scenario): XenHostConfig {
  const h = s.host;
  return {
    totalKib: h.memory,
    xenOverheadKib: h.xen_overhead === 'auto' ? 8 * 1024 + Math.floor(h.memory / 128) : h.xen_overhead,
    perDomainOverheadKib: h.per_domain_overhead,
    scrubRateKibPerMs: h.scrub_rate,
    teardownRateKibPerMs: h.teardown_rate,
    buildRateKibPerMs: h.build_rate,
    claims: h.claims,
  };
}

export class Simulation {
  readonly host: XenHost;
  nowMs = 0;
  readonly domains = new Map<number, SimDomain>();
  readonly dom0Kib: number;
  /** Counters of everything that left (destroyed domains keep their totals here). */
  readonly departed = { swapInKib: 0, swapOutKib: 0, oomKills: 0, someMs: 0, fullMs: 0, workDone: 0 };

  constructor(
    readonly scenario: Scenario,
    readonly seed: number,
    readonly hooks: SimHooks = {},
  ) {
    this.host = new XenHost(xenHostConfig(scenario));
    this.dom0Kib = scenario.dom0.memory;
    const r = this.host.createDomain({ name: 'Domain-0', memoryKib: this.dom0Kib, initialMaxKib: this.dom0Kib, domid: 0, prebuilt: true });
    if (!r.ok) throw new Error(`dom0 does not fit: ${r.reason}`);
  }

  /** xl create: the domain is claimed and built; a prebuilt one (a fleet) boots at once. */
  createDomain(name: string, template: GuestTemplate, opts: { prebuilt?: boolean } = {}): SimCreateResult {
    const r = this.host.createDomain({
      name,
      memoryKib: template.memory,
      initialMaxKib: template.memory + LIBXL_MAXMEM_CONSTANT_KIB,
      prebuilt: opts.prebuilt ?? false,
    });
    if (!r.ok) return r;
    const d: SimDomain = {
      domid: r.domid,
      name,
      template,
      staticMaxKib: template.maxmem,
      targetKib: template.memory,
      createdAtMs: this.nowMs,
      guest: null,
      balloon: null,
      reporter: new ReportPublisher(reporterConfig(template)),
      workload: null,
      report: null,
      reportAtMs: null,
      flags: new Set(),
      dying: false,
    };
    this.domains.set(d.domid, d);
    this.hooks.domainCreated?.(d);
    if (opts.prebuilt) this.boot(d);
    return r;
  }

  private boot(d: SimDomain): void {
    const rng = streamFor(this.seed, `guest:${d.name}`);
    const workload = buildWorkload(d.template.workload, rng.fork('workload'), this.scenario.baseDir);
    const tot = this.host.domain(d.domid)?.totKib ?? 0;
    const guest = new LinuxGuest(osConfig(d.template), workload, tot);
    const domid = d.domid;
    const host = this.host;
    d.workload = workload;
    d.guest = guest;
    d.balloon = new BalloonDriver(balloonConfig(d.template, rng.fork('balloon')), guest, {
      populate: (kib) => host.populate(domid, kib),
      release: (kib) => host.release(domid, kib),
    }, d.targetKib);
    this.hooks.domainBuilt?.(d);
  }

  /** Replaces a running guest's workload (its memory follows the new demand from the next tick). */
  setWorkload(domid: number, w: Workload): boolean {
    const d = this.domains.get(domid);
    if (!d || !d.guest || d.dying) return false;
    d.workload = w;
    d.guest.setWorkload(w);
    return true;
  }

  /** A template by name: the scenario's launch templates first, then its fleet's. */
  template(name: string): GuestTemplate | undefined {
    return this.scenario.guests.find((t) => t.name === name) ?? this.scenario.fleet.find((t) => t.name === name);
  }

  destroyDomain(domid: number): boolean {
    const d = this.domains.get(domid);
    if (!d || domid === 0 || d.dying) return false;
    if (!this.host.destroyDomain(domid)) return false;
    d.dying = true;
    if (d.guest) {
      const c = d.guest.counters;
      this.departed.swapInKib += c.swapInKib;
      this.departed.swapOutKib += c.swapOutKib;
      this.departed.oomKills += c.oomKills;
      this.departed.someMs += c.someMs;
      this.departed.fullMs += c.fullMs;
    }
    this.departed.workDone += d.workload?.workDone?.() ?? 0;
    d.guest = null;
    d.balloon = null;
    d.workload = null;
    return true;
  }

  /** A write of memory/target (the guest's driver sees it at once, as through its watch). */
  setTarget(domid: number, kib: number): boolean {
    const d = this.domains.get(domid);
    if (!d || d.dying) return false;
    d.targetKib = kib;
    if (d.balloon) d.balloon.target = kib;
    return true;
  }

  setMaxmem(domid: number, kib: number): boolean {
    return this.host.setMaxmem(domid, kib);
  }

  /** Advances everything by dtMs; returns the hypervisor's events (built, gone, ...). */
  step(dtMs: number): HostEvent[] {
    this.nowMs += dtMs;
    const events = this.host.tick(dtMs);
    for (const e of events) {
      const d = this.domains.get(e.domid);
      if (!d) continue;
      if (e.kind === 'built') this.boot(d);
      else if (e.kind === 'build-failed') d.dying = true;
      else if (e.kind === 'gone') {
        this.domains.delete(e.domid);
        this.hooks.domainGone?.(e.domid, d.name);
      }
    }
    for (const d of this.domains.values()) {
      const g = d.guest;
      if (!g || !d.balloon) continue;
      d.balloon.step(dtMs);
      g.tick(dtMs);
      if (g.isBooted) {
        const forge = d.workload?.forge;
        const report = forge
          ? forge.call(d.workload, this.nowMs, (seq) => g.report(seq))
          : d.reporter.poll(this.nowMs, (seq) => g.report(seq));
        if (report) {
          d.report = report;
          d.reportAtMs = this.nowMs;
          this.hooks.reportPublished?.(d, report);
        }
      }
    }
    return events;
  }

  observation(): Observation {
    const domains: DomainObservation[] = [];
    for (const info of this.host.listDomains()) {
      if (info.domid === 0) {
        domains.push({
          domid: 0, name: 'Domain-0', currentKib: info.totKib, maxmemKib: info.maxKib,
          staticMaxKib: this.dom0Kib, targetKib: this.dom0Kib, videoramKib: 0,
          dying: false, shutdown: false, hvm: false, report: null, reportAtMs: null,
        });
        continue;
      }
      const d = this.domains.get(info.domid);
      if (!d) continue;
      domains.push({
        domid: d.domid,
        name: d.name,
        currentKib: info.totKib,
        maxmemKib: info.maxKib,
        staticMaxKib: d.staticMaxKib,
        targetKib: d.targetKib,
        videoramKib: 0,
        dying: info.state === 'dying',
        shutdown: false,
        hvm: false,
        report: d.report,
        reportAtMs: d.reportAtMs,
      });
    }
    return { host: this.host.physinfo(), domains, reservations: [] };
  }

  /** Host books and every guest's books; throws on the first inconsistency. */
  checkInvariants(): void {
    this.host.checkInvariants();
    for (const d of this.domains.values()) {
      if (!d.guest) continue;
      d.guest.checkInvariants();
      const info = this.host.domain(d.domid);
      if (info && info.totKib !== d.guest.totKib) {
        throw new Error(`dom${d.domid}: guest thinks it has ${d.guest.totKib} KiB, Xen says ${info.totKib}`);
      }
    }
  }
}
