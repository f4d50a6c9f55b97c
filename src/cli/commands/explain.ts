import { parseArgs } from 'node:util';
import { UserError } from '../errors.js';
import { ask, controlOption, controlPath } from '../control.js';
import { renderExplain } from '../render-status.js';

export const summary = 'explain one domain\'s target: need, min, max, weight, and what bound it';

const HELP = `usage: xenballoonctl [--control PATH] explain DOMAIN [--json]

DOMAIN is a domain name or number. Prints how the daemon's last step arrived at the domain's
target: its estimated need, the policy's min/max/weight, and which limit bound it.
`;

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv, allowPositionals: true,
    options: { ...controlOption, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  if (positionals.length !== 1) throw new UserError('explain needs exactly one DOMAIN (a name or a number)', 2);
  const { explain } = await ask(controlPath(values.control), { op: 'explain', domain: positionals[0] as string });
  process.stdout.write(values.json ? JSON.stringify(explain, null, 2) + '\n' : renderExplain(explain));
  return 0;
}
