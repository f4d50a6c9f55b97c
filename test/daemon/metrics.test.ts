import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { DaemonMetrics } from '../../src/daemon/metrics.js';

describe('metrics', () => {
  it('are in base units, with counters at 0 from the start, build_info, and standard process names', async () => {
    const m = new DaemonMetrics();
    m.enableProcessMetrics();
    m.droppedLogLines = () => 3;
    m.setHost({ totalKib: 2048 * 1024, freeKib: 1024, scrubKib: 0, outstandingKib: 0, reservedKib: 0 });
    m.setDomains([{
      domid: 3, name: 'web-1', currentKib: 142 * 1024, targetKib: 120 * 1024, needKib: null, minKib: 64 * 1024, maxKib: 1024 * 1024,
      maxmemKib: 121 * 1024, stuck: false, uncooperative: false, reportAgeS: 1.5, swapInKibS: 89 * 1024, pressureSomeAvg10: 100,
    }]);
    m.syncCounters();
    const body = await m.registry.metrics();
    expect(body).toMatch(/^xenballoond_host_memory_bytes 2147483648$/m);
    expect(body).toMatch(/^xenballoond_domain_target_bytes\{domid="3",name="web-1"\} 125829120$/m);
    expect(body).toMatch(/^xenballoond_domain_swap_in_bytes_per_second\{domid="3",name="web-1"\} 93323264$/m);
    expect(body).toMatch(/^xenballoond_domain_memory_pressure_ratio\{domid="3",name="web-1"\} 1$/m);
    expect(body).not.toMatch(/^xenballoond_domain_need_bytes\{/m);
    expect(body).toMatch(/^xenballoond_actions_total\{kind="setTarget"\} 0$/m);
    expect(body).toMatch(/^xenballoond_bad_reports_total\{reason="too_large"\} 0$/m);
    expect(body).toMatch(/^xenballoond_reservations\{state="held"\} 0$/m);
    expect(body).toMatch(/^xenballoond_log_lines_dropped_total 3$/m);
    expect(body).toMatch(/^xenballoond_host_short_bytes 0$/m);
    expect(body).toMatch(/^xenballoond_build_info\{version="\d+\.\d+\.\d+[^"]*",node="v\d+[^"]*"\} 1$/m);
    expect(body).toMatch(/^process_resident_memory_bytes \d+/m);
    const types = [...body.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((x) => ({ name: x[1] as string, type: x[2] as string }));
    expect(types.filter((t) => /_kib$/.test(t.name))).toEqual([]);
    expect(types.filter((t) => t.type !== 'counter' && /_total$/.test(t.name))).toEqual([]);
    expect(types.filter((t) => t.name.startsWith('xenballoond_') && /^xenballoond_(process|nodejs)_/.test(t.name))).toEqual([]);
  });

  it('the Grafana dashboard asks only for metrics the daemon serves, per host and over the fleet', async () => {
    const m = new DaemonMetrics();
    m.enableProcessMetrics();
    const served = new Set((await m.registry.getMetricsAsJSON()).map((x) => x.name));
    const dash = JSON.parse(readFileSync(new URL('../../config/grafana/xenballoond-dashboard.json', import.meta.url), 'utf8')) as {
      panels: { targets?: { expr: string }[] }[]; templating: { list: { name: string }[] };
    };
    const exprs = dash.panels.flatMap((p) => p.targets ?? []).map((t) => t.expr);
    expect(exprs.length).toBeGreaterThan(10);
    const asked = new Set(exprs.flatMap((e) => [...e.matchAll(/\b((?:xenballoond|process|nodejs)_[a-z0-9_]+)/g)].map((x) => x[1] as string)));
    const missing = [...asked].filter((n) => !served.has(n.replace(/_(bucket|sum|count)$/, '')));
    expect(missing).toEqual([]);
    expect(dash.templating.list.map((v) => v.name)).toEqual(expect.arrayContaining(['datasource', 'instance', 'domain']));
    expect(exprs.every((e) => e.includes('$instance'))).toBe(true);
  });
});
