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
import { SelfballoonPeer, type SelfballoonOptions } from './selfballoon.js';
import { SqueezedPeer, type SqueezedOptions } from './squeezed.js';
import { StaticPeer, type StaticOptions } from './static.js';

export type PeerName = Exclude<PolicyName, 'xenballoond'>;

/** In the order tables list them: no ballooning first, then the seed, then the systems. */
export const PEER_NAMES: readonly PeerName[] = ['static', 'selfballoon', 'squeezed', 'qmemman', 'mom', 'proxmox'];

export interface PeerOptions {
  static: StaticOptions;
  selfballoon: SelfballoonOptions;
  squeezed: SqueezedOptions;
  qmemman: QmemmanOptions;
  mom: MomOptions;
  proxmox: ProxmoxOptions;
}

export const peerFactories: { [N in PeerName]: (opts?: PeerOptions[N]) => Controller } = {
  static: (opts) => new StaticPeer(opts),
  selfballoon: (opts) => new SelfballoonPeer(opts),
  squeezed: (opts) => new SqueezedPeer(opts),
  qmemman: (opts) => new QmemmanPeer(opts),
  mom: (opts) => new MomPeer(opts),
  proxmox: (opts) => new ProxmoxPeer(opts),
};

export function isPeerName(name: string): name is PeerName {
  return (PEER_NAMES as readonly string[]).includes(name);
}

/** A fresh controller for the named peer with its system's defaults. */
export function createPeer(name: PeerName): Controller {
  return peerFactories[name]();
}

export { MomPeer, ProxmoxPeer, QmemmanPeer, SelfballoonPeer, SqueezedPeer, StaticPeer };
