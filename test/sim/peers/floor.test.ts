import { describe, expect, it } from 'vitest';
import { runScenario } from '../../../src/sim/harness/run.js';
import { parsePeerFloor, peerFloorKib } from '../../../src/sim/peers/floor.js';
import { createPeer } from '../../../src/sim/peers/index.js';
import { kernelFloorKib, kernelSelfballoonTarget, totalReserveKib } from '../../../src/sim/peers/selfballoon-kernel.js';
import { loadScenario } from '../../../src/sim/scenario/load.js';

const MiB = 1024;

describe('the peers\' floor (--peer-floor)', () => {
  it('reads a size or a share of static-max, and says what is wrong otherwise', () => {
    expect(parsePeerFloor('128M')).toEqual({ kind: 'size', kib: 128 * MiB });
    expect(parsePeerFloor('25%')).toEqual({ kind: 'share', of: 0.25 });
    expect(() => parsePeerFloor('lots')).toThrow(/--peer-floor takes a size \(128M\) or a share/);
    expect(() => parsePeerFloor('150%')).toThrow(/at most 100 %/);
    const cfg = { memoryKib: 512 * MiB, maxmemKib: 1024 * MiB };
    expect(peerFloorKib({ kind: 'share', of: 0.25 }, cfg)).toBe(256 * MiB);
    expect(peerFloorKib({ kind: 'size', kib: 4096 * MiB }, cfg)).toBe(1024 * MiB);
  });

  it('squeezed at static-max / 4 admits more paper guests than at memory= (its old floor)', () => {
    const s = loadScenario('paper-eatmem-2g');
    const at = (floor: Parameters<typeof createPeer>[1]) =>
      runScenario(s, createPeer('squeezed', floor), { seed: 1, durationMs: 15 * 60_000, timeline: false }).result.admitted;
    const quarter = at({});
    expect(quarter).toBeGreaterThanOrEqual(5);
    expect(at({ floor: { kind: 'size', kib: 512 * MiB } })).toBeLessThan(quarter);
  });
});

describe('selfballoon-kernel (drivers/xen/xen-selfballoon.c)', () => {
  it('moves 1/8 of the way down to committed + reserve, all the way up, never below its floor', () => {
    const reserve = totalReserveKib(900 * MiB);
    const goal = 300 * MiB + reserve + 90 * MiB;
    const down = kernelSelfballoonTarget({ curKib: 900 * MiB, committedKib: 300 * MiB, reservedKib: 90 * MiB, maxPfnKib: 1024 * MiB });
    expect(down).toBe(900 * MiB - Math.floor((900 * MiB - goal) / 8));
    const up = kernelSelfballoonTarget({ curKib: 300 * MiB, committedKib: 600 * MiB, reservedKib: 90 * MiB, maxPfnKib: 1024 * MiB });
    expect(up).toBe(600 * MiB + totalReserveKib(300 * MiB) + 90 * MiB);
    const floor = kernelFloorKib(1024 * MiB, totalReserveKib(100 * MiB));
    expect(kernelSelfballoonTarget({ curKib: 100 * MiB, committedKib: 0, reservedKib: 0, maxPfnKib: 1024 * MiB })).toBe(floor);
    // The curve ends in a ~3 % slope: 99 MiB + 1/32 of the rest above 512 MiB of useful memory.
    expect(kernelFloorKib(1024 * MiB, 0)).toBe(99 * MiB + Math.floor((1024 - 99) * MiB / 32));
  });
});
