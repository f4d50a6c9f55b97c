import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { initialState, step } from '../../src/core/index.js';
import { observationFromSnapshot, SnapshotSchema, type Snapshot } from '../../src/core/snapshot.js';
import { snapshotFromObservation } from '../../src/daemon/host-snapshot.js';
import { capacity, PROBE_ID } from '../../src/plan/capacity.js';
import { defaultPolicy, parsePolicy } from '../../src/policy/index.js';

const MiB = 1024;
const policy = defaultPolicy();

const meminfo = (totalMib: number, committedMib: number) =>
  `MemTotal: ${totalMib * MiB} kB\nMemFree: ${(totalMib - committedMib) * MiB} kB\nMemAvailable: ${(totalMib - committedMib) * MiB} kB\n` +
  `Buffers: 0 kB\nCached: 0 kB\nSwapCached: 0 kB\nShmem: 0 kB\nSwapTotal: 0 kB\nSwapFree: 0 kB\nCommitted_AS: ${committedMib * MiB} kB\n`;

/** 8G host: dom0 1G (unmanaged), an idle guest holding 2G of which it uses 300M, 3G free. */
function host(): Snapshot {
  return SnapshotSchema.parse({
    now_ms: 100_000,
    host: { total_kib: 8192 * MiB, free_kib: 3072 * MiB },
    domains: [
      { domid: 0, name: 'Domain-0', current_kib: 1024 * MiB, target_kib: 1024 * MiB },
      {
        domid: 1, name: 'idle-1', current_kib: 2048 * MiB, target_kib: 2048 * MiB, static_max_kib: 4096 * MiB,
        report: { meminfo: meminfo(2000, 300), uptime: '1000.00 0.00\n', age_ms: 500 },
      },
    ],
  });
}

function answer(s: Snapshot, size?: number) {
  const { observation, nowMs } = observationFromSnapshot(s);
  return capacity(observation, policy, nowMs, size);
}

describe('capacity', () => {
  it('free now is free memory less the reserve; shrinking the idle guest makes room, after a step', () => {
    const c = answer(host());
    const reserve = policy.host.reserve.kind === 'kib' ? policy.host.reserve.kib : 0;
    expect(c.freeNowKib).toBe(Math.floor((3072 * MiB - reserve) / MiB) * MiB);
    expect(c.largestKib).toBeGreaterThan(c.freeNowKib + 1024 * MiB);
    expect(c.atFloorsKib).toBeGreaterThanOrEqual(c.largestKib);
    // The guest's free memory goes back at once when memory is wanted (docs/policy.md): the
    // shrink is written at the first step and the memory is free by the next.
    expect(c.largestAfterMs).toBe(policy.intervalMs);
  });

  it('agrees with the core: a reservation of the answer is honoured, one a MiB larger is not', () => {
    const s = host();
    const c = answer(s);
    const { observation, nowMs } = observationFromSnapshot(s);
    const judge = (kib: number) => step(initialState(), {
      ...observation, reservations: [{ id: PROBE_ID, kib, createdAtMs: nowMs, expiresAtMs: Number.MAX_SAFE_INTEGER }],
    }, policy, nowMs).explanation.host;
    expect(judge(c.largestKib).honouredKib).toBe(c.largestKib);
    expect(judge(c.largestKib + MiB).honouredKib).toBe(0);
  });

  it('answers for a size: now, after shrinking (and when), or impossible', () => {
    expect(answer(host(), 1024 * MiB).size).toMatchObject({ state: 'now', afterMs: 0 });
    const later = answer(host(), 4096 * MiB).size;
    expect(later?.state).toBe('after-shrinking');
    expect(later?.afterMs).toBeGreaterThan(0);
    expect(answer(host(), 7000 * MiB).size?.state).toBe('impossible');
  });

  it('gives the same answer from the daemon\'s own snapshot of a host as from the host (snapshot round trip)', () => {
    const s = SnapshotSchema.parse(JSON.parse(readFileSync(new URL('../../config/examples/snapshot-2g.json', import.meta.url), 'utf8')));
    const { observation, nowMs } = observationFromSnapshot(s);
    const texts = new Map(s.domains.map((d) => [d.domid, d.report]));
    const rawOf = (domid: number) => {
      const r = texts.get(domid);
      return r ? { v1: r.v1 ?? null, meminfo: r.meminfo ?? r.qubes ?? null, vmstat: r.vmstat ?? null, uptime: r.uptime ?? null } : null;
    };
    const again = SnapshotSchema.parse(JSON.parse(JSON.stringify(snapshotFromObservation(observation, nowMs, rawOf))));
    const back = observationFromSnapshot(again);
    expect(back.observation.domains.map((d) => d.report)).toEqual(observation.domains.map((d) => d.report));
    expect(capacity(back.observation, policy, back.nowMs)).toEqual(capacity(observation, policy, nowMs));
  });

  it('reads the daemon\'s policy back as the same policy (what capacity uses when asking the daemon)', async () => {
    const { policyAsYaml } = await import('../../src/policy/show.js');
    const again = parsePolicy(policyAsYaml(policy), 'daemon');
    expect({ ...again, sources: [] }).toEqual({ ...policy, sources: [] });
  });
});
