import { parseArgs } from 'node:util';
import { ask, controlOption, controlPath } from '../control.js';
import { renderStatus } from '../render-status.js';

export const summary = 'show the daemon\'s view: host memory, each domain\'s current/target/need, reservations';

const HELP = `usage: xenballoonctl [--control PATH] status [--json]

Asks xenballoond (over its control socket) for its current view and prints it.
  --json      the full status as JSON (schema: docs/control-protocol.md)
  --control   the daemon's control socket (default /run/xenballoond/control.sock)
`;

export async function run(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { ...controlOption, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } } });
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const { status } = await ask(controlPath(values.control), { op: 'status' });
  process.stdout.write(values.json ? JSON.stringify(status, null, 2) + '\n' : renderStatus(status));
  return 0;
}
