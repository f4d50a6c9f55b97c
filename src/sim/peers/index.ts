/**
 * The peers the simulator compares xenballoond against, by name. The harness asks for a fresh
 * Controller per run (each peer keeps state between steps, so never share one between runs):
 *
 *   for (const name of PEER_NAMES) run(createPeer(name));
 *
 * Options per peer (floors, launch patience, …) go through the named factory
 * (`peerFactories.squeezed({ dynamicRange })`); `createPeer(name)` gives each system's
 * defaults as docs/peers.md describes them.
 */
import type { Controller, PolicyName } from '../controller.js';
import { MomPeer, type MomOptions } from './mom.js';
import { ProxmoxPeer, type ProxmoxOptions } from './proxmox.js';
import { QmemmanPeer, type QmemmanOptions } from './qmemman.js';
import { DEFAULT_PEER_FLOOR, type PeerFloor, peerFloorKib } from './floor.js';
import { SelfballoonPeer, type SelfballoonOptions } from './selfballoon.js';
import { SelfballoonKernelPeer, type SelfballoonKernelOptions } from './selfballoon-kernel.js';
import { SqueezedPeer, type SqueezedOptions } from './squeezed.js';
import { StaticPeer, type StaticOptions } from './static.js';

export type PeerName = Exclude<PolicyName, 'xenballoond'>;

/** In the order tables list them: no ballooning first, then the seed, then the systems. */
export const PEER_NAMES: readonly PeerName[] = ['static', 'selfballoon', 'selfballoon-kernel', 'squeezed', 'qmemman', 'mom', 'proxmox'];

export interface PeerOptions {
  static: StaticOptions;
  selfballoon: SelfballoonOptions;
  'selfballoon-kernel': SelfballoonKernelOptions;
  squeezed: SqueezedOptions;
  qmemman: QmemmanOptions;
  mom: MomOptions;
  proxmox: ProxmoxOptions;
}

export const peerFactories: { [N in PeerName]: (opts?: PeerOptions[N]) => Controller } = {
  static: (opts) => new StaticPeer(opts),
  selfballoon: (opts) => new SelfballoonPeer(opts),
  'selfballoon-kernel': (opts) => new SelfballoonKernelPeer(opts),
  squeezed: (opts) => new SqueezedPeer(opts),
  qmemman: (opts) => new QmemmanPeer(opts),
  mom: (opts) => new MomPeer(opts),
  proxmox: (opts) => new ProxmoxPeer(opts),
};

export function isPeerName(name: string): name is PeerName {
  return (PEER_NAMES as readonly string[]).includes(name);
}

/** What the protocol sets for every peer alike (docs/peers.md, "The protocol"). */
export interface PeerProtocol {
  /** squeezed's dynamic-min, MOM's balloon_min, Proxmox's `balloon`; default static-max / 4. */
  floor?: PeerFloor;
}

/**
 * A fresh controller for the named peer at the protocol's settings: each system's own defaults,
 * and for the systems with an administrator-set floor, the protocol's floor.
 */
export function createPeer(name: PeerName, protocol: PeerProtocol = {}): Controller {
  const floor = protocol.floor ?? DEFAULT_PEER_FLOOR;
  switch (name) {
    case 'squeezed':
      return peerFactories.squeezed({ dynamicRange: (cfg) => ({ minKib: peerFloorKib(floor, cfg), maxKib: cfg.maxmemKib }) });
    case 'mom':
      return peerFactories.mom({ guaranteedKib: (cfg) => peerFloorKib(floor, cfg) });
    case 'proxmox':
      return peerFactories.proxmox({ balloonMinKib: (cfg) => peerFloorKib(floor, cfg) });
    default:
      return peerFactories[name]();
  }
}

export { MomPeer, ProxmoxPeer, QmemmanPeer, SelfballoonKernelPeer, SelfballoonPeer, SqueezedPeer, StaticPeer };
