/**
 * Every controller the simulator can run, by policy name: xenballoond (the decision core with a
 * policy file) and the peers it is compared with. A fresh controller per run: they keep state.
 */
import type { Controller, PolicyName } from './controller.js';
import type { PeerFloor } from './peers/floor.js';
import { createPeer, PEER_NAMES } from './peers/index.js';
import { defaultPolicy, loadPolicy } from '../policy/index.js';
import { XenballoondController } from './xenballoond-controller.js';

export interface ControllerContext {
  /** --policy FILE for xenballoond; null means the shipped default policy. */
  policyFile: string | null;
  /** The peers' floor (--peer-floor); default static-max / 4. */
  peerFloor?: PeerFloor;
}

type Factory = (ctx: ControllerContext) => Promise<Controller>;

/** The order tables list them in: ours first, then no ballooning, the seed, the systems. */
export const POLICY_ORDER: readonly PolicyName[] = ['xenballoond', 'static', 'selfballoon', 'selfballoon-kernel', 'squeezed', 'qmemman', 'mom', 'proxmox'];

const factories: Partial<Record<PolicyName, Factory>> = {};
for (const name of PEER_NAMES) factories[name] = async (ctx) => createPeer(name, ctx.peerFloor ? { floor: ctx.peerFloor } : {});
factories.xenballoond = async (ctx) =>
  new XenballoondController({ policy: ctx.policyFile === null ? defaultPolicy() : loadPolicy(ctx.policyFile) });

export function availablePolicies(): PolicyName[] {
  return POLICY_ORDER.filter((p) => factories[p] !== undefined);
}

export class ControllerUnavailable extends Error {}

export async function createController(name: PolicyName, ctx: ControllerContext): Promise<Controller> {
  const f = factories[name];
  if (!f) throw new ControllerUnavailable(`controller '${name}' is not part of this build`);
  return f(ctx);
}
