import { parseArgs } from 'node:util';
import { UserError } from '../errors.js';
import { ask, controlOption, controlPath } from '../control.js';

export const summary = "hand a pinned domain's target back to xenballoond";

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv, allowPositionals: true, options: { ...controlOption, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help) {
    process.stdout.write('usage: xenballoonctl [--control PATH] unpin DOMAIN\n\nEnds a pin (from `pin` or from a target someone else wrote): xenballoond manages the domain again,\nstarting from the target it has (shrinking is rate-limited as always).\n');
    return 0;
  }
  if (positionals.length !== 1) throw new UserError('unpin needs exactly one DOMAIN (name or domid)', 2);
  const r = await ask(controlPath(values.control), { op: 'unpin', domain: positionals[0] as string });
  process.stdout.write(`unpinned ${r.name} (domain ${r.domid})\n`);
  return 0;
}
