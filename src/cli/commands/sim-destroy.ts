/**
 * xenballoonctl sim-destroy --dir DIR DOMAIN: `xl destroy` for the simulated host (DOMAIN is a
 * domid or a name).
 */
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { SimHypervisor, SimHypervisorError } from '../../xen/sim-hypervisor.js';
import { UserError } from '../errors.js';

export const summary = 'destroy a domain on a running sim-host (xl destroy for the simulator)';

const USAGE = 'usage: xenballoonctl sim-destroy --dir DIR DOMAIN   (a domid or a name)';

export async function run(argv: string[]): Promise<number> {
  let values;
  let positionals;
  try {
    ({ values, positionals } = parseArgs({
      args: argv,
      options: { dir: { type: 'string' }, help: { type: 'boolean', short: 'h', default: false } },
      allowPositionals: true,
    }));
  } catch (err) {
    throw new UserError(`${(err as Error).message.split('\n')[0]}; run 'xenballoonctl sim-destroy --help'`, 2);
  }
  if (values.help) {
    process.stdout.write(USAGE + '\n');
    return 0;
  }
  if (!values.dir || positionals.length !== 1) throw new UserError(USAGE, 2);
  const which = positionals[0] as string;
  let hv: SimHypervisor;
  try {
    hv = await SimHypervisor.connect(join(values.dir, 'hypervisor.sock'));
  } catch (err) {
    throw new UserError((err as Error).message, 1);
  }
  try {
    const list = await hv.domainList();
    const d = /^\d+$/.test(which) ? list.find((x) => x.domid === Number(which)) : list.find((x) => x.name === which);
    if (!d || d.domid === 0) throw new UserError(`no guest '${which}' on this simulated host`, 1);
    await hv.destroyDomain(d.domid);
    return 0;
  } catch (err) {
    if (err instanceof SimHypervisorError) throw new UserError(`cannot destroy ${which}: ${err.message}`, 1);
    throw err;
  } finally {
    await hv.close();
  }
}
