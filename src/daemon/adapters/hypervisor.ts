/**
 * `--hypervisor xen` (libxenctrl through koffi) or `--hypervisor sim:PATH` (the simulated host's
 * hypervisor.sock). Both are loaded lazily so neither backend's library is touched unless chosen.
 */
import { UserError } from '../../cli/errors.js';
import type { Hypervisor } from '../../xen/hypervisor.js';

export type HypervisorSpec = { kind: 'xen' } | { kind: 'sim'; path: string };

export function parseHypervisorSpec(s: string): HypervisorSpec {
  if (s === 'xen') return { kind: 'xen' };
  if (s.startsWith('sim:') && s.length > 4) return { kind: 'sim', path: s.slice(4) };
  throw new UserError(`--hypervisor must be 'xen' or 'sim:PATH' (a simulated host's hypervisor.sock), not '${s}'`, 2);
}

export async function openHypervisor(spec: HypervisorSpec): Promise<Hypervisor> {
  if (spec.kind === 'xen') {
    const { XenctrlHypervisor } = await import('../../xen/xenctrl.js');
    return XenctrlHypervisor.open();
  }
  // The simulator's client (src/xen/sim-hypervisor.ts) arrives with sim-host.
  throw new UserError(`--hypervisor sim:${spec.path}: the simulated hypervisor is not available in this build yet`);
}
