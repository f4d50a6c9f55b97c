/**
 * Prometheus metrics (prom-client) on their own registry, served over HTTP on the address the
 * operator gives with --metrics (meant for loopback: domain names are not for the whole network).
 *
 * Prometheus conventions: base units (bytes, seconds, ratios), `_total` only on counters, every
 * counter present from the first scrape (its known label values at 0, so rate() and increase()
 * see the first event), a `xenballoond_build_info` gauge, and the process metrics under
 * prom-client's standard names (process_*, nodejs_*) so stock dashboards find them.
 * Every metric is listed in docs/operations.md.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { REJECT_REASONS } from '../report/result.js';
import { VERSION } from '../version.js';

export interface DomainSample {
  domid: number;
  name: string;
  currentKib: number;
  targetKib: number | null;
  needKib: number | null;
  minKib: number | null;
  maxKib: number | null;
  maxmemKib: number;
  stuck: boolean;
  uncooperative: boolean;
  reportAgeS: number | null;
  /** Swap-in rate from the guest's counters, KiB/s; null when unknown. */
  swapInKibS?: number | null;
  /** PSI memory "some" avg10, percent; null when not reported. */
  pressureSomeAvg10?: number | null;
}

export interface HostSample {
  totalKib: number;
  freeKib: number;
  scrubKib: number;
  outstandingKib: number;
  reservedKib: number;
}

const ACTION_KINDS = ['setTarget', 'setMaxmem', 'flag'] as const;
const RESERVATION_STATES = ['pending', 'held'] as const;

export class DaemonMetrics {
  readonly registry = new Registry();
  private readonly host: Record<keyof HostSample, Gauge>;
  private readonly dom: {
    current: Gauge;
    target: Gauge;
    need: Gauge;
    min: Gauge;
    max: Gauge;
    maxmem: Gauge;
    stuck: Gauge;
    uncooperative: Gauge;
    reportAge: Gauge;
    swapIn: Gauge;
    pressure: Gauge;
  };
  readonly actions: Counter<'kind'>;
  readonly actionFailures: Counter<'kind'>;
  readonly badReports: Counter<'reason'>;
  readonly steps: Counter;
  readonly stepFailures: Counter;
  readonly stepDuration: Histogram;
  readonly lastStep: Gauge;
  readonly stalled: Gauge;
  readonly domainsManaged: Gauge;
  readonly reservations: Gauge<'state'>;
  readonly reconnects: Counter;
  readonly floodEpisodes: Counter;
  readonly logLinesDropped: Counter;
  /** How much more guests need than can be shared (the core's `short`); 0 when they fit. */
  readonly hostShort: Gauge;
  private loggedDrops = 0;
  private labelled = new Map<number, string>();
  /** Called before each scrape, to set the gauges from the daemon's latest view. */
  beforeScrape: (() => void) | null = null;
  /** Log lines the log destination refused so far (log.ts droppedLogLines). */
  droppedLogLines: (() => number) | null = null;

  constructor() {
    const r = [this.registry];
    const g = (name: string, help: string) => new Gauge({ name, help, registers: r });
    this.host = {
      totalKib: g('xenballoond_host_memory_bytes', 'Host memory (physinfo total_pages), bytes'),
      freeKib: g('xenballoond_host_free_bytes', 'Free host memory (physinfo free_pages), bytes'),
      scrubKib: g('xenballoond_host_scrub_bytes', 'Host memory being scrubbed, bytes'),
      outstandingKib: g('xenballoond_host_outstanding_bytes', 'Memory claimed by domains being built, bytes'),
      reservedKib: g('xenballoond_host_reserved_bytes', 'Memory held for reservations, bytes'),
    };
    const dg = (name: string, help: string) => new Gauge({ name, help, labelNames: ['domid', 'name'], registers: r });
    this.dom = {
      current: dg('xenballoond_domain_current_bytes', 'Memory the domain holds (tot_pages), bytes'),
      target: dg('xenballoond_domain_target_bytes', 'The domain\'s balloon target (memory/target), bytes'),
      need: dg('xenballoond_domain_need_bytes', 'Estimated need, bytes (absent when unknown)'),
      min: dg('xenballoond_domain_min_bytes', 'Policy minimum, bytes'),
      max: dg('xenballoond_domain_max_bytes', 'Policy maximum, bytes'),
      maxmem: dg('xenballoond_domain_maxmem_bytes', 'Hypervisor cap (max_pages), bytes'),
      stuck: dg('xenballoond_domain_stuck', '1 when the domain does not follow its target'),
      uncooperative: dg('xenballoond_domain_uncooperative', '1 when the domain has not followed its target for long'),
      reportAge: dg('xenballoond_domain_report_age_seconds', 'Age of the last valid guest report'),
      swapIn: dg('xenballoond_domain_swap_in_bytes_per_second', 'Swap-in rate from the guest\'s counters (absent when not reported)'),
      pressure: dg('xenballoond_domain_memory_pressure_ratio', 'PSI memory "some" avg10 as reported by the guest, 0..1 (absent when not reported)'),
    };
    this.actions = new Counter({ name: 'xenballoond_actions_total', help: 'Actions applied, by kind', labelNames: ['kind'], registers: r });
    this.actionFailures = new Counter({ name: 'xenballoond_action_failures_total', help: 'Actions that failed, by kind', labelNames: ['kind'], registers: r });
    this.badReports = new Counter({ name: 'xenballoond_bad_reports_total', help: 'Guest reports rejected, by reason', labelNames: ['reason'], registers: r });
    for (const kind of ACTION_KINDS) {
      this.actions.inc({ kind }, 0);
      this.actionFailures.inc({ kind }, 0);
    }
    for (const reason of REJECT_REASONS) this.badReports.inc({ reason }, 0);
    this.steps = new Counter({ name: 'xenballoond_steps_total', help: 'Control steps completed', registers: r });
    this.stepFailures = new Counter({ name: 'xenballoond_step_failures_total', help: 'Control steps that failed (the loop continues)', registers: r });
    this.stepDuration = new Histogram({
      name: 'xenballoond_step_duration_seconds',
      help: 'Time from the start of a step (observe, decide, act) to its end',
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: r,
    });
    this.lastStep = g('xenballoond_last_step_timestamp_seconds', 'Unix time of the last completed step');
    this.stalled = g('xenballoond_step_stalled', '1 when no step has completed for several intervals (watchdog)');
    this.domainsManaged = g('xenballoond_domains', 'Domains known to the daemon');
    this.reservations = new Gauge({ name: 'xenballoond_reservations', help: 'Reservations by state', labelNames: ['state'], registers: r });
    for (const state of RESERVATION_STATES) this.reservations.set({ state }, 0);
    this.reconnects = new Counter({ name: 'xenballoond_xenstore_reconnects_total', help: 'Xenstore connections re-established', registers: r });
    this.floodEpisodes = new Counter({ name: 'xenballoond_flood_episodes_total', help: 'Times a domain began flooding xenstore with watch events (it was throttled)', registers: r });
    this.logLinesDropped = new Counter({ name: 'xenballoond_log_lines_dropped_total', help: 'Log lines lost because the log destination failed (full disk, closed pipe)', registers: r });
    this.hostShort = g('xenballoond_host_short_bytes', 'Memory guests need beyond what the host can share (0 when every need is met), bytes');
    const info = new Gauge({ name: 'xenballoond_build_info', help: 'Always 1; the labels say which xenballoond and Node run', labelNames: ['version', 'node'], registers: r });
    info.set({ version: VERSION, node: process.version }, 1);
  }

  /**
   * Node's own metrics (CPU, RSS, event-loop lag) under their standard names, only when metrics
   * are served: the event-loop monitor samples on a timer, which a daemon at rest should not pay
   * for unless asked.
   */
  enableProcessMetrics(): void {
    collectDefaultMetrics({ register: this.registry, eventLoopMonitoringPrecision: 100 });
    // prom-client names three gauges `_total` (sums of nodejs_active_{handles,requests,resources},
    // which it also exports by type): a gauge must not end in _total, and sum() gives the same.
    for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) {
      this.registry.removeSingleMetric(name);
    }
  }

  /** Brings the counters that mirror counts kept elsewhere up to date (before a scrape). */
  syncCounters(): void {
    const dropped = this.droppedLogLines?.() ?? 0;
    if (dropped > this.loggedDrops) this.logLinesDropped.inc(dropped - this.loggedDrops);
    this.loggedDrops = Math.max(this.loggedDrops, dropped);
  }

  setHost(h: HostSample): void {
    for (const k of Object.keys(this.host) as (keyof HostSample)[]) this.host[k].set(h[k] * 1024);
  }

  setDomains(domains: DomainSample[]): void {
    const seen = new Map<number, string>();
    for (const d of domains) {
      const labels = { domid: String(d.domid), name: d.name };
      const old = this.labelled.get(d.domid);
      if (old !== undefined && old !== d.name) this.removeDomain(d.domid, old);
      seen.set(d.domid, d.name);
      this.dom.current.set(labels, d.currentKib * 1024);
      this.dom.maxmem.set(labels, d.maxmemKib * 1024);
      this.dom.stuck.set(labels, d.stuck ? 1 : 0);
      this.dom.uncooperative.set(labels, d.uncooperative ? 1 : 0);
      const opt = (gauge: Gauge, v: number | null | undefined, scale = 1) =>
        (v === null || v === undefined ? gauge.remove(labels) : gauge.set(labels, v * scale));
      opt(this.dom.target, d.targetKib, 1024);
      opt(this.dom.need, d.needKib, 1024);
      opt(this.dom.min, d.minKib, 1024);
      opt(this.dom.max, d.maxKib, 1024);
      opt(this.dom.reportAge, d.reportAgeS);
      opt(this.dom.swapIn, d.swapInKibS, 1024);
      opt(this.dom.pressure, d.pressureSomeAvg10, 0.01);
    }
    for (const [domid, name] of this.labelled) if (!seen.has(domid)) this.removeDomain(domid, name);
    this.labelled = seen;
    this.domainsManaged.set(domains.length);
  }

  private removeDomain(domid: number, name: string): void {
    const labels = { domid: String(domid), name };
    for (const gauge of Object.values(this.dom)) gauge.remove(labels);
  }
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\./.test(host);
}

export { parseListenAddress } from './listen-address.js';

export interface MetricsServer {
  readonly address: string;
  readonly loopback: boolean;
  close(): Promise<void>;
}

export async function serveMetrics(metrics: DaemonMetrics, host: string, port: number): Promise<MetricsServer> {
  const server = http.createServer((req, res) => {
    if (req.method !== 'GET' || (req.url !== '/metrics' && req.url !== '/')) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found; metrics are at /metrics\n');
      return;
    }
    try {
      metrics.syncCounters();
      metrics.beforeScrape?.();
    } catch {
      // the gauges keep their previous values; the counters are still right
    }
    metrics.registry.metrics().then(
      (body) => res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(body),
      (err: unknown) => res.writeHead(500, { 'content-type': 'text/plain' }).end(String(err) + '\n'),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const a = server.address() as AddressInfo;
  return {
    address: a.family === 'IPv6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`,
    loopback: isLoopback(host),
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}
