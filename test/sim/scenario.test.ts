import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { builtinScenarioNames, loadScenario, parseScenario, ScenarioError } from '../../src/sim/scenario/load.js';

const MiB = 1024;
const dir = mkdtempSync(join(tmpdir(), 'xb-scenario-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const minimal = `name: t
duration: 1m
host: { memory: 2G }
dom0: { memory: 256M }
guests:
  - name: g
    memory: 512M
    maxmem: 1G
    workload: { kind: eatmem }
`;

describe('scenario files', () => {
  it('ships the four scenarios of the issue, all valid', () => {
    expect(builtinScenarioNames()).toEqual(expect.arrayContaining(['paper-eatmem-2g', 'paper-idle-2g', 'mixed-64g', 'scale-1000']));
    for (const name of builtinScenarioNames()) expect(() => loadScenario(name)).not.toThrow();
  });

  it("paper-eatmem-2g is the paper's setup", () => {
    const s = loadScenario('paper-eatmem-2g');
    expect(s.host.memory).toBe(2048 * MiB);
    expect(s.duration).toBe(30 * 60_000);
    const g = s.guests[0];
    expect(g).toMatchObject({ memory: 512 * MiB, maxmem: 1024 * MiB });
    expect(g?.os.swap).toBe(1024 * MiB);
    expect(g?.workload).toMatchObject({ kind: 'eatmem', max_chunk: 512 * MiB, max_sleep: 63_000 });
  });

  it('scale-1000 has 1,000 guests on 1 TiB', () => {
    const s = loadScenario('scale-1000');
    expect(s.host.memory).toBe(1024 * 1024 * MiB);
    expect(s.fleet.reduce((n, t) => n + t.count, 0)).toBe(1000);
    expect(s.duration).toBe(3_600_000);
  });

  it('converts sizes, rates and durations and fills defaults', () => {
    const s = parseScenario(minimal, 'm.yaml');
    expect(s.tick).toBe(100);
    expect(s.guests[0]?.balloon.rate).toBeCloseTo(1024 * MiB / 1000);
    expect(s.guests[0]?.workload).toMatchObject({ kind: 'eatmem', max_chunk: 512 * MiB, max_writes: 16 });
    expect(s.launch).toEqual({ gap: 10_000, order: 'sequential' });
  });

  it('merges guest_defaults under each template, the template winning', () => {
    const s = parseScenario(`${minimal}guest_defaults:
  os: { swap: 2G, kernel: 30M }
  workload: { kind: eatmem, max_chunk: 128M }
fleet:
  - name: f
    memory: 512M
    maxmem: 512M
    os: { kernel: 40M }
    workload: { kind: idle }
`, 'm.yaml');
    expect(s.guests[0]?.os).toMatchObject({ swap: 2048 * MiB, kernel: 30 * MiB });
    expect(s.guests[0]?.workload).toMatchObject({ kind: 'eatmem', max_chunk: 128 * MiB });
    expect(s.fleet[0]?.os).toMatchObject({ swap: 2048 * MiB, kernel: 40 * MiB });
    expect(s.fleet[0]?.workload).toEqual({ kind: 'idle' });
  });

  it('reports errors as file:line:col with the key and what is wrong', () => {
    const bad = (text: string) => {
      try {
        parseScenario(text, 'bad.yaml');
      } catch (err) {
        expect(err).toBeInstanceOf(ScenarioError);
        return (err as Error).message;
      }
      throw new Error('accepted');
    };
    expect(bad(minimal.replace('memory: 512M\n', 'memory: lots\n'))).toMatch(/^bad\.yaml:7:13: guests\.0\.memory: 'lots' is not a size/);
    expect(bad(minimal.replace('kind: eatmem', 'kind: nope'))).toMatch(/^bad\.yaml:9:\d+: guests\.0\.workload\.kind/);
    expect(bad(`${minimal}surprise: 1\n`)).toMatch(/^bad\.yaml:\d+:\d+: .*surprise/);
    expect(bad(minimal.replace('maxmem: 1G', 'maxmem: 256M'))).toMatch(/^bad\.yaml:8:13: maxmem is smaller than memory/);
    expect(bad('name: [\n')).toMatch(/^bad\.yaml:\d+:\d+: /);
    expect(bad(minimal.replace('duration: 1m', 'duration: soon'))).toMatch(/^bad\.yaml:2:11: duration: 'soon' is not a duration/);
  });

  it("checks a trace workload's file exists, relative to the scenario", () => {
    const path = join(dir, 'trace.yaml');
    writeFileSync(path, minimal.replace('workload: { kind: eatmem }', 'workload: { kind: trace, file: t.csv }'));
    expect(() => loadScenario(path)).toThrow(/trace file t\.csv does not exist/);
    writeFileSync(join(dir, 't.csv'), 'time_s,anon_kib,file_kib\n0,1,1\n');
    expect(loadScenario(path).guests[0]?.workload).toMatchObject({ kind: 'trace', file: 't.csv' });
  });

  it('names unknown scenarios and lists the known ones', () => {
    expect(() => loadScenario('no-such')).toThrow(/unknown scenario 'no-such'; known: .*paper-eatmem-2g/);
    expect(() => loadScenario('./missing.yaml')).toThrow(/does not exist/);
  });
});
