import { describe, expect, it } from 'vitest';
import type { PolicyName } from '../../../src/sim/controller.js';
import { PEER_NAMES, createPeer, isPeerName, peerFactories } from '../../../src/sim/peers/index.js';

describe('peer registry', () => {
  it('names every policy except xenballoond itself, once', () => {
    const all: PolicyName[] = ['xenballoond', 'static', 'selfballoon', 'selfballoon-kernel', 'squeezed', 'qmemman', 'mom', 'proxmox'];
    expect([...PEER_NAMES].sort()).toEqual(all.filter((n) => n !== 'xenballoond').sort());
    expect(Object.keys(peerFactories).sort()).toEqual([...PEER_NAMES].sort());
  });

  it('creates a fresh controller that carries its own name and loop period', () => {
    for (const name of PEER_NAMES) {
      const a = createPeer(name);
      const b = createPeer(name);
      expect(a.name).toBe(name);
      expect(a).not.toBe(b);
      expect(a.intervalMs).toBeGreaterThan(0);
    }
  });

  it('tells peer names from anything else', () => {
    expect(isPeerName('squeezed')).toBe(true);
    expect(isPeerName('xenballoond')).toBe(false);
    expect(isPeerName('vmware')).toBe(false);
  });

  it('uses each system\'s own loop period', () => {
    const periods = Object.fromEntries(PEER_NAMES.map((n) => [n, createPeer(n).intervalMs]));
    expect(periods).toMatchObject({ selfballoon: 1000, 'selfballoon-kernel': 5000, squeezed: 1000, qmemman: 100, mom: 5000, proxmox: 10000 });
  });
});
