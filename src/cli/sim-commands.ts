/**
 * What the simulator's subcommands (xenstored, sim-host, sim-create, sim-destroy) share besides
 * option parsing (args.ts): the stop signals, and a connection to a sim-host's hypervisor.sock.
 */
import { join } from 'node:path';
import { SimHypervisor, SimHypervisorError } from '../xen/sim-hypervisor.js';
import { UserError } from './errors.js';

/**
 * Calls onStop on SIGTERM and on SIGINT (once each, so a second signal of the same kind kills
 * the process as usual). Returns the function that stops listening.
 */
export function onStopSignal(onStop: (signal: NodeJS.Signals) => void): () => void {
  const onTerm = () => onStop('SIGTERM');
  const onInt = () => onStop('SIGINT');
  process.once('SIGTERM', onTerm);
  process.once('SIGINT', onInt);
  return () => {
    process.off('SIGTERM', onTerm);
    process.off('SIGINT', onInt);
  };
}

/**
 * Runs `use` with a connection to DIR/hypervisor.sock and closes it. A failure to connect, or
 * a request the simulated hypervisor refuses, is a UserError (`failure: reason`).
 */
export async function withSimHypervisor<T>(dir: string, failure: string, use: (hv: SimHypervisor) => Promise<T>): Promise<T> {
  let hv: SimHypervisor;
  try {
    hv = await SimHypervisor.connect(join(dir, 'hypervisor.sock'));
  } catch (err) {
    throw new UserError((err as Error).message, 1);
  }
  try {
    return await use(hv);
  } catch (err) {
    if (err instanceof SimHypervisorError) throw new UserError(`${failure}: ${err.message}`, 1);
    throw err;
  } finally {
    await hv.close();
  }
}
