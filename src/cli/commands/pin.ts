import { parseArgs } from 'node:util';
import { formatKib } from '../../policy/units.js';
import { UserError } from '../errors.js';
import { ask, controlOption, controlPath } from '../control.js';
import { sizeArg } from './reserve.js';

export const summary = "hold a domain's target where it is (or at SIZE): xenballoond leaves it alone until `unpin`";

const HELP = `usage: xenballoonctl [--control PATH] pin DOMAIN [SIZE]

Pins DOMAIN (a name or a domid): xenballoond stops managing its target and counts its memory as
fixed, until \`xenballoonctl unpin DOMAIN\`. With SIZE (e.g. 2G) the target is set to SIZE first
(at most the domain's static-max; maxmem is raised to allow it). A target written by anyone else,
as \`xl mem-set\` does, pins the domain the same way. Pins survive a restart of xenballoond.
`;

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv, allowPositionals: true, options: { ...controlOption, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  if (positionals.length < 1 || positionals.length > 2) throw new UserError('pin needs a DOMAIN (name or domid) and optionally a SIZE, e.g. `xenballoonctl pin web 2G`', 2);
  const kib = positionals[1] === undefined ? undefined : sizeArg(positionals[1], 'pin SIZE');
  const r = await ask(controlPath(values.control), { op: 'pin', domain: positionals[0] as string, ...(kib === undefined ? {} : { kib }) });
  process.stdout.write(`pinned ${r.name} (domain ${r.domid}) at ${formatKib(r.target_kib)}\n`);
  return 0;
}
