import { describe, expect, it } from 'vitest';
import type { Status } from '../../src/daemon/control-protocol.js';
import { delayArg } from '../../src/cli/commands/top.js';
import { renderStatus } from '../../src/cli/render-status.js';

const MiB = 1024;

function dom(domid: number, name: string, currentMib: number, psi: number | null) {
  return {
    domid, name, current_kib: currentMib * MiB, target_kib: currentMib * MiB, need_kib: null, min_kib: 64 * MiB, max_kib: 2048 * MiB,
    maxmem_kib: currentMib * MiB + MiB, static_max_kib: 2048 * MiB, weight: 100, swap_in_kib_s: null, pressure_some_avg10: psi,
    report_format: 'v1', report_age_ms: 1000, managed: true, flags: [],
  };
}

const status = {
  version: 1, time_ms: 10_000,
  daemon: {
    pid: 1, started_at_ms: 0, dry_run: false, interval_ms: 1000, hypervisor: 'xen-4.17', xenstore_connected: true, policy_files: [],
    policy_loaded_at_ms: 0, steps: 5, step_failures: 0, last_step_at_ms: 9000, last_step_duration_ms: 1.5, last_error: null,
    stalled: false, rss_kib: 80 * MiB, heap_used_kib: 10 * MiB,
  },
  host: { total_kib: 8192 * MiB, free_kib: 1536 * MiB, scrub_kib: 0, outstanding_kib: 0, reserved_kib: 0 },
  domains: [dom(1, 'web-1', 142, 12), dom(2, 'db-1', 1536, 100), dom(3, 'idle-1', 300, null)],
  reservations: [],
} as Status;

const names = (text: string) => text.split('\n').filter((l) => /^(web|db|idle)-1 /.test(l)).map((l) => l.split(' ')[0]);

describe('status and top tables', () => {
  it('use xl-style sizes', () => {
    const text = renderStatus(status);
    expect(text).toMatch(/^host: total 8G {2}free 1.5G/m);
    expect(text).toMatch(/^db-1 +2 +1.5G +1.5G +- +64M +2G +100 /m);
  });

  it('sort by a key, numbers largest first, unknowns last', () => {
    expect(names(renderStatus(status))).toEqual(['web-1', 'db-1', 'idle-1']);
    expect(names(renderStatus(status, { sort: 'current' }))).toEqual(['db-1', 'idle-1', 'web-1']);
    expect(names(renderStatus(status, { sort: 'psi' }))).toEqual(['db-1', 'web-1', 'idle-1']);
    expect(names(renderStatus(status, { sort: 'name' }))).toEqual(['db-1', 'idle-1', 'web-1']);
  });

  it('fit a narrow terminal: less important columns go first, no line is wider', () => {
    const text = renderStatus(status, { width: 50 });
    expect(Math.max(...text.split('\n').map((l) => l.length))).toBeLessThanOrEqual(50);
    expect(text).toMatch(/^NAME +ID +CURRENT +TARGET/m);
    expect(text).not.toMatch(/WEIGHT/);
    expect(renderStatus(status, { width: 200 })).toMatch(/WEIGHT/);
  });

  it('read -d as xentop does: a bare number is seconds', () => {
    expect(delayArg('1')).toBe(1000);
    expect(delayArg('0.5')).toBe(500);
    expect(delayArg('250ms')).toBe(250);
    expect(delayArg(undefined)).toBeUndefined();
  });
});
