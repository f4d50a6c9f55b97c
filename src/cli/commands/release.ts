import { parseArgs } from 'node:util';
import { UserError } from '../errors.js';
import { ask, controlOption, controlPath } from '../control.js';

export const summary = 'give back a reservation made with `reserve`';

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv, allowPositionals: true, options: { ...controlOption, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help) {
    process.stdout.write('usage: xenballoonctl [--control PATH] release ID\n\nReleases a reservation: its memory goes back to the guests.\n');
    return 0;
  }
  if (positionals.length !== 1) throw new UserError('release needs exactly one reservation ID (as `reserve` printed it)', 2);
  const r = await ask(controlPath(values.control), { op: 'release', id: positionals[0] as string });
  process.stdout.write(`released ${r.id}\n`);
  return 0;
}
