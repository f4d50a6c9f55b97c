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
  const { SimHypervisor } = await import('../../xen/sim-hypervisor.js');
  try {
    const hv = await SimHypervisor.connect(spec.path);
    await hv.hello();
    return hv;
  } catch (err) {
    throw new UserError(`cannot use the simulated hypervisor at ${spec.path}: ${(err as Error).message}`);
  }
}
