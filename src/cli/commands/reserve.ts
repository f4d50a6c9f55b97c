import { parseArgs } from 'node:util';
import { parseDurationMs, parseSizeKib, UnitError } from '../../policy/units.js';
import { UserError } from '../errors.js';
import { ask, controlOption, controlPath } from '../control.js';

export const summary = 'set host memory aside for a domain about to be created (prints the reservation ID)';

const HELP = `usage: xenballoonctl [--control PATH] reserve SIZE [--timeout 30s] [--ttl 5m] [--label TEXT]

Asks xenballoond to free SIZE (e.g. 512M, 2G; a bare number is MiB, as in xl) by ballooning other domains down within their
policy, and to keep it free for you. Prints the reservation ID once the memory is free, or fails
with the reason (e.g. the domains' minimums leave too little). Release it with
\`xenballoonctl release ID\` once the new domain has started; it expires after --ttl otherwise.
Most people want \`xenballoonctl launch --reserve SIZE -- xl create …\`, which does all of this.
`;

export function sizeArg(text: string, what: string): number {
  try {
    const kib = parseSizeKib(text);
    if (kib <= 0) throw new UnitError('must be more than 0');
    return kib;
  } catch (err) {
    throw new UserError(`${what}: ${(err as Error).message}`, 2);
  }
}

export function durationArg(text: string | undefined, what: string): number | undefined {
  if (text === undefined) return undefined;
  try {
    return parseDurationMs(text);
  } catch (err) {
    throw new UserError(`${what}: ${(err as Error).message}`, 2);
  }
}

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv, allowPositionals: true,
    options: {
      ...controlOption, timeout: { type: 'string' }, ttl: { type: 'string' }, label: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  if (positionals.length !== 1) throw new UserError('reserve needs exactly one SIZE, e.g. `xenballoonctl reserve 512M`', 2);
  const kib = sizeArg(positionals[0] as string, 'reserve SIZE');
  const timeout = durationArg(values.timeout, '--timeout');
  const ttl = durationArg(values.ttl, '--ttl');
  const r = await ask(controlPath(values.control), {
    op: 'reserve', kib,
    ...(timeout === undefined ? {} : { timeout_ms: timeout }),
    ...(ttl === undefined ? {} : { ttl_ms: ttl }),
    ...(values.label === undefined ? {} : { label: values.label }),
  });
  process.stdout.write(`${r.reservation.id}\n`);
  process.stderr.write(`reserved ${positionals[0]} as ${r.reservation.id}; expires in ${Math.round((r.reservation.expires_at_ms - Date.now()) / 1000)}s unless released\n`);
  return 0;
}
