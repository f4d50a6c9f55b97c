/**
 * Prometheus metrics (prom-client) on their own registry, served over HTTP on the address the
 * operator gives with --metrics (meant for loopback: domain names are not for the whole network).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

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
}

export interface HostSample {
  totalKib: number;
  freeKib: number;
  scrubKib: number;
  outstandingKib: number;
  reservedKib: number;
}

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
  private labelled = new Map<number, string>();
  /** Called before each scrape, to set the gauges from the daemon's latest view. */
  beforeScrape: (() => void) | null = null;

  constructor() {
    const r = [this.registry];
    const g = (name: string, help: string) => new Gauge({ name, help, registers: r });
    this.host = {
      totalKib: g('xenballoond_host_total_kib', 'Host memory in KiB (physinfo total_pages)'),
      freeKib: g('xenballoond_host_free_kib', 'Free host memory in KiB (physinfo free_pages)'),
      scrubKib: g('xenballoond_host_scrub_kib', 'Host memory being scrubbed, in KiB'),
      outstandingKib: g('xenballoond_host_outstanding_kib', 'Memory claimed by domains being built, in KiB'),
      reservedKib: g('xenballoond_host_reserved_kib', 'Memory held for reservations, in KiB'),
    };
    const dg = (name: string, help: string) => new Gauge({ name, help, labelNames: ['domid', 'name'], registers: r });
    this.dom = {
      current: dg('xenballoond_domain_current_kib', 'Memory the domain holds (tot_pages), KiB'),
      target: dg('xenballoond_domain_target_kib', 'The domain\'s balloon target (memory/target), KiB'),
      need: dg('xenballoond_domain_need_kib', 'Estimated need, KiB (absent when unknown)'),
      min: dg('xenballoond_domain_min_kib', 'Policy minimum, KiB'),
      max: dg('xenballoond_domain_max_kib', 'Policy maximum, KiB'),
      maxmem: dg('xenballoond_domain_maxmem_kib', 'Hypervisor cap (max_pages), KiB'),
      stuck: dg('xenballoond_domain_stuck', '1 when the domain does not follow its target'),
      uncooperative: dg('xenballoond_domain_uncooperative', '1 when the domain has not followed its target for long'),
      reportAge: dg('xenballoond_domain_report_age_seconds', 'Age of the last valid guest report'),
    };
    this.actions = new Counter({ name: 'xenballoond_actions_total', help: 'Actions applied, by kind', labelNames: ['kind'], registers: r });
    this.actionFailures = new Counter({ name: 'xenballoond_action_failures_total', help: 'Actions that failed, by kind', labelNames: ['kind'], registers: r });
    this.badReports = new Counter({ name: 'xenballoond_bad_reports_total', help: 'Guest reports rejected, by reason', labelNames: ['reason'], registers: r });
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
    this.reconnects = new Counter({ name: 'xenballoond_xenstore_reconnects_total', help: 'Xenstore connections re-established', registers: r });
    this.floodEpisodes = new Counter({ name: 'xenballoond_flood_episodes_total', help: 'Times a domain began flooding xenstore with watch events (it was throttled)', registers: r });
  }

  /**
   * Node's own metrics (CPU, RSS, event-loop lag), only when metrics are served: the event-loop
   * monitor samples on a timer, which a daemon at rest should not pay for unless asked.
   */
  enableProcessMetrics(): void {
    collectDefaultMetrics({ register: this.registry, prefix: 'xenballoond_', eventLoopMonitoringPrecision: 100 });
  }

  setHost(h: HostSample): void {
    for (const k of Object.keys(this.host) as (keyof HostSample)[]) this.host[k].set(h[k]);
  }

  setDomains(domains: DomainSample[]): void {
    const seen = new Map<number, string>();
    for (const d of domains) {
      const labels = { domid: String(d.domid), name: d.name };
      const old = this.labelled.get(d.domid);
      if (old !== undefined && old !== d.name) this.removeDomain(d.domid, old);
      seen.set(d.domid, d.name);
      this.dom.current.set(labels, d.currentKib);
      this.dom.maxmem.set(labels, d.maxmemKib);
      this.dom.stuck.set(labels, d.stuck ? 1 : 0);
      this.dom.uncooperative.set(labels, d.uncooperative ? 1 : 0);
      const opt = (gauge: Gauge, v: number | null) => (v === null ? gauge.remove(labels) : gauge.set(labels, v));
      opt(this.dom.target, d.targetKib);
      opt(this.dom.need, d.needKib);
      opt(this.dom.min, d.minKib);
      opt(this.dom.max, d.maxKib);
      opt(this.dom.reportAge, d.reportAgeS);
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
