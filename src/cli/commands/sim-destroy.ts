/**
 * xenballoonctl sim-destroy --dir DIR DOMAIN: `xl destroy` for the simulated host (DOMAIN is a
 * domid or a name).
 */
import { parseCommandArgs, printUsage } from '../args.js';
import { UserError } from '../errors.js';
import { withSimHypervisor } from '../sim-commands.js';

export const summary = 'destroy a domain on a running sim-host (xl destroy for the simulator)';

const USAGE = 'usage: xenballoonctl sim-destroy --dir DIR DOMAIN   (a domid or a name)';

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs('sim-destroy', {
    args: argv,
    options: { dir: { type: 'string' }, help: { type: 'boolean', short: 'h', default: false } },
    allowPositionals: true,
  });
  if (values.help) return printUsage(USAGE);
  if (!values.dir || positionals.length !== 1) throw new UserError(USAGE, 2);
  const which = positionals[0] as string;
  return withSimHypervisor(values.dir, `cannot destroy ${which}`, async (hv) => {
    const list = await hv.domainList();
    const d = /^\d+$/.test(which) ? list.find((x) => x.domid === Number(which)) : list.find((x) => x.name === which);
    if (!d || d.domid === 0) throw new UserError(`no guest '${which}' on this simulated host`, 1);
    await hv.destroyDomain(d.domid);
    return 0;
  });
}
