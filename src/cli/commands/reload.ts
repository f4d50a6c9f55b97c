import { parseArgs } from 'node:util';
import { ask, controlOption, controlPath } from '../control.js';

export const summary = 'make the daemon re-read its policy (an invalid policy is refused and the old one kept)';

export async function run(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { ...controlOption, help: { type: 'boolean', short: 'h' } } });
  if (values.help) {
    process.stdout.write('usage: xenballoonctl [--control PATH] reload\n\nSame as `systemctl reload xenballoond` (SIGHUP), but reports whether the new policy was accepted.\n');
    return 0;
  }
  const r = await ask(controlPath(values.control), { op: 'reload' });
  process.stdout.write(`policy reloaded from ${r.policy_files.join(', ') || '(built-in default)'}\n`);
  return 0;
}
