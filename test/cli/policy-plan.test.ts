import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const ctl = fileURLToPath(new URL('../../dist/cli/xenballoonctl.js', import.meta.url));
const root = fileURLToPath(new URL('../../', import.meta.url));
const tmp = mkdtempSync(join(tmpdir(), 'xbctl-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function run(...args: string[]) {
  return spawnSync(process.execPath, [ctl, ...args], { encoding: 'utf8', cwd: root });
}

function file(name: string, text: string): string {
  const path = join(tmp, name);
  writeFileSync(path, text);
  return path;
}

describe('xenballoonctl policy check', () => {
  it('exits 0 for the shipped policy and the examples', () => {
    const r = run('policy', 'check', '--host-memory', '16G', 'config/policy.yaml', 'config/examples/lab.yaml', 'config/examples/hosting-shop.yaml');
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^config\/policy\.yaml: ok$/m);
  });

  it('exits 1 with file:line:col: message for every error, and no stack trace', () => {
    const bad = file('bad.yaml', 'host:\n  reserve: lots\ndefaults:\n  min: 2G\n  max: 1G\n  wieght: 5\ndomains:\n  - match: { name: "a" }\n    rate: { down: 64M }\n');
    const r = run('policy', 'check', bad);
    expect(r.status).toBe(1);
    const lines = r.stderr.trim().split('\n');
    expect(lines).toEqual([
      `${bad}:2:12: host.reserve: invalid size 'lots': use a number with K, M, G or T (binary, as xl reads them; a bare number is MiB), e.g. 512M or 1.5G`,
      `${bad}:4:8: defaults.min: min (2G) is above max (1G)`,
      `${bad}:6:3: unknown key 'wieght' in defaults (did you mean 'weight'?)`,
      `${bad}:9:19: domains[0].rate.down: invalid rate '64M': use a size per second, e.g. 64M/s`,
    ]);
    expect(r.stderr).not.toMatch(/at .*\.js:\d+/);
  });

  it('checks every file given and fails if any fails', () => {
    const good = file('good.yaml', 'interval: 2s\n');
    const bad = file('bad2.yaml', 'interval: soon\n');
    const r = run('policy', 'check', good, bad);
    expect(r.status).toBe(1);
    expect(r.stdout).toContain(`${good}: ok`);
    expect(r.stderr).toContain(`${bad}:1:11: interval: invalid duration 'soon'`);
  });

  it('says clearly when a file does not exist or no file is given', () => {
    const r = run('policy', 'check', join(tmp, 'missing.yaml'));
    expect(r.status).toBe(1);
    expect(r.stderr.trim()).toBe(`${join(tmp, 'missing.yaml')}:1:1: no such policy file`);
    const none = run('policy', 'check');
    expect(none.status).toBe(2);
    expect(none.stderr.trim().split('\n')).toHaveLength(1);
  });

  it('refuses a host.reserve that leaves nothing for guests on the host given, at its line', () => {
    const p = file('greedy.yaml', 'interval: 1s\nhost:\n  reserve: 1T\n');
    const r = run('policy', 'check', '--host-memory', '2G', p);
    expect(r.status).toBe(1);
    expect(r.stderr.trim()).toBe(`${p}:3:12: host.reserve: 1T leaves nothing for guests on a host of 2G (--host-memory) (2G in all); every guest would be held at its minimum: lower it`);
    expect(run('policy', 'check', '--host-memory', '2T', p).status).toBe(0);
  });

  it('refuses a reserve of 100% anywhere; warns when no host is visible to check a size against', () => {
    const all = file('all.yaml', 'host:\n  reserve: 100%\n');
    const r = run('policy', 'check', all);
    expect(r.status).toBe(1);
    expect(r.stderr.trim()).toMatch(new RegExp(`^${all.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:2:12: host\\.reserve: 100% keeps all of the host's memory from the guests`));
    const some = file('some.yaml', 'host:\n  reserve: 1G\n');
    const w = run('policy', 'check', some);
    expect(w.status).toBe(0);
    expect(w.stderr.trim()).toBe(`${some}: warning: host.reserve 1G not checked against a host (none visible here: not a Xen dom0, or not root); give --host-memory SIZE to check it`);
  });

  it('shows a domain\'s effective settings', () => {
    const p = file('rules.yaml', 'domains:\n  - match: { name: "db-*" }\n    weight: 400\n');
    const r = run('policy', 'show', p, '--domain', 'db-1', '--json');
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout).weight).toBe(400);
    const text = run('policy', 'show', p, '--domain', 'db-1');
    expect(text.stdout).toMatch(/^weight: 400$/m);
    expect(text.stdout).toMatch(/^min: 64M$/m);
  });

  it('shows the merged policy in its own units, as a file that reads back the same', () => {
    const p = file('units.yaml', 'host:\n  reserve: 5%\ndefaults:\n  rate: { down: 32M/s }\n  hysteresis: 8M\ndomains:\n  - match: { name: "db-*" }\n    min: 1.5G\n');
    const r = run('policy', 'show', p);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^ {2}reserve: 5%$/m);
    expect(r.stdout).toMatch(/^ {4}down: 32M\/s$/m);
    expect(r.stdout).toMatch(/^ {4}min: 1.5G$/m);
    expect(r.stdout).not.toMatch(/\b\d{5,}\b/); // no raw KiB or ms
    const again = file('again.yaml', r.stdout);
    const a = JSON.parse(run('policy', 'show', p, '--json').stdout) as { sources?: unknown };
    const b = JSON.parse(run('policy', 'show', again, '--json').stdout) as { sources?: unknown };
    delete a.sources;
    delete b.sources;
    expect(b).toEqual(a);
  });
});

describe('xenballoonctl plan', () => {
  it('prints the targets for the example snapshot as JSON', () => {
    const r = run('plan', 'config/examples/snapshot-2g.json', '--policy', 'config/policy.yaml', '--json');
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const out = JSON.parse(r.stdout) as { domains: { domid: number; target_kib: number; managed: boolean; bound: string }[]; reservations: { id: string; state: string }[] };
    expect(out.domains.map((d) => d.domid)).toEqual([0, 1, 2, 3]);
    const [dom0, web, batch, idle] = out.domains;
    expect(dom0?.managed).toBe(false);
    expect(dom0?.target_kib).toBe(512 * 1024);
    // The reservation wants memory: idle guests give back what is free inside them at once
    // (less an 8 MiB margin) plus 64 MiB/s of the rest; the busy one keeps what it holds.
    expect(web?.target_kib).toBe((400 - (40 - 8) - 64) * 1024);
    expect(idle?.target_kib).toBe(171 * 1024);
    expect(batch?.target_kib).toBe(700 * 1024);
    expect(out.reservations).toEqual([expect.objectContaining({ id: 'next-vm', state: 'pending' })]);
  });

  it('--settle shows where the host settles', () => {
    const r = run('plan', 'config/examples/snapshot-2g.json', '--policy', 'config/policy.yaml', '--json', '--settle');
    expect(r.status).toBe(0);
    const out = JSON.parse(r.stdout) as { steps: number; actions: unknown[]; reservations: { state: string }[] };
    expect(out.steps).toBeGreaterThan(1);
    expect(out.actions).toEqual([]);
    expect(out.reservations[0]?.state).toBe('ready');
  });

  it('accepts the minimal snapshot of the design card', () => {
    const meminfo = 'MemTotal: 463000 kB\nMemFree: 200000 kB\nCommitted_AS: 150000 kB\n';
    const snap = file('min.json', JSON.stringify({
      host: { total_kib: 2097152, free_kib: 1048576 },
      domains: [
        { domid: 0, name: 'Domain-0', current_kib: 524288, static_max_kib: 524288, target_kib: 524288 },
        { domid: 1, name: 'vm', current_kib: 524288, static_max_kib: 1048576, target_kib: 524288, report: { meminfo } },
      ],
    }));
    const r = run('plan', snap, '--json');
    expect(r.status).toBe(0);
    const out = JSON.parse(r.stdout) as { domains: { domid: number; target_kib: number }[] };
    expect(out.domains[1]?.target_kib).toBeLessThan(524288);
  });

  it('refuses a bad snapshot with one line naming the field', () => {
    const snap = file('bad.json', JSON.stringify({ host: { total_kib: 1 }, domains: [] }));
    const r = run('plan', snap);
    expect(r.status).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/host\.free_kib: .*docs\/snapshot\.md/);
    const notJson = run('plan', file('x.json', '{'));
    expect(notJson.status).toBe(1);
    expect(notJson.stderr).toMatch(/not JSON/);
  });

  it('plans a guest whose report does not parse as the daemon would: held, with a warning', () => {
    const snap = file('rej.json', JSON.stringify({
      host: { total_kib: 2097152, free_kib: 1048576 },
      domains: [{ domid: 1, name: 'vm', current_kib: 524288, static_max_kib: 1048576, target_kib: 524288, report: { meminfo: 'garbage' } }],
    }));
    const r = run('plan', snap, '--json');
    expect(r.status).toBe(0);
    expect(r.stderr).toMatch(/dom1 \(vm\): report ignored/);
    const out = JSON.parse(r.stdout) as { domains: { target_kib: number; bound: string }[] };
    expect(out.domains[0]).toMatchObject({ target_kib: 524288, bound: 'hold' });
  });
});
