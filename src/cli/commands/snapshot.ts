import { writeFileSync } from 'node:fs';
import { parseCommandArgs, printUsage } from '../args.js';
import { ask, controlOption, controlPath } from '../control.js';
import { UserError } from '../errors.js';

export const summary = 'print the live host as a snapshot (JSON) that `plan` and `capacity --snapshot` read';

const USAGE = `usage: xenballoonctl [--control PATH] snapshot [--policy-out FILE]

Prints the host as xenballoond last observed it (host memory, every domain, the report each guest
published, pending reservations) as a snapshot: the JSON format of docs/snapshot.md. Save it and
plan with it, on this host or another:
  xenballoonctl snapshot > host.json
  xenballoonctl plan host.json --policy /etc/xenballoond/policy.yaml
  --policy-out FILE   also write the policy the daemon runs with, as one policy file`;

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs('snapshot', {
    args: argv,
    options: { ...controlOption, 'policy-out': { type: 'string' }, help: { type: 'boolean', short: 'h' } },
    allowPositionals: true,
    strict: true,
  });
  if (values.help) return printUsage(USAGE);
  if (positionals.length) throw new UserError(`snapshot takes no arguments ('${positionals[0]}'); run 'xenballoonctl snapshot --help'`, 2);
  const r = await ask(controlPath(values.control), { op: 'snapshot' });
  const out = values['policy-out'];
  if (out !== undefined) {
    if (r.policy === null) throw new UserError('this daemon does not report its policy; use its policy files: ' + r.policy_files.join(', '), 1);
    try {
      writeFileSync(out, r.policy);
    } catch (err) {
      throw new UserError(`cannot write ${out}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, 1);
    }
  }
  process.stdout.write(JSON.stringify(r.snapshot, null, 2) + '\n');
  return 0;
}
